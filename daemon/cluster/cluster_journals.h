// ClusterJournals: one job's journal across every node that holds a part of it. An auditor calls
// any node; that node finds the parts through the heads published in etcd
// (/repro/heads/<job>/<node>) and fetches the other nodes' parts from the gRPC address each node
// advertises under /repro/nodes/<node>, asking them for their part only (local_only), so
// nothing recurses.
//
//   ClusterJournals journals(etcd, &mirror, &auditor, &journal, {.node = "node-a"});
//   ASSIGN_OR_RETURN(v1::VerifyJournalResponse r, journals.Verify(request));
//
// Verify checks, for every node: its chain and signed head (each node checks its own part),
// that the head is signed with the key the node published in etcd, and that the head the node
// published in etcd is still in its journal. So a part that was deleted, truncated or rewritten
// is reported, and so is a node that cannot be reached: its part is "not verified", never
// skipped. Finding the parts needs etcd: while it is unreachable, both are UNAVAILABLE.
#ifndef REPRO_DAEMON_CLUSTER_CLUSTER_JOURNALS_H_
#define REPRO_DAEMON_CLUSTER_CLUSTER_JOURNALS_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/etcd/etcd_client.h"
#include "daemon/etcd/etcd_mirror.h"
#include "daemon/registry/auditor.h"
#include "daemon/store/journal.h"
#include "repro/v1/repro.grpc.pb.h"

namespace repro {

struct ClusterJournalsOptions {
  std::string node;  // this node's name
  // Credentials for calls to other nodes (mTLS when reprod serves TLS); null: insecure.
  std::shared_ptr<grpc::ChannelCredentials> peer_credentials;
  // Deadline of one call to another node (a verify with rehash re-reads data: keep it long).
  absl::Duration peer_timeout = absl::Minutes(10);
  // May be empty. The fork reported for a node's head log (TreeHeadWatch::ForkOf), "" for none:
  // Verify then marks that node's part broken, whatever its chain says.
  std::function<std::string(const std::string& node)> fork_of;
};

// Thread-safe.
class ClusterJournals {
 public:
  // Sends one entry to the client; false when the client is gone (stop streaming).
  using Emit = std::function<bool(const v1::ReplayResponse&)>;
  // Streams this node's part of a job (the request has local_only set).
  using LocalReplay = std::function<absl::Status(const v1::ReplayRequest&, const Emit&)>;

  // The prefixes the mirror must follow for this class: the nodes.
  static std::vector<MirroredPrefix> MirroredPrefixes();

  // None is owned; all must outlive this object.
  ClusterJournals(EtcdClient* etcd, EtcdMirror* mirror, Auditor* auditor, const Journal* journal,
                  ClusterJournalsOptions options);

  // Streams every node's entries of request.job: node after node in name order, each node's in
  // sequence order (since_seq applies to each node's sequence); `local` streams this node's.
  // With follow, streams every node's new entries as they come (nodes that join the job are
  // picked up) until `stopped` returns true or the client is gone. NOT_FOUND when no node knows
  // the job; UNAVAILABLE naming the nodes whose part could not be read, after the others.
  absl::Status Replay(const v1::ReplayRequest& request, const Emit& emit,
                      const LocalReplay& local, const std::function<bool()>& stopped);

  // One NodeJournalCheck per node holding a part (see the file comment); drift found by other
  // nodes (with rehash) says which node found it. NOT_FOUND when no node has a journal of the
  // job. Broken or unreachable parts are results, not errors.
  absl::StatusOr<v1::VerifyJournalResponse> Verify(const v1::VerifyJournalRequest& request);

  // Asks `node` (this node's own head log when it is this node) for its current signed tree
  // head and the consistency proof from its tree of `old_size` to that of `tree_size`
  // (GetHeadLogProof without a job), waiting at most `timeout`. The answer is not checked here.
  // UNAVAILABLE when the node is not registered or cannot be reached; the node's own error
  // otherwise.
  absl::StatusOr<v1::HeadLogProofResponse> ProveTreeGrowth(const std::string& node,
                                                           uint64_t old_size, uint64_t tree_size,
                                                           absl::Duration timeout);

 private:
  // A node holding (or said to hold) part of a job.
  struct Part {
    std::string node;
    std::optional<v1::JournalHead> published;  // its head in etcd
    std::optional<v1::NodeInfo> registration;  // its record in etcd: address, public key
  };
  struct FollowGroup;

  // This node and every node that published a head of `job` (read from etcd), by name.
  absl::StatusOr<std::vector<Part>> Parts(absl::string_view job) const;
  // The node's registration from the mirror, if any.
  std::optional<v1::NodeInfo> Registration(absl::string_view node) const;
  // The part's own verdict (local auditor, or the node over gRPC with local_only).
  absl::StatusOr<v1::VerifyJournalResponse> VerifyPart(const Part& part,
                                                       const v1::VerifyJournalRequest& request);
  // Checks an intact part against its published key and head; marks `check` broken if not.
  void CrossCheck(const Part& part, absl::string_view job, v1::NodeJournalCheck* check);
  // The chain hash of entry `seq` of the part.
  absl::StatusOr<std::string> HashAt(const Part& part, absl::string_view job, uint64_t seq);
  // Streams a remote part (request.local_only set) to `emit`.
  absl::Status ReplayRemote(const Part& part, const v1::ReplayRequest& request, const Emit& emit,
                            absl::Duration timeout);
  absl::Status Follow(const v1::ReplayRequest& request, const Emit& emit,
                      const LocalReplay& local, const std::function<bool()>& stopped);
  // Follows `node`'s part, reconnecting, until the group stops.
  void FollowRemote(const std::string& node, v1::ReplayRequest request, const Emit& emit,
                    FollowGroup* group);
  // A stub for the node's advertised address; UNAVAILABLE when it has none.
  absl::StatusOr<std::unique_ptr<v1::Repro::Stub>> PeerStub(const Part& part);

  EtcdClient* const etcd_;
  EtcdMirror* const mirror_;
  Auditor* const auditor_;
  const Journal* const journal_;
  const ClusterJournalsOptions options_;

  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_CLUSTER_CLUSTER_JOURNALS_H_
