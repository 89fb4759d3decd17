// TreeHeadWatch: publishes this node's signed tree head (its head log, daemon/store/head_log.h)
// in etcd under /repro/treeheads/<node>, and checks every node's published tree head against the
// one it saw before, so that a node showing two histories is reported as a fork.
//
//   TreeHeadWatch watch(etcd, "node-a", head_log, prove, &metrics);
//   watch.Start();                       // a round every second
//   for (const std::string& fork : watch.Forks()) ...;   // "node-b: ..." (GetNodeInfo shows them)
//
// A node's head log only grows, so two genuine tree heads of one node (each signed by the key it
// carries) prove a fork when one of the same size has another root, or when a smaller tree was
// signed later than a larger one (a node restarted on a rolled-back copy of its data dir, or an
// admin who wrote an older head back). A larger tree is taken as the new reference only once the
// node proved it extends the old one (an RFC 6962 consistency proof, asked through `prove`); a
// proof that fails, or that the node refuses, is a fork too: it catches a node that rewrote its
// history and then grew past what the others saw. This node checks its own key too: a tree in
// etcd larger than its own at start means its data dir was rolled back.
//
// A fork is logged, counted in repro_cluster_tree_head_forks_total{node} and kept for
// GetNodeInfo, and its evidence (both signed tree heads) is written to etcd under
// /repro/forks/<node> (first finder wins), so every node, and this one after a restart, reports
// it until an operator deletes that key.
//
// Thread-safe.
#ifndef REPRO_DAEMON_CLUSTER_TREE_HEAD_WATCH_H_
#define REPRO_DAEMON_CLUSTER_TREE_HEAD_WATCH_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "daemon/etcd/etcd_client.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/head_log.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro {

class TreeHeadWatch {
 public:
  // Asks `node` for its current signed tree head and the consistency proof from its tree of
  // `old_size` to its tree of `new_size` (ClusterJournals::ProveTreeGrowth). UNAVAILABLE (or
  // DEADLINE_EXCEEDED) when the node cannot be reached.
  using ProveGrowth = std::function<absl::StatusOr<v1::HeadLogProofResponse>(
      const std::string& node, uint64_t old_size, uint64_t new_size)>;

  // Not owned; each must outlive the watch.
  TreeHeadWatch(EtcdClient* etcd, std::string node, const HeadLog* log, ProveGrowth prove,
                Metrics* metrics, absl::Duration interval = absl::Seconds(1));
  ~TreeHeadWatch();
  TreeHeadWatch(const TreeHeadWatch&) = delete;
  TreeHeadWatch& operator=(const TreeHeadWatch&) = delete;

  // Runs RunOnce every interval in a thread until Stop. Call once.
  void Start();
  void Stop();

  // One round: reads the forks recorded in etcd and every published tree head and checks it,
  // records new forks in etcd, then publishes this node's own tree head when its tree grew (or
  // it never did). UNAVAILABLE when etcd cannot be reached.
  absl::Status RunOnce();

  // The forks found so far, one line per node ("node-b: a tree of size 3 signed after size 5",
  // with " (found by node-c)" when another node found it).
  std::vector<std::string> Forks() const;
  // The fork found for `node` ("" when none).
  std::string ForkOf(const std::string& node) const;

 private:
  // Compares `sth`, published under `node`'s key, with what was seen of that node before; asks
  // the node for a consistency proof when it grew. Call without mu_ held.
  void Check(const std::string& node, const v1::SignedTreeHead& sth);
  // The fork that two tree heads of `node` (both signed by it, `earlier` seen first) prove, or
  // nullopt when `later` is `earlier` or extends it; a larger `later` is proven by asking the
  // node (prove_). UNAVAILABLE (or the like) when the node could not be asked.
  absl::StatusOr<std::optional<v1::TreeHeadFork>> Contradiction(
      const std::string& node, const v1::SignedTreeHead& earlier,
      const v1::SignedTreeHead& later) const;
  // Takes the forks recorded in etcd that RecheckRecord upholds.
  void Learn(const etcdserverpb::RangeResponse& recorded);
  // OK when `fork`, recorded under `node`'s key, holds two tree heads signed by `node` that
  // contradict each other (or the node cannot be asked); INVALID_ARGUMENT saying why not.
  absl::Status RecheckRecord(const std::string& node, const v1::TreeHeadFork& fork) const;
  // Writes the forks this node found to etcd, unless one is there already.
  absl::Status Record();
  // Logs, counts and keeps `fork` (once per node); `recorded`: it came from etcd.
  void ReportFork(v1::TreeHeadFork fork, bool recorded);
  v1::TreeHeadFork MakeFork(const std::string& node, std::string problem,
                            const std::optional<v1::SignedTreeHead>& earlier,
                            const std::optional<v1::SignedTreeHead>& later) const;
  bool Forked(const std::string& node) const;

  EtcdClient* const etcd_;
  const std::string node_;
  const HeadLog* const log_;
  const ProveGrowth prove_;
  Metrics* const metrics_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  // The largest tree head seen of each node whose growth was proven (or the first one seen).
  std::map<std::string, v1::SignedTreeHead> seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::TreeHeadFork> forks_ ABSL_GUARDED_BY(mu_);  // node -> first one
  std::set<std::string> unrecorded_ ABSL_GUARDED_BY(mu_);  // forks not yet written to etcd
  std::set<std::string> unreachable_ ABSL_GUARDED_BY(mu_);  // growth not proven yet (logged)
  // Fork records RecheckRecord turned down: key -> mod_revision (not checked again unchanged).
  std::map<std::string, int64_t> turned_down_ ABSL_GUARDED_BY(mu_);
  uint64_t published_size_ ABSL_GUARDED_BY(mu_) = 0;
  bool published_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace repro

#endif  // REPRO_DAEMON_CLUSTER_TREE_HEAD_WATCH_H_
