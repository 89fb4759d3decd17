// What the kernel says about the process at the other end of a local connection.
//
//   ASSIGN_OR_RETURN(Identity peer, UnixPeerIdentity(fd));                    // Unix socket
//   ASSIGN_OR_RETURN(Identity peer,
//                    LoopbackTcpPeerIdentity("ipv4:127.0.0.1:53412", {"127.0.0.1:7070"}));
#ifndef REPRO_DAEMON_AUTH_PEER_CREDENTIALS_H_
#define REPRO_DAEMON_AUTH_PEER_CREDENTIALS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/auth/identity.h"

namespace repro {

// The uid, gid (SO_PEERCRED) and supplementary groups (SO_PEERGROUPS) of the process that
// connected the Unix socket `fd`, as they were at connect() time. `pid`, when not null, receives
// its pid. INTERNAL when the socket cannot say (not a Unix socket).
absl::StatusOr<Identity> UnixPeerIdentity(int fd, pid_t* pid = nullptr);

// The uid owning the client's socket of a loopback TCP connection to this server; groups from
// the group database. `peer` is the call's gRPC peer URI ("ipv4:127.0.0.1:PORT",
// "ipv6:%5B::1%5D:PORT"), `server_endpoints` the "host:port" TCP endpoints this server listens
// on, with the ports it bound. The kernel is asked for the connection by its exact address pair
// (TcpSocketOwner), for every address of this server the client may have connected to: a
// listener's own loopback address; for "localhost" and wildcard listeners, 127.0.0.1 or ::1 and
// the peer's own address. A socket on the peer's address connected elsewhere is never taken for
// the caller. Only meaningful when the peer is on this host: the caller checks that the address
// is loopback. NOT_FOUND when no such connection exists; FAILED_PRECONDITION when connections of
// different uids from the peer's address reach different addresses of this server, since the
// call may have come on either.
absl::StatusOr<Identity> LoopbackTcpPeerIdentity(absl::string_view peer,
                                                 const std::vector<std::string>& server_endpoints);

// True for a loopback address: a gRPC peer URI ("ipv4:127.x.x.x:PORT", "ipv6:%5B::1%5D:PORT",
// escapes decoded) or a listen address ("127.0.0.1:7070", "[::1]:7070", "localhost:7070").
bool IsLoopbackAddress(absl::string_view uri_or_address);

// `uid` with its primary group (user database) and supplementary groups (group database,
// getgrouplist), in one lookup of the user; a uid the user database does not know has gid -1 and
// no groups.
Identity IdentityOfUser(uid_t uid);

}  // namespace repro

#endif  // REPRO_DAEMON_AUTH_PEER_CREDENTIALS_H_
