// Shim overhead, against baselines measured in the same run.
//
//   shim_bench [--files=2000] [--kib=4] [--passes=5] [--runs=5] [--peers=true]
//
// 1. The Python loop of the issue: read --files files of --kib KiB, --passes times, through the
//    alias latest/ of a dataset pinned to another version (every open is rewritten, the first
//    open of each file reported). Median loop time of --runs interleaved runs of: bare Python; the
//    shim in record mode; in enforce mode; the shim active but the files outside every dataset
//    root; bare Python and the shim reading files in a site-packages directory (each open is
//    noted for package capture: the cost of issue 4's capture on non-dataset opens);
//    `strace -f -e trace=openat`; `reprozip trace`. Each shim run is a new job, so every
//    file is checked and journaled once, as in a real first epoch. Python's user+sys CPU time is
//    reported beside it: on a small machine reprod's work competes with the loop for the cores,
//    and so is reprod's own CPU time per reported open (from /proc, each run's work let finish).
// 2. Added latency per open (ns), from this program re-run as a child under the shim, timing the
//    shim's open() against libc's own in alternating batches: the first open of a dataset file
//    (record; enforce, which waits for reprod's verdict), a repeated open of a dataset file, an
//    open outside the datasets; and, for scale, what one fstat after libc's open adds (the file's
//    identity, which any per-file report needs: the floor of a first open's added cost).
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
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

ABSL_FLAG(int, files, 2000, "files the loop reads");
ABSL_FLAG(int, kib, 4, "size of each file in KiB");
ABSL_FLAG(int, passes, 5, "times the loop reads every file");
ABSL_FLAG(int, runs, 5, "runs of each variant (the median is reported)");
ABSL_FLAG(bool, peers, true, "also measure strace and reprozip (scripts/install-deps.sh --bench)");
ABSL_FLAG(std::string, latency_child, "",
          "internal: time opens of the files listed in this file (one path per line)");
ABSL_FLAG(std::string, outside, "", "internal: a file in no dataset, for the latency child");

