// StoreWatch reports a storage fault (callback and repro_store_writable) while it lasts and its
// end once RocksDB accepts writes again (a full disk that has space again).
#include "daemon/store/store_watch.h"

#include <memory>

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

}  // namespace
}  // namespace repro
