// LoadedRecorder: journals what shimmed processes report they run with (LOADED: shared libraries,
// libc version, Python package directories), on its own background thread.
//
//   LoadedRecorder recorder({.journal = async_journal, .fs = DefaultFileSystem(),
//                            .hash_cache = cache, .metrics = &metrics});
//   recorder.Record({.job = "job-1", .pid = pid, .uid = uid, .gid = gid, .rank = 0}, loaded);
//   ...
//   recorder.Stop();  // what was queued is journaled
//
// Describing a library means hashing it, and the first hash of a large one (libtorch, ~1 GB)
// takes seconds: Record never waits for that. Reports queue up to a bound; past it they are
// dropped and counted (repro_shim_loaded_dropped_total), so a connection's worker is never held
// up and enforce-mode verdicts are never delayed. The entries are those of LoadedEntryBuilder
// (see loaded_entries.h for their once-keys), appended through the AsyncJournal.
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_LOADED_RECORDER_H_
#define REPRO_DAEMON_SHIM_SOCKET_LOADED_RECORDER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/metrics/metrics.h"
#include "daemon/os/file_system.h"
#include "daemon/shim_socket/async_journal.h"
#include "daemon/shim_socket/loaded_entries.h"
#include "daemon/shim_socket/shim_message.h"

namespace repro {

// Not owned; each must outlive the recorder.
struct LoadedRecorderParts {
  AsyncJournal* journal = nullptr;
  FileSystem* fs = nullptr;
  HashCache* hash_cache = nullptr;  // may be null
  Metrics* metrics = nullptr;       // may be null: not exported
  Authorizer* auth = nullptr;       // may be null: see LoadedEntryBuilder
};

struct LoadedRecorderOptions {
  // Reports waiting to be journaled; Record drops what comes beyond.
  size_t max_queued = 256;
  // Nice value of the recorder thread: hashing libraries yields the CPU to training processes.
  int nice = 10;
};

class LoadedRecorder {
 public:
  LoadedRecorder(LoadedRecorderParts parts, LoadedRecorderOptions options = {});
  // Stop().
  ~LoadedRecorder();
  LoadedRecorder(const LoadedRecorder&) = delete;
  LoadedRecorder& operator=(const LoadedRecorder&) = delete;

  // Queues the report `loaded` of `source` and returns at once. False when it was dropped: the
  // queue is full, or the recorder is stopped.
  bool Record(LoadedSource source, ShimLoaded loaded);

  // Returns once every report queued before the call has been handed to the journal (its entries
  // may still wait in the AsyncJournal; Flush that too to have them durable).
  void Flush();

  // Journals what is queued and ends the thread. Idempotent.
  void Stop();

 private:
  struct Report {
    LoadedSource source;
    ShimLoaded loaded;
  };

  void Loop();

  const LoadedRecorderParts parts_;
  const LoadedRecorderOptions options_;
  Metrics own_metrics_;  // used when parts_.metrics is null
  Metrics* const metrics_;
  Counter* reports_;
  Counter* dropped_;
  Counter* skipped_libraries_;
  Counter* skipped_packages_;
  LoadedEntryBuilder builder_;  // recorder thread only

  absl::Mutex mu_;
  std::deque<Report> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // reports ever queued
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;    // reports journaled (or failed)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_LOADED_RECORDER_H_
