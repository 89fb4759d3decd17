// Host facts, `reproctl diff` and `reproctl export` on the real reprod and reproctl, on one node
// and on two nodes in cluster mode (with a real etcd). reprod finds the fake NVML
// (tests/daemon/host_probe/fake_nvml.c) through LD_LIBRARY_PATH, as it would find the driver's,
// so each "run" can be on a GPU of the test's choosing. The pairs of jobs differ in exactly one
// thing, and diff must name exactly that.
#include <gnu/libc-version.h>
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/cli/hex_json.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "repro/v1/provenance.pb.h"
#include "tests/testutil/etcd_cluster.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::ReprodProcess;
using testing::RunResult;
using testing::TempDir;
using testing::WriteFileOrDie;

constexpr char kH100[] = "Fake H100 80GB HBM3";

template <typename Message>
Message ParseJson(const std::string& json) {
  Message message;
  absl::Status status = cli::HexJsonToMessage(json, &message);  // digests are hex
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

// "group: change key" for every difference.
std::vector<std::string> Changes(const v1::JobDiff& diff) {
  std::vector<std::string> out;
  for (const v1::DiffGroup& group : diff.groups()) {
    for (const v1::Difference& d : group.differences()) {
      out.push_back(absl::StrCat(group.name(), ": ", d.change(), " ", d.key()));
    }
  }
  return out;
}

class DiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // v2 holds the same bytes as v1 under another name; v3 changed one file's content.
    for (const char* v : {"v1", "v2", "v3"}) {
      WriteFileOrDie(dir_.Path(absl::StrCat("ml/users/", v, "/part-0.csv")), "id\n1\n");
      WriteFileOrDie(dir_.Path(absl::StrCat("ml/users/", v, "/part-1.csv")),
                     std::string(v) == "v3" ? "id\n2\n3\n" : "id\n2\n");
    }
    StartReprod(kH100);
    for (const char* v : {"v1", "v2", "v3"}) {
      MustCtl({"version", "add", "users", v, dir_.Path(absl::StrCat("ml/users/", v))});
    }
  }

  // Starts reprod on this test's data dir with two fake GPUs named `gpu`.
  void StartReprod(const std::string& gpu) {
    testing::ReprodOptions options;
    options.run.env = {{"LD_LIBRARY_PATH", testing::LibPath("fake_nvml")},
                       {"FAKE_NVML_NAME", gpu},
                       {"FAKE_NVML_UUID", "GPU-1234"},
                       {"FAKE_NVML_COUNT", "2"},
                       {"FAKE_NVML_DRIVER", "535.104.05"},
                       {"FAKE_NVML_CUDA", "12020"}};
    reprod_ = std::make_unique<ReprodProcess>(dir_.Path("node"), options);
    ASSERT_TRUE(reprod_->Start().ok());
  }

  // The same node, rebooted onto other GPUs.
  void RestartOnGpu(const std::string& gpu) {
    ASSERT_EQ(reprod_->Kill(SIGTERM), 0);
    StartReprod(gpu);
  }

  RunResult Ctl(const std::vector<std::string>& args) { return reprod_->Ctl(args); }

  void MustCtl(const std::vector<std::string>& args) {
    RunResult r = Ctl(args);
    ASSERT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.stdout_text << r.stderr_text;
  }

  // A training run as far as reprod sees it without the shim: pinned (`pin` are the words after
  // the job id), then its code commit and hyper-parameters recorded.
  void RunJob(const std::string& job, std::vector<std::string> pin,
              const std::string& lr = "0.01") {
    pin.insert(pin.begin(), {"pin", job});
    MustCtl(pin);
    MustCtl({"record", job, "git/commit=3f2a9c1", absl::StrCat("lr=", lr)});
  }

  // `reproctl diff a b --output json`, expecting exit code `code`.
  v1::JobDiff Diff(const std::string& a, const std::string& b, int code) {
    RunResult r = Ctl({"--output", "json", "diff", a, b});
    EXPECT_EQ(r.exit_code, code) << a << " vs " << b << "\n" << r.stdout_text << r.stderr_text;
    return ParseJson<v1::JobDiff>(r.stdout_text);
  }

  std::vector<v1::JournalEntry> Journal(const std::string& job) {
    RunResult r = Ctl({"--output", "json", "journal", job});
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    std::vector<v1::JournalEntry> entries;
    for (absl::string_view line : absl::StrSplit(r.stdout_text, '\n', absl::SkipEmpty())) {
      entries.push_back(ParseJson<v1::ReplayResponse>(std::string(line)).entry());
    }
    return entries;
  }

  TempDir dir_;
  std::unique_ptr<ReprodProcess> reprod_;
};

