#include "tests/bench/shim_bench_stack.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "tests/testutil/subprocess.h"

namespace repro::bench {

ShimBenchStack::ShimBenchStack(const std::string& dir, std::string dataset)
    : root_(absl::StrCat(dir, "/ml/", dataset)), dataset_(std::move(dataset)) {
  reprod_ = std::make_unique<testing::ReprodProcess>(dir + "/node");
  if (!reprod_->Start().ok()) {
    fprintf(stderr, "cannot start reprod:\n%s\n", reprod_->log().c_str());
    exit(1);
  }
}

void ShimBenchStack::Register() {
  for (const char* version : {"v1", "v2"}) {
    Ctl({"version", "add", dataset_, version, absl::StrCat(root_, "/", version)});
  }
}

void ShimBenchStack::Ctl(const std::vector<std::string>& args) {
  testing::RunResult r = reprod_->Ctl(args);
  if (r.exit_code != 0) {
    fprintf(stderr, "reproctl %s: %s\n", args[0].c_str(), r.stderr_text.c_str());
    exit(1);
  }
}

std::map<std::string, std::string> ShimBenchStack::ShimEnv(const std::string& mode) {
  std::string job = absl::StrCat(dataset_, "-", ++jobs_);
  Ctl({"pin", job, dataset_ + "@v1", "--seed", "1"});
  return {{"LD_PRELOAD", testing::LibPath("libreproshim.so")},
          {"REPRO_JOB", job},
          {"REPRO_MODE", mode},
          {"REPRO_SHIM_SOCKET", reprod_->shim_socket()}};
}

std::string ShimBenchStack::Run(const std::vector<std::string>& argv,
                                const std::map<std::string, std::string>& env,
                                const std::string& cwd, double* cpu) {
  rusage before{}, after{};
  getrusage(RUSAGE_CHILDREN, &before);
  testing::RunOptions options;
  options.env = env;
  options.cwd = cwd;
  options.timeout = absl::Minutes(10);
  testing::RunResult r = testing::RunCommand(argv, options);
  getrusage(RUSAGE_CHILDREN, &after);
  if (r.exit_code != 0) {
    fprintf(stderr, "%s failed (%d):\n%s%s\n", argv[0].c_str(), r.exit_code,
            r.stdout_text.c_str(), r.stderr_text.c_str());
    exit(1);
  }
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  if (cpu != nullptr) {
    *cpu = seconds(after.ru_utime) - seconds(before.ru_utime) + seconds(after.ru_stime) -
           seconds(before.ru_stime);
  }
  return r.stdout_text;
}

std::string SelfPath() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    perror("/proc/self/exe");
    exit(1);
  }
  return std::string(self, static_cast<size_t>(n));
}

pid_t ShimBenchStack::reprod_pid() const { return reprod_->pid(); }

}  // namespace repro::bench
