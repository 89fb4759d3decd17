// The logic layer on a real RocksDB and real files: versions, pins, admit, facts, audit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/hashing/tree_hasher.h"
#include "daemon/pin_store/rocks_pin_store.h"
#include "daemon/registry/auditor.h"
#include "daemon/registry/fact_recorder.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/registry/seeds.h"
#include "daemon/registry/version_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "tests/testutil/full_disk_file_system.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFileOrDie;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = rocksdb::NewCompositeEnv(fs_);
    auto store = RocksStore::Open({.data_dir = dir_.Path("state"), .env = env_.get()});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto key = NodeKey::LoadOrCreate(dir_.Path("state/key.pem"));
    ASSERT_TRUE(key.ok());
    key_ = *std::move(key);
    journal_ = std::make_unique<Journal>(store_.get(), JournalOptions{.node = "n1", .key = key_.get()});
    cache_ = std::make_unique<HashCache>(store_.get(), HashCacheOptions{.racy_window = absl::ZeroDuration()});
    hasher_ = std::make_unique<TreeHasher>(DefaultFileSystem(), cache_.get(), 2);
    rehasher_ = std::make_unique<TreeHasher>(DefaultFileSystem(), nullptr, 2);
    pin_store_ = std::make_unique<RocksPinStore>(store_.get());
    versions_ = std::make_unique<VersionRegistry>(pin_store_.get(), hasher_.get(),
                                                  DefaultFileSystem(), DefaultClock(), "n1");
    pins_ = std::make_unique<PinRegistry>(pin_store_.get(), journal_.get(), DefaultFileSystem(),
                                          DefaultClock(), "n1");
    gaps_ = std::make_unique<GapRecorder>(journal_.get());
    facts_ = std::make_unique<FactRecorder>(pins_.get(), journal_.get(), gaps_.get());
    auditor_ = std::make_unique<Auditor>(pin_store_.get(), journal_.get(), rehasher_.get());
    MakeTree("ml/users/v1", "one");
    MakeTree("ml/users/v2", "two");
  }

  void MakeTree(const std::string& rel, const std::string& flavour) {
    WriteFileOrDie(dir_.Path(rel + "/part-0.csv"), "id,x\n1," + flavour + "\n");
    WriteFileOrDie(dir_.Path(rel + "/sub/part-1.csv"), "id,x\n2," + flavour + "\n");
  }

  absl::StatusOr<v1::RegisterResult> Register(const std::string& dataset,
                                              const std::string& version,
                                              const std::string& path) {
    v1::RegisterVersionRequest request;
    request.set_dataset(dataset);
    request.set_version(version);
    request.set_path(path);
    return versions_->Register(request, {});
  }

  absl::StatusOr<v1::PinResponse> Pin(const std::string& job,
                                      std::vector<std::pair<std::string, std::string>> refs,
                                      std::optional<uint64_t> seed = std::nullopt,
                                      const std::string& like = "") {
    v1::PinRequest request;
    request.set_job(job);
    for (const auto& [d, v] : refs) {
      v1::VersionRef* ref = request.add_versions();
      ref->set_dataset(d);
      ref->set_version(v);
    }
    if (seed) request.set_seed(*seed);
    request.set_like_job(like);
    return pins_->Pin(request);
  }

  std::vector<v1::JournalEntry> Entries(const std::string& job) {
    std::vector<v1::JournalEntry> out;
    absl::StatusOr<std::vector<StoredEntry>> stored = journal_->Read(job, 0, 1000);
    EXPECT_TRUE(stored.ok()) << stored.status();
    for (const StoredEntry& e : *stored) {
      out.emplace_back();
      out.back().ParseFromString(e.payload);
    }
    return out;
  }

  TempDir dir_;
  // The disk, which a test can fill; declared before store_, which it outlives.
  std::shared_ptr<testing::FullDiskFileSystem> fs_ =
      std::make_shared<testing::FullDiskFileSystem>();
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<NodeKey> key_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<HashCache> cache_;
  std::unique_ptr<TreeHasher> hasher_;
  std::unique_ptr<TreeHasher> rehasher_;
  std::unique_ptr<RocksPinStore> pin_store_;
  std::unique_ptr<VersionRegistry> versions_;
  std::unique_ptr<PinRegistry> pins_;
  std::unique_ptr<GapRecorder> gaps_;
  std::unique_ptr<FactRecorder> facts_;
  std::unique_ptr<Auditor> auditor_;
};

