// What the etcd PinStore adds to the shared suite (pin_store_test.cc): several nodes' stores on
// one etcd, failing closed while etcd is down, and damaged records reported as DATA_LOSS.
#include "daemon/pin_store/etcd_pin_store.h"

#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/etcd/etcd_keys.h"
#include "daemon/pin_store/manifest_chunks.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testutil/etcd_cluster.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;

// One node's view: its own client, mirror and store.
struct Node {
  explicit Node(const std::string& endpoint)
      : etcd(*EtcdClient::Create({.endpoints = {endpoint}})),
        mirror(etcd.get(), EtcdPinStore::MirroredPrefixes()),
        store(etcd.get(), &mirror) {
    mirror.Start();
  }
  std::unique_ptr<EtcdClient> etcd;
  EtcdMirror mirror;
  EtcdPinStore store;
};

v1::Pin MakePin(const std::string& job, uint64_t seed) {
  v1::Pin pin;
  pin.set_job(job);
  pin.set_seed(seed);
  return pin;
}

v1::VersionInfo Version(const std::string& node, int64_t at_ns) {
  v1::VersionInfo info;
  info.set_dataset("ds");
  info.set_version("v1");
  info.set_registered_on(node);
  *info.mutable_registered_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(at_ns);
  return info;
}

v1::Manifest Files(int n, const std::string& tag) {
  v1::Manifest manifest;
  for (int i = 0; i < n; ++i) {
    v1::FileEntry* f = manifest.add_files();
    f->set_path(absl::StrCat(tag, "/file-", 100000 + i));
    f->set_sha256(std::string(32, 'x'));
  }
  return manifest;
}

template <typename F>
bool Eventually(F done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

class EtcdPinStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = etcd_.Start();
    ASSERT_TRUE(started.ok()) << started;
    a_ = std::make_unique<Node>(etcd_.Endpoint(0));
    b_ = std::make_unique<Node>(etcd_.Endpoint(0));
    ASSERT_TRUE(a_->mirror.WaitUntilCurrent(absl::Seconds(10)));
    ASSERT_TRUE(b_->mirror.WaitUntilCurrent(absl::Seconds(10)));
  }

  absl::Status Put(const std::string& key, const std::string& value) {
    etcdserverpb::PutRequest put;
    put.set_key(key);
    put.set_value(value);
    return a_->etcd->Put(put).status();
  }

  testing::TempDir dir_;
  testing::EtcdCluster etcd_{dir_.Path("etcd"), 1};
  std::unique_ptr<Node> a_;
  std::unique_ptr<Node> b_;
};

TEST_F(EtcdPinStoreTest, EveryNodeSeesOnePin) {
  ASSERT_TRUE(a_->store.CreatePin(MakePin("job", 1)).ok());
  // A miss on the other node reads etcd: found at once, not after the watch.
  auto seen = b_->store.GetPin("job");
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->seed(), 1u);
  auto second = b_->store.CreatePin(MakePin("job", 2));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->value.seed(), 1u);
  // And the watch brings it into the other node's lists.
  ASSERT_TRUE(a_->store.CreatePin(MakePin("job-2", 3)).ok());
  EXPECT_TRUE(Eventually([&] { return b_->store.ListPins()->size() == 2; }));
}

TEST_F(EtcdPinStoreTest, FailsClosedWhileEtcdIsDownAndResumes) {
  ASSERT_TRUE(a_->store.CreatePin(MakePin("known", 1)).ok());
  ASSERT_TRUE(a_->store.CreateVersion(Version("a", 1), Files(2, "d")).ok());
  etcd_.KillAll();
  ASSERT_TRUE(Eventually([&] { return !a_->mirror.current(); }));
  absl::Status available = a_->store.CheckAvailable();
  EXPECT_EQ(available.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(available.message(), HasSubstr(etcd_.Endpoint(0)));
  // Immutable records the node holds still read; anything else is UNAVAILABLE, never NOT_FOUND.
  EXPECT_TRUE(a_->store.GetPin("known").ok());
  EXPECT_TRUE(a_->store.GetVersion("ds", "v1").ok());
  EXPECT_EQ(a_->store.GetPin("unknown").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a_->store.ListPins().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a_->store.GetManifest("ds", "v1").status().code(), absl::StatusCode::kUnavailable);
  absl::Status pin = a_->store.CreatePin(MakePin("new", 1)).status();
  EXPECT_EQ(pin.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(pin.message(), HasSubstr("etcd is unreachable"));

  ASSERT_TRUE(etcd_.RestartAll().ok());
  EXPECT_TRUE(a_->store.CreatePin(MakePin("new", 1)).ok());
  EXPECT_TRUE(Eventually([&] { return a_->store.CheckAvailable().ok(); }));
  EXPECT_EQ(a_->store.GetPin("unknown").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdPinStoreTest, RacingRegistrationsKeepOneManifestAndNoOrphans) {
  std::vector<absl::StatusOr<Created<v1::VersionInfo>>> results(2, absl::UnknownError(""));
  std::thread on_a([&] { results[0] = a_->store.CreateVersion(Version("a", 1), Files(30000, "a")); });
  std::thread on_b([&] { results[1] = b_->store.CreateVersion(Version("b", 2), Files(30000, "b")); });
  on_a.join();
  on_b.join();
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  ASSERT_NE(results[0]->created, results[1]->created);
  const std::string winner = results[0]->created ? "a" : "b";
  for (Node* node : {a_.get(), b_.get()}) {
    auto manifest = node->store.GetManifest("ds", "v1");
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    ASSERT_EQ(manifest->files_size(), 30000);
    EXPECT_EQ(manifest->files(0).path().substr(0, 1), winner);
  }
  etcdserverpb::RangeRequest uploads;
  uploads.set_key(std::string(etcd_keys::kManifests));
  uploads.set_range_end(etcd_keys::PrefixEnd(etcd_keys::kManifests));
  uploads.set_keys_only(true);
  auto listed = a_->etcd->Range(uploads);
  ASSERT_TRUE(listed.ok());
  std::set<std::string> upload_dirs;
  for (const mvccpb::KeyValue& kv : listed->kvs()) {
    upload_dirs.insert(kv.key().substr(0, kv.key().rfind('/')));
  }
  EXPECT_EQ(upload_dirs.size(), 1u);  // the loser removed its chunks
}

TEST_F(EtcdPinStoreTest, DamagedRecordsAreDataLoss) {
  ASSERT_TRUE(Put(etcd_keys::Pin("bad"), "{not json").ok());
  auto bad = b_->store.GetPin("bad");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr("/repro/pins/bad"));

  v1::VersionInfo info = Version("a", 7);
  v1::Manifest files = Files(30000, "d");
  ASSERT_GT(SplitManifest(files).size(), 1u);
  ASSERT_TRUE(a_->store.CreateVersion(info, files).ok());
  etcdserverpb::DeleteRangeRequest lose_one;
  lose_one.set_key(etcd_keys::ManifestChunk(etcd_keys::ManifestUpload(info), 0,
                                            SplitManifest(files).size()));
  auto deleted = a_->etcd->DeleteRange(lose_one);
  ASSERT_TRUE(deleted.ok() && deleted->deleted() == 1);
  auto damaged = b_->store.GetManifest("ds", "v1");
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(damaged.status().message(), HasSubstr("damaged"));
}

}  // namespace
}  // namespace repro
