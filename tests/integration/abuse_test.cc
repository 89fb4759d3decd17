// One local user abusing the real reprod, while another user's real job under the real shim is
// served: (a) a 64 GiB sparse executable says HELLO and 5,000 connections flood the shim socket
// from uid nobody, and root's enforce-mode job still gets its pin and verdicts within its
// timeout and reads its pinned data; (b) 300 `journal --follow` streams, and `reproctl node` and
// gRPC health still answer; (c) with low quotas, Record and a new process's HELLO are refused or
// not journaled, with RESOURCE_EXHAUSTED naming the flag and counters. Needs root (setpriv).
// And one job abusing it while another job of the same user is served (JobAbuseTest, any uid),
// and RegisterVersion calls over their cap (RegisterAbuseTest).
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "repro/v1/repro.grpc.pb.h"
#include "tests/client/shim/shim_job.h"
#include "tests/testutil/metrics_text.h"
#include "tests/testutil/subprocess.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kNobody = 65534;
constexpr uint64_t kSparseExeBytes = uint64_t{64} << 30;

// `argv` run without the test's shim environment.
Process SpawnWithoutShim(const std::vector<std::string>& argv, const std::string& log_path) {
  RunOptions options;
  options.unset_env = {"LD_PRELOAD", "REPRO_JOB", "REPRO_PINNED", "REPRO_SHIM_SOCKET"};
  return Process::Spawn(argv, options, log_path);
}

// `argv` run as uid and gid nobody, without the test's shim environment.
Process SpawnAsNobody(std::vector<std::string> argv, const std::string& log_path) {
  argv.insert(argv.begin(), {"setpriv", absl::StrCat("--reuid=", kNobody),
                             absl::StrCat("--regid=", kNobody), "--clear-groups", "--"});
  return SpawnWithoutShim(argv, log_path);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// grpc.health.v1.Health/Check for the whole server, through a generic stub (no generated code
// for the health proto here): true when it answered SERVING.
bool HealthServing(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::CompletionQueue cq;
  grpc::Slice empty;  // HealthCheckRequest{service: ""} encodes to no bytes
  grpc::ByteBuffer request(&empty, 1);
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  if (!cq.Next(&tag, &ok) || !ok || !status.ok()) return false;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes == std::string("\x08\x01", 2);  // HealthCheckResponse{status: SERVING}
}

// A well-behaved job's side of a flood.
class FloodTest : public ShimJobTest {
 protected:
  std::vector<std::string> ReprodFlags() override { return MetricsFlags(); }

  // Three processes of `job` in enforce mode say HELLO, get their verdicts within their timeout
  // (10 s) and read the pinned data.
  void RunEnforceJob(const std::string& job) {
    for (int run = 0; run < 3; ++run) {
      RunResult r = RunAs(job, "enforce", {"cat", Root() + "/latest/a.csv"},
                          {{"REPRO_SHIM_TIMEOUT_MS", "10000"}});
      EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
      EXPECT_EQ(r.stdout_text, Content("v1", "a.csv"));  // latest/ is v2: pinned v1 served
    }
  }
};

class AbuseTest : public FloodTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to run processes as nobody";
    ShimJobTest::SetUp();
    // nobody reaches the shim socket and the dataset (directories of the test are 0700).
    OpenToOthers(std::filesystem::path(reprod_->shim_socket()).parent_path());
    OpenToOthers(Root() + "/v1");
  }

  // Makes `dir` and the directories above it, up to the test's directory, 0755.
  void OpenToOthers(const std::filesystem::path& dir) {
    const std::filesystem::path top = std::filesystem::canonical(dir_.path());
    for (std::filesystem::path p = std::filesystem::canonical(dir);; p = p.parent_path()) {
      ASSERT_EQ(chmod(p.c_str(), 0755), 0) << p;
      if (p == top || !p.has_parent_path() || p == p.parent_path()) break;
    }
  }

  // A copy of /usr/bin/sleep grown to kSparseExeBytes with a hole: an ELF that runs, whose
  // hashing would read 64 GiB. In a directory nobody can reach.
  std::string SparseExecutable() {
    std::string dir = "/tmp/repro-abuse-XXXXXX";
    EXPECT_NE(mkdtemp(dir.data()), nullptr);
    chmod(dir.c_str(), 0755);
    sparse_dir_ = dir;
    const std::string exe = dir + "/big-sleep";
    std::filesystem::copy_file("/usr/bin/sleep", exe);
    std::filesystem::resize_file(exe, kSparseExeBytes);
    chmod(exe.c_str(), 0755);
    return exe;
  }

  void TearDown() override {
    if (!sparse_dir_.empty()) std::filesystem::remove_all(sparse_dir_);
  }

  std::string sparse_dir_;
};

