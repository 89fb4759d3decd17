#include "daemon/hashing/tree_hasher.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "common/sha256.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/hashing/manifest.h"
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

class TreeHasherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<RocksStore>> store =
        RocksStore::Open({.data_dir = tmp_.Path("db")});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    cache_ = std::make_unique<HashCache>(store_.get(), HashCacheOptions{absl::ZeroDuration()});
    root_ = tmp_.Path("v1");
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  }

  // Writes `relative` under the version root and remembers its content.
  void Write(const std::string& relative, std::string content) {
    WriteFileOrDie(root_ + "/" + relative, content);
    contents_[relative] = std::move(content);
  }

  // A tree with nesting, a directory larger than one lstat batch, a few files of several chunks
  // and an empty file.
  void WriteMixedTree() {
    Write("top.txt", "top");
    Write("empty", "");
    for (int i = 0; i < 300; ++i) Write(absl::StrCat("many/f", i), absl::StrCat("file ", i));
    for (int i = 0; i < 20; ++i) {
      Write(absl::StrCat("a/b", i % 3, "/c/d", i), std::string(100 * i, static_cast<char>(i)));
    }
    Write("large/one", std::string(3 * kHashChunkSize + 7, 'x'));
    Write("large/two", std::string(2 * kHashChunkSize, 'y'));
    Write("large/three", std::string(kHashChunkSize - 1, 'z'));
  }

  uint64_t TotalBytes() const {
    uint64_t total = 0;
    for (const auto& [path, content] : contents_) total += content.size();
    return total;
  }

  absl::StatusOr<TreeHashResult> Hash(int threads, HashCache* cache = nullptr,
                                      const TreeHashOptions& options = {}) {
    TreeHasher hasher(&fs_, cache, threads);
    return hasher.HashTree(root_, options);
  }

  static void ExpectError(const absl::StatusOr<TreeHashResult>& result, absl::StatusCode code,
                          const std::string& mentions) {
    EXPECT_EQ(result.status().code(), code) << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(mentions));
  }

  TempDir tmp_;
  FaultFileSystem fs_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<HashCache> cache_;
  std::string root_;
  std::map<std::string, std::string> contents_;  // relative path -> content, sorted bytewise
};

TEST_F(TreeHasherTest, HashesANestedTree) {
  WriteMixedTree();
  absl::StatusOr<TreeHashResult> result = Hash(4);
  ASSERT_TRUE(result.ok()) << result.status();

  ASSERT_EQ(result->manifest.files_size(), static_cast<int>(contents_.size()));
  auto expected = contents_.begin();
  for (const v1::FileEntry& file : result->manifest.files()) {
    EXPECT_EQ(file.path(), expected->first);
    EXPECT_EQ(file.size(), expected->second.size()) << file.path();
    EXPECT_EQ(file.sha256(), Sha256Of(expected->second)) << file.path();
    EXPECT_NE(file.mtime_ns(), 0) << file.path();
    ++expected;
  }
  EXPECT_TRUE(ValidateManifest(result->manifest).ok());
  EXPECT_EQ(result->digest, ManifestDigest(result->manifest));
  EXPECT_EQ(result->files_hashed, contents_.size());
  EXPECT_EQ(result->files_cached, 0u);
  EXPECT_EQ(result->bytes_hashed, TotalBytes());
  EXPECT_EQ(result->total_bytes, TotalBytes());
  EXPECT_EQ(fs_.bytes_read(), TotalBytes());
}

TEST_F(TreeHasherTest, SameResultOnOneOrFourThreads) {
  WriteMixedTree();
  absl::StatusOr<TreeHashResult> one = Hash(1);
  absl::StatusOr<TreeHashResult> four = Hash(4);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_EQ(one->manifest.SerializeAsString(), four->manifest.SerializeAsString());
  EXPECT_EQ(one->digest, four->digest);
}

TEST_F(TreeHasherTest, LargeFilesAreHashedFirstLargestFirst) {
  WriteMixedTree();
  std::vector<std::string> read_order;
  fs_.SetReadHook([&](const std::string& path) {
    if (read_order.empty() || read_order.back() != path) read_order.push_back(path);
  });
  absl::StatusOr<TreeHashResult> result = Hash(/*threads=*/1);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_GE(read_order.size(), 2u);
  EXPECT_EQ(read_order[0], root_ + "/large/one");
  EXPECT_EQ(read_order[1], root_ + "/large/two");
}

TEST_F(TreeHasherTest, TrailingSlashDoesNotMatter) {
  Write("a", "1");
  TreeHasher hasher(&fs_, nullptr, 2);
  absl::StatusOr<TreeHashResult> plain = hasher.HashTree(root_);
  absl::StatusOr<TreeHashResult> slashed = hasher.HashTree(root_ + "//");
  ASSERT_TRUE(plain.ok() && slashed.ok());
  EXPECT_EQ(plain->manifest.SerializeAsString(), slashed->manifest.SerializeAsString());
}

