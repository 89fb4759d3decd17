// The journal on a failing disk (StorageFaultFileSystem): EIO on WAL appends, WAL syncs and table
// writes fails the append with UNAVAILABLE and acknowledges nothing; the store reports the fault
// until the disk recovers, then reopens the database in the process (RocksDB 7.8.3's DB::Resume
// does not recover from these non-retryable IO errors) and the journal, its head log and the pin
// store carry on without a restart; a power cut that drops unsynced data loses no acknowledged
// entry.
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "daemon/pin_store/rocks_pin_store.h"
#include "daemon/store/head_log.h"
#include "daemon/store/journal.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
#include "daemon/store/store_watch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "tests/testutil/storage_fault_file_system.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::StorageFaultFileSystem;
using Fault = StorageFaultFileSystem::Fault;

JournalItem Fact(const std::string& value) {
  JournalItem item;
  v1::Fact* fact = item.entry.mutable_record()->add_facts();
  fact->set_key("k");
  fact->set_value(value);
  return item;
}

class StorageFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = NodeKey::LoadOrCreate(dir_.Path("key.pem"));
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *std::move(key);
    Open();
  }

  void Open() {
    journal_.reset();
    store_.reset();
    auto store = RocksStore::Open({.data_dir = dir_.Path("data"), .env = env_.get()});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    journal_ =
        std::make_unique<Journal>(store_.get(), JournalOptions{.node = "n1", .key = key_.get()});
  }

  absl::StatusOr<uint64_t> Append(const std::string& value) {
    auto appended = journal_->Append("job", {Fact(value)});
    if (!appended.ok()) return appended.status();
    return appended->front().seq;
  }

  // The journal of "job" is intact and starts with `acknowledged`; entries after those may only
  // be ones in `failed` (an append whose WAL write or sync failed may or may not have reached the
  // disk, as with any failed fsync). Returns the number of entries.
  uint64_t ExpectJournal(const std::vector<std::string>& acknowledged,
                         const std::vector<std::string>& failed = {}) {
    auto check = journal_->Verify("job");
    EXPECT_TRUE(check.ok()) << check.status();
    if (!check.ok()) return 0;
    EXPECT_TRUE(check->intact()) << check->problem();
    auto entries = journal_->Read("job", 0, 1000);
    EXPECT_TRUE(entries.ok()) << entries.status();
    if (!entries.ok()) return 0;
    EXPECT_EQ(entries->size(), check->entries());
    EXPECT_GE(entries->size(), acknowledged.size());
    for (size_t i = 0; i < entries->size(); ++i) {
      v1::JournalEntry entry;
      EXPECT_TRUE(entry.ParseFromString((*entries)[i].payload));
      const std::string& value = entry.record().facts(0).value();
      if (i < acknowledged.size()) {
        EXPECT_EQ(value, acknowledged[i]) << "acknowledged entry " << i + 1 << " was lost";
      } else {
        EXPECT_THAT(failed, ::testing::Contains(value)) << "entry " << i + 1;
      }
    }
    return entries->size();
  }

  testing::TempDir dir_;
  std::shared_ptr<StorageFaultFileSystem> fs_ = std::make_shared<StorageFaultFileSystem>();
  std::unique_ptr<rocksdb::Env> env_ = rocksdb::NewCompositeEnv(fs_);  // outlives store_
  std::unique_ptr<NodeKey> key_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<Journal> journal_;
};

class WalFaultTest : public StorageFaultTest, public ::testing::WithParamInterface<Fault> {};

TEST_P(WalFaultTest, FailsTheAppendAcknowledgesNothingAndLosesNothingAcknowledged) {
  ASSERT_EQ(Append("before").value_or(0), 1u);
  fs_->Inject(GetParam());
  for (const char* value : {"during-1", "during-2"}) {
    absl::StatusOr<uint64_t> failed = Append(value);
    ASSERT_FALSE(failed.ok()) << "acknowledged entry " << *failed << " on a failing disk";
    EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
    EXPECT_THAT(std::string(failed.status().message()), HasSubstr("storage fault"));
  }
  EXPECT_GT(fs_->failures(), 0u);
  EXPECT_TRUE(absl::IsUnavailable(store_->WriteHealth())) << store_->WriteHealth();
  EXPECT_TRUE(absl::IsUnavailable(store_->Recover()));  // still failing

  fs_->ClearFaults();
  Open();  // reprod restarts; every acknowledged entry is there and the chain verifies
  const uint64_t entries = ExpectJournal({"before"}, {"during-1", "during-2"});
  EXPECT_EQ(Append("after").value_or(0), entries + 1);
  EXPECT_EQ(ExpectJournal({"before"}, {"during-1", "during-2", "after"}), entries + 1);
}

v1::Pin PinOf(const std::string& job) {
  v1::Pin pin;
  pin.set_job(job);
  pin.set_seed(7);
  return pin;
}

