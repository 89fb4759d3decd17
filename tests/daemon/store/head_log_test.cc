#include "daemon/store/head_log.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/merkle.h"
#include "common/signed_statements.h"
#include "daemon/store/gap_recorder.h"
#include "daemon/store/journal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "tests/testutil/full_disk_file_system.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using testing::TempDir;

JournalItem Fact(const std::string& value) {
  JournalItem item;
  v1::Fact* fact = item.entry.mutable_record()->add_facts();
  fact->set_key("k");
  fact->set_value(value);
  return item;
}

std::vector<JournalItem> One(JournalItem item) {
  std::vector<JournalItem> items;
  items.push_back(std::move(item));
  return items;
}

class HeadLogTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(rocksdb::Env* env = nullptr) {
    gaps_.reset();
    journal_.reset();
    log_.reset();
    store_.reset();
    auto store = RocksStore::Open({.data_dir = dir_.Path("data"), .env = env});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    if (key_ == nullptr) {
      auto key = NodeKey::LoadOrCreate(dir_.Path("key.pem"));
      ASSERT_TRUE(key.ok());
      key_ = *std::move(key);
    }
    auto log = HeadLog::Open(store_.get(), "n1", key_.get());
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    journal_ = std::make_unique<Journal>(
        store_.get(), JournalOptions{.node = "n1", .key = key_.get(), .head_log = log_.get()});
    gaps_ = std::make_unique<GapRecorder>(journal_.get());
  }

  // Appends one fact and returns the signed head it made.
  v1::JournalHead Append(const std::string& job, const std::string& value) {
    auto appended = journal_->Append(job, One(Fact(value)));
    EXPECT_TRUE(appended.ok()) << appended.status();
    auto head = journal_->Head(job);
    EXPECT_TRUE(head.ok()) << head.status();
    return head.ok() ? *head : v1::JournalHead();
  }

  TempDir dir_;
  std::unique_ptr<rocksdb::Env> env_;  // declared before store_: outlives it
  std::unique_ptr<NodeKey> key_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<HeadLog> log_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<GapRecorder> gaps_;
};

// Each single append is one group commit that signs one head: one leaf, in order, whose data is
// exactly the signed bytes; the root is the RFC 6962 root over those leaves.
TEST_F(HeadLogTest, LogsEverySignedHeadAcrossJobsAndSurvivesReopen) {
  std::vector<v1::JournalHead> heads;
  for (int i = 0; i < 5; ++i) {
    heads.push_back(Append("job-a", absl::StrCat(i)));
    heads.push_back(Append("job-b", absl::StrCat(i)));
  }
  ASSERT_EQ(log_->size(), heads.size());
  std::vector<std::string> leaves;
  for (const v1::JournalHead& h : heads) {
    leaves.push_back(MerkleLeafHash(HeadSigningBytes("n1", h.job(), h.seq(), h.hash())));
  }
  auto leaf_tree = [&leaves](int level, uint64_t index) -> absl::StatusOr<std::string> {
    std::vector<std::string> row(leaves.begin() + (index << level),
                                 leaves.begin() + ((index + 1) << level));
    while (row.size() > 1) {
      std::vector<std::string> up;
      for (size_t i = 0; i < row.size(); i += 2) up.push_back(MerkleNodeHash(row[i], row[i + 1]));
      row = up;
    }
    return row[0];
  };
  v1::SignedTreeHead sth = log_->SignedHead();
  EXPECT_EQ(sth.size(), heads.size());
  EXPECT_EQ(sth.root(), *MerkleSubtreeHash(0, heads.size(), leaf_tree));
  EXPECT_TRUE(VerifyEd25519(
      key_->public_key(),
      TreeHeadSigningBytes("n1", sth.size(), sth.root(), sth.time_unix_nanos()), sth.signature()));

  Open();
  EXPECT_EQ(log_->size(), heads.size());
  EXPECT_EQ(log_->SignedHead().root(), sth.root());
}

