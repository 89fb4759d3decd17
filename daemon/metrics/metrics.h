// Prometheus metrics for reprod: counters, gauges and fixed-bucket histograms, each series
// optionally carrying a label set, rendered in the text exposition format 0.0.4.
//
// There is no process-wide registry: the daemon creates one Metrics and hands a `Metrics*` to each
// part (parts accept null and then count nothing, or keep a private Metrics). This keeps tests
// hermetic: every test builds its own registry and reads exactly what it caused.
//
//   Metrics metrics;
//   Counter* rejected = metrics.GetCounter("repro_shim_messages_rejected_total",
//                                          "Shim messages refused, by reason.",
//                                          {{"reason", "truncated"}});
//   rejected->Increment();                       // lock-free; keep the pointer
//   Histogram* latency = metrics.GetHistogram("repro_rpc_seconds", "RPC latency.",
//                                             Histogram::DefaultBuckets());
//   latency->Observe(0.003);
//   std::string text = metrics.RenderPrometheus();  // serve with kPrometheusContentType
#ifndef REPRO_DAEMON_METRICS_METRICS_H_
#define REPRO_DAEMON_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace repro {

// Content-Type of RenderPrometheus() output.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// A series' labels as (name, value) pairs. Order does not matter: pairs are sorted by name, so
// {{"a","1"},{"b","2"}} and {{"b","2"},{"a","1"}} name the same series. Values are any UTF-8.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

namespace metrics_internal {

enum class MetricType { kCounter, kGauge, kHistogram };

// One series of a family; rendering is the only virtual call (never on the hot path).
class Series {
 public:
  virtual ~Series() = default;
  // Appends this series' sample lines. `labels` is the rendered label list without braces
  // (`a="1",b="2"`, possibly empty).
  virtual void AppendSamples(absl::string_view name, absl::string_view labels,
                             std::string* out) const = 0;
};

}  // namespace metrics_internal

// A monotonically increasing count. Thread-safe and lock-free.
class Counter final : public metrics_internal::Series {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

  void AppendSamples(absl::string_view name, absl::string_view labels,
                     std::string* out) const override;

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Thread-safe and lock-free.
class Gauge final : public metrics_internal::Series {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta);
  double value() const { return value_.load(std::memory_order_relaxed); }

  void AppendSamples(absl::string_view name, absl::string_view labels,
                     std::string* out) const override;

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (cumulative `le` buckets when rendered, plus +Inf),
// with their sum and count. Thread-safe and lock-free. A render that races with Observe() may see
// the new count before the new sum, never a `_count` that differs from the +Inf bucket.
class Histogram final : public metrics_internal::Series {
 public:
  // `bounds` must be finite and strictly increasing (Metrics checks this before constructing).
  explicit Histogram(std::vector<double> bounds);

  // Counts `value` in the first bucket whose bound is >= value (NaN goes to +Inf).
  void Observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Number of observations so far (sum over all buckets).
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

  void AppendSamples(absl::string_view name, absl::string_view labels,
                     std::string* out) const override;

  // Prometheus' default buckets: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (seconds).
  static std::vector<double> DefaultBuckets();
  // `count` bounds start, start*factor, ... (start > 0, factor > 1).
  static std::vector<double> ExponentialBuckets(double start, double factor, int count);

 private:
  const std::vector<double> bounds_;
  // counts_[i] counts observations in (bounds_[i-1], bounds_[i]]; the last one is +Inf.
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// The registry: families of series by metric name. Thread-safe. Get*() lock a mutex and create the
// series on first use; the returned pointer is valid for the lifetime of the Metrics, so callers
// look a series up once and then update it lock-free.
//
// Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* without a leading
// "__" ("le" is reserved in histograms); one name has one type (and, for histograms, one set of
// buckets). These are programming errors, not input errors: a Get*() that breaks them logs an
// error and returns a working but detached series that is never rendered, so a mistake costs a
// metric, never the daemon.
class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // `help` is taken from the first registration of `name`.
  Counter* GetCounter(absl::string_view name, absl::string_view help,
                      const MetricLabels& labels = {});
  Gauge* GetGauge(absl::string_view name, absl::string_view help, const MetricLabels& labels = {});
  // `bounds`: finite, strictly increasing upper bounds (+Inf is implicit); the same for every
  // series of `name`.
  Histogram* GetHistogram(absl::string_view name, absl::string_view help,
                          const std::vector<double>& bounds, const MetricLabels& labels = {});

  // The text exposition format 0.0.4: families sorted by name, each with # HELP and # TYPE lines,
  // series sorted by their labels.
  std::string RenderPrometheus() const;

 private:
  using Type = metrics_internal::MetricType;
  struct Family {
    Type type;
    std::string help;
    std::vector<double> bounds;  // histograms only
    // Rendered label list (sorted by label name) -> series.
    std::map<std::string, std::unique_ptr<metrics_internal::Series>, std::less<>> series;
  };

  // Finds or creates the series (never null); a detached one when the request breaks the rules
  // above (logged).
  metrics_internal::Series* GetSeries(Type type, absl::string_view name, absl::string_view help,
                                      const std::vector<double>& bounds,
                                      const MetricLabels& labels);

  mutable absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
  // Series handed out for invalid requests: kept alive, never rendered.
  std::vector<std::unique_ptr<metrics_internal::Series>> detached_ ABSL_GUARDED_BY(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_METRICS_METRICS_H_
