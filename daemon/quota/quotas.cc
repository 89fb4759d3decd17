#include "daemon/quota/quotas.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace repro {
namespace {

// Buckets that filled up again are dropped this often, so the map holds only active keys.
constexpr absl::Duration kSweepInterval = absl::Seconds(60);

}  // namespace

bool TokenBucket::Take(double n, absl::Time now) {
  tokens_ = std::min(burst_, tokens_ + rate_ * absl::ToDoubleSeconds(now - last_));
  last_ = now;
  if (tokens_ < n) return false;
  tokens_ -= n;
  return true;
}

void TokenBucket::Give(double n) { tokens_ = std::min(burst_, tokens_ + n); }

bool TokenBucket::Full(absl::Time now) const {
  return tokens_ + rate_ * absl::ToDoubleSeconds(now - last_) >= burst_;
}

Quotas::Quotas(QuotaOptions options, Metrics* metrics)
    : options_(options), last_sweep_(options.clock->Now()) {
  auto refused = [metrics](const char* quota) {
    return metrics->GetCounter("repro_quota_refused_total",
                               "Requests refused (RESOURCE_EXHAUSTED) or shim reports not "
                               "journaled because a quota was reached, by quota.",
                               {{"quota", quota}});
  };
  refused_record_size_ = refused("max_record_bytes");
  refused_record_rate_ = refused("record_bytes_per_sec");
  refused_entry_rate_ = refused("journal_entries_per_sec");
  refused_journal_size_ = refused("max_journal_entries_per_job");
}

absl::Status Quotas::AdmitRecord(absl::string_view caller, absl::string_view job, size_t bytes,
                                 uint64_t job_entries) {
  if (options_.max_record_bytes != 0 && bytes > options_.max_record_bytes) {
    return Refuse(refused_record_size_,
                  absl::StrCat("a Record of ", bytes, " bytes is larger than --max_record_bytes ",
                               options_.max_record_bytes));
  }
  if (absl::Status rate = TakeFromBuckets(Rate::kRecordBytes, caller, job, bytes); !rate.ok()) {
    return rate;
  }
  return AdmitEntries(caller, job, 1, job_entries);
}

absl::Status Quotas::AdmitEntries(absl::string_view caller, absl::string_view job, size_t entries,
                                  uint64_t job_entries) {
  if (options_.max_journal_entries_per_job != 0 &&
      job_entries + entries > options_.max_journal_entries_per_job) {
    return Refuse(refused_journal_size_,
                  absl::StrCat("job ", job, " has ", job_entries,
                               " journal entries; --max_journal_entries_per_job is ",
                               options_.max_journal_entries_per_job));
  }
  return TakeFromBuckets(Rate::kEntries, caller, job, entries);
}

absl::Status Quotas::TakeFromBuckets(Rate rate, absl::string_view caller, absl::string_view job,
                                     double n) {
  const double per_sec =
      rate == Rate::kRecordBytes ? options_.record_bytes_per_sec : options_.journal_entries_per_sec;
  if (per_sec <= 0) return absl::OkStatus();
  const char* flag =
      rate == Rate::kRecordBytes ? "record_bytes_per_sec" : "journal_entries_per_sec";
  const absl::Time now = options_.clock->Now();
  absl::MutexLock lock(&mu_);
  if (now - last_sweep_ >= kSweepInterval) {
    absl::erase_if(buckets_, [now](const auto& entry) { return entry.second.Full(now); });
    last_sweep_ = now;
  }
  const double burst = std::max(per_sec * options_.burst_seconds, n);
  const std::string caller_key = absl::StrCat(flag, "/", caller);
  const std::string job_key = absl::StrCat(flag, "/job:", job);
  buckets_.try_emplace(caller_key, per_sec, burst, now);
  buckets_.try_emplace(job_key, per_sec, burst, now);
  // Looked up after both are in: an insertion may move the map's elements.
  TokenBucket& by_caller = buckets_.find(caller_key)->second;
  TokenBucket& by_job = buckets_.find(job_key)->second;
  std::string who;
  if (!by_caller.Take(n, now)) {
    who = absl::StrCat("caller ", caller);
  } else if (!by_job.Take(n, now)) {
    by_caller.Give(n);
    who = absl::StrCat("job ", job);
  } else {
    return absl::OkStatus();
  }
  return Refuse(rate == Rate::kRecordBytes ? refused_record_rate_ : refused_entry_rate_,
                absl::StrCat(who, " is over --", flag, " ", per_sec, " (burst ",
                             options_.burst_seconds, " s); slow down and retry"));
}

absl::Status Quotas::Refuse(Counter* counter, std::string message) {
  counter->Increment();
  return absl::ResourceExhaustedError(std::move(message));
}

}  // namespace repro
