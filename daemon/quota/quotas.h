// Quotas: how much each caller (a uid, a certificate, a namespace) and each job may add to the
// journal: the size of one Record, the rate of Record bytes, the rate of new journal entries, and
// the number of entries a job's journal may hold. Rates are token buckets (a steady rate and a
// burst); every refusal is RESOURCE_EXHAUSTED naming the quota and its flag, and counted in
// repro_quota_refused_total{quota}.
//
//   Quotas quotas(QuotaOptions{}, &metrics);
//   RETURN_IF_ERROR(quotas.AdmitRecord("uid:1000", "job-1", request.ByteSizeLong(), head.seq()));
//   RETURN_IF_ERROR(quotas.AdmitEntries("uid:1000", "job-1", items.size(), head.seq()));
//
// Thread-safe.
#ifndef REPRO_DAEMON_QUOTA_QUOTAS_H_
#define REPRO_DAEMON_QUOTA_QUOTAS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/metrics/metrics.h"
#include "daemon/os/clock.h"

namespace repro {

// A quota of 0 is off. The defaults are far above what a training job adds.
struct QuotaOptions {
  size_t max_record_bytes = size_t{1} << 20;       // --max_record_bytes, per call
  double record_bytes_per_sec = 16.0 * (1 << 20);  // --record_bytes_per_sec, per caller and per job
  double journal_entries_per_sec = 100000;  // --journal_entries_per_sec, per caller and per job
  uint64_t max_journal_entries_per_job = 50'000'000;  // --max_journal_entries_per_job
  // A bucket holds this many seconds of its rate: the burst allowed after a quiet spell.
  double burst_seconds = 10;
  Clock* clock = DefaultClock();  // not owned
};

// A token bucket: `rate` tokens per second, holding at most `burst`. Not thread-safe.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst, absl::Time now)
      : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}
  // Takes `n` tokens when that many are there; false (nothing taken) otherwise.
  bool Take(double n, absl::Time now);
  // Puts back `n` tokens taken by Take (up to the burst).
  void Give(double n);
  // True when it would hold a full burst at `now` (then dropping it loses nothing).
  bool Full(absl::Time now) const;

 private:
  const double rate_;
  const double burst_;
  double tokens_;
  absl::Time last_;
};

class Quotas {
 public:
  // `metrics` is not owned and must outlive the quotas.
  Quotas(QuotaOptions options, Metrics* metrics);

  // Admits one Record of `bytes` by `caller` (an Identity::Owner() string) for `job`, whose
  // journal holds `job_entries` entries. RESOURCE_EXHAUSTED naming the quota otherwise.
  absl::Status AdmitRecord(absl::string_view caller, absl::string_view job, size_t bytes,
                           uint64_t job_entries);

  // Admits `entries` new journal entries by `caller` for `job` (see AdmitRecord).
  absl::Status AdmitEntries(absl::string_view caller, absl::string_view job, size_t entries,
                            uint64_t job_entries);

  const QuotaOptions& options() const { return options_; }

 private:
  enum class Rate { kRecordBytes, kEntries };
  // Takes `n` from the buckets of `caller` and of `job` for `rate`: both or neither.
  absl::Status TakeFromBuckets(Rate rate, absl::string_view caller, absl::string_view job,
                               double n);
  absl::Status Refuse(Counter* counter, std::string message);

  const QuotaOptions options_;
  Counter* refused_record_size_;
  Counter* refused_record_rate_;
  Counter* refused_entry_rate_;
  Counter* refused_journal_size_;

  absl::Mutex mu_;
  // "<rate>/<caller or job:...>" -> its bucket. Buckets of quiet keys are dropped when full again.
  absl::flat_hash_map<std::string, TokenBucket> buckets_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_QUOTA_QUOTAS_H_
