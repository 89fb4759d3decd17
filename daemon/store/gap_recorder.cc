#include "daemon/store/gap_recorder.h"

#include <vector>

#include "spdlog/spdlog.h"

namespace repro {

JournalItem GapItem(const std::map<std::string, uint64_t>& lost, absl::string_view reason) {
  JournalItem item;
  v1::Gap* gap = item.entry.mutable_gap();
  for (const auto& [kind, count] : lost) {
    v1::GapCount* entry = gap->add_lost();
    entry->set_kind(kind);
    entry->set_count(count);
  }
  gap->set_reason(std::string(reason));
  return item;
}

void GapRecorder::Lost(absl::string_view job, absl::string_view kind, uint64_t count,
                       absl::string_view reason) {
  if (count == 0) return;
  absl::MutexLock lock(&mu_);
  Pending& pending = pending_[job];
  pending.lost[std::string(kind)] += count;
  if (pending.reason.empty()) pending.reason = std::string(reason);
}

absl::Status GapRecorder::Flush(absl::string_view job) {
  absl::MutexLock flush(&flush_mu_);
  Pending pending;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(job);
    if (it == pending_.end()) return absl::OkStatus();
    pending = it->second;
  }
  std::vector<JournalItem> items;
  items.push_back(GapItem(pending.lost, pending.reason));
  absl::Status appended = journal_->Append(job, std::move(items)).status();
  if (!appended.ok()) return appended;
  // Remove what was journaled; losses counted meanwhile stay pending.
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(job);
  for (const auto& [kind, count] : pending.lost) {
    auto k = it->second.lost.find(kind);
    k->second -= count;
    if (k->second == 0) it->second.lost.erase(k);
  }
  if (it->second.lost.empty()) pending_.erase(it);
  return absl::OkStatus();
}

absl::Status GapRecorder::FlushAll() {
  std::vector<std::string> jobs;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [job, pending] : pending_) jobs.push_back(job);
  }
  absl::Status first = absl::OkStatus();
  for (const std::string& job : jobs) first.Update(Flush(job));
  return first;
}

void GapRecorder::FlushPending() {
  if (pending() == 0) return;
  absl::Status flushed = FlushAll();
  if (flushed.ok()) {
    spdlog::info("journaled the gaps left by a storage fault");
  } else {
    spdlog::warn("gaps stay pending: {}", flushed.ToString());
  }
}

uint64_t GapRecorder::pending() const {
  absl::MutexLock lock(&mu_);
  uint64_t total = 0;
  for (const auto& [job, pending] : pending_) {
    for (const auto& [kind, count] : pending.lost) total += count;
  }
  return total;
}

}  // namespace repro
