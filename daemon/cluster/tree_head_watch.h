// TreeHeadWatch: publishes this node's signed tree head (its head log, daemon/store/head_log.h)
// in etcd under /repro/treeheads/<node>, and checks every node's published tree head against the
// one it saw before, so that a node showing two histories is reported as a fork.
//
//   TreeHeadWatch watch(etcd, "node-a", head_log, &metrics);
//   watch.Start();                       // a round every second
//   for (const std::string& fork : watch.Forks()) ...;   // "node-b: ..." (GetNodeInfo shows them)
//
// A node's head log only grows, so two genuine tree heads of one node (each signed by the key it
// carries) prove a fork when one of the same size has another root, or when a smaller tree was
// signed later than a larger one (a node restarted on a rolled-back copy of its data dir, or an
// admin who wrote an older head back). A fork is logged, counted in
// repro_cluster_tree_head_forks_total{node} and kept for GetNodeInfo. This node checks its own
// key too: a tree in etcd larger than its own at start means its data dir was rolled back.
// A larger tree is taken as the new reference without a consistency proof (not checked yet).
//
// Thread-safe.
#ifndef REPRO_DAEMON_CLUSTER_TREE_HEAD_WATCH_H_
#define REPRO_DAEMON_CLUSTER_TREE_HEAD_WATCH_H_

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "daemon/etcd/etcd_client.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/head_log.h"
#include "repro/v1/journal.pb.h"

namespace repro {

class TreeHeadWatch {
 public:
  // Not owned; each must outlive the watch.
  TreeHeadWatch(EtcdClient* etcd, std::string node, const HeadLog* log, Metrics* metrics,
                absl::Duration interval = absl::Seconds(1));
  ~TreeHeadWatch();
  TreeHeadWatch(const TreeHeadWatch&) = delete;
  TreeHeadWatch& operator=(const TreeHeadWatch&) = delete;

  // Runs RunOnce every interval in a thread until Stop. Call once.
  void Start();
  void Stop();

  // One round: reads every published tree head and checks it, then publishes this node's own
  // when its tree grew (or it never did). UNAVAILABLE when etcd cannot be reached.
  absl::Status RunOnce();

  // The forks found so far, one line per node ("node-b: a tree of size 3 signed after size 5").
  std::vector<std::string> Forks() const;
  // The fork found for `node` ("" when none).
  std::string ForkOf(const std::string& node) const;

 private:
  // Compares `sth`, published under `node`'s key, with what was seen of that node before.
  void Check(const std::string& node, const v1::SignedTreeHead& sth);
  void ReportFork(const std::string& node, const std::string& problem);

  EtcdClient* const etcd_;
  const std::string node_;
  const HeadLog* const log_;
  Metrics* const metrics_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::map<std::string, v1::SignedTreeHead> seen_ ABSL_GUARDED_BY(mu_);  // the largest, by node
  std::map<std::string, std::string> forks_ ABSL_GUARDED_BY(mu_);        // node -> first problem
  uint64_t published_size_ ABSL_GUARDED_BY(mu_) = 0;
  bool published_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace repro

#endif  // REPRO_DAEMON_CLUSTER_TREE_HEAD_WATCH_H_