TEST_F(DiffTest, NodeShowsTheHostAndTheFakeGpu) {
  RunResult text = Ctl({"node"});
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_THAT(text.stdout_text, HasSubstr("gpu0"));
  EXPECT_THAT(text.stdout_text, HasSubstr(kH100));
  EXPECT_THAT(text.stdout_text, HasSubstr("gpu1"));
  EXPECT_THAT(text.stdout_text, HasSubstr("GPU-1234"));
  EXPECT_THAT(text.stdout_text, HasSubstr("535.104.05 (CUDA 12.2, from nvml)"));

  RunResult json = Ctl({"--output", "json", "node"});
  v1::HostFacts host = ParseJson<v1::NodeInfo>(json.stdout_text).host();
  EXPECT_EQ(host.node(), "test-node");
  EXPECT_FALSE(host.hostname().empty());
  EXPECT_FALSE(host.kernel_release().empty());
  EXPECT_GT(host.cpu_count(), 0u);
  EXPECT_GT(host.memory_bytes(), 0u);
  EXPECT_EQ(host.glibc_version(), gnu_get_libc_version());
  EXPECT_EQ(host.gpu_source(), "nvml");
  ASSERT_EQ(host.gpus_size(), 2);
  EXPECT_EQ(host.gpus(0).name(), kH100);
  EXPECT_EQ(host.gpus(0).uuid(), "GPU-1234");
  EXPECT_EQ(host.gpus(1).uuid(), "GPU-1234-1");
  EXPECT_EQ(host.gpus(0).pci_bus_id(), "0000:17:00.0");
  EXPECT_EQ(host.driver_version(), "535.104.05");
  EXPECT_EQ(host.cuda_driver_version(), "12.2");
}

TEST_F(DiffTest, WithoutNvmlTheDaemonStillStartsAndDescribesItsHost) {
  ASSERT_EQ(reprod_->Kill(SIGTERM), 0);
  ReprodProcess plain(dir_.Path("node"));  // no fake NVML on the library path
  ASSERT_TRUE(plain.Start().ok());
  RunResult json = plain.Ctl({"--output", "json", "node"});
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  v1::HostFacts host = ParseJson<v1::NodeInfo>(json.stdout_text).host();
  EXPECT_FALSE(host.hostname().empty());
  EXPECT_THAT(host.gpu_source(), ::testing::AnyOf("nvml", "procfs", "pci", "none"));
  for (const v1::Gpu& gpu : host.gpus()) EXPECT_NE(gpu.name(), kH100);
}

TEST_F(DiffTest, APinnedJobJournalsTheHostOncePerNode) {
  RunJob("job-1", {"users@v1", "--seed", "7"});
  MustCtl({"pin", "job-1", "users@v1", "--seed", "7"});  // the same pin again
  MustCtl({"record", "job-1", "epoch=2"});
  RestartOnGpu("Fake A100");  // the job keeps the facts of the host it started on
  MustCtl({"record", "job-1", "epoch=3"});
  std::vector<v1::JournalEntry> hosts;
  for (const v1::JournalEntry& e : Journal("job-1")) {
    if (e.has_host()) hosts.push_back(e);
  }
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0].node(), "test-node");
  EXPECT_EQ(hosts[0].host().gpus(0).name(), kH100);
  EXPECT_EQ(hosts[0].seq(), 3u);  // with the pin and its version
}