// What reprod runs: StoreWatch calls Recover every interval and drives gRPC health (here: the
// changes it reports) and repro_store_writable; Record appends to a journal with a head log, Pin
// writes to the pin store. Nothing is restarted or reopened by the test.
TEST_P(WalFaultTest, RecoversInTheProcessOnceTheFaultClears) {
  auto log = HeadLog::Open(store_.get(), "n1", key_.get());
  ASSERT_TRUE(log.ok()) << log.status();
  journal_ = std::make_unique<Journal>(
      store_.get(), JournalOptions{.node = "n1", .key = key_.get(), .head_log = log->get()});
  RocksPinStore pins(store_.get());
  Metrics metrics;
  absl::Mutex mu;
  std::vector<bool> changes;  // guarded by mu
  StoreWatch watch(
      store_.get(), &metrics,
      [&](const absl::Status& writable) {
        absl::MutexLock lock(&mu);
        changes.push_back(writable.ok());
      },
      absl::Milliseconds(20));
  auto wait_for_changes = [&](size_t count) {
    absl::MutexLock lock(&mu);
    auto enough = [&] { return changes.size() >= count; };
    mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    return changes;
  };
  Gauge* writable = metrics.GetGauge("repro_store_writable", "");

  ASSERT_EQ(Append("before").value_or(0), 1u);
  ASSERT_TRUE(pins.CreatePin(PinOf("job-before")).ok());
  fs_->Inject(GetParam());
  for (const char* value : {"during-1", "during-2"}) {
    absl::StatusOr<uint64_t> failed = Append(value);
    ASSERT_FALSE(failed.ok()) << "acknowledged entry " << *failed << " on a failing disk";
    EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
  }
  absl::StatusOr<Created<v1::Pin>> refused = pins.CreatePin(PinOf("job-during"));
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_EQ(wait_for_changes(1), std::vector<bool>({false}));  // health NOT_SERVING
  EXPECT_EQ(writable->value(), 0);
  EXPECT_TRUE(absl::IsUnavailable(store_->Recover())) << "recovered while the disk still fails";

  fs_->ClearFaults();
  EXPECT_EQ(wait_for_changes(2), std::vector<bool>({false, true}));  // SERVING again
  EXPECT_EQ(writable->value(), 1);
  EXPECT_GE(store_->generation(), 1u) << "writes resumed without a reopen";
  const uint64_t entries = ExpectJournal({"before"}, {"during-1", "during-2"});
  EXPECT_EQ(Append("after").value_or(0), entries + 1);
  EXPECT_EQ(ExpectJournal({"before"}, {"during-1", "during-2", "after"}), entries + 1);
  // One leaf per appending group, including groups whose write failed but came back with the
  // reopen: the head log re-derived its tree from the store before logging "after".
  EXPECT_EQ((*log)->size(), entries + 1);
  absl::StatusOr<std::string> stored_root = (*log)->RootAt((*log)->size());
  ASSERT_TRUE(stored_root.ok()) << stored_root.status();
  EXPECT_EQ((*log)->SignedHead().root(), *stored_root);
  EXPECT_TRUE(pins.CreatePin(PinOf("job-after")).ok());
  EXPECT_TRUE(pins.GetPin("job-before").ok());
}

INSTANTIATE_TEST_SUITE_P(WalFaults, WalFaultTest,
                         ::testing::Values(Fault::kWalAppend, Fault::kWalSync),
                         [](const auto& info) {
                           return info.param == Fault::kWalAppend ? "WalAppend" : "WalSync";
                         });

TEST_F(StorageFaultTest, AFlushThatCannotWriteStopsWritesAndLosesNothing) {
  ASSERT_EQ(Append("before").value_or(0), 1u);
  fs_->Inject(Fault::kSstWrite);
  rocksdb::FlushOptions flush;
  EXPECT_FALSE(store_->db()->Flush(flush, store_->handle(Column::kJournal)).ok());
  EXPECT_TRUE(absl::IsUnavailable(store_->WriteHealth())) << store_->WriteHealth();
  absl::StatusOr<uint64_t> refused = Append("during");
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();

  EXPECT_TRUE(absl::IsUnavailable(store_->Recover()));

  fs_->ClearFaults();
  Open();
  EXPECT_EQ(ExpectJournal({"before"}), 1u);
  EXPECT_EQ(Append("after").value_or(0), 2u);
  EXPECT_EQ(ExpectJournal({"before", "after"}), 2u);
}

TEST_F(StorageFaultTest, APowerCutLosesNoAcknowledgedEntry) {
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    acknowledged.push_back("entry-" + std::to_string(i));
    ASSERT_TRUE(Append(acknowledged.back()).ok());
  }
  // Unsynced writes after the last acknowledgement (the hash cache is written this way), so the
  // power cut has something to drop.
  for (int i = 0; i < 50; ++i) {
    rocksdb::WriteBatch batch;
    batch.Put(store_->handle(Column::kHashCache), "key-" + std::to_string(i), std::string(100, 'x'));
    ASSERT_TRUE(store_->WriteFast(&batch).ok());
  }
  fs_->PowerCut();
  journal_.reset();
  store_.reset();
  absl::StatusOr<uint64_t> dropped = fs_->DropUnsyncedData();
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_GT(*dropped, 0u) << "the power cut dropped nothing: the test would prove nothing";

  Open();
  EXPECT_EQ(ExpectJournal(acknowledged), acknowledged.size());
  EXPECT_EQ(Append("after").value_or(0), acknowledged.size() + 1);
}

}  // namespace
}  // namespace repro
