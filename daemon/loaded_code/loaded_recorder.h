// LoadedRecorder: journals what shimmed processes report they run with (LOADED: shared libraries,
// libc version, Python package directories), on a background queue.
//
//   LoadedRecorder recorder({.journal = journal, .fs = DefaultFileSystem(),
//                            .hash_cache = cache, .metrics = &metrics, .lost = &lost});
//   recorder.Record({.job = "job-1", .pid = pid, .uid = uid, .gid = gid, .rank = 0}, loaded);
//   ...
//   recorder.Stop();  // what was queued is handed to the journal
//
// Describing a library means hashing it, and the first hash of a large one (libtorch, ~1 GB)
// takes seconds: Record never waits for that. Reports queue up to a bound; past it they are
// dropped and counted (repro_shim_loaded_dropped_total, and LostItems), so a connection's worker
// is never held up and enforce-mode verdicts are never delayed. The entries are those of
// LoadedEntryBuilder (see loaded_entries.h for their once-keys), appended with
// Journal::AppendAsync.
//
// Thread-safe.
#ifndef REPRO_DAEMON_LOADED_CODE_LOADED_RECORDER_H_
#define REPRO_DAEMON_LOADED_CODE_LOADED_RECORDER_H_

#include <cstddef>

#include "daemon/hashing/hash_cache.h"
#include "daemon/loaded_code/loaded_entries.h"
#include "daemon/loaded_code/loaded_report.h"
#include "daemon/metrics/metrics.h"
#include "daemon/os/background_queue.h"
#include "daemon/os/file_system.h"
#include "daemon/store/journal.h"
#include "daemon/store/lost_items.h"

namespace repro {

// Not owned; each must outlive the recorder.
struct LoadedRecorderParts {
  Journal* journal = nullptr;
  FileSystem* fs = nullptr;
  HashCache* hash_cache = nullptr;  // may be null
  Metrics* metrics = nullptr;       // may be null: not exported
  Authorizer* auth = nullptr;       // may be null: see LoadedEntryBuilder
  LostItems* lost = nullptr;        // may be null: losses are only counted in metrics
};

struct LoadedRecorderOptions {
  // Reports waiting to be journaled; Record drops what comes beyond.
  size_t max_queued = 256;
  // Nice value of the recorder thread: hashing libraries yields the CPU to training processes.
  int nice = 10;
  // Libraries larger than this are not hashed (nor journaled). 0: no limit.
  uint64_t max_hash_bytes = 0;
};

class LoadedRecorder {
 public:
  LoadedRecorder(LoadedRecorderParts parts, LoadedRecorderOptions options = {});
  LoadedRecorder(const LoadedRecorder&) = delete;
  LoadedRecorder& operator=(const LoadedRecorder&) = delete;

  // Queues the report `loaded` of `source` and returns at once. False when it was dropped: the
  // queue is full, or the recorder is stopped.
  bool Record(LoadedSource source, LoadedReport loaded);

  // Returns once every report queued before the call has been handed to the journal (its entries
  // may still wait for their commit: Journal::FlushAsync).
  void Flush() { queue_.Flush(); }

  // Journals what is queued and ends the thread. Idempotent.
  void Stop() { queue_.Stop(); }

 private:
  struct Report {
    LoadedSource source;
    LoadedReport loaded;
  };

  // On the queue's thread.
  void Describe(Report report);

  const LoadedRecorderParts parts_;
  Metrics own_metrics_;  // used when parts_.metrics is null
  Metrics* const metrics_;
  Counter* reports_;
  Counter* dropped_;
  Counter* skipped_libraries_;
  Counter* skipped_packages_;
  LoadedEntryBuilder builder_;     // the queue's thread only
  BackgroundQueue<Report> queue_;  // last: its thread starts once the rest is built
};

}  // namespace repro

#endif  // REPRO_DAEMON_LOADED_CODE_LOADED_RECORDER_H_
