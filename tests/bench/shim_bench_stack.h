// What the shim benchmarks (shim_bench, view_bench) share: a real reprod holding one dataset with
// versions v1 and v2, jobs pinned to v1, and programs run under the shim.
//
//   ShimBenchStack stack(dir, "bench");        // reprod under dir/node; dir/ml/bench/{v1,v2}
//   stack.Register();                          // after the version directories are written
//   std::string out = stack.Run({"python3", "loop.py"}, stack.ShimEnv("record"), work, &cpu);
//
// Every failure ends the benchmark (exit 1) with a line on stderr. Not thread-safe.
#ifndef REPRO_TESTS_BENCH_SHIM_BENCH_STACK_H_
#define REPRO_TESTS_BENCH_SHIM_BENCH_STACK_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/testutil/reprod_process.h"

namespace repro::bench {

class ShimBenchStack {
 public:
  // Starts reprod with its data in `dir`/node; the dataset `dataset` lives in `dir`/ml/`dataset`.
  ShimBenchStack(const std::string& dir, std::string dataset);

  // Registers `dataset` v1 and v2 (their directories must be written).
  void Register();
  // Runs reproctl with `args`.
  void Ctl(const std::vector<std::string>& args);
  // The environment of a process of a new job pinned to `dataset`@v1, under the shim in `mode`.
  std::map<std::string, std::string> ShimEnv(const std::string& mode);
  // Runs `argv` in `cwd` with `env` added; returns its stdout and, when `cpu` is set, its CPU
  // time (user + sys, seconds).
  static std::string Run(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env, const std::string& cwd,
                         double* cpu = nullptr);
  // The pid of the reprod it started (to read its CPU time).
  pid_t reprod_pid() const;

 private:
  const std::string root_;
  const std::string dataset_;
  std::unique_ptr<testing::ReprodProcess> reprod_;
  int jobs_ = 0;
};

// This program's own path (/proc/self/exe), for benchmarks that re-run themselves under the shim.
std::string SelfPath();

}  // namespace repro::bench

#endif  // REPRO_TESTS_BENCH_SHIM_BENCH_STACK_H_
