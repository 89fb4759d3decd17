// FactRecorder: journals custom facts about a pinned job (code commit, hyper-parameters) — what
// teams otherwise write by hand into model_meta.json.
//
//   FactRecorder facts(&pins, &journal);
//   ASSIGN_OR_RETURN(uint64_t seq, facts.Record(request));
#ifndef REPRO_DAEMON_REGISTRY_FACT_RECORDER_H_
#define REPRO_DAEMON_REGISTRY_FACT_RECORDER_H_

#include <cstdint>

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

 private:
  PinRegistry* const pins_;
  // Journals the pin when this node has no entry of the job yet, then its pending gap, then
  // the facts.
  absl::StatusOr<uint64_t> Append(const v1::Pin& pin, const v1::RecordRequest& request);

  Journal* const journal_;
  GapRecorder* const gaps_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_REGISTRY_FACT_RECORDER_H_
