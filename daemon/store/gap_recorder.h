// GapRecorder: remembers, per job, what could not be journaled after a fault (a full disk, an IO
// error, shim reports dropped or lost in flight) and journals it as one `gap` entry
// (journal.proto Gap) once writing works again, so a job's record never claims to be complete
// when it is not. `verify` and `export` report a job with a gap as incomplete.
//
//   GapRecorder gaps(&journal);
//   if (!journal.Append(job, items).ok()) gaps.Lost(job, "record", 1, status.message());
//   ...
//   RETURN_IF_ERROR(gaps.Flush(job));  // before the job's next entry: the gap comes first
//
// Lost() never fails and does no IO, so any path may call it, even one that cannot block.
#ifndef REPRO_DAEMON_STORE_GAP_RECORDER_H_
#define REPRO_DAEMON_STORE_GAP_RECORDER_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/store/journal.h"

namespace repro {

// A gap entry saying `lost` (kind -> count) could not be journaled because of `reason`.
JournalItem GapItem(const std::map<std::string, uint64_t>& lost, absl::string_view reason);

// Thread-safe.
class GapRecorder {
 public:
  // `journal` is not owned and must outlive the recorder.
  explicit GapRecorder(Journal* journal) : journal_(journal) {}

  // Counts `count` items of `kind` (e.g. "record", "data_open") lost for `job` because of
  // `reason`. Kept in memory until Flush journals them.
  void Lost(absl::string_view job, absl::string_view kind, uint64_t count,
            absl::string_view reason);

  // Journals the pending losses of `job` as one gap entry. OK when there were none; on failure
  // they stay pending (and the error is returned).
  absl::Status Flush(absl::string_view job);
  // Flush for every job with pending losses; the first error, after trying them all.
  absl::Status FlushAll();
  // FlushAll when anything is pending; errors are logged (they stay pending). For a StoreWatch's
  // while-writable check, so a gap is journaled as soon as writing works again, not only before
  // the job's next entry.
  void FlushPending();

  // Lost items not yet journaled, all jobs.
  uint64_t pending() const;

 private:
  struct Pending {
    std::map<std::string, uint64_t> lost;  // kind -> count
    std::string reason;                    // the first: the root cause, later ones follow it
  };

  Journal* const journal_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Pending> pending_ ABSL_GUARDED_BY(mu_);
  // Serializes Flush so one gap is never journaled twice.
  absl::Mutex flush_mu_ ABSL_ACQUIRED_BEFORE(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_GAP_RECORDER_H_