namespace repro::bench {
namespace {

constexpr char kLoop[] = R"(import os, sys, time
root, passes = sys.argv[1], int(sys.argv[2])
paths = sorted(os.path.join(d, n) for d, _, names in os.walk(root) for n in names)
start = time.perf_counter()
for _ in range(passes):
    for p in paths:
        with open(p, 'rb') as f:
            f.read()
print(time.perf_counter() - start)
)";

constexpr char kPython[] = "/usr/bin/python3";
// Opens per timed batch, and rounds of batches, of the latency child.
constexpr int kBatch = 100;
constexpr int kRounds = 50;

using OpenFn = int (*)(const char*, int, ...);

OpenFn g_libc_open = nullptr;  // libc's own open, past the shim (the latency child)

// libc's open followed by an fstat of the file.
int LibcOpenAndStat(const char* path, int flags, ...) {
  int fd = g_libc_open(path, flags);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Mean ns of open()+close() over paths[begin, end) with `open_fn`.
double TimeOpens(OpenFn open_fn, const std::vector<std::string>& paths, size_t begin, size_t end) {
  double start = NowNs();
  for (size_t i = begin; i < end; ++i) {
    int fd = open_fn(paths[i].c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      perror(paths[i].c_str());
      exit(1);
    }
    close(fd);
  }
  return (NowNs() - start) / static_cast<double>(end - begin);
}

// The latency child, run under the shim. It times open() (the shim's) against libc's own open
// (looked up in libc.so.6, past the shim) in alternating batches, so both see the same machine
// load, and prints the added ns: "FIRST REPEATED OUTSIDE FSTAT" for the first open of each listed
// dataset file, a second open of each, opens of `outside`, a file in no dataset, and an fstat
// after libc's open of `outside`.
int LatencyChild(const std::string& list, const std::string& outside) {
  void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  auto libc_open = reinterpret_cast<OpenFn>(libc != nullptr ? dlsym(libc, "open") : nullptr);
  if (libc_open == nullptr) return 1;
  g_libc_open = libc_open;
  OpenFn shim_open = &open;
  // Each file is opened first by one side only: even batches through the shim, odd through libc.
  std::vector<std::string> paths;
  std::ifstream in(list);
  for (std::string line; std::getline(in, line);) paths.push_back(line);
  auto added_by = [&](OpenFn tried, auto&& time_batch) {
    std::vector<double> with, bare;
    for (size_t b = 0; b + 2 * kBatch <= paths.size(); b += 2 * kBatch) {
      with.push_back(time_batch(tried, b));
      bare.push_back(time_batch(libc_open, b + kBatch));
    }
    return Percentile(with, 50) - Percentile(bare, 50);
  };
  auto added = [&](auto&& time_batch) { return added_by(shim_open, time_batch); };
  auto batch = [&](OpenFn fn, size_t b) { return TimeOpens(fn, paths, b, b + kBatch); };
  double first = added(batch);
  double repeated = added(batch);
  std::vector<std::string> same(2 * kBatch * kRounds, outside);
  paths.swap(same);
  added(batch);  // warm the kernel's and the shim's caches
  double outside_ns = added(batch);
  double fstat_ns = added_by(&LibcOpenAndStat, batch);
  printf("%.0f %.0f %.0f %.0f\n", first, repeated, outside_ns, fstat_ns);
  return 0;
}

struct Sample {
  double loop = 0;  // the loop's own wall time, seconds
  double cpu = 0;   // the process's user+sys time, seconds
};

class ShimBench {
 public:
  ShimBench() : stack_(dir_.path(), "bench") {}

  int Run() {
    const int files = absl::GetFlag(FLAGS_files);
    const uint64_t size = static_cast<uint64_t>(absl::GetFlag(FLAGS_kib)) << 10;
    MakeFiles(dir_.Path("ml/bench/v1"), files, size, 1);
    MakeFiles(dir_.Path("ml/bench/v2"), files, size, 2);
    MakeFiles(dir_.Path("outside"), files, size, 3);
    MakeFiles(dir_.Path("python/site-packages"), files, size, 4);
    Shell(absl::StrCat("ln -s v2 ", dir_.Path("ml/bench/latest"), " && mkdir -p ",
                       dir_.Path("work")));
    std::ofstream(dir_.Path("loop.py")) << kLoop;
    stack_.Register();
    printf("shim_bench: %d files x %d KiB, %d passes, median of %d runs; reads through "
           "latest/ -> v2 of a dataset pinned to v1\n",
           files, absl::GetFlag(FLAGS_kib), absl::GetFlag(FLAGS_passes), absl::GetFlag(FLAGS_runs));
    LoopFigures();
    LatencyFigures();
    return 0;
  }

 private:
  std::map<std::string, std::string> ShimEnv(const std::string& mode) {
    return stack_.ShimEnv(mode);
  }

  std::string RunTimed(const std::vector<std::string>& argv,
                       const std::map<std::string, std::string>& env, double* cpu) {
    return ShimBenchStack::Run(argv, env, dir_.Path("work"), cpu);
  }

  Sample Loop(const std::vector<std::string>& prefix, const std::string& data,
              const std::map<std::string, std::string>& env) {
    std::vector<std::string> argv = prefix;
    argv.insert(argv.end(), {kPython, dir_.Path("loop.py"), data,
                             std::to_string(absl::GetFlag(FLAGS_passes))});
    Sample sample;
    std::string out = RunTimed(argv, env, &sample.cpu);
    // The loop prints its time first (reprozip prints more after it).
    const std::string first = out.substr(0, out.find('\n'));
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(first), &sample.loop)) {
      fprintf(stderr, "unexpected loop output: %s\n", out.c_str());
      exit(1);
    }
    return sample;
  }

  // reprod's user+sys CPU seconds so far, read once it stops growing (the journaling of the last
  // run has finished), polling for at most 5 s.
  double ReprodCpuSettled() {
    auto read = [this] { return ProcessCpuSeconds(stack_.reprod_pid()); };
    double last = read();
    for (int i = 0; i < 100; ++i) {
      usleep(50000);
      double now = read();
      if (now == last) return now;
      last = now;
    }
    return last;
  }

