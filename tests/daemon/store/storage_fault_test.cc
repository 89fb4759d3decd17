// The journal on a failing disk (StorageFaultFileSystem): EIO on WAL appends, WAL syncs and table
// writes fails the append with UNAVAILABLE and acknowledges nothing; the store reports the fault
// until it is reopened (RocksDB 7.8.3's DB::Resume does not recover from these non-retryable IO
// errors); a power cut that drops unsynced data loses no acknowledged entry.
#include <memory>
#include <string>

#include "daemon/store/journal.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
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
