// ReportNumbers counts the numbered shim reports that never arrived: at HELLO (from memory, or
// from the journal's mark after a restart) and at exit, tolerating reports that arrive out of
// order.
#include "daemon/shim_socket/report_numbers.h"

#include <memory>

#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

class ReportNumbersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RocksStore::Open({.data_dir = dir_.Path("data")});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto key = NodeKey::LoadOrCreate(dir_.Path("key.pem"));
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *std::move(key);
    journal_ = std::make_unique<repro::Journal>(store_.get(),
                                                JournalOptions{.node = "n1", .key = key_.get()});
  }

  // Journals one entry that carries the process's mark.
  void JournalMark(uint64_t mark) {
    JournalItem item;
    item.entry.mutable_record()->add_facts()->set_key("k");
    item.mark_key = key_name_;
    item.mark_value = mark;
    std::vector<JournalItem> items;
    items.push_back(std::move(item));
    ASSERT_TRUE(journal_->Append("job", std::move(items)).ok());
  }

  uint64_t Missing(ReportNumbers& numbers, uint64_t held) {
    absl::StatusOr<uint64_t> missing = numbers.Missing("job", key_name_, held);
    EXPECT_TRUE(missing.ok()) << missing.status();
    return missing.value_or(0);
  }

  testing::TempDir dir_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<NodeKey> key_;
  std::unique_ptr<repro::Journal> journal_;
  const std::string key_name_ = ReportNumbers::Key(42, 7);
};

TEST_F(ReportNumbersTest, NumbersThatNeverArrivedAreCountedAtHelloAndExit) {
  ReportNumbers numbers(journal_.get());
  EXPECT_EQ(Missing(numbers, 0), 0u);
  numbers.Accept("job", key_name_, 0);
  EXPECT_EQ(numbers.Report("job", key_name_, 0).below, 1u);
  EXPECT_EQ(numbers.Report("job", key_name_, 3).below, 1u);  // 1 and 2 may still come
  EXPECT_EQ(numbers.Report("job", key_name_, 1).below, 2u);
  EXPECT_FALSE(numbers.Report("job", key_name_, 1).fresh);  // a resend
  // HELLO: the process holds nothing older than 5, so 2 and 4 are lost; 3 arrived.
  EXPECT_EQ(Missing(numbers, 5), 2u);
  numbers.Accept("job", key_name_, 5);
  EXPECT_EQ(numbers.Report("job", key_name_, 5).below, 6u);
  EXPECT_EQ(Missing(numbers, 9), 3u);  // at exit: 6, 7 and 8 were dropped
}

TEST_F(ReportNumbersTest, AfterARestartTheJournalsMarkSaysWhatWasJournaled) {
  JournalMark(40);  // reports 0..39 were journaled before the crash
  ReportNumbers restarted(journal_.get());
  EXPECT_EQ(Missing(restarted, 55), 15u);  // 40..54 were in flight; the process holds 55 on
  restarted.Accept("job", key_name_, 55);
  EXPECT_FALSE(restarted.Report("job", key_name_, 54).fresh);
  EXPECT_EQ(restarted.Report("job", key_name_, 55).below, 56u);
  ReportNumbers other(journal_.get());
  EXPECT_EQ(Missing(other, 30), 0u);  // it still holds reports the journal has: resends
}

}  // namespace
}  // namespace repro
