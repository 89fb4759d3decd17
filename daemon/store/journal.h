// Journal: per job, this node's append-only, hash-chained, durable record of what the job used.
//
//   Journal journal(store, {.node = "node-a", .key = key.get()});
//   JournalItem item;
//   item.entry.mutable_record()->add_facts()->set_key("git/commit");
//   ASSIGN_OR_RETURN(std::vector<Appended> done, journal.Append("job-1", {std::move(item)}));
//
// Storage layout and the chain are described in daemon/store/chain.h. Appends are group-committed:
// concurrent Append calls (for any jobs) are merged by a leader into one RocksDB write batch with
// one WAL fdatasync, and every caller returns only after its entries are durable. Entries of one
// job are therefore dense and ordered, and an acknowledged entry survives kill -9 and power loss.
//
// AppendAsync joins the same queue without waiting: its items ride in the next group, led by the
// journal's own committer thread when no Append caller is leading one.
//
//   journal.AppendAsync("job-1", std::move(items), [](const absl::Status& s) { ... });
//   journal.FlushAsync();  // every AppendAsync so far is durable (or failed)
#ifndef REPRO_DAEMON_STORE_JOURNAL_H_
#define REPRO_DAEMON_STORE_JOURNAL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/metrics/metrics.h"
#include "daemon/os/clock.h"
#include "daemon/store/head_log.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro {

struct JournalOptions {
  std::string node;               // stamped on every entry and head
  const NodeKey* key = nullptr;   // signs heads; not owned, must outlive the Journal
  Clock* clock = DefaultClock();  // not owned
  Metrics* metrics = nullptr;     // not owned; null: not exported
  size_t max_group_entries = 8192;
  // Not owned; null: heads are not logged. Every head the journal signs is appended to it, in
  // the same durable write batch as the entries it covers.
  HeadLog* head_log = nullptr;
  // When set, called after each group commit that appended entries, with the new signed heads
  // (public key included) of the jobs it touched; on the committing thread, outside the
  // journal's lock, possibly out of order between groups. It must return quickly and must not
  // call Append. Cluster mode publishes heads to etcd from here.
  std::function<void(std::vector<v1::JournalHead>)> on_commit;
  // AppendAsync blocks its caller while this many of its items wait to be committed.
  size_t max_async_items = 100000;
  // Nice value of the committer thread that leads groups of AppendAsync items: journaling yields
  // the CPU to the processes reprod serves, and catches up when the CPU is free. Groups led by
  // AppendAsyncForResult items, whose callers wait for them, have a thread at normal priority.
  int committer_nice = 10;
};

// Called once with the outcome of an AppendAsync (OK: durable).
using JournalDone = std::function<void(const absl::Status&)>;

// One entry to append. The journal sets entry.job, entry.seq, entry.node and, when unset,
// entry.time.
struct JournalItem {
  v1::JournalEntry entry;
  // When not empty, the entry is appended only if no earlier entry of the job used the same key
  // (e.g. "data/<dataset>/<path>": each file is journaled once per job and node).
  std::string once_key;
  // When not empty, the job's mark `mark_key` is set to `mark_value` in the same durable batch,
  // whether the entry is appended or deduplicated by once_key (Journal::Mark reads it back). The
  // shim path marks, per process, how far its numbered reports are journaled (issue 13: gaps).
  std::string mark_key;
  uint64_t mark_value = 0;
};

struct Appended {
  uint64_t seq = 0;      // the new entry, or the earlier one with the same once_key
  bool created = false;  // false: deduplicated by once_key
};

struct StoredEntry {
  uint64_t seq = 0;
  std::string hash;
  std::string payload;  // serialized JournalEntry, exactly as stored and hashed
};

// Thread-safe.
class Journal {
 public:
  // `store` is not owned and must outlive the Journal.
  Journal(RocksStore* store, JournalOptions options);
  // Commits what AppendAsync queued, then returns.
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Durably appends `items` to the journal of `job` (atomically: all or none) and returns one
  // Appended per item. `job` must be a valid job id. Fails with DATA_LOSS when the job's stored
  // journal is damaged (it is never extended), or with the store's error (e.g.
  // RESOURCE_EXHAUSTED on a full disk); on failure nothing was appended.
  absl::StatusOr<std::vector<Appended>> Append(absl::string_view job, std::vector<JournalItem> items);

  // Queues `items` for `job` like Append and returns without waiting for the commit (unless
  // max_async_items are already waiting: then it waits for room). Items of one job keep the order
  // of the calls. `done`, when set, is called once with Append's status (OK: durable), on the
  // committing thread and outside the journal's lock; it must return quickly and must not append.
  void AppendAsync(std::string job, std::vector<JournalItem> items, JournalDone done = nullptr);
  // AppendAsync for a caller that waits on `done`, which gets what Append would have returned
  // (the seqs, once durable). While such items are at the front of the queue, groups are led by
  // a committer thread at normal priority, not at committer_nice.
  void AppendAsyncForResult(
      std::string job, std::vector<JournalItem> items,
      std::function<void(absl::StatusOr<std::vector<Appended>>)> done);

