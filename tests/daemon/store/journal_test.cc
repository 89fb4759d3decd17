#include "daemon/store/journal.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "daemon/store/chain.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "tests/testutil/full_disk_file_system.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

JournalItem Fact(const std::string& key, const std::string& value, std::string once = "") {
  JournalItem item;
  v1::Fact* fact = item.entry.mutable_record()->add_facts();
  fact->set_key(key);
  fact->set_value(value);
  item.once_key = std::move(once);
  return item;
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(rocksdb::Env* env = nullptr) {
    journal_.reset();
    store_.reset();
    auto store = RocksStore::Open({.data_dir = dir_.Path("data"), .env = env});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    if (key_ == nullptr) {
      auto key = NodeKey::LoadOrCreate(dir_.Path("key.pem"));
      ASSERT_TRUE(key.ok());
      key_ = *std::move(key);
    }
    journal_ = std::make_unique<Journal>(store_.get(), JournalOptions{.node = "n1", .key = key_.get()});
  }

  uint64_t AppendFact(const std::string& job, const std::string& value) {
    auto appended = journal_->Append(job, {Fact("k", value)});
    EXPECT_TRUE(appended.ok()) << appended.status();
    return appended.ok() ? appended->front().seq : 0;
  }

  v1::NodeJournalCheck Verify(const std::string& job) {
    auto check = journal_->Verify(job);
    EXPECT_TRUE(check.ok()) << check.status();
    return check.ok() ? *check : v1::NodeJournalCheck();
  }

  void RawPut(Column column, const std::string& key, const std::string& value) {
    rocksdb::WriteBatch batch;
    batch.Put(store_->handle(column), key, value);
    ASSERT_TRUE(store_->WriteDurable(&batch).ok());
  }
  void RawDelete(Column column, const std::string& key) {
    rocksdb::WriteBatch batch;
    batch.Delete(store_->handle(column), key);
    ASSERT_TRUE(store_->WriteDurable(&batch).ok());
  }

  TempDir dir_;
  std::unique_ptr<rocksdb::Env> env_;  // declared before store_: outlives it
  std::unique_ptr<NodeKey> key_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<Journal> journal_;
};

TEST_F(JournalTest, AppendsDenseSequencesAndAChainOverTheStoredBytes) {
  EXPECT_EQ(AppendFact("job-a", "1"), 1u);
  EXPECT_EQ(AppendFact("job-a", "2"), 2u);
  EXPECT_EQ(AppendFact("job-b", "1"), 1u);
  auto entries = journal_->Read("job-a", 0, 100);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  std::string hash = GenesisHash();
  for (const StoredEntry& e : *entries) {
    hash = ChainHash(hash, e.payload);
    EXPECT_EQ(e.hash, hash);
    v1::JournalEntry entry;
    ASSERT_TRUE(entry.ParseFromString(e.payload));
    EXPECT_EQ(entry.job(), "job-a");
    EXPECT_EQ(entry.seq(), e.seq);
    EXPECT_EQ(entry.node(), "n1");
    EXPECT_TRUE(entry.has_time());
  }
  auto head = journal_->Head("job-a");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq(), 2u);
  EXPECT_EQ(head->hash(), hash);
  EXPECT_TRUE(NodeKey::Verify(head->public_key(),
                              HeadSigningBytes("n1", "job-a", 2, hash), head->signature()));
  // Read after a sequence number and with a limit.
  EXPECT_EQ(journal_->Read("job-a", 1, 100)->size(), 1u);
  EXPECT_EQ(journal_->Read("job-a", 0, 1)->size(), 1u);
  EXPECT_TRUE(journal_->Read("job-a", 2, 100)->empty());
  EXPECT_TRUE(journal_->Read("job-zzz", 0, 100)->empty());
  EXPECT_EQ(journal_->Head("job-zzz").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JournalTest, OnceKeysDeduplicateAcrossAndWithinCalls) {
  auto first = journal_->Append("job", {Fact("f", "a", "data/x"), Fact("f", "b", "data/x"),
                                        Fact("f", "c", "data/y")});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 3u);
  EXPECT_TRUE((*first)[0].created);
  EXPECT_FALSE((*first)[1].created);
  EXPECT_EQ((*first)[1].seq, (*first)[0].seq);
  EXPECT_TRUE((*first)[2].created);
  auto again = journal_->Append("job", {Fact("f", "d", "data/x")});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->front().created);
  EXPECT_EQ(again->front().seq, 1u);
  EXPECT_EQ(journal_->Read("job", 0, 100)->size(), 2u);
  // Once keys are per job.
  EXPECT_TRUE(journal_->Append("other", {Fact("f", "a", "data/x")})->front().created);
}