TEST_F(RegistryTest, RegisterStoresManifestAndIsANoOpForTheSameContent) {
  auto first = Register("users", "v1", dir_.Path("ml/users/v1"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created());
  EXPECT_EQ(first->version().file_count(), 2u);
  EXPECT_EQ(first->version().root(), dir_.Path("ml/users"));
  EXPECT_EQ(first->version().digest().size(), 32u);
  EXPECT_EQ(first->files_hashed(), 2u);
  auto again = Register("users", "v1", dir_.Path("ml/users/v1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created());
  EXPECT_EQ(again->files_hashed(), 0u);  // stat cache: nothing re-read
  EXPECT_EQ(again->files_cached(), 2u);
  EXPECT_EQ(again->version().digest(), first->version().digest());
}

TEST_F(RegistryTest, ChangedContentUnderTheSameNameIsRefused) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  WriteFileOrDie(dir_.Path("ml/users/v1/part-0.csv"), "back-filled\n");
  auto changed = Register("users", "v1", dir_.Path("ml/users/v1"));
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(changed.status().message()), HasSubstr("versions are immutable"));
}

TEST_F(RegistryTest, IdenticalTreesHaveIdenticalDigests) {
  MakeTree("ml/copy/v1", "one");
  auto a = Register("users", "v1", dir_.Path("ml/users/v1"));
  auto b = Register("copy", "v1", dir_.Path("ml/copy/v1"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->version().digest(), b->version().digest());
  auto c = Register("users", "v2", dir_.Path("ml/users/v2"));
  EXPECT_NE(a->version().digest(), c->version().digest());
}

TEST_F(RegistryTest, RegisteringThroughAnAliasRecordsTheRealDirectory) {
  ASSERT_EQ(symlink("v2", dir_.Path("ml/users/latest").c_str()), 0);
  auto r = Register("users", "v2", dir_.Path("ml/users/latest"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version().path(), dir_.Path("ml/users/v2"));
}

TEST_F(RegistryTest, BadRegistrationsGetClearErrors) {
  EXPECT_EQ(Register("bad name", "v1", dir_.Path("ml/users/v1")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Register("users", "../v1", dir_.Path("ml/users/v1")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Register("users", "v1", "relative/path").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Register("users", "v1", dir_.Path("missing")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Register("users", "v1", dir_.Path("ml/users/v1/part-0.csv")).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(symlink("/etc/passwd", dir_.Path("ml/users/v2/escape").c_str()), 0);
  auto with_link = Register("users", "v2", dir_.Path("ml/users/v2"));
  EXPECT_EQ(with_link.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(with_link.status().message()), HasSubstr("symlink"));
}

TEST_F(RegistryTest, DatasetRootsAreEnforced) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  MakeTree("elsewhere/users/v3", "three");
  auto moved = Register("users", "v3", dir_.Path("elsewhere/users/v3"));
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(moved.status().message()), HasSubstr("lives in"));
  auto shared = Register("clicks", "v1", dir_.Path("ml/users/v2"));
  EXPECT_EQ(shared.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(shared.status().message()), HasSubstr("already the root of dataset users"));
}

TEST_F(RegistryTest, PinIsImmutableAndIdempotent) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  ASSERT_TRUE(Register("users", "v2", dir_.Path("ml/users/v2")).ok());
  auto pin = Pin("job-1", {{"users", "v1"}}, 42);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_TRUE(pin->created());
  EXPECT_EQ(pin->pin().seed(), 42u);
  EXPECT_FALSE(pin->pin().seed_derived());

  auto same = Pin("job-1", {{"users", "v1"}}, 42);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->created());
  auto no_seed = Pin("job-1", {{"users", "v1"}});
  ASSERT_TRUE(no_seed.ok()) << no_seed.status();
  EXPECT_EQ(no_seed->pin().seed(), 42u);

  auto other_seed = Pin("job-1", {{"users", "v1"}}, 43);
  EXPECT_EQ(other_seed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other_seed.status().message()), HasSubstr("already pinned to users@v1"));
  auto other_version = Pin("job-1", {{"users", "v2"}}, 42);
  EXPECT_EQ(other_version.status().code(), absl::StatusCode::kFailedPrecondition);

  // Pin journaled once: pin applied + the version, whatever the retries.
  std::vector<v1::JournalEntry> entries = Entries("job-1");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_TRUE(entries[0].has_pin_applied());
  EXPECT_EQ(entries[0].pin_applied().pin().seed(), 42u);
  EXPECT_TRUE(entries[1].has_version_registered());
  EXPECT_EQ(entries[1].version_registered().version().version(), "v1");
}

TEST_F(RegistryTest, DerivedSeedAndLike) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  auto pin = Pin("job-1", {{"users", "v1"}});
  ASSERT_TRUE(pin.ok());
  EXPECT_TRUE(pin->pin().seed_derived());
  EXPECT_EQ(pin->pin().seed(), DeriveJobSeed("job-1", pin->pin().versions()));

  auto like = Pin("job-2", {}, std::nullopt, "job-1");
  ASSERT_TRUE(like.ok()) << like.status();
  EXPECT_EQ(like->pin().seed(), pin->pin().seed());
  EXPECT_EQ(like->pin().like_job(), "job-1");
  EXPECT_EQ(like->pin().versions(0).digest(), pin->pin().versions(0).digest());
  EXPECT_FALSE(Pin("job-2", {}, std::nullopt, "job-1")->created());

  EXPECT_EQ(Pin("job-3", {}, std::nullopt, "nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Pin("job-3", {{"users", "v1"}}, std::nullopt, "job-1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, BadPinsGetClearErrors) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  ASSERT_TRUE(Register("users", "v2", dir_.Path("ml/users/v2")).ok());
  EXPECT_EQ(Pin("job", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Pin("bad/job", {{"users", "v1"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Pin(std::string(200, 'j'), {{"users", "v1"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto unknown = Pin("job", {{"users", "v9"}});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("reproctl version add"));
  EXPECT_EQ(Pin("job", {{"users", "v1"}, {"users", "v2"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pins_->Get("job").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, AdmitNeedsAPinAndItsData) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  auto unpinned = pins_->Admit("job-1");
  ASSERT_TRUE(unpinned.ok());
  EXPECT_FALSE(unpinned->admitted());
  EXPECT_EQ(unpinned->reason(),
            "job job-1 has no pinned data version: run `reproctl pin job-1 dataset@version`");

  ASSERT_TRUE(Pin("job-1", {{"users", "v1"}}).ok());
  auto admitted = pins_->Admit("job-1");
  ASSERT_TRUE(admitted.ok());
  EXPECT_TRUE(admitted->admitted()) << admitted->reason();

  std::filesystem::remove_all(dir_.Path("ml/users/v1"));
  auto gone = pins_->Admit("job-1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->admitted());
  EXPECT_THAT(gone->reason(), HasSubstr("is gone"));

  EXPECT_EQ(pins_->Admit("").status().code(), absl::StatusCode::kInvalidArgument);
}

// FactRecorder::RecordAsync (what the Record RPC uses), waiting for its result.
absl::StatusOr<uint64_t> RecordAsyncAndWait(FactRecorder* facts,
                                            const v1::RecordRequest& request) {
  absl::Notification done;
  absl::StatusOr<uint64_t> result = absl::UnknownError("no result");
  facts->RecordAsync(request, [&](absl::StatusOr<uint64_t> seq) {
    result = std::move(seq);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

TEST_F(RegistryTest, RecordNeedsAPinAndValidFacts) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  v1::RecordRequest request;
  request.set_job("job-1");
  v1::Fact* fact = request.add_facts();
  fact->set_key("git/commit");
  fact->set_value("abc123");
  EXPECT_EQ(facts_->Record(request).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RecordAsyncAndWait(facts_.get(), request).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(Pin("job-1", {{"users", "v1"}}).ok());
  auto seq = facts_->Record(request);
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 3u);  // after the pin and its version
  seq = RecordAsyncAndWait(facts_.get(), request);
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 4u);
  fact->set_value(std::string(64 * 1024 + 1, 'x'));
  EXPECT_EQ(facts_->Record(request).status().code(), absl::StatusCode::kInvalidArgument);
  fact->set_value("v");
  fact->set_key("bad key");
  EXPECT_EQ(facts_->Record(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.clear_facts();
  EXPECT_EQ(facts_->Record(request).status().code(), absl::StatusCode::kInvalidArgument);
}

// Records refused by a full disk are not silently forgotten: once space returns, a gap entry
// with their exact count comes before the next record.
TEST_F(RegistryTest, RecordsLostToAFullDiskAreJournaledAsAGap) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  ASSERT_TRUE(Pin("job-1", {{"users", "v1"}}).ok());
  v1::RecordRequest request;
  request.set_job("job-1");
  v1::Fact* fact = request.add_facts();
  fact->set_key("step");
  fact->set_value("1");
  ASSERT_TRUE(facts_->Record(request).ok());
  fs_->set_full(true);
  uint64_t failed = 0;
  failed += facts_->Record(request).ok() ? 0 : 1;
  failed += RecordAsyncAndWait(facts_.get(), request).ok() ? 0 : 1;  // counted from the commit
  EXPECT_EQ(failed, 2u);
  fs_->set_full(false);
  absl::StatusOr<uint64_t> seq = absl::UnknownError("not tried");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!seq.ok() && absl::Now() < deadline) {  // RocksDB resumes writes a few s after space
    seq = facts_->Record(request);
    if (!seq.ok()) {
      ++failed;
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  ASSERT_TRUE(seq.ok()) << seq.status();
  std::vector<v1::JournalEntry> entries = Entries("job-1");
  ASSERT_EQ(entries.size(), 5u);  // pin, version, step, gap, step
  const v1::JournalEntry& gap = entries[3];
  ASSERT_TRUE(gap.has_gap()) << gap.DebugString();
  ASSERT_EQ(gap.gap().lost_size(), 1);
  EXPECT_EQ(gap.gap().lost(0).kind(), "record");
  EXPECT_EQ(gap.gap().lost(0).count(), failed);
  EXPECT_THAT(gap.gap().reason(), HasSubstr("No space"));
  EXPECT_TRUE(entries[4].has_record());
  EXPECT_EQ(gaps_->pending(), 0u);
}

TEST_F(RegistryTest, VerifyWithRehashReportsDrift) {
  ASSERT_TRUE(Register("users", "v1", dir_.Path("ml/users/v1")).ok());
  ASSERT_TRUE(Pin("job-1", {{"users", "v1"}}).ok());
  v1::VerifyJournalRequest request;
  request.set_job("job-1");
  request.set_rehash(true);
  auto clean = auditor_->Verify(request);
  ASSERT_TRUE(clean.ok()) << clean.status();
  EXPECT_TRUE(clean->intact());
  EXPECT_TRUE(clean->rehashed());
  EXPECT_EQ(clean->drift_size(), 0);
  EXPECT_EQ(clean->files_rehashed(), 2u);

  // Same size, new bytes, old mtime: only a real re-read can see it.
  struct stat before;
  ASSERT_EQ(stat(dir_.Path("ml/users/v1/part-0.csv").c_str(), &before), 0);
  WriteFileOrDie(dir_.Path("ml/users/v1/part-0.csv"), "id,x\n1,eno\n");
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, dir_.Path("ml/users/v1/part-0.csv").c_str(), times, 0), 0);
  WriteFileOrDie(dir_.Path("ml/users/v1/new.csv"), "x");
  std::filesystem::remove(dir_.Path("ml/users/v1/sub/part-1.csv"));
  auto drifted = auditor_->Verify(request);
  ASSERT_TRUE(drifted.ok());
  EXPECT_TRUE(drifted->intact());  // the journal itself is fine
  ASSERT_EQ(drifted->drift_size(), 3);
  EXPECT_EQ(drifted->drift(0).path(), "new.csv");
  EXPECT_EQ(drifted->drift(0).problem(), "added");
  EXPECT_EQ(drifted->drift(1).path(), "part-0.csv");
  EXPECT_EQ(drifted->drift(1).problem(), "content changed");
  EXPECT_EQ(drifted->drift(2).path(), "sub/part-1.csv");
  EXPECT_EQ(drifted->drift(2).problem(), "missing");
}

}  // namespace
}  // namespace repro
