// Quotas: Record size, token-bucket rates per caller and per job (both or neither charged), the
// per-job journal cap, RESOURCE_EXHAUSTED messages naming the flag, and the refusal counters.
#include "daemon/quota/quotas.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

using ::testing::HasSubstr;

class FakeClock : public Clock {
 public:
  absl::Time Now() const override { return now; }
  absl::Time now = absl::FromUnixSeconds(1'000'000);
};

class QuotasTest : public ::testing::Test {
 protected:
  QuotaOptions Options() {
    QuotaOptions options;
    options.max_record_bytes = 1000;
    options.record_bytes_per_sec = 100;
    options.journal_entries_per_sec = 10;
    options.max_journal_entries_per_job = 1'000'000;
    options.burst_seconds = 10;
    options.clock = &clock_;
    return options;
  }
  std::string Rendered() { return metrics_.RenderPrometheus(); }

  FakeClock clock_;
  Metrics metrics_;
};

TEST_F(QuotasTest, ARecordLargerThanTheLimitIsRefused) {
  Quotas quotas(Options(), &metrics_);
  absl::Status s = quotas.AdmitRecord("uid:1000", "job", 1001, 0);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("--max_record_bytes 1000"));
  EXPECT_TRUE(quotas.AdmitRecord("uid:1000", "job", 1000, 0).ok());
  EXPECT_THAT(Rendered(), HasSubstr("repro_quota_refused_total{quota=\"max_record_bytes\"} 1"));
}

TEST_F(QuotasTest, RecordBytesAreRateLimitedPerCallerAndRefillOverTime) {
  Quotas quotas(Options(), &metrics_);
  // A burst of 10 s at 100 bytes/s: 1000 bytes, then nothing until time passes.
  EXPECT_TRUE(quotas.AdmitRecord("uid:1000", "job-a", 600, 0).ok());
  EXPECT_TRUE(quotas.AdmitRecord("uid:1000", "job-b", 400, 0).ok());
  absl::Status s = quotas.AdmitRecord("uid:1000", "job-c", 100, 0);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("caller uid:1000 is over --record_bytes_per_sec"));
  EXPECT_TRUE(quotas.AdmitRecord("uid:2000", "job-c", 100, 0).ok());  // another caller
  clock_.now += absl::Seconds(1);
  EXPECT_TRUE(quotas.AdmitRecord("uid:1000", "job-c", 100, 0).ok());
  EXPECT_THAT(Rendered(), HasSubstr("repro_quota_refused_total{quota=\"record_bytes_per_sec\"} 1"));
}

TEST_F(QuotasTest, AJobIsLimitedAcrossCallersAndARefusalChargesNoOne) {
  Quotas quotas(Options(), &metrics_);
  EXPECT_TRUE(quotas.AdmitEntries("uid:1", "job", 60, 0).ok());
  absl::Status s = quotas.AdmitEntries("uid:2", "job", 60, 0);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("job job is over --journal_entries_per_sec"));
  // uid:2 was not charged for the refused entries: its whole burst is left for another job.
  EXPECT_TRUE(quotas.AdmitEntries("uid:2", "other", 100, 0).ok());
}

TEST_F(QuotasTest, AJobJournalIsCapped) {
  QuotaOptions options = Options();
  options.max_journal_entries_per_job = 50;
  Quotas quotas(options, &metrics_);
  EXPECT_TRUE(quotas.AdmitEntries("uid:1", "job", 2, 48).ok());
  absl::Status s = quotas.AdmitEntries("uid:1", "job", 3, 48);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(s.message(),
              HasSubstr("has 48 journal entries; --max_journal_entries_per_job is 50"));
  EXPECT_THAT(Rendered(),
              HasSubstr("repro_quota_refused_total{quota=\"max_journal_entries_per_job\"} 1"));
}

TEST_F(QuotasTest, ZeroTurnsAQuotaOff) {
  QuotaOptions options;
  options.max_record_bytes = 0;
  options.record_bytes_per_sec = 0;
  options.journal_entries_per_sec = 0;
  options.max_journal_entries_per_job = 0;
  options.clock = &clock_;
  Quotas quotas(options, &metrics_);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(quotas.AdmitRecord("uid:1", "job", size_t{64} << 20, uint64_t{1} << 40).ok());
  }
}

}  // namespace
}  // namespace repro
