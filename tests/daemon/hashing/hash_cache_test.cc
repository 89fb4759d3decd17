#include "daemon/hashing/hash_cache.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "rocksdb/write_batch.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::repro::testing::TempDir;
using ::repro::testing::WriteFileOrDie;

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(now) {}
  absl::Time Now() const override { return now_; }
  void Set(absl::Time now) { now_ = now; }

 private:
  absl::Time now_;
};

class HashCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<RocksStore>> store =
        RocksStore::Open({.data_dir = tmp_.Path("db")});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    // Files in these tests were written a moment ago: no racy window.
    cache_ = std::make_unique<HashCache>(store_.get(), HashCacheOptions{absl::ZeroDuration()});
  }

  static FileStat StatOf(const std::string& path) {
    absl::StatusOr<FileStat> stat = DefaultFileSystem()->Stat(path);
    EXPECT_TRUE(stat.ok()) << stat.status();
    return stat.value_or(FileStat{});
  }

  // Calls `change` until the file's ctime moves (time stamps come from a coarse clock, so two
  // changes within a few ms can carry the same one). Returns the new stat.
  template <typename F>
  static FileStat ChangeUntilCtimeMoves(const std::string& path, const FileStat& before, F change) {
    for (int i = 0; i < 1000; ++i) {
      change();
      FileStat now = StatOf(path);
      if (now.ctime_ns != before.ctime_ns) return now;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ADD_FAILURE() << "ctime of " << path << " never changed";
    return before;
  }

  size_t EntryCount() {
    size_t n = 0;
    absl::Status s = store_->ScanPrefix(Column::kHashCache, "", [&](auto, auto) {
      ++n;
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return n;
  }

  void PutRaw(const FileStat& stat, absl::string_view value) {
    rocksdb::WriteBatch batch;
    batch.Put(store_->handle(Column::kHashCache), HashCache::KeyFor(stat),
              rocksdb::Slice(value.data(), value.size()));
    ASSERT_TRUE(store_->WriteFast(&batch).ok());
  }

  TempDir tmp_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<HashCache> cache_;
};

TEST_F(HashCacheTest, HitWhenTheStatMatches) {
  WriteFileOrDie(tmp_.Path("f"), "hello");
  FileStat stat = StatOf(tmp_.Path("f"));
  EXPECT_EQ(cache_->Lookup(stat), std::nullopt);
  cache_->Insert(stat, Sha256Of("hello"));
  EXPECT_EQ(cache_->Lookup(stat), Sha256Of("hello"));
  EXPECT_EQ(cache_->Lookup(StatOf(tmp_.Path("f"))), Sha256Of("hello"));
  EXPECT_EQ(cache_->corrupt_entries(), 0u);
}

TEST_F(HashCacheTest, KeyIsBigEndianDeviceThenInode) {
  FileStat stat;
  stat.device = 0x0102030405060708;
  stat.inode = 0x1112131415161718;
  EXPECT_EQ(absl::BytesToHexString(HashCache::KeyFor(stat)), "01020304050607081112131415161718");
}

TEST_F(HashCacheTest, MissAfterSameSizeContentChange) {
  const std::string path = tmp_.Path("f");
  WriteFileOrDie(path, "aaaa");
  FileStat before = StatOf(path);
  cache_->Insert(before, Sha256Of("aaaa"));
  FileStat after = ChangeUntilCtimeMoves(path, before, [&] { WriteFileOrDie(path, "bbbb"); });
  ASSERT_EQ(after.size, before.size);
  ASSERT_EQ(after.inode, before.inode);
  EXPECT_EQ(cache_->Lookup(after), std::nullopt);
}

TEST_F(HashCacheTest, MissAfterTouch) {
  const std::string path = tmp_.Path("f");
  WriteFileOrDie(path, "aaaa");
  FileStat before = StatOf(path);
  cache_->Insert(before, Sha256Of("aaaa"));
  struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  EXPECT_EQ(cache_->Lookup(StatOf(path)), std::nullopt);
}

TEST_F(HashCacheTest, MissAfterCtimeOnlyChange) {
  // cp -p / rsync restore mtime after writing; ctime still moves and must cause a miss.
  const std::string path = tmp_.Path("f");
  WriteFileOrDie(path, "aaaa");
  FileStat before = StatOf(path);
  cache_->Insert(before, Sha256Of("aaaa"));
  mode_t mode = 0600;
  FileStat after = ChangeUntilCtimeMoves(path, before, [&] {
    mode ^= 0040;
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  });
  ASSERT_EQ(after.mtime_ns, before.mtime_ns);
  EXPECT_EQ(cache_->Lookup(after), std::nullopt);
}

TEST_F(HashCacheTest, EveryStatFieldTakesPart) {
  FileStat stat{FileType::kRegular, 1, 2, 3, 4, 5, 0100644};
  cache_->Insert(stat, Sha256Of("x"));
  ASSERT_EQ(cache_->Lookup(stat), Sha256Of("x"));
  for (int field = 0; field < 5; ++field) {
    FileStat other = stat;
    switch (field) {
      case 0:
        other.device++;
        break;
      case 1:
        other.inode++;
        break;
      case 2:
        other.size++;
        break;
      case 3:
        other.mtime_ns++;
        break;
      case 4:
        other.ctime_ns++;
        break;
    }
    EXPECT_EQ(cache_->Lookup(other), std::nullopt) << "field " << field;
  }
}

TEST_F(HashCacheTest, MalformedValueIsACountedMiss) {
  FileStat stat{FileType::kRegular, 1, 2, 3, 4, 5, 0100644};
  PutRaw(stat, "garbage");
  EXPECT_EQ(cache_->Lookup(stat), std::nullopt);
  EXPECT_EQ(cache_->corrupt_entries(), 1u);

  // Right length, unknown version byte.
  cache_->Insert(stat, Sha256Of("x"));
  absl::StatusOr<std::optional<std::string>> good =
      store_->Get(Column::kHashCache, HashCache::KeyFor(stat));
  ASSERT_TRUE(good.ok() && good->has_value());
  std::string bad = **good;
  bad[0] = 7;
  PutRaw(stat, bad);
  EXPECT_EQ(cache_->Lookup(stat), std::nullopt);
  EXPECT_EQ(cache_->corrupt_entries(), 2u);

  // Inserting again repairs the entry.
  cache_->Insert(stat, Sha256Of("x"));
  EXPECT_EQ(cache_->Lookup(stat), Sha256Of("x"));
  EXPECT_EQ(cache_->corrupt_entries(), 2u);
}

TEST_F(HashCacheTest, OneEntryPerInode) {
  const std::string path = tmp_.Path("f");
  WriteFileOrDie(path, "aaaa");
  FileStat first = StatOf(path);
  cache_->Insert(first, Sha256Of("aaaa"));
  FileStat second = ChangeUntilCtimeMoves(path, first, [&] { WriteFileOrDie(path, "bbbbbb"); });
  cache_->Insert(second, Sha256Of("bbbbbb"));
  EXPECT_EQ(EntryCount(), 1u);
  EXPECT_EQ(cache_->Lookup(second), Sha256Of("bbbbbb"));
  EXPECT_EQ(cache_->Lookup(first), std::nullopt);

  WriteFileOrDie(tmp_.Path("g"), "aaaa");
  cache_->Insert(StatOf(tmp_.Path("g")), Sha256Of("aaaa"));
  EXPECT_EQ(EntryCount(), 2u);
}

TEST_F(HashCacheTest, RefusesHashesOfTheWrongSize) {
  FileStat stat{FileType::kRegular, 1, 2, 3, 4, 5, 0100644};
  cache_->Insert(stat, "short");
  EXPECT_EQ(cache_->Lookup(stat), std::nullopt);
  EXPECT_EQ(EntryCount(), 0u);
}

TEST_F(HashCacheTest, SkipsFilesChangedWithinTheRacyWindow) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  HashCache cache(store_.get(), HashCacheOptions{absl::Milliseconds(20), &clock});
  FileStat stat{FileType::kRegular, 1, 2, 3, 0, 0, 0100644};
  stat.mtime_ns = absl::ToUnixNanos(clock.Now() - absl::Milliseconds(100));
  stat.ctime_ns = absl::ToUnixNanos(clock.Now() - absl::Milliseconds(5));  // just written
  cache.Insert(stat, Sha256Of("x"));
  EXPECT_EQ(cache.Lookup(stat), std::nullopt);

  clock.Set(clock.Now() + absl::Seconds(1));  // the same file, hashed again a second later
  cache.Insert(stat, Sha256Of("x"));
  EXPECT_EQ(cache.Lookup(stat), Sha256Of("x"));
}

TEST_F(HashCacheTest, BatchWriterWritesWhenFullAndWhenDestroyed) {
  auto stat_of = [](uint64_t inode) {
    return FileStat{FileType::kRegular, 1, inode, 3, 4, 5, 0100644};
  };
  {
    HashCache::BatchWriter writer(cache_.get(), /*batch_size=*/3);
    writer.Insert(stat_of(1), Sha256Of("1"));
    writer.Insert(stat_of(2), Sha256Of("2"));
    EXPECT_EQ(EntryCount(), 0u);
    writer.Insert(stat_of(3), Sha256Of("3"));  // full: written
    EXPECT_EQ(EntryCount(), 3u);
    writer.Insert(stat_of(4), Sha256Of("4"));
    writer.Insert(stat_of(5), "not a hash");  // refused, not buffered
    EXPECT_EQ(EntryCount(), 3u);
  }
  EXPECT_EQ(EntryCount(), 4u);
  EXPECT_EQ(cache_->Lookup(stat_of(4)), Sha256Of("4"));
}

TEST_F(HashCacheTest, SurvivesReopening) {
  FileStat stat{FileType::kRegular, 1, 2, 3, 4, 5, 0100644};
  cache_->Insert(stat, Sha256Of("x"));
  cache_.reset();
  store_.reset();
  absl::StatusOr<std::unique_ptr<RocksStore>> store =
      RocksStore::Open({.data_dir = tmp_.Path("db")});
  ASSERT_TRUE(store.ok()) << store.status();
  HashCache cache(store->get());
  EXPECT_EQ(cache.Lookup(stat), Sha256Of("x"));
}

TEST_F(HashCacheTest, ConcurrentInsertsAndLookups) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kPerThread; ++i) {
        FileStat stat{
            FileType::kRegular, 1, static_cast<uint64_t>(t * kPerThread + i), 3, 4, 5, 0100644};
        std::string sha = Sha256Of(absl::StrCat(t, "/", i));
        cache_->Insert(stat, sha);
        EXPECT_EQ(cache_->Lookup(stat), sha);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(EntryCount(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(cache_->store_errors(), 0u);
}

}  // namespace
}  // namespace repro
