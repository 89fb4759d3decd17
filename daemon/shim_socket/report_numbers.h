// ReportNumbers: per shimmed process, how far its numbered reports (REPORT_SEQ,
// proto/shim/shim_protocol.h) reached reprod, so that reports that never did are counted exactly
// and journaled as a gap (issue 13): reports in flight when reprod was killed, reports the process
// dropped (its backlog full while reprod was away), verdict requests that got no answer.
//
//   ReportNumbers numbers(&journal);
//   ASSIGN_OR_RETURN(uint64_t missing, numbers.Missing(job, key, hello.report_seq));  // HELLO
//   ... journal a gap of `missing` ...;  numbers.Accept(job, key, hello.report_seq);
//   ReportNumbers::Seen seen = numbers.Report(job, key, open.report_seq);           // each OPEN
//   item.mark_key = key; item.mark_value = seen.below;  // journaled with the report's entries
//   ... at exit (LOADED with REPORT_SEQ): Missing + gap + Accept, as at HELLO
//
// Per process it keeps, in memory, the number below which every report arrived (`below`) and the
// numbers that arrived above it. Reports may arrive out of number order (the report ring and the
// socket are two paths), so a number not yet seen is only declared lost when the process says no
// report below some number is still to come: at its HELLO (it holds nothing older than what it
// names) and at its exit. After a restart reprod knows nothing in memory, so it reads the
// process's journal mark (Journal::Mark, written in the same durable batch as the report's
// entries): every number below the mark was journaled (or absorbed by a once-key, or already
// counted in a gap), every number from the mark up to what the HELLO names was lost.
//
// The count errs only towards an incomplete record: a report journaled above the mark before a
// crash, or one still queued on a connection the process gave up on (a verdict timeout) when it
// says HELLO again, is counted lost too.
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_REPORT_NUMBERS_H_
#define REPRO_DAEMON_SHIM_SOCKET_REPORT_NUMBERS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/store/journal.h"

namespace repro {

class ReportNumbers {
 public:
  // `journal` is not owned and must outlive this; null: nothing is known after a restart (a
  // process's numbers are then taken as they come). At most `max_processes` are remembered in
  // memory; a forgotten one falls back to its journal mark.
  explicit ReportNumbers(const Journal* journal, size_t max_processes = 65536)
      : journal_(journal), max_processes_(max_processes) {}

  // The mark key of a process: "reports/<pid>/<nonce>".
  static std::string Key(pid_t pid, uint64_t nonce);

  // A HELLO of process `key` of `job` whose oldest held report is numbered `held`: how many
  // lower numbers never reached reprod. The store's error when the mark cannot be read. Changes
  // nothing: call Accept once they are accounted for (journaled or queued as a gap).
  absl::StatusOr<uint64_t> Missing(absl::string_view job, absl::string_view key, uint64_t held);
  // The numbers below `held` are accounted for: the process's next report is `held` or later.
  void Accept(absl::string_view job, absl::string_view key, uint64_t held);

  struct Seen {
    uint64_t below = 0;  // every report numbered below this has arrived: the new mark
    bool fresh = true;   // false: a number seen before (a resend after reconnecting)
  };
  // A report numbered `seq` of process `key` of `job`.
  Seen Report(absl::string_view job, absl::string_view key, uint64_t seq);

 private:
  struct Process {
    uint64_t below = 0;        // every number below arrived (or was counted lost)
    std::set<uint64_t> ahead;  // numbers above `below` that arrived
  };
  // Numbers that arrived out of order are remembered up to this many per process; beyond, the
  // oldest hole is taken as lost at the next HELLO or exit like any other.
  static constexpr size_t kMaxAhead = 65536;

  // The state of "<job>/<key>" `id`, created (evicting another when full) if absent.
  Process& Get(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves p.below up over the numbers that arrived.
  static void Advance(Process& p);

  const Journal* const journal_;
  const size_t max_processes_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Process> processes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_REPORT_NUMBERS_H_