  // Returns once everything AppendAsync queued before the call is committed or failed (its `done`
  // has run).
  void FlushAsync();

  // Up to `max_entries` entries of `job` with seq > after_seq, oldest first. Empty when none.
  absl::StatusOr<std::vector<StoredEntry>> Read(absl::string_view job, uint64_t after_seq,
                                                size_t max_entries) const;

  // The durable value of `job`'s mark `key` (JournalItem::mark_key); nullopt when never set.
  absl::StatusOr<std::optional<uint64_t>> Mark(absl::string_view job, absl::string_view key) const;

  // The signed head of this node's journal for `job`; NOT_FOUND when the job has no entries here.
  absl::StatusOr<v1::JournalHead> Head(absl::string_view job) const;

  // Blocks until `job` has an entry with seq > after_seq (true) or `timeout` passes (false).
  bool WaitForEntriesAfter(absl::string_view job, uint64_t after_seq, absl::Duration timeout) const;

  // Re-walks the stored chain of `job` and checks the signed head against this node's key.
  // NOT_FOUND when the job has no journal here; a broken chain is a result, not an error.
  absl::StatusOr<v1::NodeJournalCheck> Verify(absl::string_view job) const;

  // Jobs with a journal on this node, sorted.
  absl::StatusOr<std::vector<std::string>> ListJobs() const;

  const std::string& node() const { return options_.node; }
  const std::string& public_key() const { return options_.key->public_key(); }

 private:
  struct HeadState {
    uint64_t seq = 0;
    std::string hash;       // GenesisHash() when seq == 0
    std::string signature;
  };
  struct Writer;
  struct GroupCommit;

  // The head of `job`, loaded into heads_ on first use. DATA_LOSS when stored head and entries
  // disagree.
  absl::StatusOr<HeadState> HeadLocked(absl::string_view job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<HeadState> LoadHead(absl::string_view job) const;
  // The group-commit protocol, run by the writer at the front of writers_ (the leader):
  // TakeGroup picks the writers to commit and their heads (under mu_), Commit builds and durably
  // writes their batch (without mu_: only the leader touches it), FinishGroup publishes the new
  // heads, hands each writer its result and wakes them and the next leader (under mu_).
  void LeadGroup(Writer* leader) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes whoever must lead the next group: the writer at the front of writers_, or the committer
  // thread when that writer came from AppendAsync.
  void WakeFront() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The committer thread: leads groups whose front writer came from AppendAsync.
  // `awaited`: the loop of the thread that leads groups whose front writer came from
  // AppendAsyncForResult (at normal priority); else of those from AppendAsync (committer_nice).
  void CommitterLoop(bool awaited);
  // Adds `writer` (an AppendAsync call) to the queue, starting its committer thread if needed.
  void QueueAsync(std::unique_ptr<Writer> writer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns how many writers from the front of writers_ the group covers (including those that
  // already failed because their job's journal is damaged).
  size_t TakeGroup(GroupCommit* commit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Commit(GroupCommit* commit);
  absl::Status CommitAndCount(GroupCommit* commit);
  // Returns the AppendAsync writers of the group, whose `on_done` the leader calls unlocked.
  std::vector<std::unique_ptr<Writer>> FinishGroup(Writer* leader, size_t group_size,
                                                   const absl::Status& status, GroupCommit* commit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::JournalHead ToProto(absl::string_view job, const HeadState& head) const;
  Metrics* Registry();

  RocksStore* const store_;
  const JournalOptions options_;
  Metrics own_metrics_;  // used when options_.metrics is null
  Counter* const entries_;
  Counter* const commits_;
  Counter* const failed_commits_;
  Histogram* const commit_seconds_;

  mutable absl::Mutex mu_;
  mutable absl::CondVar appended_;  // signalled when a group appended entries
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);
  // AppendAsync state: items queued and not yet finished, calls ever queued and finished.
  absl::CondVar async_progress_;  // signalled when AppendAsync writers finish
  // The committer threads, by `awaited` (CommitterLoop), started by their first writer (under
  // mu_); `wake` is signalled when such a writer reaches the front of writers_.
  struct Committer {
    absl::CondVar wake;
    std::thread thread;
  };
  Committer committers_[2];
  size_t async_items_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t async_queued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t async_finished_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  mutable absl::flat_hash_map<std::string, HeadState> heads_ ABSL_GUARDED_BY(mu_);
  // The store's generation heads_ were loaded at: a reopen after a storage fault empties them.
  mutable uint64_t heads_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_JOURNAL_H_
