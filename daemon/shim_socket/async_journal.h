// AsyncJournal: appends journal items off the caller's thread, in order per job, merging what
// piles up so that many small appends share one durable commit.
//
//   AsyncJournal async(&journal, {.max_pending = 100000});
//   async.Append("job-1", std::move(items));   // returns at once (unless the queue is full)
//   async.Flush();                             // everything queued so far is durable
//
// The shim socket uses it so that serving a connection never waits for a disk sync: a process in
// enforce mode gets its next verdict while the previous open is being journaled. Items accepted
// here but not yet written are lost if reprod is killed; a clean Stop() writes them all.
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_ASYNC_JOURNAL_H_
#define REPRO_DAEMON_SHIM_SOCKET_ASYNC_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/journal.h"

namespace repro {

struct AsyncJournalOptions {
  // Items queued before Append blocks its caller (back-pressure instead of unbounded memory).
  size_t max_pending = 100000;
  Counter* errors = nullptr;  // counts items that could not be written; may be null
  // Nice value of the writer thread: journaling (the bulk of reprod's work per reported open)
  // yields the CPU to the training processes it serves, and catches up when the CPU is free.
  int nice = 10;
};

class AsyncJournal {
 public:
  // `journal` is not owned and must outlive this object.
  AsyncJournal(Journal* journal, AsyncJournalOptions options);
  // Stop().
  ~AsyncJournal();
  AsyncJournal(const AsyncJournal&) = delete;
  AsyncJournal& operator=(const AsyncJournal&) = delete;

  // Queues `items` for `job`. Blocks only while max_pending items wait. Write errors are logged
  // and counted, not returned. After Stop(), items are written synchronously.
  void Append(std::string job, std::vector<JournalItem> items);

  // Returns once everything queued before the call has been written (or failed).
  void Flush();

  // Writes what is queued and ends the writer thread. Idempotent.
  void Stop();

 private:
  struct Batch {
    std::string job;
    std::vector<JournalItem> items;
  };

  void Loop();
  void Write(std::string job, std::vector<JournalItem> items);

  Journal* const journal_;
  const AsyncJournalOptions options_;

  absl::Mutex mu_;
  std::deque<Batch> queue_ ABSL_GUARDED_BY(mu_);
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;     // items in queue_
  uint64_t queued_ ABSL_GUARDED_BY(mu_) = 0;    // batches ever queued
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;   // batches written (or failed)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_ASYNC_JOURNAL_H_
