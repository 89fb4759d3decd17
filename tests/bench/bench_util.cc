#include "tests/bench/bench_util.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <time.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace repro::bench {

double TimeSeconds(const std::function<void()>& fn) {
  auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Shell(const std::string& command) {
  int rc = std::system(command.c_str());
  if (rc != 0) {
    fprintf(stderr, "bench: `%s` failed (%d)\n", command.c_str(), rc);
    exit(1);
  }
}

void MakeFiles(const std::string& dir, int count, uint64_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> block((size + 7) / 8);
  for (int i = 0; i < count; ++i) {
    std::string sub = dir + "/d" + std::to_string(i / 1000);
    if (i % 1000 == 0) std::filesystem::create_directories(sub);
    for (uint64_t& word : block) word = rng();
    std::ofstream out(sub + "/f" + std::to_string(i) + ".bin", std::ios::binary);
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(size));
  }
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p / 100.0 * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

ConcurrentRun RunConcurrently(int threads, double seconds,
                              const std::function<bool(int thread, uint64_t i)>& op) {
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::vector<double> latencies;
  std::vector<std::thread> workers;
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<double> mine;
      for (uint64_t i = 0; !stop; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        if (!op(t, i)) failed = true;
        mine.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : workers) t.join();
  if (failed) {
    fprintf(stderr, "bench: operations failed\n");
    exit(1);
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {static_cast<double>(latencies.size()) / elapsed, Percentile(latencies, 50),
          Percentile(latencies, 99)};
}

void Report(const std::string& name, double value, const std::string& unit, double baseline,
            const std::string& baseline_name) {
  if (baseline > 0) {
    printf("%-44s %12.3f %-8s (%.2fx %s)\n", name.c_str(), value, unit.c_str(), value / baseline,
           baseline_name.c_str());
  } else {
    printf("%-44s %12.3f %s\n", name.c_str(), value, unit.c_str());
  }
  fflush(stdout);
}

double Median(std::vector<double> values) { return Percentile(std::move(values), 50); }

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos || name_end + 2 > stat.size()) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(name_end + 2), ' ');
  double utime = 0, stime = 0;  // fields 14 and 15 of proc(5), 0-based 11 and 12 here
  if (fields.size() > 12) {
    (void)absl::SimpleAtod(fields[11], &utime);
    (void)absl::SimpleAtod(fields[12], &stime);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

}  // namespace repro::bench