TEST_F(AbuseTest, AFloodingUidDoesNotStarveAnotherUidsEnforceJob) {
  Pin("job-calm");
  RunResult pinned = reprod_->Ctl({"pin", "job-flood", "ds@v1", "--owner", "uid:65534"});
  ASSERT_EQ(pinned.exit_code, 0) << pinned.stderr_text;
  std::filesystem::permissions(Root() + "/v1/a.csv", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);

  // (1) nobody runs a 64 GiB sparse executable under the shim: it is journaled, not hashed.
  const std::string exe = SparseExecutable();
  std::vector<std::string> big = {"env"};
  for (const auto& [key, value] : JobEnv("job-flood", "record")) big.push_back(key + "=" + value);
  big.insert(big.end(), {exe, "120"});
  Process big_sleep = SpawnAsNobody(big, dir_.Path("big-sleep.log"));
  std::vector<v1::JournalEntry> flood_journal =
      WaitForJournal("job-flood", [&](const auto& entries) {
        for (const v1::JournalEntry& e : entries) {
          if (e.has_process_start() && e.process_start().exe() == exe) return true;
        }
        return false;
      });
  for (const v1::JournalEntry& e : flood_journal) {
    if (!e.has_process_start() || e.process_start().exe() != exe) continue;
    EXPECT_EQ(e.process_start().uid(), static_cast<uint32_t>(kNobody));
    EXPECT_TRUE(e.process_start().exe_sha256().empty());
    EXPECT_THAT(e.process_start().exe_not_hashed(), HasSubstr("is too large to hash (68719476736"));
  }

  // (2) nobody opens 5,000 connections, says HELLO on each and floods the ones kept with reports.
  const std::string flood_log = dir_.Path("flood.log");
  Process flood = SpawnAsNobody({BinPath("shim_flood"), reprod_->shim_socket(), "job-flood", "5000",
                                 Root() + "/v1/a.csv", "200"},
                                flood_log);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!absl::StrContains(ReadAll(flood_log), "flooding:") && absl::Now() < deadline) {
    ASSERT_TRUE(flood.running()) << ReadAll(flood_log);
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_THAT(ReadAll(flood_log), HasSubstr("flooding:"));
  std::string metrics = Metrics();
  // 256 per uid (--shim_max_connections_per_uid), one of them big-sleep's.
  EXPECT_GE(MetricValue(metrics,
                        "repro_shim_connections_refused_total{reason=\"max_connections_per_uid\"}"),
            5000 - 256 + 1)
      << ReadAll(flood_log);

  // (3) Meanwhile root's enforce-mode job says HELLO, gets verdicts and reads its pinned data.
  RunEnforceJob("job-calm");
  ASSERT_TRUE(flood.running()) << "the flood ended before the job ran";
  WaitForOpens("job-calm", 1);
  for (const v1::ProcessStart& start : Starts("job-calm")) {
    EXPECT_EQ(start.exe_sha256().size(), 32u) << start.exe_not_hashed();
  }
  metrics = Metrics();
  EXPECT_GE(MetricValue(metrics, "repro_shim_exes_not_hashed_total"), 1);
  EXPECT_GT(MetricValue(metrics, "repro_shim_verdicts_total{verdict=\"match\"}"), 0);
  flood.Kill(SIGKILL);
  big_sleep.Kill(SIGKILL);
}

// Two jobs of one uid: one floods the shim socket from 200 connections with opens that each ask
// for a verdict (urgent work, like the other job's), and the other job's enforce-mode processes
// still get their pin and verdicts within their timeout and read their pinned data, because the
// uid's turns go to its jobs in turn. Runs as the test's own uid.
class JobAbuseTest : public FloodTest {};

