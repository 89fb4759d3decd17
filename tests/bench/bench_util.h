// Small helpers shared by the benchmark programs: timing, data generation, reporting.
#ifndef REPRO_TESTS_BENCH_BENCH_UTIL_H_
#define REPRO_TESTS_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace repro::bench {

// The benchmark itself: each benchmark program defines it. bench_main.cc's main() parses the
// command-line flags and returns what Main() returns.
int Main();

// Wall-clock seconds taken by fn().
double TimeSeconds(const std::function<void()>& fn);

// Runs `command` with /bin/sh; aborts the benchmark if it fails.
void Shell(const std::string& command);

// Writes `count` files of `size` pseudo-random bytes under `dir` (spread over subdirectories of
// at most 1000 files), deterministic for a given seed.
void MakeFiles(const std::string& dir, int count, uint64_t size, uint64_t seed);

// Sorted latencies -> the p-th percentile (0..100).
double Percentile(std::vector<double> values, double p);
// Percentile(values, 50).
double Median(std::vector<double> values);

// User + system CPU seconds process `pid` has used so far (all its threads), from /proc/PID/stat
// (10 ms clock ticks); 0 when it cannot be read.
double ProcessCpuSeconds(pid_t pid);

// CLOCK_MONOTONIC in nanoseconds (no allocation, for timing loops of single calls).
double NowNs();

struct ConcurrentRun {
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// Runs `op(thread, i)` in a loop on `threads` threads for `seconds`, timing each call. `op`
// returns false on failure, which ends the benchmark (exit 1).
ConcurrentRun RunConcurrently(int threads, double seconds,
                              const std::function<bool(int thread, uint64_t i)>& op);

// Prints one result line: "name  value unit  (ratio x baseline_name)".
void Report(const std::string& name, double value, const std::string& unit,
            double baseline = 0, const std::string& baseline_name = "");

}  // namespace repro::bench

#endif  // REPRO_TESTS_BENCH_BENCH_UTIL_H_
