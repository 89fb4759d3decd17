// CallerIdentities: who made a gRPC call, as the connection proves it.
//
//   CallerIdentities identities;                 // shared by GrpcServer and ReproService
//   Identity caller = identities.Of(*context);   // in a method
//
// gRPC 1.51 does not tell a server the credentials of a Unix-socket peer (grpc#15511), so
// GrpcServer accepts Unix connections itself, reads SO_PEERCRED/SO_PEERGROUPS of each one, records
// them here under the connection's fd and only then hands the fd to gRPC
// (grpc::AddInsecureChannelFromFd). Calls on such a connection show the peer "fd:N". The record
// cannot go stale while a call runs: gRPC closes the fd (so the number can be reused by a newer
// connection) only when its transport is destroyed, and every call holds a reference to its
// transport until its handler has returned. A newer connection on the same number overwrites the
// record before gRPC sees it.
//
// TCP: with mTLS, the verified client certificate (its first SAN, else its CN); without a client
// certificate on a loopback connection, the uid owning the client's socket, looked up by the
// connection's exact addresses (LoopbackTcpPeerIdentity: needs the servers' TCP endpoints, given
// by OnTcpListening); otherwise none (Identity::Kind::kNone).
//
// Thread-safe.
#ifndef REPRO_DAEMON_SERVICE_CALLER_IDENTITY_H_
#define REPRO_DAEMON_SERVICE_CALLER_IDENTITY_H_

#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "daemon/auth/identity.h"

namespace repro {

class CallerIdentities {
 public:
  // Records the peer of the Unix connection `fd`, before gRPC reads from it.
  void OnAccepted(int fd, Identity peer);

  // The "host:port" TCP endpoints a server bound (ports chosen), from now until OnTcpStopped with
  // the same list. Loopback TCP callers of an endpoint not listed have no identity. Several
  // servers may share these identities.
  void OnTcpListening(const std::vector<std::string>& endpoints);
  void OnTcpStopped(const std::vector<std::string>& endpoints);

  // Any call's context: sync (grpc::ServerContext) or callback (grpc::CallbackServerContext).
  Identity Of(const grpc::ServerContextBase& context);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<int, Identity> unix_peers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> tcp_endpoints_ ABSL_GUARDED_BY(mu_);  // one entry per server's listener
};

}  // namespace repro

#endif  // REPRO_DAEMON_SERVICE_CALLER_IDENTITY_H_
