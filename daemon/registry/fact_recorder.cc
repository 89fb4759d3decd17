#include "daemon/registry/fact_recorder.h"

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace repro {

absl::StatusOr<uint64_t> FactRecorder::Record(const v1::RecordRequest& request) {
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  if (request.facts_size() == 0) {
    return absl::InvalidArgumentError("record needs at least one KEY=VALUE fact");
  }
  if (request.facts_size() > static_cast<int>(kMaxFactsPerRecord)) {
    return absl::InvalidArgumentError(absl::StrCat("record takes at most ", kMaxFactsPerRecord,
                                                   " facts at a time, not ",
                                                   request.facts_size()));
  }
  for (const v1::Fact& fact : request.facts()) {
    RETURN_IF_ERROR(ValidateFact(fact.key(), fact.value()));
  }
  absl::StatusOr<v1::Pin> pin = pins_->Get(request.job());
  if (absl::IsNotFound(pin.status())) {
    return absl::NotFoundError(absl::StrCat("job ", request.job(),
                                            " has no pin; pin it before recording facts"));
  }
  RETURN_IF_ERROR(pin.status());
  absl::StatusOr<uint64_t> seq = Append(*pin, request);
  if (!seq.ok() && gaps_ != nullptr) {
    gaps_->Lost(request.job(), "record", 1, seq.status().message());
  }
  return seq;
}

absl::StatusOr<uint64_t> FactRecorder::Append(const v1::Pin& pin,
                                              const v1::RecordRequest& request) {
  // The first entry of a job on this node is its pin, so each node's journal stands alone.
  if (absl::IsNotFound(journal_->Head(request.job()).status())) {
    RETURN_IF_ERROR(pins_->JournalPin(pin));
  }
  // What was lost comes before what follows it.
  if (gaps_ != nullptr) RETURN_IF_ERROR(gaps_->Flush(request.job()));
  JournalItem item;
  *item.entry.mutable_record()->mutable_facts() = request.facts();
  ASSIGN_OR_RETURN(std::vector<Appended> appended,
                   journal_->Append(request.job(), {std::move(item)}));
  return appended.front().seq;
}

}  // namespace repro