  void LoopFigures() {
    struct Variant {
      std::string name;
      std::function<Sample()> run;
      std::vector<double> loop, cpu, reprod_cpu;
    };
    const std::string latest = dir_.Path("ml/bench/latest");
    std::vector<Variant> variants;
    variants.push_back({"bare python", [&] { return Loop({}, latest, {}); }});
    variants.push_back({"shim, record", [&] { return Loop({}, latest, ShimEnv("record")); }});
    variants.push_back({"shim, enforce", [&] { return Loop({}, latest, ShimEnv("enforce")); }});
    variants.push_back({"shim, files outside the datasets",
                        [&] { return Loop({}, dir_.Path("outside"), ShimEnv("record")); }});
    // Package capture: every open lies in a site-packages directory, so the shim notes it.
    const std::string packages = dir_.Path("python/site-packages");
    variants.push_back({"bare python, site-packages files", [&] { return Loop({}, packages, {}); }});
    variants.push_back({"shim, site-packages files", [&] {
                          return Loop({}, packages, ShimEnv("record"));
                        }});
    if (absl::GetFlag(FLAGS_peers)) {
      variants.push_back({"strace -f -e trace=openat", [&] {
                            return Loop({"strace", "-f", "-e", "trace=openat", "-o", "/dev/null"},
                                        latest, {});
                          }});
      variants.push_back({"reprozip trace", [&] {
                            return Loop({"reprozip", "trace", "-w", "-d",
                                         dir_.Path("reprozip"), "--dont-identify-packages",
                                         "--dont-find-inputs-outputs"},
                                        latest, {});
                          }});
    }
    for (Variant& v : variants) v.run();  // warm-up: page cache, interpreter, reprod
    for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
      for (Variant& v : variants) {
        const double reprod_before = ReprodCpuSettled();
        Sample s = v.run();
        v.reprod_cpu.push_back(ReprodCpuSettled() - reprod_before);
        v.loop.push_back(s.loop);
        v.cpu.push_back(s.cpu);
      }
    }
    const double bare = Median(variants[0].loop);
    const double bare_cpu = Median(variants[0].cpu);
    printf("\n%-34s %10s %8s %14s\n", "python loop", "loop (s)", "x bare", "cpu (s) x bare");
    for (const Variant& v : variants) {
      double loop = Median(v.loop);
      double cpu = Median(v.cpu);
      printf("%-34s %10.3f %7.2fx %7.3f %5.2fx\n", v.name.c_str(), loop, loop / bare, cpu,
             cpu / bare_cpu);
    }
    const int files = absl::GetFlag(FLAGS_files);
    printf("reprod CPU per reported open (us): record %.1f, enforce %.1f\n",
           Median(variants[1].reprod_cpu) / files * 1e6,
           Median(variants[2].reprod_cpu) / files * 1e6);
    printf("package capture (shim vs bare, site-packages files): loop %.3fx, cpu %.3fx\n",
           Median(variants[5].loop) / Median(variants[4].loop),
           Median(variants[5].cpu) / Median(variants[4].cpu));
    fflush(stdout);
  }

  // Runs the latency child under the shim in `mode`; returns the added ns {first, repeated,
  // outside, fstat}.
  std::vector<double> Latency(const std::string& mode) {
    double cpu;
    std::string out = RunTimed({SelfPath(), "--latency_child=" + dir_.Path("first.txt"),
                                "--outside=" + dir_.Path("outside/d0/f0.bin")},
                               ShimEnv(mode), &cpu);
    std::vector<double> ns;
    for (absl::string_view word : absl::StrSplit(absl::StripTrailingAsciiWhitespace(out), ' ')) {
      double v = 0;
      if (absl::SimpleAtod(word, &v)) ns.push_back(v);
    }
    if (ns.size() != 4) {
      fprintf(stderr, "unexpected latency output: %s\n", out.c_str());
      exit(1);
    }
    return ns;
  }

  void LatencyFigures() {
    std::ofstream list(dir_.Path("first.txt"));
    for (int i = 0; i < absl::GetFlag(FLAGS_files); ++i) {
      list << dir_.Path(absl::StrCat("ml/bench/latest/d", i / 1000, "/f", i, ".bin")) << "\n";
    }
    list.close();
    std::map<std::string, std::vector<std::vector<double>>> runs;
    for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
      for (const char* mode : {"record", "enforce"}) runs[mode].push_back(Latency(mode));
    }
    auto median = [&](const std::string& mode, int column) {
      std::vector<double> v;
      for (const std::vector<double>& r : runs[mode]) v.push_back(r[column]);
      return Median(v);
    };
    printf("\n%-52s %12s\n", "open()+close() from C, shim vs libc's own open", "added (ns)");
    printf("%-52s %12.0f\n", "first open of a dataset file, record", median("record", 0));
    printf("%-52s %12.0f\n", "first open of a dataset file, enforce", median("enforce", 0));
    printf("%-52s %12.0f\n", "repeated open of a dataset file (alias rewritten)",
           median("record", 1));
    printf("%-52s %12.0f\n", "open outside the datasets", median("record", 2));
    printf("%-52s %12.0f\n", "for scale: an fstat after libc's open (no shim)",
           median("record", 3));
    fflush(stdout);
  }

  testing::TempDir dir_;
  ShimBenchStack stack_;
};

}  // namespace

int Main() {
  const std::string child = absl::GetFlag(FLAGS_latency_child);
  if (!child.empty()) return LatencyChild(child, absl::GetFlag(FLAGS_outside));
  return ShimBench().Run();
}

}  // namespace repro::bench
