#include "tests/client/shim/shim_socket_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/shim/shim_protocol.h"

namespace repro::testing {

ShimSocketClient::ShimSocketClient(const std::string& socket_path) {
  fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socket_path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  connected_ =
      fd_ >= 0 && connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

ShimSocketClient::~ShimSocketClient() {
  if (fd_ >= 0) close(fd_);
}

bool ShimSocketClient::Send(const std::string& datagram) {
  return send(fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(datagram.size());
}

bool ShimSocketClient::Pending(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

std::optional<std::string> ShimSocketClient::Receive(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return std::nullopt;
  std::string buf(REPRO_SHIM_MAX_MESSAGE, '\0');
  ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
  if (n <= 0) return std::nullopt;
  buf.resize(n);
  return buf;
}

}  // namespace repro::testing
