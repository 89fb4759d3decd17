#include "daemon/registry/fact_recorder.h"

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace repro {

absl::StatusOr<uint64_t> FactRecorder::Record(const v1::RecordRequest& request) {
  ASSIGN_OR_RETURN(JournalItem item, Prepare(request));
  absl::StatusOr<std::vector<Appended>> appended =
      journal_->Append(request.job(), {std::move(item)});
  if (!appended.ok()) return CountLost(request.job(), appended.status());
  return appended->front().seq;
}

void FactRecorder::RecordAsync(const v1::RecordRequest& request,
                               std::function<void(absl::StatusOr<uint64_t>)> done) {
  absl::StatusOr<JournalItem> item = Prepare(request);
  if (!item.ok()) {
    done(item.status());
    return;
  }
  journal_->AppendAsyncForResult(
      request.job(), {*std::move(item)},
      [this, job = request.job(),
       done = std::move(done)](absl::StatusOr<std::vector<Appended>> appended) {
        if (!appended.ok()) {
          done(CountLost(job, appended.status()));
        } else {
          done(appended->front().seq);
        }
      });
}

absl::StatusOr<JournalItem> FactRecorder::Prepare(const v1::RecordRequest& request) {
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
  // The first entry of a job on this node is its pin, so each node's journal stands alone.
  if (absl::IsNotFound(journal_->Head(request.job()).status())) {
    absl::Status pinned = pins_->JournalPin(*pin);
    if (!pinned.ok()) return CountLost(request.job(), pinned);
  }
  // What was lost comes before what follows it.
  if (gaps_ != nullptr) {
    absl::Status flushed = gaps_->Flush(request.job());
    if (!flushed.ok()) return CountLost(request.job(), flushed);
  }
  JournalItem item;
  *item.entry.mutable_record()->mutable_facts() = request.facts();
  return item;
}

absl::Status FactRecorder::CountLost(absl::string_view job, const absl::Status& status) {
  if (gaps_ != nullptr) gaps_->Lost(job, "record", 1, status.message());
  return status;
}

}  // namespace repro
