// Cluster mode end to end: a real 3-member etcd cluster on loopback and two real reprod daemons
// acting as two nodes, driven over real gRPC and by the real reproctl. One pin for every node,
// exactly one winner between racing launchers, failover and fail-closed behaviour when etcd
// members die, and a job's journal replayed and verified across both nodes.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/store/chain.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/etcd_cluster.h"
#include "tests/testutil/http_client.h"
#include "tests/testutil/metrics_text.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::EtcdCluster;
using testing::ReprodProcess;
using testing::RunResult;
using testing::TempDir;
using testing::WriteFileOrDie;

constexpr absl::Duration kBounded = absl::Seconds(10);  // what "within a bounded time" means

// Polls `done` every 20 ms until it is true or `timeout` passes; true when it became true.
template <typename F>
bool Eventually(F done, absl::Duration timeout = kBounded) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFileOrDie(dir_.Path("ml/users/v1/a.csv"), "id\n1\n");
    WriteFileOrDie(dir_.Path("ml/users/v1/b/c.csv"), "id\n2\n");
    WriteFileOrDie(dir_.Path("ml/users/v2/a.csv"), "id\n1\n3\n");
    etcd_ = std::make_unique<EtcdCluster>(dir_.Path("etcd"));
    absl::Status started = etcd_->Start();
    ASSERT_TRUE(started.ok()) << started;
    a_ = StartNode("node-a");
    b_ = StartNode("node-b");
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }

  // A reprod in cluster mode with a Unix socket (for the tests), a TCP listener (for the
  // other node), a metrics endpoint and `more_flags`.
  std::unique_ptr<ReprodProcess> StartNode(const std::string& name,
                                           const std::vector<std::string>& more_flags = {}) {
    std::string work = dir_.Path(name);
    metrics_ports_[name] = testing::PickFreePort();
    std::vector<std::string> flags = {
        "--etcd_endpoints=" + etcd_->EndpointList(),
        "--grpc_listen=unix:" + work + "/reprod.sock,127.0.0.1:0",
        absl::StrCat("--metrics_listen=127.0.0.1:", metrics_ports_[name])};
    flags.insert(flags.end(), more_flags.begin(), more_flags.end());
    auto node = std::make_unique<ReprodProcess>(
        work, testing::ReprodOptions{.node_name = name, .extra_flags = std::move(flags)});
    absl::Status started = node->Start();
    EXPECT_TRUE(started.ok()) << started;
    return started.ok() ? std::move(node) : nullptr;
  }

  static void MustCtl(const ReprodProcess& node, const std::vector<std::string>& args) {
    RunResult r = node.Ctl(args);
    ASSERT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.stdout_text << r.stderr_text;
  }

  void RegisterBoth() {
    MustCtl(*a_, {"version", "add", "users", "v1", dir_.Path("ml/users/v1")});
    MustCtl(*b_, {"version", "add", "users", "v2", dir_.Path("ml/users/v2")});
  }

  static grpc::Status Pin(const ReprodProcess& node, const std::string& job,
                          const std::string& version, v1::PinResponse* response = nullptr) {
    v1::PinRequest request;
    request.set_job(job);
    v1::VersionRef* ref = request.add_versions();
    ref->set_dataset("users");
    ref->set_version(version);
    request.set_seed(7);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::PinResponse ignored;
    return node.NewStub()->Pin(&context, request, response != nullptr ? response : &ignored);
  }

  static absl::StatusOr<std::vector<v1::Pin>> ListPins(const ReprodProcess& node) {
    grpc::ClientContext context;
    v1::ListPinsResponse response;
    grpc::Status status = node.NewStub()->ListPins(&context, v1::ListPinsRequest(), &response);
    if (!status.ok()) return absl::UnavailableError(status.error_message());
    return std::vector<v1::Pin>(response.pins().begin(), response.pins().end());
  }

  static v1::AdmitResponse Admit(const ReprodProcess& node, const std::string& job) {
    v1::AdmitRequest request;
    request.set_job(job);
    grpc::ClientContext context;
    v1::AdmitResponse response;
    grpc::Status status = node.NewStub()->Admit(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static grpc::Status Record(const ReprodProcess& node, const std::string& job,
                             const std::string& value) {
    v1::RecordRequest request;
    request.set_job(job);
    v1::Fact* fact = request.add_facts();
    fact->set_key("step");
    fact->set_value(value);
    grpc::ClientContext context;
    v1::RecordResponse response;
    return node.NewStub()->Record(&context, request, &response);
  }

  static std::vector<v1::ReplayResponse> Replay(const ReprodProcess& node, const std::string& job,
                                                grpc::Status* status) {
    v1::ReplayRequest request;
    request.set_job(job);
    grpc::ClientContext context;
    auto reader = node.NewStub()->Replay(&context, request);
    std::vector<v1::ReplayResponse> out;
    v1::ReplayResponse response;
    while (reader->Read(&response)) out.push_back(response);
    *status = reader->Finish();
    return out;
  }

  // Waits until the head of `node`'s part of `job` in etcd is the node's own head. The node's head
  // is read again each time: it may still move (a shimmed process's libraries are journaled after
  // the process ended), and then the head published next is the newer one.
  bool HeadPublished(const ReprodProcess& node, const std::string& name, const std::string& job) {
    std::string last_error;
    const bool published = Eventually([&] {
      v1::VerifyJournalRequest request;
      request.set_job(job);
      request.set_local_only(true);
      grpc::ClientContext context;
      v1::VerifyJournalResponse own;
      grpc::Status status = node.NewStub()->VerifyJournal(&context, request, &own);
      if (!status.ok() || own.nodes_size() != 1) {
        last_error =
            status.ok() ? absl::StrCat(own.nodes_size(), " parts") : status.error_message();
        return false;
      }
      const std::string seq = absl::StrCat("\"seq\":\"", own.nodes(0).head().seq(), "\"");
      RunResult r = etcd_->Ctl({"get", "--print-value-only", "/repro/heads/" + job + "/" + name});
      last_error = absl::StrCat("etcd has ", r.stdout_text, ", the node's head is at ", seq);
      return r.stdout_text.find(seq) != std::string::npos;
    });
    EXPECT_TRUE(published) << last_error;
    return published;
  }

  // What node `name` serves on /metrics ("" when it does not answer).
  std::string MetricsOf(const std::string& name) {
    auto response = testing::HttpFetch({.port = metrics_ports_[name]}, "GET", "/metrics");
    return response.ok() ? response->body : "";
  }

  TempDir dir_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::map<std::string, int> metrics_ports_;
  std::unique_ptr<ReprodProcess> a_;
  std::unique_ptr<ReprodProcess> b_;
};

TEST_F(ClusterTest, PinOnOneNodeIsVisibleOnTheOtherWithinBoundedTime) {
  RegisterBoth();
  // Versions registered on either node are the cluster's.
  RunResult versions = b_->Ctl({"version", "list"});
  EXPECT_THAT(versions.stdout_text, HasSubstr("v1"));
  EXPECT_THAT(versions.stdout_text, HasSubstr("v2"));

  const absl::Time pinned_at = absl::Now();
  MustCtl(*a_, {"pin", "job-1", "users@v1", "--seed", "42"});
  // ListPins is served from node B's watch-fed mirror: this is the watch delivering the pin.
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<std::vector<v1::Pin>> pins = ListPins(*b_);
    return pins.ok() && pins->size() == 1 && (*pins)[0].job() == "job-1";
  })) << "node B never saw the pin made on node A";
  std::cout << "pin visible on the other node after "
            << absl::FormatDuration(absl::Now() - pinned_at) << "\n";
  EXPECT_TRUE(Admit(*b_, "job-1").admitted());
  RunResult show = b_->Ctl({"--output", "json", "pin", "show", "job-1"});
  EXPECT_THAT(show.stdout_text, HasSubstr("\"42\""));
  EXPECT_THAT(show.stdout_text, HasSubstr("node-a"));  // created_on

  // The same pin from the other node is a no-op; a different one is refused, naming the pin.
  EXPECT_EQ(b_->Ctl({"pin", "job-1", "users@v1", "--seed", "42"}).exit_code, 0);
  RunResult conflict = b_->Ctl({"pin", "job-1", "users@v2"});
  EXPECT_EQ(conflict.exit_code, 2);
  EXPECT_THAT(conflict.stderr_text, HasSubstr("already pinned to users@v1"));

  RunResult node = b_->Ctl({"--output", "json", "node"});
  EXPECT_THAT(node.stdout_text, HasSubstr("\"mode\":\"cluster\""));
  EXPECT_THAT(node.stdout_text, HasSubstr("watching etcd"));
  EXPECT_THAT(node.stdout_text, HasSubstr("\"advertiseAddr\":\"127.0.0.1:"));
}

