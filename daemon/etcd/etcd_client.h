// EtcdClient: etcd's v3 gRPC API (KV, Lease; channels for Watch) over several endpoints with
// failover, using our own minimal protos (proto/etcd).
//
//   ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> etcd,
//                    EtcdClient::Create({.endpoints = {"10.0.0.1:2379", "10.0.0.2:2379"}}));
//   etcdserverpb::RangeRequest get;
//   get.set_key("/repro/pins/train-42");
//   ASSIGN_OR_RETURN(etcdserverpb::RangeResponse got, etcd->Range(get));
//
// Failover: each endpoint has its own channel. A call goes to the endpoint that answered last;
// when it cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED, "etcdserver: no leader", ...) the
// call moves on to the next endpoint, and passes over all endpoints again while some member
// answered but could not serve (leader election), until the call's budget is spent. Every
// attempt has a deadline. An attempt on an endpoint whose connection failed first reconnects,
// waiting up to reconnect_wait, so a member that came back serves the next call. When no
// endpoint serves, the error is UNAVAILABLE and names every endpoint with its last error.
#ifndef REPRO_DAEMON_ETCD_ETCD_CLIENT_H_
#define REPRO_DAEMON_ETCD_ETCD_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/etcd/etcd_credentials.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace repro {

struct EtcdClientOptions {
  // "host:port" or "http://host:port" (etcd's client URLs). At least one.
  std::vector<std::string> endpoints;
  // Budget of one call, across endpoints and retries.
  absl::Duration call_timeout = absl::Seconds(5);
  // Deadline of one attempt on one endpoint.
  absl::Duration attempt_timeout = absl::Seconds(2);
  // How long an attempt on an endpoint whose connection failed first waits to connect again
  // (a refused connection waits all of it: the endpoint stays failed until it has connected).
  absl::Duration reconnect_wait = absl::Milliseconds(500);
  // TLS and user authentication (etcd_credentials.h); default: plaintext, no user.
  EtcdSecurity security;
};

// Thread-safe.
class EtcdClient {
 public:
  // INVALID_ARGUMENT when there is no endpoint, one is malformed, or options.security names
  // unreadable files (a user without TLS, too).
  // Connects lazily: an unreachable etcd is not an error here.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(EtcdClientOptions options);

  // With a user (options.security.user): logs in at the first endpoint that answers, so that a
  // wrong user or password is one clear error at start instead of calls that fail forever.
  // UNAUTHENTICATED naming --etcd_user and --etcd_password_file when etcd refuses the login (or
  // has authentication off); OK without a user, or when no endpoint answers (the caller then
  // waits for etcd as it would anyway).
  absl::Status CheckLogin();

  // Unary calls with failover. Callers send only idempotent requests (a Txn is retried when its
  // attempt timed out, so it may apply twice). Errors: UNAVAILABLE when no endpoint serves;
  // otherwise etcd's own status (e.g. OUT_OF_RANGE for a compacted revision).
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& request);
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrant(
      const etcdserverpb::LeaseGrantRequest& request);
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> LeaseRevoke(
      const etcdserverpb::LeaseRevokeRequest& request);

  // For streams (Watch, LeaseKeepAlive), which the caller re-opens when they break: the channel
  // of the endpoint that answered last. After a stream on it failed, the caller reports it with
  // StreamFailed so the next stream tries the next endpoint.
  struct Endpoint {
    size_t index = 0;
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
  };
  Endpoint PreferredEndpoint() const;
  void StreamFailed(size_t index, const std::string& error);

  const std::vector<std::string>& endpoints() const { return addresses_; }
  // "127.0.0.1:2379,127.0.0.1:22379", for messages.
  std::string Describe() const;
  const EtcdClientOptions& options() const { return options_; }

 private:
  struct Channel {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  };
  // One attempt of a unary call on one endpoint.
  using Attempt = std::function<grpc::Status(Channel& channel, grpc::ClientContext* context)>;

  EtcdClient(EtcdClientOptions options, std::vector<std::string> addresses,
             std::shared_ptr<EtcdTokenSource> tokens);
  // Runs `attempt` with failover as described in the file comment. `what` names the call.
  absl::Status CallWithFailover(absl::string_view what, const Attempt& attempt);
  // CallWithFailover for `method` of the `stub` of each channel.
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      absl::string_view what, std::unique_ptr<Stub> Channel::*stub,
      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      const Request& request);

  const EtcdClientOptions options_;
  const std::vector<std::string> addresses_;
  const std::shared_ptr<EtcdTokenSource> tokens_;  // null without --etcd_user
  std::vector<Channel> channels_;  // fixed after construction
  mutable absl::Mutex mu_;
  size_t preferred_ ABSL_GUARDED_BY(mu_) = 0;
};

// True for errors after which another etcd endpoint (or a later try) may succeed.
bool IsEtcdRetryable(const grpc::Status& status);

// Adds to `txn` the compare "`key` does not exist" (create_revision == 0): the transaction's
// success branch runs for the first writer of the key only.
void CompareAbsent(absl::string_view key, etcdserverpb::TxnRequest* txn);

// Adds to `txn` the compare "`key` was last written at `mod_revision`" (compare-and-swap).
void CompareUnchanged(absl::string_view key, int64_t mod_revision, etcdserverpb::TxnRequest* txn);

}  // namespace repro

#endif  // REPRO_DAEMON_ETCD_ETCD_CLIENT_H_