TEST_F(TreeHasherTest, DefaultThreadCountIsTheCoreCount) {
  TreeHasher hasher(&fs_, nullptr, 0);
  EXPECT_EQ(hasher.threads(), std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
}

TEST_F(TreeHasherTest, RefusesSymlinks) {
  Write("data/real", "1");
  ASSERT_EQ(symlink("real", (root_ + "/data/alias").c_str()), 0);
  ExpectError(Hash(2), absl::StatusCode::kInvalidArgument,
              root_ +
                  "/data/alias is a symlink; a version must be a self-contained directory "
                  "tree (copy the data or register the link's target)");

  ASSERT_EQ(unlink((root_ + "/data/alias").c_str()), 0);
  ASSERT_EQ(symlink(tmp_.path().c_str(), (root_ + "/dirlink").c_str()), 0);
  ExpectError(Hash(2), absl::StatusCode::kInvalidArgument, root_ + "/dirlink is a symlink");
}

TEST_F(TreeHasherTest, RefusesFifosAndSockets) {
  Write("ok", "1");
  ASSERT_EQ(mkdir((root_ + "/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkfifo((root_ + "/sub/pipe").c_str(), 0644), 0);
  ExpectError(Hash(2), absl::StatusCode::kInvalidArgument, root_ + "/sub/pipe is a FIFO");
  ASSERT_EQ(unlink((root_ + "/sub/pipe").c_str()), 0);

  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string socket_path = root_ + "/sub/sock";
  ASSERT_LT(socket_path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  ExpectError(Hash(2), absl::StatusCode::kInvalidArgument, socket_path + " is a socket");
}

TEST_F(TreeHasherTest, UnreadableDirectoryOrFileIsPermissionDenied) {
  WriteMixedTree();
  fs_.FailOn(FaultFileSystem::Op::kListDirectory, root_ + "/a/b1", EACCES);
  ExpectError(Hash(4), absl::StatusCode::kPermissionDenied, root_ + "/a/b1");

  fs_.Reset();
  fs_.FailOn(FaultFileSystem::Op::kOpen, root_ + "/many/f17", EACCES);
  ExpectError(Hash(4), absl::StatusCode::kPermissionDenied, root_ + "/many/f17");

  fs_.Reset();
  fs_.FailOn(FaultFileSystem::Op::kStat, root_ + "/large/two", EACCES);
  ExpectError(Hash(4), absl::StatusCode::kPermissionDenied, root_ + "/large/two");
}

TEST_F(TreeHasherTest, ReadErrorStopsTheOtherWorkers) {
  // f0 is the only large file, so it is hashed first.
  Write("f0", std::string(kHashChunkSize, 'a'));
  for (int i = 1; i < 200; ++i) Write(absl::StrCat("f", i), std::string(1000, 'a'));
  fs_.FailOn(FaultFileSystem::Op::kRead, root_ + "/f0", EIO);
  // Slow reads down so that the failure comes long before the other files are done.
  fs_.SetReadHook(
      [](const std::string&) { std::this_thread::sleep_for(std::chrono::milliseconds(2)); });
  absl::StatusOr<TreeHashResult> result = Hash(2);
  ExpectError(result, PosixError(EIO, "").code(), "read " + root_ + "/f0");
  EXPECT_LT(fs_.opens(), 200u);
}

TEST_F(TreeHasherTest, FileChangingWhileHashedIsAborted) {
  Write("a", "1");
  Write("b", "2");
  fs_.ChangeWhileRead(root_ + "/b");
  ExpectError(Hash(2), absl::StatusCode::kAborted, root_ + "/b changed while it was being hashed");
}

TEST_F(TreeHasherTest, FileVanishingDuringTheWalkIsAborted) {
  Write("a", "1");
  Write("b", "2");
  fs_.FailOn(FaultFileSystem::Op::kOpen, root_ + "/b", ENOENT);  // listed, then gone
  ExpectError(Hash(2), absl::StatusCode::kAborted, root_ + " changed while it was being hashed");
  fs_.Reset();
  fs_.FailOn(FaultFileSystem::Op::kStat, root_ + "/a", ENOENT);
  ExpectError(Hash(2), absl::StatusCode::kAborted, root_ + "/a");
}

TEST_F(TreeHasherTest, MissingDirectoryIsNotFound) {
  TreeHasher hasher(&fs_, nullptr, 2);
  absl::StatusOr<TreeHashResult> result = hasher.HashTree(tmp_.Path("nope"));
  ExpectError(result, absl::StatusCode::kNotFound, tmp_.Path("nope") + " does not exist");
}

TEST_F(TreeHasherTest, FileOrSymlinkIsNotADirectory) {
  Write("a", "1");
  TreeHasher hasher(&fs_, nullptr, 2);
  ExpectError(hasher.HashTree(root_ + "/a"), absl::StatusCode::kInvalidArgument,
              root_ + "/a is a regular file, not a directory");
  ASSERT_EQ(symlink(root_.c_str(), tmp_.Path("latest").c_str()), 0);
  ExpectError(hasher.HashTree(tmp_.Path("latest")), absl::StatusCode::kInvalidArgument,
              tmp_.Path("latest") + " is a symlink");
}

TEST_F(TreeHasherTest, EmptyTreeIsRefused) {
  ExpectError(Hash(2), absl::StatusCode::kInvalidArgument, root_ + " contains no files");
  ASSERT_EQ(mkdir((root_ + "/empty_dir").c_str(), 0755), 0);
  ExpectError(Hash(2), absl::StatusCode::kInvalidArgument, root_ + " contains no files");
}

TEST_F(TreeHasherTest, ProgressIsMonotonicAndEndsAtTheTotals) {
  for (int i = 0; i < 60; ++i) Write(absl::StrCat("f", i), std::string(10000 + i, 'p'));
  fs_.SetReadHook(
      [](const std::string&) { std::this_thread::sleep_for(std::chrono::milliseconds(1)); });
  std::vector<v1::RegisterProgress> reports;
  const std::thread::id caller = std::this_thread::get_id();
  TreeHashOptions options;
  options.progress_interval = absl::Milliseconds(5);
  options.progress = [&](const v1::RegisterProgress& p) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    reports.push_back(p);
  };
  absl::StatusOr<TreeHashResult> result = Hash(2, cache_.get(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_GE(reports.size(), 3u);  // ~60 ms of reads reported every 5 ms, plus the final one

  for (size_t i = 1; i < reports.size(); ++i) {
    EXPECT_EQ(reports[i].files_total(), reports[0].files_total());
    EXPECT_EQ(reports[i].bytes_total(), reports[0].bytes_total());
    EXPECT_GE(reports[i].files_done(), reports[i - 1].files_done());
    EXPECT_GE(reports[i].bytes_done(), reports[i - 1].bytes_done());
    EXPECT_GE(reports[i].files_cached(), reports[i - 1].files_cached());
    EXPECT_LE(reports[i].files_done(), reports[i].files_total());
    EXPECT_LE(reports[i].bytes_done(), reports[i].bytes_total());
  }
  const v1::RegisterProgress& last = reports.back();
  EXPECT_EQ(last.files_total(), contents_.size());
  EXPECT_EQ(last.files_done(), contents_.size());
  EXPECT_EQ(last.bytes_total(), TotalBytes());
  EXPECT_EQ(last.bytes_done(), TotalBytes());
  EXPECT_EQ(last.files_cached(), 0u);
}

TEST_F(TreeHasherTest, SecondRunIsServedFromTheCache) {
  WriteMixedTree();
  absl::StatusOr<TreeHashResult> first = Hash(4, cache_.get());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->files_cached, 0u);

  fs_.Reset();
  v1::RegisterProgress last;
  TreeHashOptions options;
  options.progress = [&](const v1::RegisterProgress& p) { last = p; };
  absl::StatusOr<TreeHashResult> second = Hash(4, cache_.get(), options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(fs_.bytes_read(), 0u);
  EXPECT_EQ(second->files_cached, contents_.size());
  EXPECT_EQ(second->files_hashed, 0u);
  EXPECT_EQ(second->bytes_hashed, 0u);
  EXPECT_EQ(second->total_bytes, TotalBytes());
  EXPECT_EQ(second->digest, first->digest);
  EXPECT_EQ(second->manifest.SerializeAsString(), first->manifest.SerializeAsString());
  EXPECT_EQ(last.files_cached(), contents_.size());
  EXPECT_EQ(last.files_done(), contents_.size());

  // One changed file is read again; the rest still come from the cache.
  WriteFileOrDie(root_ + "/large/one", "now small");
  fs_.Reset();
  absl::StatusOr<TreeHashResult> third = Hash(4, cache_.get());
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->files_hashed, 1u);
  EXPECT_EQ(fs_.bytes_read(), 9u);
  EXPECT_NE(third->digest, first->digest);
}

TEST_F(TreeHasherTest, CancelledBeforeStarting) {
  Write("a", "1");
  TreeHashOptions options;
  options.cancelled = [] { return true; };
  ExpectError(Hash(2, nullptr, options), absl::StatusCode::kCancelled, root_);
  EXPECT_EQ(fs_.opens(), 0u);
}

TEST_F(TreeHasherTest, CancelledMidway) {
  for (int i = 0; i < 200; ++i) Write(absl::StrCat("f", i), std::string(1000, 'c'));
  std::atomic<bool> cancel{false};
  fs_.SetReadHook([&](const std::string&) {
    cancel = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  });
  TreeHashOptions options;
  options.cancelled = [&] { return cancel.load(); };
  ExpectError(Hash(2, cache_.get(), options), absl::StatusCode::kCancelled, "cancelled");
  EXPECT_LT(fs_.opens(), 200u);
}

}  // namespace
}  // namespace repro