TEST_F(ClusterTest, ConcurrentConflictingPinsFromBothNodesHaveExactlyOneWinner) {
  RegisterBoth();
  constexpr int kRounds = 30;
  for (int round = 0; round < kRounds; ++round) {
    const std::string job = absl::StrCat("race-", round);
    grpc::Status on_a, on_b;
    std::atomic<bool> go{false};
    std::thread racer_a([&] {
      while (!go) {
      }
      on_a = Pin(*a_, job, "v1");
    });
    std::thread racer_b([&] {
      while (!go) {
      }
      on_b = Pin(*b_, job, "v2");
    });
    go = true;
    racer_a.join();
    racer_b.join();
    ASSERT_NE(on_a.ok(), on_b.ok()) << "round " << round << ": a=" << on_a.error_message()
                                    << " b=" << on_b.error_message();
    const grpc::Status& loser = on_a.ok() ? on_b : on_a;
    EXPECT_EQ(loser.error_code(), grpc::FAILED_PRECONDITION) << loser.error_message();
    EXPECT_THAT(loser.error_message(),
                HasSubstr(absl::StrCat("already pinned to users@", on_a.ok() ? "v1" : "v2")));
  }
}

TEST_F(ClusterTest, PinningContinuesWithOneEtcdMemberKilled) {
  RegisterBoth();
  MustCtl(*a_, {"pin", "before", "users@v1"});
  etcd_->Kill(0);  // the first endpoint: where both nodes talk and watch
  for (int i = 0; i < 5; ++i) {
    v1::PinResponse pinned;
    grpc::Status status = Pin(i % 2 == 0 ? *a_ : *b_, absl::StrCat("during-", i), "v2", &pinned);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_TRUE(Admit(*a_, "during-1").admitted());
  EXPECT_TRUE(Admit(*b_, "before").admitted());
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<std::vector<v1::Pin>> pins = ListPins(*b_);
    return pins.ok() && pins->size() == 6;
  }));
  ASSERT_TRUE(etcd_->Restart(0).ok());
}

