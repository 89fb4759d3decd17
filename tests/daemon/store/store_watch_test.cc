// StoreWatch reports a storage fault (callback and repro_store_writable) while it lasts and its
// end once RocksDB accepts writes again (a full disk that has space again).
#include "daemon/store/store_watch.h"

#include <memory>

#include "daemon/store/gap_recorder.h"
#include "daemon/store/lost_items.h"

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "tests/testutil/full_disk_file_system.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

class StoreWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RocksStore::Open({.data_dir = dir_.Path("data"), .env = env_.get()});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    watch_ = std::make_unique<StoreWatch>(
        store_.get(), &metrics_,
        [this](const absl::Status& writable) {
          absl::MutexLock lock(&mu_);
          changes_.push_back(writable.ok());
        },
        absl::Milliseconds(20));
  }
  void TearDown() override { watch_.reset(); }

  absl::Status Write() {
    rocksdb::WriteBatch batch;
    batch.Put(store_->handle(Column::kCatalog), "k", "v");
    return store_->WriteDurable(&batch);
  }

  // Waits (up to 60 s) until the watch has reported `count` changes.
  std::vector<bool> WaitForChanges(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return changes_.size() >= count; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    return changes_;
  }

  double Gauge() { return metrics_.GetGauge("repro_store_writable", "")->value(); }

  testing::TempDir dir_;
  std::shared_ptr<testing::FullDiskFileSystem> fs_ =
      std::make_shared<testing::FullDiskFileSystem>();
  std::unique_ptr<rocksdb::Env> env_ = rocksdb::NewCompositeEnv(fs_);
  std::unique_ptr<RocksStore> store_;
  Metrics metrics_;
  absl::Mutex mu_;
  std::vector<bool> changes_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<StoreWatch> watch_;
};

TEST_F(StoreWatchTest, ReportsAFaultWhileItLastsAndItsEndWithoutAWrite) {
  ASSERT_TRUE(Write().ok());
  EXPECT_EQ(Gauge(), 1);
  fs_->set_full(true);
  EXPECT_FALSE(Write().ok());
  EXPECT_EQ(WaitForChanges(1), std::vector<bool>({false}));
  EXPECT_EQ(Gauge(), 0);

  fs_->set_full(false);  // RocksDB notices the space within seconds; no write is needed
  EXPECT_EQ(WaitForChanges(2), std::vector<bool>({false, true}));
  EXPECT_EQ(Gauge(), 1);
  EXPECT_TRUE(Write().ok());
}

// What a full disk made the shim path lose is journaled as a gap as soon as the watch finds
// writing works again: no later entry of the job, no shutdown needed.
TEST(StoreWatchGapTest, LossesAreJournaledAsAGapOnceWritingWorksAgain) {
  testing::TempDir dir;
  auto fs = std::make_shared<testing::FullDiskFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  auto store = RocksStore::Open({.data_dir = dir.Path("data"), .env = env.get()});
  ASSERT_TRUE(store.ok()) << store.status();
  auto key = NodeKey::LoadOrCreate(dir.Path("key.pem"));
  ASSERT_TRUE(key.ok()) << key.status();
  Journal journal(store->get(), {.node = "n1", .key = key->get()});
  GapRecorder gaps(&journal);
  Metrics metrics;
  LostItems lost(&metrics, [&](absl::string_view job, absl::string_view kind, size_t count) {
    gaps.Lost(job, kind, count, "No space left on device");
  });
  StoreWatch watch(
      store->get(), &metrics, [](const absl::Status&) {}, absl::Milliseconds(20),
      [&] { gaps.FlushPending(); });

  std::vector<JournalItem> first(1);
  first[0].entry.mutable_record()->add_facts()->set_key("step");
  ASSERT_TRUE(journal.Append("other", std::move(first)).ok());
  std::vector<JournalItem> items(3);
  for (JournalItem& item : items) item.entry.mutable_data_open()->set_dataset("ds");
  fs->set_full(true);
  JournalDone done = lost.Watch("job", items);
  journal.AppendAsync("job", std::move(items), std::move(done));
  journal.FlushAsync();
  EXPECT_EQ(gaps.pending(), 3u);
  fs->set_full(false);  // and nothing else is written to the job

  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::vector<StoredEntry> entries;
  while (entries.empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    entries = journal.Read("job", 0, 10).value_or(std::vector<StoredEntry>());
  }
  ASSERT_EQ(entries.size(), 1u);
  v1::JournalEntry gap;
  ASSERT_TRUE(gap.ParseFromString(entries[0].payload));
  ASSERT_TRUE(gap.has_gap()) << gap.DebugString();
  ASSERT_EQ(gap.gap().lost_size(), 1);
  EXPECT_EQ(gap.gap().lost(0).kind(), "data_open");
  EXPECT_EQ(gap.gap().lost(0).count(), 3u);
  EXPECT_EQ(gaps.pending(), 0u);
}

}  // namespace
}  // namespace repro
