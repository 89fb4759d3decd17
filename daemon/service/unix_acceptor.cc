#include "daemon/service/unix_acceptor.h"

#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "daemon/auth/peer_credentials.h"
#include "spdlog/spdlog.h"

namespace repro {

absl::StatusOr<std::unique_ptr<UnixAcceptor>> UnixAcceptor::Start(UnixAcceptorOptions options,
                                                                  grpc::Server* server,
                                                                  CallerIdentities* identities) {
  std::unique_ptr<UnixAcceptor> acceptor(new UnixAcceptor(std::move(options), server, identities));
  absl::Status listening = acceptor->Listen();
  if (!listening.ok()) {
    acceptor->Stop();
    return listening;
  }
  acceptor->thread_ = std::thread([a = acceptor.get()] { a->Loop(); });
  return acceptor;
}

absl::Status UnixAcceptor::Listen() {
  const std::string& path = options_.path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (stop_fd_ < 0 || listen_fd_ < 0) return PosixError(errno, "gRPC unix socket");
  if (bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(PosixError(errno, absl::StrCat("bind ", path)).message());
  }
  // Set before listen(): nobody connects while the mode is still the umask's.
  if (options_.socket_group.has_value()) {
    if (chown(path.c_str(), static_cast<uid_t>(-1), *options_.socket_group) != 0 ||
        chmod(path.c_str(), 0660) != 0) {
      return PosixError(errno, absl::StrCat("give ", path, " to --socket_group"));
    }
  } else if (chmod(path.c_str(), 0666) != 0) {
    return PosixError(errno, absl::StrCat("chmod ", path));
  }
  if (listen(listen_fd_, SOMAXCONN) != 0) return PosixError(errno, absl::StrCat("listen ", path));
  return absl::OkStatus();
}

void UnixAcceptor::Loop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (!stopped_) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("gRPC unix socket {}: poll failed: {}", options_.path,
                    PosixError(errno, "").ToString());
      return;
    }
    if (fds[1].revents != 0) return;
    for (;;) {
      // gRPC polls the connection: it must be non-blocking, as its own listeners make them.
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;  // EAGAIN: all accepted
      absl::StatusOr<Identity> peer = UnixPeerIdentity(fd);
      if (!peer.ok()) {
        spdlog::warn("gRPC unix socket {}: dropping a connection: {}", options_.path,
                     peer.status().ToString());
        close(fd);
        continue;
      }
      identities_->OnAccepted(fd, *std::move(peer));
      grpc::AddInsecureChannelFromFd(server_, fd);  // gRPC owns fd from here
    }
  }
}

void UnixAcceptor::Stop() {
  if (stopped_.exchange(true)) return;
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  for (int* fd : {&listen_fd_, &stop_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  unlink(options_.path.c_str());
}

UnixAcceptor::~UnixAcceptor() { Stop(); }

}  // namespace repro