TEST_F(ClusterTest, AllMembersDownFailsClosedAndServiceResumesWithoutRestart) {
  RegisterBoth();
  MustCtl(*a_, {"pin", "job-1", "users@v1"});
  MustCtl(*b_, {"record", "job-1", "epoch=0"});
  ASSERT_TRUE(Eventually([&] { return Admit(*b_, "job-1").admitted(); }));

  etcd_->KillAll();
  // Admit refuses even a job whose pin the node holds (fail closed), with the reason, as soon
  // as the node notices.
  RunResult admit;
  EXPECT_TRUE(Eventually([&] {
    admit = b_->Ctl({"admit", "job-1"});
    return admit.exit_code == 3;
  })) << admit.stdout_text << admit.stderr_text;
  EXPECT_THAT(admit.stderr_text, HasSubstr("unreachable"));
  grpc::Status refused = Pin(*a_, "job-2", "v2");
  EXPECT_EQ(refused.error_code(), grpc::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("etcd is unreachable"));
  EXPECT_THAT(refused.error_message(), HasSubstr(etcd_->Endpoint(1)));
  // Journaling on the node keeps working; a cached pin still reads; an unknown one is
  // UNAVAILABLE, not NOT_FOUND.
  EXPECT_TRUE(Record(*b_, "job-1", "epoch=1").ok());
  EXPECT_EQ(b_->Ctl({"pin", "show", "job-1"}).exit_code, 0);
  RunResult unknown = b_->Ctl({"pin", "show", "job-9"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.stderr_text;
  EXPECT_THAT(unknown.stderr_text, HasSubstr("unreachable"));
  EXPECT_EQ(b_->Ctl({"node"}).exit_code, 0);  // still answers, saying what is wrong

  ASSERT_TRUE(etcd_->RestartAll().ok());
  // Everything resumes, with the same reprod processes.
  ASSERT_TRUE(Eventually([&] { return Pin(*a_, "job-2", "v2").ok(); }));
  ASSERT_TRUE(Eventually([&] { return Admit(*b_, "job-1").admitted(); }));
  EXPECT_TRUE(Admit(*b_, "job-2").admitted());
  // The head node B journaled during the outage reaches etcd.
  ASSERT_TRUE(HeadPublished(*b_, "node-b", "job-1"))
      << etcd_->Ctl({"get", "--prefix", "/repro/heads/"}).stdout_text;
  EXPECT_EQ(b_->Ctl({"verify", "job-1"}).exit_code, 0);
  EXPECT_TRUE(a_->running());
  EXPECT_TRUE(b_->running());
}

TEST_F(ClusterTest, ARestartedNodeCatchesUp) {
  RegisterBoth();
  ASSERT_EQ(b_->Kill(SIGKILL), 128 + SIGKILL);
  MustCtl(*a_, {"pin", "while-b-was-down", "users@v1"});
  ASSERT_TRUE(b_->Start().ok());
  absl::StatusOr<std::vector<v1::Pin>> pins = ListPins(*b_);
  ASSERT_TRUE(pins.ok()) << pins.status();
  ASSERT_EQ(pins->size(), 1u);
  EXPECT_EQ((*pins)[0].job(), "while-b-was-down");
}

TEST_F(ClusterTest, ANodeNameIsOneNode) {
  testing::ReprodProcess twin(
      dir_.Path("twin"),
      {.node_name = "node-a",
       .extra_flags = {"--etcd_endpoints=" + etcd_->EndpointList(),
                       "--grpc_listen=unix:" + dir_.Path("twin/reprod.sock") + ",127.0.0.1:0"}});
  RunResult refused = testing::RunCommand(twin.Command(), {.timeout = absl::Seconds(30)});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.stderr_text, HasSubstr("node name node-a is in use by another reprod"));
}

TEST_F(ClusterTest, EtcdctlShowsTheDocumentedKeys) {
  RegisterBoth();
  MustCtl(*a_, {"pin", "job-1", "users@v1"});
  MustCtl(*b_, {"record", "job-1", "epoch=1"});
  ASSERT_TRUE(HeadPublished(*a_, "node-a", "job-1"));
  ASSERT_TRUE(HeadPublished(*b_, "node-b", "job-1"));
  RunResult keys = etcd_->Ctl({"get", "--prefix", "/repro/", "--keys-only"});
  ASSERT_EQ(keys.exit_code, 0) << keys.stderr_text;
  for (const char* key :
       {"/repro/versions/users/v1\n", "/repro/versions/users/v2\n", "/repro/manifests/users/v1/",
        "-of-00000001\n", "/repro/pins/job-1\n", "/repro/heads/job-1/node-a\n",
        "/repro/heads/job-1/node-b\n", "/repro/nodes/node-a\n", "/repro/nodes/node-b\n"}) {
    EXPECT_THAT(keys.stdout_text, HasSubstr(key));
  }
  // Records are readable protobuf JSON.
  RunResult pin = etcd_->Ctl({"get", "--print-value-only", "/repro/pins/job-1"});
  EXPECT_THAT(pin.stdout_text, HasSubstr("\"job\":\"job-1\""));
  RunResult node = etcd_->Ctl({"get", "--print-value-only", "/repro/nodes/node-b"});
  EXPECT_THAT(node.stdout_text, HasSubstr("\"advertiseAddr\":\"127.0.0.1:"));
  // A stopped node leaves /repro/nodes/ (its lease is revoked), its heads stay.
  ASSERT_EQ(b_->Kill(SIGTERM), 0);
  RunResult after = etcd_->Ctl({"get", "--prefix", "/repro/", "--keys-only"});
  EXPECT_THAT(after.stdout_text, ::testing::Not(HasSubstr("/repro/nodes/node-b\n")));
  EXPECT_THAT(after.stdout_text, HasSubstr("/repro/heads/job-1/node-b\n"));
}

// The parts of job-1: node A journals the pin and two facts, node B its own pin entries and a
// fact. Returns once both heads are published.
class ClusterJournalTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    RegisterBoth();
    MustCtl(*a_, {"pin", "job-1", "users@v1"});
    MustCtl(*a_, {"record", "job-1", "lr=0.1", "epoch=1"});
    MustCtl(*b_, {"record", "job-1", "rank=1"});
    ASSERT_TRUE(HeadPublished(*a_, "node-a", "job-1"));
    ASSERT_TRUE(HeadPublished(*b_, "node-b", "job-1"));
  }

  // Node B journals more of job-2 (pinned here) until node A has taken, with a consistency proof,
  // a tree head of B larger than `size`; false when that did not happen within 90 s. A proof A
  // completes may come from a round that read etcd before B published such a tree, so this waits
  // for two more proven growths after B's published tree is larger than `size`: A's rounds run
  // one after the other, so the second began after that publication.
  bool GrowBUntilProvenByA(uint64_t size = 0) {
    if (b_->Ctl({"pin", "job-2", "users@v1"}).exit_code != 0) return false;
    int step = 0;
    std::optional<int64_t> proven_when_published;
    return Eventually(
        [&] {
          if (proven_when_published.has_value() &&
              ProvenGrowthsOfB() >= *proven_when_published + 2) {
            return true;
          }
          if (!proven_when_published.has_value() && PublishedTreeSize("node-b") > size) {
            proven_when_published = ProvenGrowthsOfB();
          }
          EXPECT_TRUE(Record(*b_, "job-2", absl::StrCat(++step)).ok());
          absl::SleepFor(absl::Milliseconds(500));  // node A looks every second
          return false;
        },
        absl::Seconds(90));
  }

  // How many larger tree heads of node B node A has taken once proven (its counter).
  int64_t ProvenGrowthsOfB() {
    const double proven = testing::MetricValue(
        MetricsOf("node-a"), "repro_cluster_tree_head_growths_proven_total{node=\"node-b\"}");
    return proven < 0 ? 0 : static_cast<int64_t>(proven);
  }

  // The size of the tree head node `name` last published in etcd (0: none).
  uint64_t PublishedTreeSize(const std::string& name) {
    std::string value =
        etcd_->Ctl({"get", "--print-value-only", "/repro/treeheads/" + name}).stdout_text;
    if (!value.empty() && value.back() == '\n') value.pop_back();  // etcdctl's line end
    v1::SignedTreeHead sth;
    return sth.ParseFromString(value) ? sth.size() : 0;
  }

  // Stops node B, lets `edit` change its RocksDB, starts it again.
  void EditNodeB(const std::function<void(RocksStore&)>& edit) {
    ASSERT_EQ(b_->Kill(SIGTERM), 0);
    {
      auto store = RocksStore::Open({.data_dir = b_->data_dir()});
      ASSERT_TRUE(store.ok()) << store.status();
      edit(**store);
    }
    ASSERT_TRUE(b_->Start().ok());
  }
};

