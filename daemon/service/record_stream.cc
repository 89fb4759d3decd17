#include "daemon/service/record_stream.h"

#include <utility>

#include "common/grpc_status.h"

namespace repro {

RecordStreamReactor::RecordStreamReactor(Admit admit, FactRecorder* facts, size_t max_in_flight)
    : admit_(std::move(admit)), facts_(facts), max_in_flight_(max_in_flight) {
  StartRead(&request_);
}

void RecordStreamReactor::OnReadDone(bool ok) {
  std::optional<uint64_t> index;
  {
    absl::MutexLock lock(&mu_);
    if (ok && failed_.ok() && !finished_) {
      index = answered_ + outcomes_.size();
      outcomes_.emplace_back();
      ++refs_;  // until Recorded
    }
  }
  if (index.has_value()) {  // reading_ stays set meanwhile: request_ is not read into
    absl::Status admitted = admit_(request_);
    if (admitted.ok()) {
      facts_->RecordAsync(request_, [this, i = *index](absl::StatusOr<uint64_t> seq) {
        Recorded(i, std::move(seq));
      });
    } else {
      Recorded(*index, admitted);
    }
  }
  Next next;
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!ok) reads_done_ = true;
    next = Decide();
  }
  Start(next);
}

void RecordStreamReactor::Recorded(uint64_t index, absl::StatusOr<uint64_t> seq) {
  Next next;
  {
    absl::MutexLock lock(&mu_);
    if (!seq.ok() && failed_.ok()) failed_ = seq.status();
    outcomes_[index - answered_] = std::move(seq);
    next = Decide();
  }
  Start(next);
  Unref();
}

void RecordStreamReactor::OnWriteDone(bool ok) {
  Next next;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok && failed_.ok()) failed_ = absl::CancelledError("the client went away");
    next = Decide();
  }
  Start(next);
}

void RecordStreamReactor::OnCancel() {
  Next next;
  {
    absl::MutexLock lock(&mu_);
    if (failed_.ok()) failed_ = absl::CancelledError("the client cancelled the stream");
    next = Decide();
  }
  Start(next);
}

void RecordStreamReactor::OnDone() { Unref(); }

RecordStreamReactor::Next RecordStreamReactor::Decide() {
  Next next;
  if (finished_) return next;
  if (!writing_ && !outcomes_.empty() && outcomes_.front().has_value()) {
    if (!outcomes_.front()->ok()) {  // the answers before it are written: end with its status
      finished_ = true;
      next.finish = ToGrpcStatus(outcomes_.front()->status());
      return next;
    }
    response_.set_seq(**outcomes_.front());
    outcomes_.pop_front();
    ++answered_;
    writing_ = next.write = true;
  } else if (!writing_ && (absl::IsCancelled(failed_) || (reads_done_ && outcomes_.empty()))) {
    finished_ = true;  // a cancelled call ends now; completions still due only drop their refs
    next.finish = ToGrpcStatus(failed_);
    return next;
  }
  if (!reading_ && !reads_done_ && failed_.ok() && outcomes_.size() < max_in_flight_) {
    reading_ = next.read = true;  // reads go on while an answer is being written
  }
  return next;
}

void RecordStreamReactor::Start(const Next& next) {
  if (next.write) StartWrite(&response_);
  if (next.read) StartRead(&request_);
  if (next.finish.has_value()) Finish(*next.finish);
}

void RecordStreamReactor::Unref() {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    last = --refs_ == 0;
  }
  if (last) delete this;
}

}  // namespace repro
