// UnixAcceptor: accepts connections on a gRPC Unix socket itself, so that reprod knows the peer
// of each (see caller_identity.h for why), and hands them to a running grpc::Server.
//
//   ASSIGN_OR_RETURN(auto acceptor, UnixAcceptor::Start({.path = "/run/reprod/reprod.sock"},
//                                                       server.get(), &identities));
//   ...
//   acceptor->Stop();  // before the server shuts down
//
// Thread-safe.
#ifndef REPRO_DAEMON_SERVICE_UNIX_ACCEPTOR_H_
#define REPRO_DAEMON_SERVICE_UNIX_ACCEPTOR_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "daemon/service/caller_identity.h"

namespace repro {

struct UnixAcceptorOptions {
  std::string path;
  // Unset: the socket is 0666, every local user may connect (authorization is per call, by the
  // peer's credentials). Set: 0660 with this group, so only its members (and root) may connect.
  std::optional<gid_t> socket_group;
};

class UnixAcceptor {
 public:
  // Binds and listens on options.path (the caller has removed a stale socket there) and starts
  // accepting into `server`, recording each peer in `identities`. Neither is owned; both must
  // outlive the acceptor. UNAVAILABLE when the path cannot be bound.
  static absl::StatusOr<std::unique_ptr<UnixAcceptor>> Start(UnixAcceptorOptions options,
                                                             grpc::Server* server,
                                                             CallerIdentities* identities);
  ~UnixAcceptor();

  // Stops accepting and removes the socket file; connections already handed to gRPC stay with
  // it. Idempotent.
  void Stop();

 private:
  UnixAcceptor(UnixAcceptorOptions options, grpc::Server* server, CallerIdentities* identities)
      : options_(std::move(options)), server_(server), identities_(identities) {}
  absl::Status Listen();
  void Loop();

  const UnixAcceptorOptions options_;
  grpc::Server* const server_;
  CallerIdentities* const identities_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd that wakes the loop to stop
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace repro

#endif  // REPRO_DAEMON_SERVICE_UNIX_ACCEPTOR_H_
