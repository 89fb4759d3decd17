// FactRecorder: journals custom facts about a pinned job (code commit, hyper-parameters) — what
// teams otherwise write by hand into model_meta.json.
//
//   FactRecorder facts(&pins, &journal);
//   ASSIGN_OR_RETURN(uint64_t seq, facts.Record(request));
#ifndef REPRO_DAEMON_REGISTRY_FACT_RECORDER_H_
#define REPRO_DAEMON_REGISTRY_FACT_RECORDER_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/store/gap_recorder.h"
#include "daemon/store/journal.h"
#include "repro/v1/repro.pb.h"

namespace repro {

inline constexpr size_t kMaxFactsPerRecord = 256;

// Thread-safe. Does not own its collaborators.
class FactRecorder {
 public:
  // `gaps` may be null: failed appends then leave no gap entry.
  FactRecorder(PinRegistry* pins, Journal* journal, GapRecorder* gaps = nullptr)
      : pins_(pins), journal_(journal), gaps_(gaps) {}

  // Appends one entry holding request.facts (in order) and returns its seq once durable.
  // INVALID_ARGUMENT for a bad job id, no facts, too many, or a bad key/value; NOT_FOUND when the
  // job has no pin. When journaling fails (e.g. RESOURCE_EXHAUSTED on a full disk) the loss is
  // counted in `gaps`, and the job's next Record journals the gap entry first.
  absl::StatusOr<uint64_t> Record(const v1::RecordRequest& request);

  // Record without waiting for the group commit: `done` is called once with what Record would
  // return, on the journal's committing thread once the entry is durable (Journal::AppendAsync's
  // rules: return quickly, do not append), or on the calling thread when the request is refused
  // or the pin or a pending gap cannot be journaled first (those rare writes do block the caller).
  void RecordAsync(const v1::RecordRequest& request,
                   std::function<void(absl::StatusOr<uint64_t>)> done);

 private:
  // Checks `request` and journals what must come before its entry: the pin when this node has no
  // entry of the job yet, then the job's pending gap. Returns the entry to append.
  absl::StatusOr<JournalItem> Prepare(const v1::RecordRequest& request);
  // Counts a failed append of `job`'s facts in gaps_ and returns `status`.
  absl::Status CountLost(absl::string_view job, const absl::Status& status);

  PinRegistry* const pins_;

  Journal* const journal_;
  GapRecorder* const gaps_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_REGISTRY_FACT_RECORDER_H_
