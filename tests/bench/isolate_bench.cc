// What `reproctl run --isolate` adds to starting a job: the time from `reproctl run` to the end of
// a command that does nothing (static busybox `true`), plain against isolated as root (a mount
// namespace) and as nobody (a user namespace too), in the same run. The dataset root holds the
// pinned version, `latest`, and --versions other registered versions (each one more entry to
// hide or bind).
//
//   isolate_bench [--runs=30] [--versions=20]
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tests/bench/bench_util.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/subprocess.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(int, runs, 30, "job starts per measurement");
ABSL_FLAG(int, versions, 20, "registered versions beside the pinned one");

namespace repro::bench {
namespace {

// Milliseconds per start of `argv`, which must exit 0, over `runs` runs.
double MsPerStart(const std::vector<std::string>& argv, int runs) {
  double seconds = TimeSeconds([&] {
    for (int i = 0; i < runs; ++i) {
      testing::RunResult r = testing::RunCommand(argv);
      if (r.exit_code != 0) {
        fprintf(stderr, "isolate_bench: %s\n", r.stderr_text.c_str());
        exit(1);
      }
    }
  });
  return seconds * 1000 / runs;
}

}  // namespace

int Main() {
  const int runs = absl::GetFlag(FLAGS_runs);
  testing::TempDir dir;
  testing::ReprodProcess reprod(dir.Path("node"), {.extra_flags = {"--log_level=warn"}});
  if (!reprod.Start().ok()) return 1;
  const std::string root = std::filesystem::canonical(dir.path()).string() + "/ml/ds";
  for (int v = 0; v <= absl::GetFlag(FLAGS_versions); ++v) {
    const std::string version = absl::StrCat("v", v);
    testing::WriteFileOrDie(absl::StrCat(root, "/", version, "/a.csv"), version);
    if (reprod.Ctl({"version", "add", "ds", version, root + "/" + version}).exit_code != 0) {
      return 1;
    }
  }
  std::filesystem::create_directory_symlink("v1", root + "/latest");
  if (reprod.Ctl({"pin", "bench", "ds@v0"}).exit_code != 0) return 1;
  // nobody reaches the data and the socket (the temporary directory is private).
  chmod(dir.path().c_str(), 0755);
  chmod(reprod.grpc_socket().c_str(), 0666);

  const std::vector<std::string> plain = {testing::BinPath("reproctl"),
                                          "--addr",
                                          reprod.addr(),
                                          "run",
                                          "--job",
                                          "bench",
                                          "--mode",
                                          "enforce",
                                          "--",
                                          "/usr/bin/busybox",
                                          "true"};
  std::vector<std::string> isolated = plain;
  isolated.insert(isolated.end() - 3, "--isolate");
  std::vector<std::string> as_nobody = {"setpriv", "--reuid=65534", "--regid=65534",
                                        "--clear-groups", "--"};
  const double base = MsPerStart(plain, runs);
  Report("run (baseline)", base, "ms per job start");
  if (geteuid() != 0) {
    Report("run --isolate (user namespace)", MsPerStart(isolated, runs), "ms per job start", base,
           "run");
    return 0;
  }
  Report("run --isolate as root (mount namespace)", MsPerStart(isolated, runs), "ms per job start",
         base, "run");
  as_nobody.insert(as_nobody.end(), isolated.begin(), isolated.end());
  std::vector<std::string> plain_nobody = {"setpriv", "--reuid=65534", "--regid=65534",
                                           "--clear-groups", "--"};
  plain_nobody.insert(plain_nobody.end(), plain.begin(), plain.end());
  const double base_nobody = MsPerStart(plain_nobody, runs);
  Report("run as nobody (baseline)", base_nobody, "ms per job start");
  Report("run --isolate as nobody (user + mount namespace)", MsPerStart(as_nobody, runs),
         "ms per job start", base_nobody, "run as nobody");
  return 0;
}

}  // namespace repro::bench
