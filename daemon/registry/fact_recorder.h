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
#include "daemon/store/journal.h"
#include "repro/v1/repro.pb.h"

namespace repro {

inline constexpr size_t kMaxFactsPerRecord = 256;

// Thread-safe. Does not own its collaborators.
class FactRecorder {
 public:
  FactRecorder(PinRegistry* pins, Journal* journal) : pins_(pins), journal_(journal) {}

  // Appends one entry holding request.facts (in order) and returns its seq once durable.
  // INVALID_ARGUMENT for a bad job id, no facts, too many, or a bad key/value; NOT_FOUND when the
  // job has no pin.
  absl::StatusOr<uint64_t> Record(const v1::RecordRequest& request);

 private:
  PinRegistry* const pins_;
  Journal* const journal_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_REGISTRY_FACT_RECORDER_H_