TEST_F(JournalTest, SurvivesReopenAndContinuesTheChain) {
  for (int i = 0; i < 5; ++i) AppendFact("job", absl::StrCat(i));
  Open();
  EXPECT_EQ(AppendFact("job", "after"), 6u);
  v1::NodeJournalCheck check = Verify("job");
  EXPECT_TRUE(check.intact()) << check.problem();
  EXPECT_EQ(check.entries(), 6u);
}

TEST_F(JournalTest, ConcurrentAppendersGetDenseOrderedJournals) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Half the threads share one job, the rest have their own.
        std::string job = t % 2 == 0 ? "shared" : absl::StrCat("own-", t);
        auto r = journal_->Append(job, {Fact("t", absl::StrCat(t, ":", i))});
        ASSERT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  v1::NodeJournalCheck shared = Verify("shared");
  EXPECT_TRUE(shared.intact()) << shared.problem();
  EXPECT_EQ(shared.entries(), static_cast<uint64_t>(kThreads / 2 * kPerThread));
  for (int t = 1; t < kThreads; t += 2) {
    EXPECT_EQ(Verify(absl::StrCat("own-", t)).entries(), static_cast<uint64_t>(kPerThread));
  }
  EXPECT_EQ(journal_->ListJobs()->size(), 1u + kThreads / 2);
}

TEST_F(JournalTest, AppendAsyncJoinsTheGroupCommitInOrderWithAppend) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &ok] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string value = absl::StrCat(t, ":", i);
        if (t % 2 == 0) {  // async and blocking callers share one job
          journal_->AppendAsync("shared", {Fact("t", value)}, [&ok](const absl::Status& s) {
            if (s.ok()) ++ok;
          });
        } else {
          ASSERT_TRUE(journal_->Append("shared", {Fact("t", value)}).ok());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  journal_->FlushAsync();
  EXPECT_EQ(ok.load(), kThreads / 2 * kPerThread);  // every `done` ran before FlushAsync returned
  v1::NodeJournalCheck check = Verify("shared");
  EXPECT_TRUE(check.intact()) << check.problem();
  EXPECT_EQ(check.entries(), static_cast<uint64_t>(kThreads * kPerThread));
  // Each thread's entries keep the order of its calls.
  auto entries = journal_->Read("shared", 0, kThreads * kPerThread);
  ASSERT_TRUE(entries.ok());
  std::vector<int> next(kThreads, 0);
  for (const StoredEntry& stored : *entries) {
    v1::JournalEntry entry;
    ASSERT_TRUE(entry.ParseFromString(stored.payload));
    std::vector<std::string> parts = absl::StrSplit(entry.record().facts(0).value(), ':');
    const int t = std::stoi(parts[0]);
    EXPECT_EQ(std::stoi(parts[1]), next[t]++);
  }
}

TEST_F(JournalTest, DestroyingTheJournalCommitsWhatAppendAsyncQueued) {
  for (int i = 0; i < 500; ++i) journal_->AppendAsync("job", {Fact("k", absl::StrCat(i))});
  Open();  // destroys the journal (and store), then reopens both
  EXPECT_EQ(Verify("job").entries(), 500u);
}

// AppendAsyncForResult reports each call's seq once durable; mixed with AppendAsync, each kind
// of call led by its own committer thread, the job's entries stay dense and in call order, and
// destroying the journal commits what both queued.
TEST_F(JournalTest, AppendAsyncForResultReportsTheSeqOfEachEntry) {
  constexpr int kCalls = 600;
  std::vector<absl::StatusOr<std::vector<Appended>>> results(
      kCalls, absl::UnknownError("no result"));
  for (int i = 0; i < kCalls; ++i) {
    if (i % 3 == 0) {
      journal_->AppendAsync("job", {Fact("i", absl::StrCat(i))});
      continue;
    }
    journal_->AppendAsyncForResult(
        "job", {Fact("i", absl::StrCat(i))},
        [&results, i](absl::StatusOr<std::vector<Appended>> appended) {
          results[i] = std::move(appended);
        });
  }
  journal_->FlushAsync();
  for (int i = 0; i < kCalls; ++i) {
    if (i % 3 == 0) continue;
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    ASSERT_EQ(results[i]->size(), 1u);
    EXPECT_EQ(results[i]->front().seq, static_cast<uint64_t>(i + 1));  // in call order
    EXPECT_TRUE(results[i]->front().created);
  }
  for (int i = 0; i < 100; ++i) {
    journal_->AppendAsync("job", {Fact("i", "late")});
    journal_->AppendAsyncForResult("job", {Fact("i", "late")}, nullptr);
  }
  Open();  // destroys the journal, whose two committers finish first
  v1::NodeJournalCheck check = Verify("job");
  EXPECT_TRUE(check.intact()) << check.problem();
  EXPECT_EQ(check.entries(), static_cast<uint64_t>(kCalls + 200));
}

