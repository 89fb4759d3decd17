#include "daemon/metrics/metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, RendersGoldenExposition) {
  Metrics metrics;
  metrics.GetCounter("repro_test_requests_total", "Requests seen.")->Increment(3);
  metrics
      .GetCounter("repro_shim_messages_rejected_total", "Shim messages refused.",
                  {{"reason", "truncated"}})
      ->Increment();
  metrics
      .GetCounter("repro_shim_messages_rejected_total", "ignored: help comes from the first",
                  {{"reason", "bad \"quote\" \\ and\nnewline"}})
      ->Increment(2);
  metrics.GetGauge("repro_test_open", "Open things.\nSecond line \\ backslash.")->Set(2.5);
  Histogram* histogram =
      metrics.GetHistogram("repro_test_seconds", "Latency.", {0.5, 1, 10}, {{"op", "read"}});
  for (double v : {0.5, 0.25, 2.0, 20.0}) histogram->Observe(v);

  EXPECT_EQ(
      metrics.RenderPrometheus(),
      "# HELP repro_shim_messages_rejected_total Shim messages refused.\n"
      "# TYPE repro_shim_messages_rejected_total counter\n"
      "repro_shim_messages_rejected_total{reason=\"bad \\\"quote\\\" \\\\ and\\nnewline\"} 2\n"
      "repro_shim_messages_rejected_total{reason=\"truncated\"} 1\n"
      "# HELP repro_test_open Open things.\\nSecond line \\\\ backslash.\n"
      "# TYPE repro_test_open gauge\n"
      "repro_test_open 2.5\n"
      "# HELP repro_test_requests_total Requests seen.\n"
      "# TYPE repro_test_requests_total counter\n"
      "repro_test_requests_total 3\n"
      "# HELP repro_test_seconds Latency.\n"
      "# TYPE repro_test_seconds histogram\n"
      "repro_test_seconds_bucket{op=\"read\",le=\"0.5\"} 2\n"
      "repro_test_seconds_bucket{op=\"read\",le=\"1\"} 2\n"
      "repro_test_seconds_bucket{op=\"read\",le=\"10\"} 3\n"
      "repro_test_seconds_bucket{op=\"read\",le=\"+Inf\"} 4\n"
      "repro_test_seconds_sum{op=\"read\"} 22.75\n"
      "repro_test_seconds_count{op=\"read\"} 4\n");
}

TEST(MetricsTest, UnlabelledHistogramAndSpecialValues) {
  Metrics metrics;
  Histogram* histogram = metrics.GetHistogram("h", "H.", {0.005, 1e6});
  histogram->Observe(0.001);
  metrics.GetGauge("g", "G.")->Set(-1.0 / 0.0);
  EXPECT_EQ(metrics.RenderPrometheus(),
            "# HELP g G.\n"
            "# TYPE g gauge\n"
            "g -Inf\n"
            "# HELP h H.\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"0.005\"} 1\n"
            "h_bucket{le=\"1e+06\"} 1\n"
            "h_bucket{le=\"+Inf\"} 1\n"
            "h_sum 0.001\n"
            "h_count 1\n");
}

TEST(MetricsTest, SameSeriesWhateverTheLabelOrder) {
  Metrics metrics;
  Counter* a = metrics.GetCounter("c_total", "C.", {{"x", "1"}, {"y", "2"}});
  Counter* b = metrics.GetCounter("c_total", "C.", {{"y", "2"}, {"x", "1"}});
  Counter* other = metrics.GetCounter("c_total", "C.", {{"x", "1"}, {"y", "3"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  a->Increment();
  EXPECT_THAT(metrics.RenderPrometheus(), HasSubstr("c_total{x=\"1\",y=\"2\"} 1\n"));
}

TEST(MetricsTest, MisuseYieldsWorkingDetachedSeries) {
  Metrics metrics;
  metrics.GetCounter("taken", "A counter.")->Increment();
  Gauge* wrong_type = metrics.GetGauge("taken", "Now a gauge?");
  ASSERT_NE(wrong_type, nullptr);
  wrong_type->Set(42);  // usable, just not exported
  Counter* bad_name = metrics.GetCounter("0bad name", "Bad.");
  bad_name->Increment();
  Counter* bad_label = metrics.GetCounter("ok_total", "Ok.", {{"__reserved", "x"}});
  bad_label->Increment();
  Histogram* le_label = metrics.GetHistogram("hist", "H.", {1}, {{"le", "1"}});
  le_label->Observe(1);
  Histogram* unsorted = metrics.GetHistogram("hist2", "H.", {2, 1});
  unsorted->Observe(1);
  metrics.GetHistogram("hist3", "H.", {1, 2});
  Histogram* other_buckets = metrics.GetHistogram("hist3", "H.", {1, 3});
  other_buckets->Observe(1);

  std::string text = metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("taken 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("42")));
  EXPECT_THAT(text, Not(HasSubstr("bad")));
  EXPECT_THAT(text, Not(HasSubstr("ok_total")));
  EXPECT_THAT(text, Not(HasSubstr("hist_")));
  EXPECT_THAT(text, Not(HasSubstr("hist2")));
  EXPECT_THAT(text, HasSubstr("hist3_count 0\n"));
}

TEST(MetricsTest, HistogramBucketsAreInclusiveUpperBounds) {
  Histogram histogram({1, 2});
  histogram.Observe(1);
  histogram.Observe(1.5);
  histogram.Observe(2);
  histogram.Observe(0.0 / 0.0);  // NaN: +Inf bucket
  EXPECT_EQ(histogram.count(), 4u);
  std::string text;
  histogram.AppendSamples("x", "", &text);
  EXPECT_THAT(text, HasSubstr("x_bucket{le=\"1\"} 1\nx_bucket{le=\"2\"} 3\n"
                              "x_bucket{le=\"+Inf\"} 4\nx_sum NaN\n"));
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_THAT(Histogram::ExponentialBuckets(1, 2, 4), ElementsAre(1, 2, 4, 8));
  EXPECT_EQ(Histogram::DefaultBuckets().size(), 11u);
}

TEST(MetricsTest, ConcurrentUpdatesSumExactly) {
  Metrics metrics;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics] {
      // Every thread looks the series up itself: the registry must hand out the same ones.
      Counter* counter = metrics.GetCounter("hits_total", "Hits.", {{"kind", "a"}});
      Gauge* gauge = metrics.GetGauge("level", "Level.");
      Histogram* histogram = metrics.GetHistogram("sizes", "Sizes.", {1, 10});
      for (int i = 0; i < kPerThread; ++i) {
        counter->Increment();
        gauge->Add(1);
        histogram->Observe(i % 2 == 0 ? 0.5 : 5);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(metrics.GetCounter("hits_total", "Hits.", {{"kind", "a"}})->value(),
            uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(metrics.GetGauge("level", "Level.")->value(), double{kThreads} * kPerThread);
  Histogram* histogram = metrics.GetHistogram("sizes", "Sizes.", {1, 10});
  EXPECT_EQ(histogram->count(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(histogram->sum(), kThreads * (kPerThread / 2) * (0.5 + 5));
  EXPECT_THAT(metrics.RenderPrometheus(), HasSubstr("sizes_bucket{le=\"1\"} 400000\n"));
}

}  // namespace
}  // namespace repro
