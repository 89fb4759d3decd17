#include "daemon/shim_socket/report_numbers.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"

namespace repro {

std::string ReportNumbers::Key(pid_t pid, uint64_t nonce) {
  return absl::StrCat("reports/", pid, "/", nonce);
}

ReportNumbers::Process& ReportNumbers::Get(const std::string& id) {
  auto it = processes_.find(id);
  if (it != processes_.end()) return it->second;
  if (processes_.size() >= max_processes_) processes_.erase(processes_.begin());
  return processes_[id];
}

void ReportNumbers::Advance(Process& p) {
  while (!p.ahead.empty() && *p.ahead.begin() <= p.below) {
    if (*p.ahead.begin() == p.below) ++p.below;
    p.ahead.erase(p.ahead.begin());
  }
}

absl::StatusOr<uint64_t> ReportNumbers::Missing(absl::string_view job, absl::string_view key,
                                                uint64_t held) {
  const std::string id = absl::StrCat(job, "/", key);
  {
    absl::MutexLock lock(&mu_);
    auto it = processes_.find(id);
    if (it != processes_.end()) {
      const Process& p = it->second;
      if (held <= p.below) return 0;
      const uint64_t arrived = std::distance(p.ahead.begin(), p.ahead.lower_bound(held));
      return held - p.below - arrived;
    }
  }
  // A process this reprod has not heard from (it restarted): ask the journal.
  std::optional<uint64_t> mark;
  if (journal_ != nullptr) {
    absl::StatusOr<std::optional<uint64_t>> stored = journal_->Mark(job, key);
    if (!stored.ok()) return stored.status();
    mark = *stored;
  }
  absl::MutexLock lock(&mu_);
  Process& p = Get(id);
  p.below = std::max(p.below, mark.value_or(0));  // what the journal says holds from now on
  return held > p.below ? held - p.below : 0;
}

void ReportNumbers::Accept(absl::string_view job, absl::string_view key, uint64_t held) {
  absl::MutexLock lock(&mu_);
  Process& p = Get(absl::StrCat(job, "/", key));
  p.below = std::max(p.below, held);
  Advance(p);
}

ReportNumbers::Seen ReportNumbers::Report(absl::string_view job, absl::string_view key,
                                          uint64_t seq) {
  absl::MutexLock lock(&mu_);
  Process& p = Get(absl::StrCat(job, "/", key));
  if (seq < p.below || !p.ahead.insert(seq).second) return {.below = p.below, .fresh = false};
  if (p.ahead.size() > kMaxAhead) p.below = *p.ahead.begin();  // the oldest hole waits no more
  Advance(p);
  return {.below = p.below, .fresh = true};
}

}  // namespace repro