TEST_F(ClusterJournalTest, JournalAndVerifyFromAnyNodeCoverEveryNode) {
  for (ReprodProcess* via : {a_.get(), b_.get()}) {
    grpc::Status status;
    std::vector<v1::ReplayResponse> entries = Replay(*via, "job-1", &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    // Node after node, each node's part complete and in order.
    std::map<std::string, uint64_t> last_seq;
    std::vector<std::string> order;
    for (const v1::ReplayResponse& e : entries) {
      const std::string& node = e.entry().node();
      if (order.empty() || order.back() != node) order.push_back(node);
      EXPECT_EQ(e.entry().seq(), ++last_seq[node]) << node;
    }
    EXPECT_THAT(order, ::testing::ElementsAre("node-a", "node-b"));

    RunResult journal = via->Ctl({"--output", "json", "journal", "job-1"});
    EXPECT_EQ(journal.exit_code, 0) << journal.stderr_text;
    EXPECT_THAT(journal.stdout_text, HasSubstr("rank"));
    EXPECT_THAT(journal.stdout_text, HasSubstr("epoch"));

    RunResult verify = via->Ctl({"verify", "job-1"});
    EXPECT_EQ(verify.exit_code, 0) << verify.stdout_text << verify.stderr_text;
    EXPECT_THAT(verify.stdout_text, HasSubstr("node-a"));
    EXPECT_THAT(verify.stdout_text, HasSubstr("node-b"));
  }
  // local_only asks one node for its own part.
  v1::VerifyJournalRequest request;
  request.set_job("job-1");
  request.set_local_only(true);
  grpc::ClientContext context;
  v1::VerifyJournalResponse response;
  ASSERT_TRUE(a_->NewStub()->VerifyJournal(&context, request, &response).ok());
  ASSERT_EQ(response.nodes_size(), 1);
  EXPECT_EQ(response.nodes(0).node(), "node-a");
}

TEST_F(ClusterJournalTest, FollowStreamsNewEntriesOfEveryNode) {
  v1::ReplayRequest request;
  request.set_job("job-1");
  request.set_follow(true);
  grpc::ClientContext context;
  auto stub = a_->NewStub();
  auto reader = stub->Replay(&context, request);
  MustCtl(*b_, {"record", "job-1", "from=b"});
  MustCtl(*a_, {"record", "job-1", "from=a"});
  std::set<std::string> seen;
  v1::ReplayResponse response;
  while (seen.size() < 2 && reader->Read(&response)) {
    for (const v1::Fact& fact : response.entry().record().facts()) {
      if (fact.key() == "from") seen.insert(absl::StrCat(fact.value(), "@", response.entry().node()));
    }
  }
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre("a@node-a", "b@node-b"));
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  reader->Finish();
}

