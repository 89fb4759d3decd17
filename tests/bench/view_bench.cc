// The cost of the view (the shim's stat, opendir and other path wrappers), against baselines
// measured in the same run.
//
//   view_bench [--files=2000] [--runs=5]
//
// 1. Added ns per call, from this program re-run as a child under the shim (record and enforce
//    mode), timing the shim's stat() and opendir()+closedir() against libc's own (looked up in
//    libc.so.6, past the shim) in alternating batches: on a path outside every dataset root, and
//    through the alias latest/ of a dataset pinned to another version (rewritten).
// 2. The Python loop of the issue: for each of --files files, an os.listdir of its directory and
//    an os.stat of the file, through latest/. Median loop time of --runs interleaved runs of bare
//    Python and the shim in record and enforce mode, as a ratio to bare.
#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/shim_bench_stack.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(int, files, 2000, "files the Python loop lists and stats");
ABSL_FLAG(int, runs, 5, "runs of each variant (the median is reported)");
ABSL_FLAG(std::string, latency_child, "",
          "internal: time stat and opendir on OUTSIDE_FILE,ALIAS_FILE (comma-separated)");

namespace repro::bench {
namespace {

constexpr char kLoop[] = R"(import os, sys, time
root = sys.argv[1]
names = [os.path.join(d, n)
         for d in sorted(os.listdir(root)) for n in os.listdir(os.path.join(root, d))]
start = time.perf_counter()
for name in names:
    os.listdir(os.path.join(root, os.path.dirname(name)))
    os.stat(os.path.join(root, name))
print(time.perf_counter() - start)
)";

constexpr char kPython[] = "/usr/bin/python3";
constexpr int kBatch = 200;
constexpr int kRounds = 50;

using StatFn = int (*)(const char*, struct stat*);
using OpendirFn = DIR* (*)(const char*);

// Added ns per call of `shim` over `bare`, alternating batches so both see the same load.
double Added(const std::function<void(bool shim)>& call) {
  std::vector<double> shim, bare;
  for (int round = 0; round < kRounds; ++round) {
    for (bool use_shim : {true, false}) {
      double start = NowNs();
      for (int i = 0; i < kBatch; ++i) call(use_shim);
      (use_shim ? shim : bare).push_back((NowNs() - start) / kBatch);
    }
  }
  return Percentile(shim, 50) - Percentile(bare, 50);
}

// The latency child, run under the shim: prints "STAT_OUT STAT_ALIAS OPENDIR_OUT OPENDIR_ALIAS"
// in added ns per call.
int LatencyChild(const std::string& arg) {
  std::vector<std::string> files = absl::StrSplit(arg, ',');
  void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  auto libc_stat = reinterpret_cast<StatFn>(libc != nullptr ? dlsym(libc, "stat") : nullptr);
  auto libc_opendir =
      reinterpret_cast<OpendirFn>(libc != nullptr ? dlsym(libc, "opendir") : nullptr);
  if (files.size() != 2 || libc_stat == nullptr || libc_opendir == nullptr) return 1;
  StatFn shim_stat = &stat;
  OpendirFn shim_opendir = &opendir;
  std::vector<double> ns;
  for (const std::string& file : files) {
    const std::string dir = file.substr(0, file.rfind('/'));
    struct stat st;
    auto stat_call = [&](bool shim) {
      if ((shim ? shim_stat : libc_stat)(file.c_str(), &st) != 0) exit(2);
    };
    auto opendir_call = [&](bool shim) {
      DIR* d = (shim ? shim_opendir : libc_opendir)(dir.c_str());
      if (d == nullptr) exit(3);
      closedir(d);
    };
    Added(stat_call);  // warm the kernel's and the shim's caches
    ns.push_back(Added(stat_call));
    Added(opendir_call);
    ns.push_back(Added(opendir_call));
  }
  printf("%.0f %.0f %.0f %.0f\n", ns[0], ns[2], ns[1], ns[3]);
  return 0;
}

class ViewBench {
 public:
  ViewBench() : stack_(dir_.path(), "bench") {}

