// Which uid owns a TCP connection of this host, asked of the kernel by the connection's exact
// address pair (NETLINK_SOCK_DIAG, one hash lookup: no walk of the socket table).
//
//   sockaddr_in local = ..., remote = ...;   // the connection as its own end sees it
//   ASSIGN_OR_RETURN(uid_t uid, TcpSocketOwner(reinterpret_cast<sockaddr*>(&local),
//                                              reinterpret_cast<sockaddr*>(&remote)));
#ifndef REPRO_DAEMON_AUTH_TCP_SOCKET_OWNER_H_
#define REPRO_DAEMON_AUTH_TCP_SOCKET_OWNER_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "absl/status/statusor.h"

namespace repro {

// The uid that created the established TCP socket whose own address is `local` and whose peer is
// `remote` (both AF_INET, or both AF_INET6; an AF_INET pair also finds a dual-stack AF_INET6
// socket holding the v4-mapped pair). Only a socket in state ESTABLISHED with exactly this pair
// answers: never a listener on `local`'s port, a socket in TIME_WAIT, or a half-open one.
// NOT_FOUND when there is none; INVALID_ARGUMENT for mixed or other families; INTERNAL when the
// kernel cannot be asked.
absl::StatusOr<uid_t> TcpSocketOwner(const sockaddr* local, const sockaddr* remote);

}  // namespace repro

#endif  // REPRO_DAEMON_AUTH_TCP_SOCKET_OWNER_H_