// The shim end to end on two nodes: one job's processes run under the shim against both
// daemons, and the job is replayed and verified as one job from either node.
TEST_F(ClusterJournalTest, ShimProcessesOnBothNodesAreOneJob) {
  const std::string shim = testing::LibPath("libreproshim.so");
  if (!std::filesystem::exists(shim)) {
    GTEST_SKIP() << shim << " is not built: this test needs the shim (client/shim)";
  }
  auto run_on = [&](const ReprodProcess& node, const std::string& rank, const std::string& file) {
    RunResult r = node.Ctl({"run", "--job", "job-1", "--", "/bin/cat", dir_.Path(file)},
                           {.env = {{"REPRO_RANK", rank}, {"REPRO_SHIM_LIB", shim}}});
    EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  };
  run_on(*a_, "0", "ml/users/v1/a.csv");
  run_on(*b_, "1", "ml/users/v1/b/c.csv");

  // Every node's opens, read through either node.
  std::set<std::string> opens;
  ASSERT_TRUE(Eventually([&] {
    grpc::Status status;
    opens.clear();
    for (const v1::ReplayResponse& e : Replay(*b_, "job-1", &status)) {
      if (e.entry().has_data_open()) {
        opens.insert(absl::StrCat(e.entry().node(), ":", e.entry().data_open().relative_path()));
      }
    }
    return status.ok() && opens.size() == 2;
  })) << absl::StrJoin(opens, " ");
  EXPECT_THAT(opens, ::testing::UnorderedElementsAre("node-a:a.csv", "node-b:b/c.csv"));
  ASSERT_TRUE(HeadPublished(*a_, "node-a", "job-1"));
  ASSERT_TRUE(HeadPublished(*b_, "node-b", "job-1"));
  RunResult verify = a_->Ctl({"verify", "job-1", "--rehash"});
  EXPECT_EQ(verify.exit_code, 0) << verify.stdout_text << verify.stderr_text;

  // Node B's part of the job, deleted behind reprod's back, is reported from node A.
  ASSERT_EQ(b_->Kill(SIGTERM), 0);
  {
    auto store = RocksStore::Open({.data_dir = b_->data_dir()});
    ASSERT_TRUE(store.ok()) << store.status();
    rocksdb::WriteBatch batch;
    batch.DeleteRange((*store)->handle(Column::kJournal), JobPrefix("job-1"),
                      JournalKey("job-1", UINT64_MAX));
    ASSERT_TRUE((*store)->WriteDurable(&batch).ok());
  }
  ASSERT_TRUE(b_->Start().ok());
  RunResult tampered = a_->Ctl({"verify", "job-1"});
  EXPECT_EQ(tampered.exit_code, 4) << tampered.stdout_text << tampered.stderr_text;
  EXPECT_THAT(tampered.stdout_text, ::testing::ContainsRegex("node-b +no"));
}

