// TreeHeadWatch against a real single-member etcd, with real head logs on RocksDB answering
// through the real Auditor::ProveHead: a larger tree is taken once its consistency proof holds,
// a node that rewrote its log and grew is a fork, so is one that refuses the proof, an
// unreachable node is not, and a fork recorded in etcd is reported by every watch, a restarted
// one too, unless the record's evidence is not signed by the node it accuses.
#include "daemon/cluster/tree_head_watch.h"

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/etcd/etcd_keys.h"
#include "daemon/registry/auditor.h"
#include "daemon/store/node_key.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/etcd_cluster.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// One node's head log on its own RocksDB, signed with `key`.
class NodeLog {
 public:
  NodeLog(const std::string& data_dir, const std::string& node, const NodeKey* key) {
    auto store = RocksStore::Open({.data_dir = data_dir});
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto log = HeadLog::Open(store_.get(), node, key);
    EXPECT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    auditor_ = std::make_unique<Auditor>(nullptr, nullptr, nullptr, log_.get());
  }

  // Logs `n` more heads, named by `tag`.
  void Append(int n, const std::string& tag) {
    std::vector<LoggedHead> heads;
    for (int i = 0; i < n; ++i) {
      heads.push_back({.job = tag, .seq = log_->size() + i + 1,
                       .signing_bytes = absl::StrCat(tag, " head ", log_->size() + i)});
    }
    rocksdb::WriteBatch batch;
    HeadLog::Frontier tree = log_->Stage(heads, &batch);
    ASSERT_TRUE(store_->WriteDurable(&batch).ok());
    log_->Apply(std::move(tree));
  }

  // What the node answers GetHeadLogProof without a job (ClusterJournals::ProveTreeGrowth).
  absl::StatusOr<v1::HeadLogProofResponse> Prove(uint64_t old_size, uint64_t new_size) {
    v1::HeadLogProofRequest request;
    request.set_old_tree_size(old_size);
    request.set_tree_size(new_size);
    return auditor_->ProveHead(request);
  }

  const HeadLog* log() const { return log_.get(); }

 private:
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<HeadLog> log_;
  std::unique_ptr<Auditor> auditor_;
};

class TreeHeadWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = etcd_.Start();
    ASSERT_TRUE(started.ok()) << started;
    auto etcd = EtcdClient::Create({.endpoints = {etcd_.Endpoint(0)}});
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_client_ = *std::move(etcd);
    for (const std::string node : {"node-a", "node-b", "node-c"}) {
      auto key = NodeKey::LoadOrCreate(dir_.Path(node + ".pem"));
      ASSERT_TRUE(key.ok()) << key.status();
      keys_[node] = *std::move(key);
      Serve(node, "data");
    }
  }

  // Node `node` now runs on its data dir `data` (a rewritten copy when it is another one).
  NodeLog& Serve(const std::string& node, const std::string& data) {
    logs_[node] = std::make_unique<NodeLog>(dir_.Path(node + "-" + data), node, keys_[node].get());
    return *logs_[node];
  }

  // A watch for `node`, as its reprod would run it, asking the nodes' own logs for proofs.
  std::unique_ptr<TreeHeadWatch> Watch(const std::string& node, Metrics* metrics) {
    return std::make_unique<TreeHeadWatch>(
        etcd_client_.get(), node, logs_[node]->log(),
        [this](const std::string& asked, uint64_t old_size, uint64_t new_size)
            -> absl::StatusOr<v1::HeadLogProofResponse> {
          if (!answer_.ok()) return answer_;
          return logs_[asked]->Prove(old_size, new_size);
        },
        metrics);
  }

  void Round(TreeHeadWatch& watch) {
    absl::Status round = watch.RunOnce();
    ASSERT_TRUE(round.ok()) << round;
  }

  // Node B logs `n` more heads and publishes its tree with `b`; then `a` looks, unless null.
  void GrowB(int n, TreeHeadWatch& b, TreeHeadWatch* a) {
    logs_["node-b"]->Append(n, "job-1");
    Round(b);
    if (a != nullptr) Round(*a);
  }

  // The fork record of `node` in etcd ("" when none).
  std::string Recorded(const std::string& node) {
    etcdserverpb::RangeRequest range;
    range.set_key(etcd_keys::Fork(node));
    auto got = etcd_client_->Range(range);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() && got->kvs_size() == 1 ? got->kvs(0).value() : "";
  }

  testing::TempDir dir_;
  testing::EtcdCluster etcd_{dir_.Path("etcd"), 1};
  std::unique_ptr<EtcdClient> etcd_client_;
  std::map<std::string, std::unique_ptr<NodeKey>> keys_;
  std::map<std::string, std::unique_ptr<NodeLog>> logs_;
  absl::Status answer_;  // not OK: what every node answers instead of a proof
  Metrics metrics_a_, metrics_b_, metrics_c_;
};

constexpr char kProven[] = "repro_cluster_tree_head_growths_proven_total{node=\"node-b\"}";