TEST_F(JobAbuseTest, AFloodingJobDoesNotStarveAnotherJobOfItsUid) {
  Pin("job-calm");
  Pin("job-flood");
  const std::string flood_log = dir_.Path("flood.log");
  Process flood = SpawnWithoutShim({BinPath("shim_flood"), reprod_->shim_socket(), "job-flood",
                                    "200", Root() + "/v1/a.csv", "200", "enforce"},
                                   flood_log);
  const std::string verdicts = "repro_shim_verdicts_total{verdict=\"match\"}";
  // The flood is served: its connections were kept and its verdicts are being counted.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (MetricValue(Metrics(), verdicts) < 10000 && absl::Now() < deadline) {
    ASSERT_TRUE(flood.running()) << ReadAll(flood_log);
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_THAT(ReadAll(flood_log), HasSubstr("flooding: 200 of 200 connections kept"));
  const double before = MetricValue(Metrics(), verdicts);
  ASSERT_GE(before, 10000);

  RunEnforceJob("job-calm");
  ASSERT_TRUE(flood.running()) << "the flood ended before the job ran";
  EXPECT_GT(MetricValue(Metrics(), verdicts), before) << "the flood was not served meanwhile";
  WaitForOpens("job-calm", 1);
  flood.Kill(SIGKILL);
}

TEST_F(AbuseTest, FollowStreamsAreCappedWhileNodeAndHealthAnswer) {
  Pin("job-f");
  RunResult r = RunAs("job-f", "record", {"cat", Root() + "/latest/a.csv"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  WaitForOpens("job-f", 1);  // the journal has entries: a held stream's first Read returns one

  constexpr int kStreams = 300;
  constexpr int kChannels = 10;  // several HTTP/2 connections, as many clients would open
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("repro.abuse_test_channel", i);  // a connection of its own
    channels.push_back(
        grpc::CreateCustomChannel(reprod_->addr(), grpc::InsecureChannelCredentials(), args));
  }
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::ReplayResponse>> reader;
  };
  std::vector<std::unique_ptr<Stream>> held;
  int refused = 0;
  for (int i = 0; i < kStreams; ++i) {
    auto stream = std::make_unique<Stream>();
    v1::ReplayRequest request;
    request.set_job("job-f");
    request.set_follow(true);
    stream->reader = v1::Repro::NewStub(channels[i % kChannels])->Replay(&stream->context, request);
    v1::ReplayResponse first;
    if (stream->reader->Read(&first)) {
      held.push_back(std::move(stream));
      continue;
    }
    grpc::Status status = stream->reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("--max_streams"));
    ++refused;
  }
  EXPECT_EQ(held.size(), 64u);  // --max_streams' default
  EXPECT_EQ(refused, kStreams - 64);

  RunResult node = reprod_->Ctl({"node"});
  EXPECT_EQ(node.exit_code, 0) << node.stderr_text;
  EXPECT_TRUE(HealthServing(channels[0]));
  const std::string metrics = Metrics();
  EXPECT_EQ(MetricValue(metrics, "repro_grpc_streams"), 64);
  EXPECT_EQ(MetricValue(metrics, "repro_grpc_streams_refused_total"), kStreams - 64);

  for (auto& stream : held) stream->context.TryCancel();
  for (auto& stream : held) stream->reader->Finish();
}

// RegisterVersion calls are capped (--max_register_streams, 1 here): while one hashes a 64 GiB
// sparse file, another is refused with RESOURCE_EXHAUSTED naming the flag, and counted; once the
// first is cancelled, its place is free again.
class RegisterAbuseTest : public ShimJobTest {
 protected:
  std::vector<std::string> ReprodFlags() override {
    std::vector<std::string> flags = MetricsFlags();
    flags.push_back("--max_register_streams=1");
    return flags;
  }

