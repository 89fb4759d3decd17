// One suite for every PinStore backend (pin_store_backends.cc): embedded RocksDB and etcd.
#include "daemon/pin_store/pin_store.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "daemon/pin_store/manifest_chunks.h"
#include "gtest/gtest.h"
#include "tests/daemon/pin_store/pin_store_backends.h"

namespace repro {
namespace {

v1::VersionInfo Version(const std::string& dataset, const std::string& version,
                        const std::string& digest = std::string(32, 'd')) {
  v1::VersionInfo info;
  info.set_dataset(dataset);
  info.set_version(version);
  info.set_root("/data/" + dataset);
  info.set_path("/data/" + dataset + "/" + version);
  info.set_digest(digest);
  info.set_file_count(2);
  return info;
}

v1::Manifest Files(int n) {
  v1::Manifest manifest;
  for (int i = 0; i < n; ++i) {
    v1::FileEntry* f = manifest.add_files();
    f->set_path(absl::StrCat("dir/file-", 1000000 + i, ".bin"));
    f->set_size(static_cast<uint64_t>(i));
    f->set_sha256(std::string(32, static_cast<char>(i)));
  }
  return manifest;
}

v1::Pin MakePin(const std::string& job, uint64_t seed) {
  v1::Pin pin;
  pin.set_job(job);
  pin.set_seed(seed);
  v1::PinnedVersion* v = pin.add_versions();
  v->set_dataset("ds");
  v->set_version("v1");
  return pin;
}

class PinStoreTest : public ::testing::TestWithParam<PinStoreBackend> {
 protected:
  void SetUp() override {
    auto store = GetParam().make(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  testing::TempDir dir_;
  std::unique_ptr<PinStoreHandle> store_;
  PinStore& pins() { return *store_->store(); }
};

TEST_P(PinStoreTest, CreateVersionIsCreateIfAbsent) {
  auto first = pins().CreateVersion(Version("ds", "v1"), Files(3));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  auto second = pins().CreateVersion(Version("ds", "v1", std::string(32, 'x')), Files(1));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->value.digest(), std::string(32, 'd'));  // the first one stays
  auto manifest = pins().GetManifest("ds", "v1");
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(manifest->files_size(), 3);
}

TEST_P(PinStoreTest, GetAndListVersions) {
  ASSERT_TRUE(pins().CreateVersion(Version("ds", "v2"), Files(1)).ok());
  ASSERT_TRUE(pins().CreateVersion(Version("ds", "v1"), Files(1)).ok());
  ASSERT_TRUE(pins().CreateVersion(Version("other", "v1"), Files(1)).ok());
  ASSERT_TRUE(pins().CreateVersion(Version("ds.b", "v1"), Files(1)).ok());
  EXPECT_EQ(pins().GetVersion("ds", "v2")->path(), "/data/ds/v2");
  EXPECT_EQ(pins().GetVersion("ds", "v3").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pins().GetManifest("ds", "v3").status().code(), absl::StatusCode::kNotFound);
  auto ds = pins().ListVersions("ds");
  ASSERT_TRUE(ds.ok());
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ((*ds)[0].version(), "v1");
  EXPECT_EQ((*ds)[1].version(), "v2");
  EXPECT_EQ(pins().ListVersions("")->size(), 4u);
  EXPECT_TRUE(pins().ListVersions("none")->empty());
}

TEST_P(PinStoreTest, LargeManifestsRoundTripThroughChunks) {
  v1::Manifest big = Files(50000);  // several MiB: many chunks
  ASSERT_GT(SplitManifest(big).size(), 3u);
  ASSERT_TRUE(pins().CreateVersion(Version("ds", "big"), big).ok());
  auto back = pins().GetManifest("ds", "big");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->files_size(), big.files_size());
  EXPECT_EQ(back->SerializeAsString(), big.SerializeAsString());
}

TEST_P(PinStoreTest, CreatePinIsCreateIfAbsent) {
  auto first = pins().CreatePin(MakePin("job", 1));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  auto second = pins().CreatePin(MakePin("job", 2));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->value.seed(), 1u);
  EXPECT_EQ(pins().GetPin("job")->seed(), 1u);
  EXPECT_EQ(pins().GetPin("nope").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(pins().CreatePin(MakePin("a-job", 3)).ok());
  auto all = pins().ListPins();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].job(), "a-job");
}

TEST_P(PinStoreTest, RacingCreatorsSeeExactlyOneWinner) {
  constexpr int kRounds = 20;
  constexpr int kRacers = 4;
  for (int round = 0; round < kRounds; ++round) {
    std::string job = absl::StrCat("race-", round);
    std::vector<std::thread> racers;
    std::vector<int> won(kRacers, 0);
    std::vector<uint64_t> seen(kRacers, 0);
    for (int r = 0; r < kRacers; ++r) {
      racers.emplace_back([&, r] {
        auto result = pins().CreatePin(MakePin(job, static_cast<uint64_t>(r + 1)));
        ASSERT_TRUE(result.ok()) << result.status();
        won[r] = result->created ? 1 : 0;
        seen[r] = result->value.seed();
      });
    }
    for (std::thread& t : racers) t.join();
    int winners = 0;
    for (int w : won) winners += w;
    ASSERT_EQ(winners, 1) << "round " << round;
    for (uint64_t s : seen) EXPECT_EQ(s, seen[0]);  // everyone sees the winner's pin
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, PinStoreTest, ::testing::ValuesIn(AllPinStoreBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace repro
