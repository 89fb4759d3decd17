// HeadPublisher: publishes this node's signed journal heads to etcd
// (/repro/heads/<job>/<node>), so an auditor calling any node finds every node's part of a job.
//
//   HeadPublisher heads(etcd, "node-a");
//   JournalOptions options{.node = "node-a", .key = key,
//                          .on_commit = [&](auto h) { heads.Publish(std::move(h)); }};
//   heads.Start(&journal);  // also publishes heads etcd does not have yet (after an outage)
//
// Publishing is asynchronous and never blocks or fails an append: heads are queued (the newest
// per job wins) and a background thread writes them in rounds at most every 50 ms, many heads
// per transaction, retrying with backoff while etcd is unreachable. A published head only moves
// forward: it is written with a compare-and-swap and never replaced by a head with a lower
// sequence number, so a node whose journal lost entries cannot hide that by republishing (the
// auditor compares the two).
#ifndef REPRO_DAEMON_CLUSTER_HEAD_PUBLISHER_H_
#define REPRO_DAEMON_CLUSTER_HEAD_PUBLISHER_H_

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/etcd/etcd_client.h"
#include "daemon/store/journal.h"
#include "repro/v1/journal.pb.h"

namespace repro {

// Thread-safe.
class HeadPublisher {
 public:
  // `etcd` is not owned and must outlive the publisher.
  HeadPublisher(EtcdClient* etcd, std::string node);
  ~HeadPublisher();
  HeadPublisher(const HeadPublisher&) = delete;
  HeadPublisher& operator=(const HeadPublisher&) = delete;

  // Starts the publishing thread, which first queues the head of every job of `journal` (not
  // owned; must outlive the publisher), so heads an outage or a restart left behind reach etcd.
  // Call once.
  void Start(const Journal* journal);
  // Stops the thread; heads still queued are not published. Idempotent.
  void Stop();

  // Queues `heads` (of this node) for publication. Never blocks on etcd.
  void Publish(std::vector<v1::JournalHead> heads);
  // Waits until nothing is queued (true) or `timeout` passes (false).
  bool WaitUntilPublished(absl::Duration timeout) const;

 private:
  // What etcd holds for one of this node's head keys, as far as the thread knows.
  struct InEtcd {
    bool exists = false;
    uint64_t seq = 0;
    std::string hash;
    int64_t mod_revision = 0;
  };

  // Adds to `txn` the compare-and-put moving this node's head of head.job() from `now` to
  // `head`. False, adding nothing, when etcd already holds `head` or a later head.
  bool AddMove(const v1::JournalHead& head, const InEtcd& now,
               etcdserverpb::TxnRequest* txn) const;
  // Reads into known_ what etcd holds for the keys of `heads` that known_ lacks (one
  // transaction of ranges).
  absl::Status Learn(const std::vector<v1::JournalHead>& heads);
  // Writes `head` unless etcd holds it or a later one, re-reading the key when the
  // compare-and-swap fails. UNAVAILABLE when etcd cannot be reached (the caller retries).
  absl::Status PublishOne(const v1::JournalHead& head);
  // The same for several heads in one transaction; one by one if the transaction's compares
  // fail.
  absl::Status PublishBatch(const std::vector<v1::JournalHead>& heads);
  void QueueUnpublished(const Journal* journal);
  void Run(const Journal* journal);

  EtcdClient* const etcd_;
  const std::string node_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, v1::JournalHead> pending_ ABSL_GUARDED_BY(mu_);  // by job
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // the thread holds heads taken from pending_
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  // By job. Only the publishing thread touches it.
  absl::flat_hash_map<std::string, InEtcd> known_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_CLUSTER_HEAD_PUBLISHER_H_
