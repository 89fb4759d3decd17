#include "daemon/auth/tcp_socket_owner.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "common/posix_error.h"

namespace repro {
namespace {

// One end of a socket id, as the kernel writes it (port and address in network byte order);
// false unless `end` is AF_INET or AF_INET6.
bool FillEnd(const sockaddr* end, __be16* port, __be32* address) {
  if (end->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(end);
    *port = a->sin_port;
    memcpy(address, &a->sin_addr, sizeof(a->sin_addr));
    return true;
  }
  if (end->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(end);
    *port = a->sin6_port;
    memcpy(address, &a->sin6_addr, sizeof(a->sin6_addr));
    return true;
  }
  return false;
}

// Fills `id` with the pair; false unless both ends are of one family, AF_INET or AF_INET6.
bool FillSocketId(const sockaddr* local, const sockaddr* remote, inet_diag_sockid* id) {
  return local->sa_family == remote->sa_family &&
         FillEnd(local, &id->idiag_sport, id->idiag_src) &&
         FillEnd(remote, &id->idiag_dport, id->idiag_dst);
}

// The socket the kernel answered with is the one asked for: the lookup behind an exact query
// falls back to a listener on the local port, and finds TIME_WAIT sockets too.
bool IsTheConnection(const inet_diag_msg& msg, const inet_diag_sockid& asked, size_t addr_bytes) {
  if (msg.idiag_state != TCP_ESTABLISHED) return false;
  if (msg.id.idiag_sport != asked.idiag_sport || msg.id.idiag_dport != asked.idiag_dport) {
    return false;
  }
  if (msg.idiag_family == AF_INET6 && addr_bytes == 4) {
    // A dual-stack socket holding the v4-mapped pair: its v4 address is the last word.
    return memcmp(&msg.id.idiag_src[3], asked.idiag_src, 4) == 0 &&
           memcmp(&msg.id.idiag_dst[3], asked.idiag_dst, 4) == 0;
  }
  return memcmp(msg.id.idiag_src, asked.idiag_src, addr_bytes) == 0 &&
         memcmp(msg.id.idiag_dst, asked.idiag_dst, addr_bytes) == 0;
}

}  // namespace

absl::StatusOr<uid_t> TcpSocketOwner(const sockaddr* local, const sockaddr* remote) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 body;
  } request{};
  if (!FillSocketId(local, remote, &request.body.id)) {
    return absl::InvalidArgumentError("a TCP socket's addresses must both be IPv4 or both IPv6");
  }
  const size_t addr_bytes = local->sa_family == AF_INET ? 4 : 16;
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.header.nlmsg_flags = NLM_F_REQUEST;  // one socket by its id, not a dump
  request.body.sdiag_family = local->sa_family;
  request.body.sdiag_protocol = IPPROTO_TCP;
  request.body.idiag_states = 1u << TCP_ESTABLISHED;
  request.body.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  request.body.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return PosixError(errno, "socket(NETLINK_SOCK_DIAG)");
  absl::Cleanup close_fd = [fd] { close(fd); };
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof(kernel)) != static_cast<ssize_t>(sizeof(request))) {
    return PosixError(errno, "ask the kernel for a TCP socket (sock_diag)");
  }
  alignas(nlmsghdr) char answer[1024];
  ssize_t n;
  do {
    n = recv(fd, answer, sizeof(answer), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return PosixError(errno, "read the kernel's answer (sock_diag)");
  const auto* reply = reinterpret_cast<const nlmsghdr*>(answer);
  if (!NLMSG_OK(reply, static_cast<size_t>(n))) {
    return absl::InternalError("sock_diag answered with a truncated message");
  }
  if (reply->nlmsg_type == NLMSG_ERROR) {
    const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(reply));
    if (error->error == -ENOENT) return absl::NotFoundError("no such TCP connection");
    return PosixError(-error->error, "sock_diag");
  }
  if (reply->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
      reply->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return absl::InternalError("sock_diag answered with an unexpected message");
  }
  const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(reply));
  if (!IsTheConnection(*msg, request.body.id, addr_bytes)) {
    return absl::NotFoundError("no established TCP connection has these addresses");
  }
  return static_cast<uid_t>(msg->idiag_uid);
}

}  // namespace repro