TEST_F(ClusterJournalTest, AlteredPartOfANodeIsReported) {
  EditNodeB([](RocksStore& store) {
    auto value = store.Get(Column::kJournal, JournalKey("job-1", 1));
    ASSERT_TRUE(value.ok() && value->has_value());
    std::string edited = **value;
    edited[edited.size() - 2] ^= 1;  // inside the pin
    rocksdb::WriteBatch batch;
    batch.Put(store.handle(Column::kJournal), JournalKey("job-1", 1), edited);
    ASSERT_TRUE(store.WriteDurable(&batch).ok());
  });
  RunResult verify = a_->Ctl({"verify", "job-1"});
  EXPECT_EQ(verify.exit_code, 4) << verify.stdout_text << verify.stderr_text;
  EXPECT_THAT(verify.stdout_text, ::testing::ContainsRegex("node-b +no"));
  EXPECT_THAT(verify.stdout_text, ::testing::ContainsRegex("node-a +yes"));
}

TEST_F(ClusterJournalTest, DeletedPartOfANodeIsReported) {
  EditNodeB([](RocksStore& store) {
    rocksdb::WriteBatch batch;
    for (Column column : {Column::kJournal, Column::kJournalIndex}) {
      ASSERT_TRUE(store
                      .ScanPrefix(column, JobPrefix("job-1"),
                                  [&](absl::string_view key, absl::string_view) {
                                    batch.Delete(store.handle(column),
                                                 rocksdb::Slice(key.data(), key.size()));
                                    return true;
                                  })
                      .ok());
    }
    batch.Delete(store.handle(Column::kJournalHeads), "job-1");
    ASSERT_TRUE(store.WriteDurable(&batch).ok());
  });
  RunResult verify = a_->Ctl({"verify", "job-1"});
  EXPECT_EQ(verify.exit_code, 4) << verify.stdout_text << verify.stderr_text;
  EXPECT_THAT(verify.stdout_text, HasSubstr("its part was deleted"));
}