  int Run() {
    const int files = absl::GetFlag(FLAGS_files);
    MakeFiles(dir_.Path("ml/bench/v1"), files, 64, 1);
    MakeFiles(dir_.Path("ml/bench/v2"), files, 64, 2);
    MakeFiles(dir_.Path("outside"), 1, 64, 3);
    Shell(absl::StrCat("ln -s v2 ", dir_.Path("ml/bench/latest"), " && mkdir -p ",
                       dir_.Path("work")));
    std::ofstream(dir_.Path("loop.py")) << kLoop;
    stack_.Register();
    printf("view_bench: %d files; latest/ -> v2 of a dataset pinned to v1; median of %d runs\n",
           files, absl::GetFlag(FLAGS_runs));
    LatencyFigures();
    LoopFigures();
    return 0;
  }

 private:
  std::string Run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env) {
    return ShimBenchStack::Run(argv, env, dir_.Path("work"));
  }

  void LatencyFigures() {
    const std::string arg = absl::StrCat(dir_.Path("outside/d0/f0.bin"), ",",
                                         dir_.Path("ml/bench/latest/d0/f0.bin"));
    std::map<std::string, std::vector<std::vector<double>>> runs;
    for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
      for (const char* mode : {"record", "enforce"}) {
        std::string out = Run({SelfPath(), "--latency_child=" + arg}, stack_.ShimEnv(mode));
        std::vector<double> ns;
        for (absl::string_view w : absl::StrSplit(absl::StripTrailingAsciiWhitespace(out), ' ')) {
          double v = 0;
          if (absl::SimpleAtod(w, &v)) ns.push_back(v);
        }
        if (ns.size() != 4) {
          fprintf(stderr, "unexpected latency output: %s\n", out.c_str());
          exit(1);
        }
        runs[mode].push_back(ns);
      }
    }
    auto median = [&](const std::string& mode, int column) {
      std::vector<double> v;
      for (const std::vector<double>& r : runs[mode]) v.push_back(r[column]);
      return Median(v);
    };
    printf("\n%-44s %14s %14s\n", "added ns per call, shim vs libc's own", "record", "enforce");
    const char* const kRows[] = {"stat, outside every root", "stat, through the alias",
                                 "opendir+closedir, outside every root",
                                 "opendir+closedir, through the alias"};
    for (int row = 0; row < 4; ++row) {
      printf("%-44s %14.0f %14.0f\n", kRows[row], median("record", row), median("enforce", row));
    }
    fflush(stdout);
  }

  void LoopFigures() {
    const std::string latest = dir_.Path("ml/bench/latest");
    struct Variant {
      std::string name;
      std::function<std::map<std::string, std::string>()> env;
      std::vector<double> loop;
    };
    std::vector<Variant> variants = {
        {"bare python", [] { return std::map<std::string, std::string>{}; }, {}},
        {"shim, record", [&] { return stack_.ShimEnv("record"); }, {}},
        {"shim, enforce", [&] { return stack_.ShimEnv("enforce"); }, {}}};
    for (int i = 0; i <= absl::GetFlag(FLAGS_runs); ++i) {  // run 0 warms up
      for (Variant& v : variants) {
        double seconds = 0;
        std::string out = Run({kPython, dir_.Path("loop.py"), latest}, v.env());
        if (!absl::SimpleAtod(absl::StripAsciiWhitespace(out), &seconds)) {
          fprintf(stderr, "unexpected loop output: %s\n", out.c_str());
          exit(1);
        }
        if (i > 0) v.loop.push_back(seconds);
      }
    }
    const double bare = Median(variants[0].loop);
    printf("\n%-44s %10s %8s\n", "python: os.listdir + os.stat per file", "loop (s)", "x bare");
    for (const Variant& v : variants) {
      printf("%-44s %10.3f %7.2fx\n", v.name.c_str(), Median(v.loop), Median(v.loop) / bare);
    }
    fflush(stdout);
  }

  testing::TempDir dir_;
  ShimBenchStack stack_;
};

}  // namespace

int Main() {
  const std::string child = absl::GetFlag(FLAGS_latency_child);
  if (!child.empty()) return LatencyChild(child);
  return ViewBench().Run();
}

}  // namespace repro::bench