TEST_F(TreeHeadWatchTest, GrowthIsTakenOnceProvenAndAnUnreachableNodeIsAskedAgain) {
  auto a = Watch("node-a", &metrics_a_);
  auto b = Watch("node-b", &metrics_b_);
  GrowB(3, *b, a.get());
  GrowB(2, *b, nullptr);
  answer_ = absl::UnavailableError("node-b at 127.0.0.1:1: connection refused");
  Round(*a);
  EXPECT_THAT(a->Forks(), IsEmpty());
  EXPECT_THAT(metrics_a_.RenderPrometheus(), ::testing::Not(HasSubstr(kProven)));

  answer_ = absl::OkStatus();
  Round(*a);
  EXPECT_THAT(metrics_a_.RenderPrometheus(), HasSubstr(absl::StrCat(kProven, " 1")));
  GrowB(1, *b, a.get());
  EXPECT_THAT(metrics_a_.RenderPrometheus(), HasSubstr(absl::StrCat(kProven, " 2")));
  EXPECT_THAT(a->Forks(), IsEmpty());
  EXPECT_THAT(b->Forks(), IsEmpty());  // node B proves its own growth to itself as well
  EXPECT_EQ(Recorded("node-b"), "");
}

TEST_F(TreeHeadWatchTest, ARewrittenLogThatGrewIsAForkEveryWatchReportsFromEtcd) {
  auto a = Watch("node-a", &metrics_a_);
  auto b = Watch("node-b", &metrics_b_);
  GrowB(4, *b, a.get());

  // Node B starts again on another history of the same key, larger than what it published.
  b.reset();
  Serve("node-b", "rewritten").Append(6, "job-9");
  b = Watch("node-b", &metrics_b_);
  Round(*b);  // publishes the tree of 6
  Round(*a);
  EXPECT_THAT(a->ForkOf("node-b"),
              HasSubstr("its tree of size 6 does not extend the one of size 4 it published"));
  EXPECT_THAT(metrics_a_.RenderPrometheus(),
              HasSubstr("repro_cluster_tree_head_forks_total{node=\"node-b\"} 1"));
  Round(*b);  // node B checks its own key too
  EXPECT_THAT(b->ForkOf("node-b"), HasSubstr("does not extend"));

  // The evidence in etcd: both signed tree heads, found by node A.
  auto recorded = etcd_keys::Decode<v1::TreeHeadFork>(Recorded("node-b"), "fork");
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->found_by(), "node-a");
  EXPECT_EQ(recorded->earlier().size(), 4u);
  EXPECT_EQ(recorded->later().size(), 6u);

  // A node that never saw the old tree, and node A restarted, report it from etcd.
  auto c = Watch("node-c", &metrics_c_);
  Round(*c);
  EXPECT_THAT(c->ForkOf("node-b"), HasSubstr("does not extend"));
  EXPECT_THAT(c->Forks(), ::testing::ElementsAre(HasSubstr("(found by node-a)")));
  a.reset();
  Metrics restarted_metrics;
  a = Watch("node-a", &restarted_metrics);
  Round(*a);
  EXPECT_THAT(a->ForkOf("node-b"), HasSubstr("does not extend"));
  EXPECT_THAT(restarted_metrics.RenderPrometheus(),
              HasSubstr("repro_cluster_tree_head_forks_total{node=\"node-b\"} 1"));
}

TEST_F(TreeHeadWatchTest, AProofTheNodeRefusesIsAFork) {
  auto a = Watch("node-a", &metrics_a_);
  auto b = Watch("node-b", &metrics_b_);
  GrowB(2, *b, a.get());
  GrowB(2, *b, nullptr);
  answer_ = absl::InvalidArgumentError("node-b at 127.0.0.1:1: no tree of that size");
  Round(*a);
  EXPECT_THAT(a->ForkOf("node-b"),
              HasSubstr("it refused to prove that its tree of size 4 extends the one of size 2"));
  EXPECT_NE(Recorded("node-b"), "");
}

// Every signed tree head is public in etcd, so a record must show heads that contradict each
// other, checked again by each reader.
TEST_F(TreeHeadWatchTest, AForkRecordThatDoesNotHoldIsIgnored) {
  auto b = Watch("node-b", &metrics_b_);
  logs_["node-b"]->Append(2, "job-1");
  const v1::SignedTreeHead two = logs_["node-b"]->log()->SignedHead();
  GrowB(1, *b, nullptr);
  const v1::SignedTreeHead three = logs_["node-b"]->log()->SignedHead();
  auto record = [&](const v1::SignedTreeHead& earlier, const v1::SignedTreeHead& later) {
    v1::TreeHeadFork forged;
    forged.set_node("node-b");
    forged.set_problem("made up");
    forged.set_found_by("node-c");
    *forged.mutable_earlier() = earlier;
    *forged.mutable_later() = later;
    etcdserverpb::PutRequest put;
    put.set_key(etcd_keys::Fork("node-b"));
    put.set_value(etcd_keys::Encode(forged));
    ASSERT_TRUE(etcd_client_->Put(put).ok());
  };
  auto a = Watch("node-a", &metrics_a_);
  record(two, three);  // honest growth: node B proves it
  Round(*a);
  EXPECT_EQ(a->ForkOf("node-b"), "");
  record(three, two);  // the smaller tree was signed first
  Round(*a);
  EXPECT_EQ(a->ForkOf("node-b"), "");
  v1::SignedTreeHead altered = three;
  altered.set_root(two.root());  // not what node B signed
  record(two, altered);
  Round(*a);
  EXPECT_EQ(a->ForkOf("node-b"), "");
  EXPECT_THAT(a->Forks(), IsEmpty());
}

}  // namespace
}  // namespace repro