TEST_F(HeadLogTest, InclusionAndConsistencyProofsVerify) {
  std::vector<v1::JournalHead> heads;
  std::vector<v1::SignedTreeHead> trees;
  for (int i = 0; i < 13; ++i) {
    heads.push_back(Append(i % 3 == 0 ? "job-a" : "job-b", absl::StrCat(i)));
    trees.push_back(log_->SignedHead());
  }
  const v1::SignedTreeHead& now = trees.back();
  for (const v1::JournalHead& h : heads) {
    auto proof = log_->ProveHead(h.job(), h.seq(), now.size());
    ASSERT_TRUE(proof.ok()) << proof.status();
    std::vector<std::string> path(proof->path().begin(), proof->path().end());
    EXPECT_TRUE(VerifyMerkleInclusion(proof->leaf_index(), now.size(),
                                      MerkleLeafHash(HeadSigningBytes("n1", h.job(), h.seq(),
                                                                      h.hash())),
                                      path, now.root())
                    .ok());
  }
  for (const v1::SignedTreeHead& old : trees) {
    auto proof = log_->ProveConsistency(old.size(), now.size());
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_TRUE(
        VerifyMerkleConsistency(old.size(), now.size(), old.root(), now.root(), *proof).ok())
        << old.size();
  }
  EXPECT_TRUE(absl::IsNotFound(log_->ProveHead("job-c", 1, now.size()).status()));
  EXPECT_FALSE(log_->ProveConsistency(1, now.size() + 1).ok());
}

TEST_F(HeadLogTest, RotationIsSignedByTheOldKeyAndNamesTheNewOne) {
  auto old_key = NodeKey::LoadOrCreate(dir_.Path("old.pem"));
  ASSERT_TRUE(old_key.ok());
  auto rotation = log_->AddRotation(**old_key);
  ASSERT_TRUE(rotation.ok()) << rotation.status();
  auto stored = log_->Rotations();
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  const v1::KeyRotation& r = stored->front();
  EXPECT_EQ(r.old_public_key(), (*old_key)->public_key());
  EXPECT_EQ(r.new_public_key(), key_->public_key());
  EXPECT_TRUE(VerifyEd25519(r.old_public_key(),
                            KeyRotationSigningBytes("n1", r.old_public_key(), r.new_public_key()),
                            r.signature()));
}

// A full disk fails the append; the loss is counted, and once space returns one gap entry with
// the count is journaled before the next entry.
TEST_F(HeadLogTest, GapIsJournaledOnceWritingWorksAgain) {
  auto fs = std::make_shared<testing::FullDiskFileSystem>();
  env_ = rocksdb::NewCompositeEnv(fs);
  Open(env_.get());
  Append("job", "before");
  fs->set_full(true);
  for (int i = 0; i < 3; ++i) {
    absl::Status failed = journal_->Append("job", One(Fact("during"))).status();
    ASSERT_FALSE(failed.ok());
    gaps_->Lost("job", "record", 1, failed.message());
  }
  EXPECT_FALSE(gaps_->Flush("job").ok());
  EXPECT_EQ(gaps_->pending(), 3u);
  fs->set_full(false);
  absl::Status flushed = absl::UnknownError("not tried");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!flushed.ok() && absl::Now() < deadline) {  // RocksDB re-checks space every few s
    flushed = gaps_->Flush("job");
    if (!flushed.ok()) absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(flushed.ok()) << flushed;
  EXPECT_EQ(gaps_->pending(), 0u);
  auto entries = journal_->Read("job", 0, 10);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  v1::JournalEntry gap;
  ASSERT_TRUE(gap.ParseFromString(entries->back().payload));
  ASSERT_TRUE(gap.has_gap());
  ASSERT_EQ(gap.gap().lost_size(), 1);
  EXPECT_EQ(gap.gap().lost(0).kind(), "record");
  EXPECT_EQ(gap.gap().lost(0).count(), 3u);
  EXPECT_THAT(gap.gap().reason(), ::testing::HasSubstr("No space"));
  EXPECT_TRUE(gaps_->Flush("job").ok());  // nothing pending: no second gap
  EXPECT_EQ(journal_->Read("job", 0, 10)->size(), 2u);
}

}  // namespace
}  // namespace repro
