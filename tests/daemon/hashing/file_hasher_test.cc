#include "daemon/hashing/file_hasher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <random>
#include <string>

#include "common/posix_error.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/fault_file_system.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::repro::testing::FaultFileSystem;
using ::repro::testing::TempDir;
using ::repro::testing::WriteFileOrDie;
using ::testing::HasSubstr;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

class FileHasherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<RocksStore>> store =
        RocksStore::Open({.data_dir = tmp_.Path("db")});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    cache_ = std::make_unique<HashCache>(store_.get(), HashCacheOptions{absl::ZeroDuration()});
  }

  TempDir tmp_;
  FaultFileSystem fs_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<HashCache> cache_;
};

TEST_F(FileHasherTest, KnownDigests) {
  WriteFileOrDie(tmp_.Path("abc"), "abc");
  WriteFileOrDie(tmp_.Path("empty"), "");
  absl::StatusOr<HashedFile> abc = HashFile(&fs_, tmp_.Path("abc"), nullptr);
  ASSERT_TRUE(abc.ok()) << abc.status();
  EXPECT_EQ(HexDigest(abc->sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(abc->stat.size, 3u);
  EXPECT_EQ(abc->stat.type, FileType::kRegular);
  EXPECT_FALSE(abc->from_cache);

  absl::StatusOr<HashedFile> empty = HashFile(&fs_, tmp_.Path("empty"), nullptr);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(HexDigest(empty->sha256),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(FileHasherTest, BigFileAcrossManyChunks) {
  const std::string content = RandomBytes(5 * kHashChunkSize + 12345, 1);
  WriteFileOrDie(tmp_.Path("big"), content);
  uint64_t reported = 0;
  FileHasher hasher(&fs_, nullptr);
  HashFileOptions options;
  options.on_read = [&](uint64_t n) { reported += n; };
  absl::StatusOr<HashedFile> big = hasher.Hash(tmp_.Path("big"), options);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->sha256, Sha256Of(content));
  EXPECT_EQ(big->stat.size, content.size());
  EXPECT_EQ(reported, content.size());
  EXPECT_EQ(fs_.bytes_read(), content.size());
}

TEST_F(FileHasherTest, CacheHitReadsNothing) {
  const std::string content = RandomBytes(300000, 2);
  WriteFileOrDie(tmp_.Path("f"), content);
  absl::StatusOr<HashedFile> first = HashFile(&fs_, tmp_.Path("f"), cache_.get());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->from_cache);
  EXPECT_EQ(fs_.bytes_read(), content.size());

  fs_.Reset();
  absl::StatusOr<HashedFile> second = HashFile(&fs_, tmp_.Path("f"), cache_.get());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->sha256, Sha256Of(content));
  EXPECT_EQ(fs_.bytes_read(), 0u);
  EXPECT_EQ(fs_.opens(), 1u);
}

TEST_F(FileHasherTest, CacheHitOnAKnownLstatDoesNotEvenOpen) {
  const std::string path = tmp_.Path("f");
  WriteFileOrDie(path, "content");
  ASSERT_TRUE(HashFile(&fs_, path, cache_.get()).ok());

  fs_.Reset();
  absl::StatusOr<FileStat> lstat = fs_.Stat(path);
  ASSERT_TRUE(lstat.ok());
  HashFileOptions options;
  options.lstat = &*lstat;
  FileHasher hasher(&fs_, cache_.get());
  absl::StatusOr<HashedFile> hashed = hasher.Hash(path, options);
  ASSERT_TRUE(hashed.ok()) << hashed.status();
  EXPECT_TRUE(hashed->from_cache);
  EXPECT_EQ(hashed->sha256, Sha256Of("content"));
  EXPECT_EQ(fs_.opens(), 0u);
}

TEST_F(FileHasherTest, KnownLstatMissIsHashedAndCached) {
  const std::string path = tmp_.Path("f");
  WriteFileOrDie(path, "content");
  absl::StatusOr<FileStat> lstat = fs_.Stat(path);
  ASSERT_TRUE(lstat.ok());
  HashFileOptions options;
  options.lstat = &*lstat;
  FileHasher hasher(&fs_, cache_.get());
  absl::StatusOr<HashedFile> hashed = hasher.Hash(path, options);
  ASSERT_TRUE(hashed.ok()) << hashed.status();
  EXPECT_FALSE(hashed->from_cache);
  EXPECT_EQ(hashed->sha256, Sha256Of("content"));
  EXPECT_EQ(cache_->Lookup(hashed->stat), Sha256Of("content"));
}

TEST_F(FileHasherTest, BatchedCacheEntriesAreWrittenOnFlush) {
  WriteFileOrDie(tmp_.Path("a"), "a");
  WriteFileOrDie(tmp_.Path("b"), "b");
  FileHasher hasher(&fs_, cache_.get(), /*cache_batch=*/100);
  absl::StatusOr<HashedFile> a = hasher.Hash(tmp_.Path("a"));
  absl::StatusOr<HashedFile> b = hasher.Hash(tmp_.Path("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(cache_->Lookup(a->stat), std::nullopt);  // still buffered
  hasher.Flush();
  EXPECT_EQ(cache_->Lookup(a->stat), Sha256Of("a"));
  EXPECT_EQ(cache_->Lookup(b->stat), Sha256Of("b"));
}

TEST_F(FileHasherTest, RetriesAFileThatChangedWhileRead) {
  const std::string path = tmp_.Path("f");
  const std::string content = RandomBytes(3 * kHashChunkSize, 3);
  WriteFileOrDie(path, content);
  fs_.ChangeWhileRead(path, /*opens=*/2);
  uint64_t reported = 0;
  FileHasher hasher(&fs_, cache_.get());
  HashFileOptions options;
  options.on_read = [&](uint64_t n) { reported += n; };
  absl::StatusOr<HashedFile> hashed = hasher.Hash(path, options);
  ASSERT_TRUE(hashed.ok()) << hashed.status();
  EXPECT_EQ(hashed->sha256, Sha256Of(content));
  EXPECT_EQ(fs_.opens(path), 3u);
  EXPECT_EQ(reported, content.size());  // bytes read again are not reported twice
  EXPECT_EQ(fs_.bytes_read(), 3 * content.size());
}

TEST_F(FileHasherTest, GivesUpOnAFileThatKeepsChanging) {
  const std::string path = tmp_.Path("f");
  WriteFileOrDie(path, "still being written");
  fs_.ChangeWhileRead(path);
  absl::StatusOr<HashedFile> hashed = HashFile(&fs_, path, cache_.get());
  EXPECT_EQ(hashed.status().code(), absl::StatusCode::kAborted) << hashed.status();
  EXPECT_THAT(std::string(hashed.status().message()),
              HasSubstr(path + " changed while it was being hashed"));
  EXPECT_EQ(fs_.opens(path), static_cast<uint64_t>(kHashFileRetries + 1));

  // Nothing was cached for it.
  fs_.Reset();
  absl::StatusOr<HashedFile> again = HashFile(&fs_, path, cache_.get());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->from_cache);
}

TEST_F(FileHasherTest, InjectedErrorsKeepTheirCodeAndNameThePath) {
  const std::string path = tmp_.Path("f");
  WriteFileOrDie(path, "data");
  struct Case {
    FaultFileSystem::Op op;
    int err;
  };
  for (Case c :
       {Case{FaultFileSystem::Op::kOpen, EACCES}, Case{FaultFileSystem::Op::kRead, EIO},
        Case{FaultFileSystem::Op::kFstat, EIO}, Case{FaultFileSystem::Op::kOpen, ENOENT}}) {
    SCOPED_TRACE(c.err);
    fs_.Reset();
    fs_.FailOn(c.op, path, c.err);
    absl::StatusOr<HashedFile> hashed = HashFile(&fs_, path, cache_.get());
    EXPECT_EQ(hashed.status().code(), PosixError(c.err, "").code()) << hashed.status();
    EXPECT_THAT(std::string(hashed.status().message()), HasSubstr(path));
  }
  fs_.Reset();
  fs_.FailOn(FaultFileSystem::Op::kOpen, path, EACCES);
  EXPECT_EQ(HashFile(&fs_, path, nullptr).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(FileHasherTest, MissingFileIsNotFound) {
  absl::StatusOr<HashedFile> hashed = HashFile(&fs_, tmp_.Path("nope"), cache_.get());
  EXPECT_EQ(hashed.status().code(), absl::StatusCode::kNotFound) << hashed.status();
  EXPECT_THAT(std::string(hashed.status().message()), HasSubstr(tmp_.Path("nope")));
}

TEST_F(FileHasherTest, RefusesWhatIsNotARegularFile) {
  WriteFileOrDie(tmp_.Path("dir/target"), "data");
  ASSERT_EQ(symlink(tmp_.Path("dir/target").c_str(), tmp_.Path("link").c_str()), 0);

  absl::StatusOr<HashedFile> dir = HashFile(&fs_, tmp_.Path("dir"), nullptr);
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument) << dir.status();
  EXPECT_THAT(std::string(dir.status().message()), HasSubstr("is a directory"));

  absl::StatusOr<HashedFile> link = HashFile(&fs_, tmp_.Path("link"), nullptr);
  EXPECT_EQ(link.status().code(), absl::StatusCode::kInvalidArgument) << link.status();
  EXPECT_THAT(std::string(link.status().message()), HasSubstr(tmp_.Path("link") + " is a symlink"));
  EXPECT_EQ(fs_.bytes_read(), 0u);
}

TEST_F(FileHasherTest, CancelledBeforeStarting) {
  WriteFileOrDie(tmp_.Path("f"), "data");
  absl::StatusOr<HashedFile> hashed =
      HashFile(&fs_, tmp_.Path("f"), cache_.get(), [] { return true; });
  EXPECT_EQ(hashed.status().code(), absl::StatusCode::kCancelled) << hashed.status();
  EXPECT_EQ(fs_.bytes_read(), 0u);
}

TEST_F(FileHasherTest, CancelledMidwayThenReusable) {
  const std::string big = RandomBytes(4 * kHashChunkSize, 4);
  WriteFileOrDie(tmp_.Path("big"), big);
  WriteFileOrDie(tmp_.Path("abc"), "abc");
  bool cancel = false;
  fs_.SetReadHook([&](const std::string&) { cancel = true; });  // after the first chunk is asked
  FileHasher hasher(&fs_, cache_.get());
  HashFileOptions options;
  options.cancelled = [&] { return cancel; };
  absl::StatusOr<HashedFile> hashed = hasher.Hash(tmp_.Path("big"), options);
  EXPECT_EQ(hashed.status().code(), absl::StatusCode::kCancelled) << hashed.status();
  EXPECT_EQ(fs_.bytes_read(), kHashChunkSize);

  // The partial digest of the cancelled file does not leak into the next one.
  absl::StatusOr<HashedFile> abc = hasher.Hash(tmp_.Path("abc"));
  ASSERT_TRUE(abc.ok()) << abc.status();
  EXPECT_EQ(abc->sha256, Sha256Of("abc"));
}

}  // namespace
}  // namespace repro