// The size of `node`'s head log, as it signs it now.
uint64_t TreeSize(const ReprodProcess& node) {
  grpc::ClientContext context;
  v1::HeadLogProofResponse response;
  grpc::Status status =
      node.NewStub()->GetHeadLogProof(&context, v1::HeadLogProofRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.tree_head().size();
}

// Node B restarted on a rolled-back copy of its data dir publishes a smaller signed tree head
// than the one it published before: node A, and node B itself, report the fork.
TEST_F(ClusterJournalTest, ARolledBackHeadLogIsReportedAsAFork) {
  auto published = [&] {
    return etcd_->Ctl({"get", "--print-value-only", "/repro/treeheads/node-b"}).stdout_text;
  };
  ASSERT_TRUE(Eventually([&] { return !published().empty(); }));
  ASSERT_EQ(b_->Kill(SIGTERM), 0);
  const std::string copy = dir_.Path("node-b-copy");
  std::filesystem::copy(b_->data_dir(), copy, std::filesystem::copy_options::recursive);
  ASSERT_TRUE(b_->Start().ok());
  // Node A takes a larger tree than the copy holds (B journals job-2: job-1's part stays as
  // published).
  ASSERT_TRUE(GrowBUntilProvenByA(TreeSize(*b_)));
  ASSERT_EQ(b_->Kill(SIGTERM), 0);
  std::filesystem::remove_all(b_->data_dir());
  std::filesystem::rename(copy, b_->data_dir());
  ASSERT_TRUE(b_->Start().ok());
  for (ReprodProcess* via : {a_.get(), b_.get()}) {
    RunResult node;
    EXPECT_TRUE(Eventually(
        [&] {
          node = via->Ctl({"node"});
          return node.stdout_text.find("FORK node-b: it published a tree of size") !=
                 std::string::npos;
        },
        absl::Seconds(30)))
        << node.stdout_text << node.stderr_text;
  }
  EXPECT_THAT(a_->Ctl({"node"}).stdout_text, ::testing::Not(HasSubstr("FORK node-a")));
  // verify exits 4: job-1 has a part on the forked node, although that part's own chain and
  // published head still agree.
  RunResult verify = a_->Ctl({"verify", "job-1"});
  EXPECT_EQ(verify.exit_code, 4) << verify.stdout_text << verify.stderr_text;
  EXPECT_THAT(verify.stdout_text, HasSubstr("(a fork): it published a tree of size"));
}

// Honest growth: node A takes node B's larger trees once B proved they extend what A saw.
TEST_F(ClusterJournalTest, AHeadLogThatGrowsIsProvenNotAFork) {
  ASSERT_TRUE(GrowBUntilProvenByA());
  for (ReprodProcess* via : {a_.get(), b_.get()}) {
    EXPECT_THAT(via->Ctl({"node"}).stdout_text, ::testing::Not(HasSubstr("FORK")));
  }
  RunResult verify = a_->Ctl({"verify", "job-1"});
  EXPECT_EQ(verify.exit_code, 0) << verify.stdout_text << verify.stderr_text;
}

// Node B's admin rolls its data dir back, runs it offline (no etcd) until its head log is larger
// than what B published, and starts it in the cluster again: its new, larger tree does not
// extend the old one, so node A, and node B itself, report the fork. The evidence is kept in
// etcd: node A restarted, and a node C that never saw B's old tree, report it too.
TEST_F(ClusterJournalTest, AHeadLogRewrittenOfflineThatGrewIsReportedAsAFork) {
  ASSERT_EQ(b_->Kill(SIGTERM), 0);
  const std::string copy = dir_.Path("node-b-copy");
  std::filesystem::copy(b_->data_dir(), copy, std::filesystem::copy_options::recursive);
  ASSERT_TRUE(b_->Start().ok());
  // Node A must have seen a tree that the copy does not hold; one the copy holds would still be
  // extended by the rewritten history, and rightly so.
  ASSERT_TRUE(GrowBUntilProvenByA(TreeSize(*b_)));
  const uint64_t seen = TreeSize(*b_);  // node A's reference is at most this
  ASSERT_EQ(b_->Kill(SIGTERM), 0);
  std::filesystem::remove_all(b_->data_dir());
  std::filesystem::rename(copy, b_->data_dir());
  {
    ReprodProcess offline(dir_.Path("node-b"), {.node_name = "node-b"});
    ASSERT_TRUE(offline.Start().ok());
    MustCtl(offline, {"version", "add", "users", "v1", dir_.Path("ml/users/v1")});
    MustCtl(offline, {"pin", "job-3", "users@v1"});
    for (int i = 0; TreeSize(offline) <= seen; ++i) {
      MustCtl(offline, {"record", "job-3", absl::StrCat("rewritten=", i)});
    }
    ASSERT_EQ(offline.Kill(SIGTERM), 0);
  }
  ASSERT_TRUE(b_->Start().ok());
  auto reports_fork = [&](const ReprodProcess& via) {
    RunResult node;
    bool seen_fork = Eventually(
        [&] {
          node = via.Ctl({"node"});
          return node.stdout_text.find("FORK node-b: its tree of size") != std::string::npos;
        },
        absl::Seconds(30));
    EXPECT_TRUE(seen_fork) << node.stdout_text << node.stderr_text;
    EXPECT_THAT(node.stdout_text, HasSubstr("does not extend the one of size"));
  };
  reports_fork(*a_);
  reports_fork(*b_);
  RunResult verify = a_->Ctl({"verify", "job-1"});
  EXPECT_EQ(verify.exit_code, 4) << verify.stdout_text << verify.stderr_text;
  EXPECT_THAT(verify.stdout_text, HasSubstr("(a fork): its tree of size"));

  // The evidence in etcd, both signed tree heads, outlives the reprod that found it.
  RunResult recorded = etcd_->Ctl({"get", "--print-value-only", "/repro/forks/node-b"});
  EXPECT_THAT(recorded.stdout_text, HasSubstr("\"earlier\""));
  EXPECT_THAT(recorded.stdout_text, HasSubstr("\"later\""));
  ASSERT_EQ(a_->Kill(SIGTERM), 0);
  ASSERT_TRUE(a_->Start().ok());
  reports_fork(*a_);
  std::unique_ptr<ReprodProcess> c = StartNode("node-c");
  ASSERT_NE(c, nullptr);
  reports_fork(*c);
  RunResult verify_on_c = c->Ctl({"verify", "job-1"});
  EXPECT_EQ(verify_on_c.exit_code, 4) << verify_on_c.stdout_text << verify_on_c.stderr_text;
}

// Node B rotates its key (the old key signs a statement naming the new one): verify from node A,
// whose reproctl pinned B's old key on first use, still passes, before and after B journals
// more under the new key, and no node takes the re-signed tree head for a fork.
TEST_F(ClusterJournalTest, VerifyPassesAfterANodeKeyRotation) {
  MustCtl(*a_, {"verify", "job-1"});  // pins both nodes' keys
  ASSERT_EQ(b_->Kill(SIGTERM), 0);
  const std::string new_key = dir_.Path("node-b-new.pem");
  ASSERT_TRUE(NodeKey::LoadOrCreate(new_key).ok());
  b_ = StartNode("node-b", {"--node_key=" + new_key,
                            "--previous_node_key=" + b_->data_dir() + "/node_key.pem"});
  ASSERT_NE(b_, nullptr);
  ASSERT_TRUE(HeadPublished(*b_, "node-b", "job-1"));
  for (ReprodProcess* via : {a_.get(), b_.get()}) {
    RunResult verify = via->Ctl({"verify", "job-1"});
    EXPECT_EQ(verify.exit_code, 0) << verify.stdout_text << verify.stderr_text << b_->log();
  }
  MustCtl(*b_, {"record", "job-1", "after=rotation"});
  ASSERT_TRUE(HeadPublished(*b_, "node-b", "job-1"));
  RunResult verify = a_->Ctl({"verify", "job-1"});
  EXPECT_EQ(verify.exit_code, 0) << verify.stdout_text << verify.stderr_text << b_->log();
  for (ReprodProcess* via : {a_.get(), b_.get()}) {
    EXPECT_THAT(via->Ctl({"node"}).stdout_text, ::testing::Not(HasSubstr("FORK")));
  }
}

TEST_F(ClusterJournalTest, AnUnreachableNodeIsReportedNotSkipped) {
  ASSERT_EQ(b_->Kill(SIGKILL), 128 + SIGKILL);  // its registration stays until the lease ends
  RunResult verify = a_->Ctl({"verify", "job-1"});
  EXPECT_EQ(verify.exit_code, 4) << verify.stdout_text << verify.stderr_text;
  EXPECT_THAT(verify.stdout_text, HasSubstr("not verified"));
  RunResult journal = a_->Ctl({"journal", "job-1"});
  EXPECT_EQ(journal.exit_code, 1);
  EXPECT_THAT(journal.stderr_text, HasSubstr("node-b"));
  EXPECT_THAT(journal.stdout_text, HasSubstr("epoch"));  // node A's part still came through
}

}  // namespace
}  // namespace repro