TEST_F(JournalTest, WaitForEntriesAfterWakesOnAppendAndTimesOut) {
  AppendFact("job", "1");
  EXPECT_TRUE(journal_->WaitForEntriesAfter("job", 0, absl::Milliseconds(10)));
  EXPECT_FALSE(journal_->WaitForEntriesAfter("job", 1, absl::Milliseconds(50)));
  std::thread appender([this] {
    absl::SleepFor(absl::Milliseconds(100));
    AppendFact("job", "2");
  });
  EXPECT_TRUE(journal_->WaitForEntriesAfter("job", 1, absl::Seconds(30)));
  appender.join();
}

TEST_F(JournalTest, VerifyReportsAModifiedEntry) {
  for (int i = 0; i < 4; ++i) AppendFact("job", absl::StrCat(i));
  auto entries = journal_->Read("job", 0, 10);
  std::string payload = (*entries)[2].payload;
  payload[payload.size() - 1] ^= 1;  // flip a bit of entry 3's stored bytes
  RawPut(Column::kJournal, JournalKey("job", 3), EncodeStoredEntry((*entries)[2].hash, payload));
  v1::NodeJournalCheck check = Verify("job");
  EXPECT_FALSE(check.intact());
  EXPECT_EQ(check.first_broken_seq(), 3u);
  EXPECT_THAT(check.problem(), HasSubstr("does not match its chain hash"));
}

TEST_F(JournalTest, VerifyReportsAMissingMiddleEntry) {
  for (int i = 0; i < 4; ++i) AppendFact("job", absl::StrCat(i));
  RawDelete(Column::kJournal, JournalKey("job", 2));
  v1::NodeJournalCheck check = Verify("job");
  EXPECT_FALSE(check.intact());
  EXPECT_EQ(check.first_broken_seq(), 2u);
  EXPECT_THAT(check.problem(), HasSubstr("entry 2 is missing"));
}

TEST_F(JournalTest, VerifyReportsDroppedTailEntriesAndAppendRefusesToExtend) {
  for (int i = 0; i < 4; ++i) AppendFact("job", absl::StrCat(i));
  RawDelete(Column::kJournal, JournalKey("job", 4));
  v1::NodeJournalCheck check = Verify("job");
  EXPECT_FALSE(check.intact());
  EXPECT_THAT(check.problem(), HasSubstr("entries were dropped"));
  // A fresh process must not paper over the gap by appending entry 4 again.
  Open();
  auto appended = journal_->Append("job", {Fact("k", "v")});
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(appended.status().message()), HasSubstr("damaged"));
  // Other jobs are unaffected.
  EXPECT_EQ(AppendFact("other", "x"), 1u);
}

TEST_F(JournalTest, VerifyReportsAForgedHead) {
  for (int i = 0; i < 2; ++i) AppendFact("job", absl::StrCat(i));
  auto head = journal_->Head("job");
  v1::JournalHead forged = *head;
  forged.clear_public_key();
  std::string sig = forged.signature();
  sig[0] ^= 1;
  forged.set_signature(sig);
  RawPut(Column::kJournalHeads, "job", forged.SerializeAsString());
  v1::NodeJournalCheck check = Verify("job");
  EXPECT_FALSE(check.intact());
  EXPECT_THAT(check.problem(), HasSubstr("signature"));
}

TEST_F(JournalTest, VerifyOfAnUnknownJobIsNotFound) {
  EXPECT_EQ(journal_->Verify("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JournalTest, FullDiskFailsTheAppendAndLosesNothingAcknowledged) {
  auto fs = std::make_shared<testing::FullDiskFileSystem>();
  env_ = rocksdb::NewCompositeEnv(fs);
  Open(env_.get());
  EXPECT_EQ(AppendFact("job", "before"), 1u);
  fs->set_full(true);
  auto failed = journal_->Append("job", {Fact("k", "during")});
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("No space"));
  // An AppendAsync that fails reports it to its `done`.
  absl::Status async_status;
  journal_->AppendAsync("job", {Fact("k", "async")},
                        [&async_status](const absl::Status& s) { async_status = s; });
  journal_->FlushAsync();
  EXPECT_FALSE(async_status.ok());
  fs->set_full(false);
  // Writes resume once space is back (RocksDB re-checks every 5 s), continuing the chain without
  // the failed entry.
  absl::StatusOr<std::vector<Appended>> after = absl::UnknownError("not tried");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!after.ok() && absl::Now() < deadline) {
    after = journal_->Append("job", {Fact("k", "after")});
    if (!after.ok()) absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->front().seq, 2u);
  Open(env_.get());
  v1::NodeJournalCheck check = Verify("job");
  EXPECT_TRUE(check.intact()) << check.problem();
  EXPECT_EQ(check.entries(), 2u);
}

}  // namespace
}  // namespace repro
