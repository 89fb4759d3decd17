// GrpcServer: serves gRPC services on the --grpc_listen endpoints, with the standard health
// service and server reflection, mTLS on TCP listeners when certificates are given. Unix sockets
// are accepted by reprod itself (UnixAcceptor) so that each call's caller is known
// (CallerIdentities). A TCP listener on a non-loopback address needs mTLS (--tls_cert, --tls_key
// and --tls_client_ca) unless insecure_tcp says otherwise.
//
//   GrpcServerOptions options;
//   options.listen = {"unix:/run/reprod/reprod.sock", "0.0.0.0:7070"};
//   ASSIGN_OR_RETURN(std::unique_ptr<GrpcServer> server, GrpcServer::Start(options, {&service}));
//   ...
//   server->Shutdown(absl::Seconds(5));
#ifndef REPRO_DAEMON_SERVICE_GRPC_SERVER_H_
#define REPRO_DAEMON_SERVICE_GRPC_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/service/caller_identity.h"
#include "daemon/service/unix_acceptor.h"

namespace repro {

struct GrpcServerOptions {
  // "unix:/path" or "host:port" (port 0 picks a free port; see GrpcServer::endpoints()).
  std::vector<std::string> listen;
  // PEM files. With cert and key, TCP listeners use TLS; with client_ca too, clients must present
  // a certificate signed by it (mTLS). Unix sockets identify callers by SO_PEERCRED instead.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Allows a TCP listener on a non-loopback address without mTLS (--insecure_tcp): anyone who
  // reaches it has no identity and may only read public metadata.
  bool insecure_tcp = false;
  // Unset: Unix sockets are 0666. Set: 0660 owned by this group (--socket_group).
  std::optional<gid_t> socket_group;
  // Where Unix peers and the bound TCP endpoints are recorded; must outlive the server. Required
  // for unix: endpoints; without it, loopback TCP callers have no identity.
  CallerIdentities* identities = nullptr;
  // Bounds concurrent calls of sync methods, including long-lived Replay streams. Record is a
  // callback method: its calls hold no thread while their entries wait for the group commit.
  int max_threads = 256;
};

// Thread-safe.
class GrpcServer {
 public:
  // Binds every endpoint and starts serving. INVALID_ARGUMENT for a malformed endpoint,
  // unreadable TLS files, or a non-loopback TCP endpoint without mTLS (and no insecure_tcp);
  // FAILED_PRECONDITION when a Unix socket path is served by a live process; UNAVAILABLE when an
  // endpoint cannot be bound. `services` are not owned.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, const std::vector<grpc::Service*>& services);
  ~GrpcServer();

  // Stops accepting calls and waits up to `grace` for running ones, then cancels them.
  void Shutdown(absl::Duration grace);

  // What the standard health service answers for every service: SERVING (the default) or
  // NOT_SERVING (e.g. while a storage fault makes the node refuse writes).
  void SetServing(bool serving);

  // The endpoints actually bound (port 0 replaced by the chosen port).
  const std::vector<std::string>& endpoints() const { return endpoints_; }

 private:
  GrpcServer() = default;

  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<UnixAcceptor>> acceptors_;  // one per unix: endpoint
  std::vector<std::string> endpoints_;
  std::vector<std::string> tcp_endpoints_;  // as bound: told to identities_ while serving
  CallerIdentities* identities_ = nullptr;  // set once the TCP endpoints were told
};

// Credentials for calling another reprod that serves with the same options (cluster mode):
// insecure without TLS; with TLS, the server's certificate and key as the client certificate
// and tls_client_ca (else the system roots) to check the peer. INVALID_ARGUMENT for unreadable
// files.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> PeerCredentials(
    const GrpcServerOptions& options);

}  // namespace repro

#endif  // REPRO_DAEMON_SERVICE_GRPC_SERVER_H_
