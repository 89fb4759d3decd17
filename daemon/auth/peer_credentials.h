// What the kernel says about the process at the other end of a local connection.
//
//   ASSIGN_OR_RETURN(Identity peer, UnixPeerIdentity(fd));                    // Unix socket
//   ASSIGN_OR_RETURN(Identity peer, LoopbackTcpPeerIdentity("ipv4:127.0.0.1:53412"));
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

// The uid owning the local TCP socket at `peer` (a gRPC peer URI "ipv4:127.0.0.1:PORT" or
// "ipv6:[::1]:PORT"), found in the kernel's socket table (/proc/net/tcp, tcp6) like identd does;
// groups from the group database. Only meaningful when the peer is on this host: the caller
// checks that the address is loopback. NOT_FOUND when no established socket has that address.
absl::StatusOr<Identity> LoopbackTcpPeerIdentity(absl::string_view peer);

// True for a loopback address: a gRPC peer URI ("ipv4:127.x.x.x:PORT", "ipv6:[::1]:PORT") or a
// listen address ("127.0.0.1:7070", "[::1]:7070", "localhost:7070").
bool IsLoopbackAddress(absl::string_view address);

// The supplementary groups of `uid` in the group database (getgrouplist).
std::vector<gid_t> GroupsOfUser(uid_t uid, gid_t gid);

}  // namespace repro

#endif  // REPRO_DAEMON_AUTH_PEER_CREDENTIALS_H_
