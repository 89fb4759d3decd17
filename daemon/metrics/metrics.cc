#include "daemon/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

void AtomicAdd(std::atomic<double>* target, double delta) {
  double old = target->load(std::memory_order_relaxed);
  while (!target->compare_exchange_weak(old, old + delta, std::memory_order_relaxed)) {
  }
}

// Go's strconv.FormatFloat(v, 'g', -1, 64) as Prometheus writes it: shortest round-trip form,
// "+Inf", "-Inf", "NaN".
std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

void AppendSample(absl::string_view name, absl::string_view suffix, absl::string_view labels,
                  absl::string_view value, std::string* out) {
  absl::StrAppend(out, name, suffix);
  if (!labels.empty()) absl::StrAppend(out, "{", labels, "}");
  absl::StrAppend(out, " ", value, "\n");
}

// Escapes for HELP text (backslash, newline) or, with `quote`, label values (also '"').
std::string Escape(absl::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

bool IsNameChar(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (allow_colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool ValidName(absl::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

// Why `labels` cannot be used for a series of the given kind, or nullopt.
std::optional<std::string> LabelProblem(const MetricLabels& labels, bool histogram) {
  for (const auto& [label, value] : labels) {
    if (!ValidName(label, /*allow_colon=*/false) || label.rfind("__", 0) == 0) {
      return absl::StrCat("invalid label name '", label, "'");
    }
    if (histogram && label == "le") return "label 'le' is reserved in histograms";
  }
  return std::nullopt;
}

std::optional<std::string> BoundsProblem(const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) return "bucket bounds must be finite";
    if (i > 0 && !(bounds[i - 1] < bounds[i])) return "bucket bounds must strictly increase";
  }
  return std::nullopt;
}

// `a="1",b="2"` with pairs sorted by name; the key of a series in its family.
std::string RenderLabels(const MetricLabels& labels) {
  MetricLabels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  return absl::StrJoin(sorted, ",", [](std::string* out, const auto& label) {
    absl::StrAppend(out, label.first, "=\"", Escape(label.second, /*quote=*/true), "\"");
  });
}

const char* TypeName(metrics_internal::MetricType type) {
  switch (type) {
    case metrics_internal::MetricType::kCounter:
      return "counter";
    case metrics_internal::MetricType::kGauge:
      return "gauge";
    case metrics_internal::MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

void Counter::AppendSamples(absl::string_view name, absl::string_view labels,
                            std::string* out) const {
  AppendSample(name, "", labels, absl::StrCat(value()), out);
}

void Gauge::Add(double delta) { AtomicAdd(&value_, delta); }

void Gauge::AppendSamples(absl::string_view name, absl::string_view labels,
                          std::string* out) const {
  AppendSample(name, "", labels, FormatDouble(value()), out);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // NaN compares false with every bound, so it lands in the +Inf bucket.
  size_t bucket = std::isnan(value)
                      ? bounds_.size()
                      : std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(&sum_, value);
}

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) total += counts_[i].load(std::memory_order_relaxed);
  return total;
}

void Histogram::AppendSamples(absl::string_view name, absl::string_view labels,
                              std::string* out) const {
  const std::string prefix = labels.empty() ? "" : absl::StrCat(labels, ",");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    const std::string le = i < bounds_.size() ? FormatDouble(bounds_[i]) : "+Inf";
    AppendSample(name, "_bucket", absl::StrCat(prefix, "le=\"", le, "\""), absl::StrCat(cumulative),
                 out);
  }
  AppendSample(name, "_sum", labels, FormatDouble(sum()), out);
  AppendSample(name, "_count", labels, absl::StrCat(cumulative), out);
}

std::vector<double> Histogram::DefaultBuckets() {
  return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
}

std::vector<double> Histogram::ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> bounds;
  for (int i = 0; i < count; ++i, start *= factor) bounds.push_back(start);
  return bounds;
}

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Counter* Metrics::GetCounter(absl::string_view name, absl::string_view help,
                             const MetricLabels& labels) {
  return static_cast<Counter*>(GetSeries(Type::kCounter, name, help, {}, labels));
}

Gauge* Metrics::GetGauge(absl::string_view name, absl::string_view help,
                         const MetricLabels& labels) {
  return static_cast<Gauge*>(GetSeries(Type::kGauge, name, help, {}, labels));
}

Histogram* Metrics::GetHistogram(absl::string_view name, absl::string_view help,
                                 const std::vector<double>& bounds, const MetricLabels& labels) {
  return static_cast<Histogram*>(GetSeries(Type::kHistogram, name, help, bounds, labels));
}

metrics_internal::Series* Metrics::GetSeries(Type type, absl::string_view name,
                                             absl::string_view help,
                                             const std::vector<double>& bounds,
                                             const MetricLabels& labels) {
  auto make = [&](std::vector<double> series_bounds) -> std::unique_ptr<metrics_internal::Series> {
    switch (type) {
      case Type::kCounter:
        return std::make_unique<Counter>();
      case Type::kGauge:
        return std::make_unique<Gauge>();
      case Type::kHistogram:
        return std::make_unique<Histogram>(std::move(series_bounds));
    }
    return nullptr;
  };

  std::optional<std::string> problem;
  if (!ValidName(name, /*allow_colon=*/true)) problem = "invalid metric name";
  if (!problem) problem = LabelProblem(labels, type == Type::kHistogram);
  if (!problem && type == Type::kHistogram) problem = BoundsProblem(bounds);

  absl::MutexLock lock(&mu_);
  auto family = families_.end();
  if (!problem) {
    family = families_.find(name);
    if (family == families_.end()) {
      family =
          families_.emplace(std::string(name), Family{type, std::string(help), bounds, {}}).first;
    } else if (family->second.type != type) {
      problem = absl::StrCat("already registered as a ", TypeName(family->second.type));
    } else if (family->second.bounds != bounds) {
      problem = "already registered with other buckets";
    }
  }
  if (problem) {
    spdlog::error("metric {} ({}) not exported: {}", std::string(name), TypeName(type), *problem);
    detached_.push_back(make({}));
    return detached_.back().get();
  }
  std::string key = RenderLabels(labels);
  auto it = family->second.series.find(key);
  if (it == family->second.series.end()) {
    it = family->second.series.emplace(std::move(key), make(bounds)).first;
  }
  return it->second.get();
}

std::string Metrics::RenderPrometheus() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", Escape(family.help, /*quote=*/false), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", TypeName(family.type), "\n");
    for (const auto& [labels, series] : family.series) {
      series->AppendSamples(name, labels, &out);
    }
  }
  return out;
}

}  // namespace repro
