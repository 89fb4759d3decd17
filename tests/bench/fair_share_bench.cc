// The HELLO and verdict latency of a well-behaved job (root) on reprod's shim socket, alone and
// while uid nobody floods the socket (shim_flood: 5,000 connections, each kept one sending
// record-mode reports). Each sample is one new connection: HELLO until the PIN answer, then one
// enforce-mode open until its verdict. Prints p50/p99 of both, flooded against alone (ratios).
// Needs root (setpriv to nobody).
//
//   fair_share_bench [--samples=300] [--flood_connections=5000] [--flood_rounds=200]
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/shim_socket/shim_message.h"
#include "tests/bench/bench_util.h"
#include "tests/client/shim/shim_socket_client.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/subprocess.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(int, samples, 300, "HELLO + verdict round trips measured per phase");
ABSL_FLAG(int, flood_connections, 5000, "connections the flooding uid opens");
ABSL_FLAG(int, flood_rounds, 200, "report rounds per second on each kept flood connection");

namespace repro::bench {
namespace {

struct Latencies {
  std::vector<double> hello_ms;
  std::vector<double> verdict_ms;
};

void Die(const std::string& why) {
  fprintf(stderr, "fair_share_bench: %s\n", why.c_str());
  exit(1);
}

void CheckedCtl(const testing::ReprodProcess& reprod, const std::vector<std::string>& args) {
  testing::RunResult r = reprod.Ctl(args);
  if (r.exit_code != 0) Die(absl::StrCat("reproctl ", args[0], ": ", r.stderr_text));
}

// `samples` new connections of job-calm: HELLO -> PIN, then one waited-for open -> verdict.
Latencies Measure(const std::string& socket, const std::string& file, int samples) {
  Latencies out;
  for (int i = 0; i < samples; ++i) {
    ShimHello hello;
    hello.job = "job-calm";
    hello.mode = ShimMode::kEnforce;
    hello.claimed_pid = getpid();
    hello.nonce = static_cast<uint64_t>(i) + 1;
    ShimOpen open;
    open.dataset = "ds";
    open.requested_path = file;
    open.opened_path = file;
    const double t0 = NowNs();
    testing::ShimSocketClient client(socket);
    if (!client.Send(EncodeShimHello(1, hello)) || !client.Receive(60000).has_value()) {
      Die("no PIN answer");
    }
    const double t1 = NowNs();
    if (!client.Send(EncodeShimOpen(2, open)) || !client.Receive(60000).has_value()) {
      Die("no verdict");
    }
    const double t2 = NowNs();
    out.hello_ms.push_back((t1 - t0) / 1e6);
    out.verdict_ms.push_back((t2 - t1) / 1e6);
  }
  return out;
}

void ReportPhase(const std::string& phase, const Latencies& l, const Latencies* alone) {
  const std::pair<const char*, const std::vector<double> Latencies::*> kinds[] = {
      {"HELLO", &Latencies::hello_ms}, {"verdict", &Latencies::verdict_ms}};
  for (const auto& [name, field] : kinds) {
    for (double p : {50.0, 99.0}) {
      const double value = Percentile(l.*field, p);
      Report(absl::StrCat(name, " p", p, " ", phase), value, "ms",
             alone != nullptr ? Percentile(alone->*field, p) : 0, alone != nullptr ? "alone" : "");
    }
  }
}

}  // namespace

int Main() {
  if (geteuid() != 0) Die("needs root (the flood runs as nobody)");
  testing::TempDir dir;
  const std::string root = std::filesystem::canonical(dir.path()).string();
  const std::string file = root + "/ml/ds/v1/a.csv";
  testing::WriteFileOrDie(file, std::string(4096, 'a'));
  testing::ReprodProcess reprod(dir.Path("node"));
  if (absl::Status s = reprod.Start(); !s.ok()) Die(s.ToString());
  CheckedCtl(reprod, {"version", "add", "ds", "v1", root + "/ml/ds/v1"});
  CheckedCtl(reprod, {"pin", "job-calm", "ds@v1"});
  CheckedCtl(reprod, {"pin", "job-flood", "ds@v1", "--owner", "uid:65534"});
  // nobody reaches the socket and the file.
  for (std::filesystem::path p = std::filesystem::path(reprod.shim_socket()).parent_path();
       p.string().size() >= root.size(); p = p.parent_path()) {
    chmod(p.c_str(), 0755);
  }
  for (const std::string& d : {root + "/ml", root + "/ml/ds", root + "/ml/ds/v1"}) {
    chmod(d.c_str(), 0755);
  }
  const int samples = absl::GetFlag(FLAGS_samples);
  Measure(reprod.shim_socket(), file, 20);  // warm up: caches, threads
  const Latencies alone = Measure(reprod.shim_socket(), file, samples);

  const std::string flood_log = dir.Path("flood.log");
  testing::RunOptions options;
  options.unset_env = {"LD_PRELOAD", "REPRO_JOB"};
  testing::Process flood =
      testing::Process::Spawn({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                               testing::BinPath("shim_flood"), reprod.shim_socket(), "job-flood",
                               std::to_string(absl::GetFlag(FLAGS_flood_connections)), file,
                               std::to_string(absl::GetFlag(FLAGS_flood_rounds))},
                              options, flood_log);
  std::string flood_line;
  for (absl::Time deadline = absl::Now() + absl::Seconds(120);
       !absl::StrContains(flood_line, "flooding:"); absl::SleepFor(absl::Milliseconds(100))) {
    if (absl::Now() > deadline || !flood.running()) Die("the flood did not start: " + flood_line);
    std::ifstream in(flood_log);
    std::getline(in, flood_line);
  }
  absl::SleepFor(absl::Seconds(1));  // the flood's reports are flowing
  const Latencies flooded = Measure(reprod.shim_socket(), file, samples);
  flood.Kill(SIGKILL);

  printf("flood from uid nobody: %s\n", flood_line.c_str());
  ReportPhase("alone", alone, nullptr);
  ReportPhase("during flood", flooded, &alone);
  return 0;
}

}  // namespace repro::bench