  // Waits until the gauge of running RegisterVersion calls reads `n`.
  void WaitForRegisterStreams(double n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (MetricValue(Metrics(), "repro_grpc_register_streams") != n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_EQ(MetricValue(Metrics(), "repro_grpc_register_streams"), n);
  }
};

TEST_F(RegisterAbuseTest, RegisterVersionCallsAreCapped) {
  const std::string big = dir_.Path("big");
  std::filesystem::create_directories(big);
  std::ofstream(big + "/zeros.bin").close();
  std::filesystem::resize_file(big + "/zeros.bin", kSparseExeBytes);
  const std::string small = dir_.Path("small");
  std::filesystem::create_directories(small);
  std::ofstream(small + "/a.txt") << "a";

  auto channel = grpc::CreateChannel(reprod_->addr(), grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  v1::RegisterVersionRequest request;
  request.set_dataset("big");
  request.set_version("v1");
  request.set_path(big);
  std::unique_ptr<grpc::ClientReader<v1::RegisterVersionResponse>> reader =
      v1::Repro::NewStub(channel)->RegisterVersion(&context, request);
  WaitForRegisterStreams(1);

  RunResult refused = reprod_->Ctl({"version", "add", "small", "v1", small});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.stderr_text, HasSubstr("1 RegisterVersion calls are running"));
  EXPECT_THAT(refused.stderr_text, HasSubstr("(--max_register_streams)"));
  EXPECT_EQ(MetricValue(Metrics(), "repro_grpc_register_streams_refused_total"), 1);

  context.TryCancel();  // the hashing stops, and the call gives its place back
  v1::RegisterVersionResponse response;
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  WaitForRegisterStreams(0);
  RunResult added = reprod_->Ctl({"version", "add", "small", "v1", small});
  EXPECT_EQ(added.exit_code, 0) << added.stderr_text;
}

// Quotas on the real daemon, set low: Record gets RESOURCE_EXHAUSTED naming the flag, and a
// process's HELLO (a fresh nonce: a new ProcessStart) is not journaled once its uid is over.
class QuotaAbuseTest : public AbuseTest {
 protected:
  std::vector<std::string> ReprodFlags() override {
    std::vector<std::string> flags = MetricsFlags();
    // One entry's burst, then one per 100 s: the second entry of a caller is refused.
    flags.push_back("--journal_entries_per_sec=0.01");
    flags.push_back("--max_record_bytes=2000");
    return flags;
  }
};

TEST_F(QuotaAbuseTest, RecordAndHelloAreBoundedWithClearErrors) {
  Pin("job-q");
  RunResult big = reprod_->Ctl({"record", "job-q", "k=" + std::string(3000, 'x')});
  EXPECT_NE(big.exit_code, 0);
  EXPECT_THAT(big.stderr_text, HasSubstr("--max_record_bytes 2000"));
  RunResult first = reprod_->Ctl({"record", "job-q", "k=1"});
  EXPECT_EQ(first.exit_code, 0) << first.stderr_text;
  RunResult second = reprod_->Ctl({"record", "job-q", "k=2"});
  EXPECT_NE(second.exit_code, 0);
  EXPECT_THAT(second.stderr_text, HasSubstr("is over --journal_entries_per_sec"));

  // A new process of the same uid says HELLO: answered, but its start is not journaled.
  RunResult r = RunAs("job-q", "record", {"cat", Root() + "/latest/a.csv"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  // Both counters are awaited: a scrape reads one counter after another while the refusal counts
  // its quota and then its lost items, so one scrape can hold the second and not yet the first.
  const std::string entries_refused =
      "repro_quota_refused_total{quota=\"journal_entries_per_sec\"}";
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::string metrics = Metrics();
  while ((MetricValue(metrics, "repro_shim_journal_errors_total") < 1 ||
          MetricValue(metrics, entries_refused) < 2) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    metrics = Metrics();
  }
  EXPECT_GE(MetricValue(metrics, "repro_shim_journal_errors_total"), 1);
  EXPECT_EQ(MetricValue(metrics, "repro_quota_refused_total{quota=\"max_record_bytes\"}"), 1);
  EXPECT_GE(MetricValue(metrics, entries_refused), 2);
  EXPECT_TRUE(Starts("job-q").empty());
}

}  // namespace
}  // namespace repro::testing