TEST_F(DiffTest, IdenticalRunsMatch) {
  RunJob("job-a", {"users@v1", "--seed", "7"});
  RunJob("job-b", {"--like", "job-a"});
  v1::JobDiff diff = Diff("job-a", "job-b", 0);
  EXPECT_TRUE(diff.same());
  EXPECT_THAT(Changes(diff), IsEmpty());
  EXPECT_EQ(diff.groups_size(), 10);
  RunResult text = Ctl({"diff", "job-a", "job-b"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.stdout_text, HasSubstr("job-a and job-b match"));
}

TEST_F(DiffTest, RunsThatDifferInOneThingShowExactlyThatThing) {
  RunJob("base", {"users@v1", "--seed", "7"});
  RunJob("other-version", {"users@v2", "--seed", "7"});  // same bytes, other name
  RunJob("other-content", {"users@v3", "--seed", "7"});  // part-1.csv changed
  RunJob("other-seed", {"users@v1", "--seed", "8"});
  RunJob("other-lr", {"--like", "base"}, /*lr=*/"0.02");

  v1::JobDiff version = Diff("base", "other-version", 1);
  EXPECT_THAT(Changes(version), ElementsAre("data: changed users"));
  const v1::Difference& users = version.groups(0).differences(0);
  EXPECT_THAT(users.a(), ::testing::StartsWith("v1 "));
  EXPECT_THAT(users.b(), ::testing::StartsWith("v2 "));
  EXPECT_EQ(users.a().substr(3), users.b().substr(3));  // the same digest
  EXPECT_THAT(users.details(), IsEmpty());

  v1::JobDiff content = Diff("base", "other-content", 1);
  EXPECT_THAT(Changes(content), ElementsAre("data: changed users"));
  const v1::Difference& changed = content.groups(0).differences(0);
  ASSERT_EQ(changed.details_size(), 1);
  EXPECT_EQ(changed.details(0).key(), "part-1.csv");
  EXPECT_EQ(changed.details(0).change(), "changed");
  EXPECT_EQ(changed.details(0).b(), HexDigest(Sha256Of("id\n2\n3\n")));

  v1::JobDiff seed = Diff("base", "other-seed", 1);
  EXPECT_THAT(Changes(seed), ElementsAre("seeds: changed seed"));
  EXPECT_EQ(seed.groups(2).differences(0).a(), "7");
  EXPECT_EQ(seed.groups(2).differences(0).b(), "8");

  v1::JobDiff lr = Diff("base", "other-lr", 1);
  EXPECT_THAT(Changes(lr), ElementsAre("facts: changed lr"));

  RunResult text = Ctl({"diff", "base", "other-content"});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_THAT(text.stdout_text, HasSubstr("\ndata versions\n  ~ users: v1 "));
  EXPECT_THAT(text.stdout_text, HasSubstr("\n      ~ part-1.csv: "));
}

TEST_F(DiffTest, ARunOnAnotherGpuShowsExactlyTheGpu) {
  RunJob("on-h100", {"users@v1", "--seed", "7"});
  RestartOnGpu("Fake A100 40GB");
  RunJob("on-a100", {"--like", "on-h100"});
  v1::JobDiff diff = Diff("on-h100", "on-a100", 1);
  EXPECT_THAT(Changes(diff), ElementsAre("gpu: changed gpus"));
  EXPECT_EQ(diff.groups(6).differences(0).a(), absl::StrCat("2x ", kH100));
  EXPECT_EQ(diff.groups(6).differences(0).b(), "2x Fake A100 40GB");
}

TEST_F(DiffTest, UnknownJobsExitFive) {
  RunJob("job-a", {"users@v1"});
  RunResult diff = Ctl({"diff", "job-a", "nope"});
  EXPECT_EQ(diff.exit_code, 5);
  EXPECT_THAT(diff.stderr_text, HasSubstr("nope"));
  EXPECT_EQ(Ctl({"export", "nope"}).exit_code, 5);
}

TEST_F(DiffTest, ExportIsTheWholeSignedRecordInOneDocument) {
  RunJob("job-a", {"users@v1", "--seed", "7"});
  RunResult r = Ctl({"export", "job-a"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  v1::Provenance p = ParseJson<v1::Provenance>(r.stdout_text);
  EXPECT_EQ(p.format(), "repro.provenance.v1");
  EXPECT_EQ(p.job(), "job-a");
  EXPECT_GT(p.exported_at().seconds(), 0);
  EXPECT_TRUE(p.journal_intact());

  std::vector<v1::JournalEntry> journal = Journal("job-a");
  EXPECT_EQ(p.entries(), journal.size());
  RunResult node = Ctl({"--output", "json", "node"});
  ASSERT_EQ(p.heads_size(), 1);
  EXPECT_EQ(p.heads(0).node(), "test-node");
  EXPECT_EQ(p.heads(0).seq(), journal.size());
  EXPECT_EQ(p.heads(0).hash().size(), 64u);
  EXPECT_EQ(p.heads(0).signature().size(), 128u);
  EXPECT_EQ(p.heads(0).public_key(),
            HexDigest(ParseJson<v1::NodeInfo>(node.stdout_text).public_key()));
  EXPECT_TRUE(p.heads(0).intact());

  RunResult show = Ctl({"--output", "json", "version", "show", "users@v1"});
  v1::VersionInfo v1_info = ParseJson<v1::GetVersionResponse>(show.stdout_text).version();
  ASSERT_EQ(p.pin().versions_size(), 1);
  EXPECT_EQ(p.pin().versions(0).dataset(), "users");
  EXPECT_EQ(p.pin().versions(0).version(), "v1");
  EXPECT_EQ(p.pin().versions(0).digest(), HexDigest(v1_info.digest()));
  EXPECT_EQ(p.pin().versions(0).path(), dir_.Path("ml/users/v1"));
  EXPECT_EQ(p.pin().versions(0).file_count(), 2u);
  EXPECT_EQ(p.pin().seed(), 7u);
  ASSERT_EQ(p.hosts_size(), 1);
  EXPECT_EQ(p.hosts(0).gpus(0).name(), kH100);
  ASSERT_EQ(p.facts_size(), 2);
  EXPECT_EQ(p.facts(0).key(), "git/commit");
  EXPECT_EQ(p.facts(0).value(), "3f2a9c1");

  // The shape scripts rely on: every field present, 64-bit numbers as strings, hex digests.
  for (const char* field :
       {"\"format\"", "\"heads\"", "\"pin\"", "\"versions\"", "\"seed\": \"7\"", "\"rankSeeds\"",
        "\"files\"", "\"violations\"", "\"programs\"", "\"libraries\"", "\"pythonPackages\"",
        "\"hosts\"", "\"facts\"", "\"exportedAt\"", "\"journalIntact\": true"}) {
    EXPECT_THAT(r.stdout_text, HasSubstr(field));
  }
  RunResult line = Ctl({"--output", "json", "export", "job-a"});
  EXPECT_EQ(std::count(line.stdout_text.begin(), line.stdout_text.end(), '\n'), 1);
}

// Cluster mode: a job spread over two nodes is compared as a whole, whichever node is asked.
class ClusterDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFileOrDie(dir_.Path("ml/users/v1/part-0.csv"), "id\n1\n");
    etcd_ = std::make_unique<testing::EtcdCluster>(dir_.Path("etcd"), 1);
    absl::Status started = etcd_->Start();
    ASSERT_TRUE(started.ok()) << started;
    a_ = StartNode("node-a", kH100);
    b_ = StartNode("node-b", kH100);
    ASSERT_TRUE(a_ != nullptr && b_ != nullptr);
    ASSERT_EQ(a_->Ctl({"version", "add", "users", "v1", dir_.Path("ml/users/v1")}).exit_code, 0);
  }

  // A node in cluster mode on two fake GPUs named `gpu`, reachable by the other over TCP.
  std::unique_ptr<ReprodProcess> StartNode(const std::string& name, const std::string& gpu) {
    std::string work = dir_.Path(name);
    testing::ReprodOptions options;
    options.node_name = name;
    options.extra_flags = {"--etcd_endpoints=" + etcd_->EndpointList(),
                           "--grpc_listen=unix:" + work + "/reprod.sock,127.0.0.1:0"};
    options.run.env = {{"LD_LIBRARY_PATH", testing::LibPath("fake_nvml")},
                       {"FAKE_NVML_NAME", gpu},
                       {"FAKE_NVML_COUNT", "2"}};
    auto node = std::make_unique<ReprodProcess>(work, options);
    absl::Status started = node->Start();
    EXPECT_TRUE(started.ok()) << started;
    return started.ok() ? std::move(node) : nullptr;
  }

  // Pinned through node A, used on both nodes: each journals its part.
  void RunOnBothNodes(const std::string& job, const std::vector<std::string>& pin) {
    std::vector<std::string> args = {"pin", job};
    args.insert(args.end(), pin.begin(), pin.end());
    ASSERT_EQ(a_->Ctl(args).exit_code, 0);
    ASSERT_EQ(a_->Ctl({"record", job, "lr=0.01"}).exit_code, 0);
    // Node B learns of the pin through etcd.
    ASSERT_TRUE(Eventually([&] { return b_->Ctl({"record", job, "rank=1"}).exit_code == 0; }));
    // Both parts are visible from node A once B's head is published.
    ASSERT_TRUE(Eventually([&] {
      RunResult r = a_->Ctl({"--output", "json", "export", job});
      return r.exit_code == 0 && ParseJson<v1::Provenance>(r.stdout_text).heads_size() == 2;
    }));
  }

  template <typename F>
  static bool Eventually(F done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!done()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return true;
  }

  TempDir dir_;
  std::unique_ptr<testing::EtcdCluster> etcd_;
  std::unique_ptr<ReprodProcess> a_;
  std::unique_ptr<ReprodProcess> b_;
};

TEST_F(ClusterDiffTest, JobsOnSeveralNodesAreComparedAsAWhole) {
  RunOnBothNodes("job-1", {"users@v1", "--seed", "7"});
  RunOnBothNodes("job-2", {"--like", "job-1"});
  for (ReprodProcess* via : {a_.get(), b_.get()}) {
    RunResult same = via->Ctl({"--output", "json", "diff", "job-1", "job-2"});
    EXPECT_EQ(same.exit_code, 0) << same.stdout_text << same.stderr_text;
    v1::JobDiff diff = ParseJson<v1::JobDiff>(same.stdout_text);
    EXPECT_THAT(Changes(diff), IsEmpty());
  }

  // Node B is rebooted onto other GPUs; a rerun now uses one H100 node and one A100 node.
  ASSERT_EQ(b_->Kill(SIGTERM), 0);
  b_ = StartNode("node-b", "Fake A100 40GB");
  ASSERT_NE(b_, nullptr);
  RunOnBothNodes("job-3", {"--like", "job-1"});
  RunResult r = a_->Ctl({"--output", "json", "diff", "job-1", "job-3"});
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  v1::JobDiff diff = ParseJson<v1::JobDiff>(r.stdout_text);
  EXPECT_THAT(Changes(diff), ElementsAre("gpu: changed gpus"));
  EXPECT_EQ(diff.groups(6).differences(0).a(), absl::StrCat("4x ", kH100));
  EXPECT_EQ(diff.groups(6).differences(0).b(), absl::StrCat("2x Fake A100 40GB, 2x ", kH100));

  RunResult exported = b_->Ctl({"--output", "json", "export", "job-3"});
  ASSERT_EQ(exported.exit_code, 0) << exported.stderr_text;
  v1::Provenance p = ParseJson<v1::Provenance>(exported.stdout_text);
  EXPECT_TRUE(p.journal_intact());
  ASSERT_EQ(p.hosts_size(), 2);
  EXPECT_EQ(p.hosts(0).node(), "node-a");
  EXPECT_EQ(p.hosts(1).gpus(0).name(), "Fake A100 40GB");
}

}  // namespace
}  // namespace repro
