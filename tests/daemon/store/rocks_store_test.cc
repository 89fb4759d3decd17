#include "daemon/store/rocks_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

TEST(RocksStoreTest, WritesSurviveReopen) {
  TempDir dir;
  {
    auto store = RocksStore::Open({.data_dir = dir.Path("data")});
    ASSERT_TRUE(store.ok()) << store.status();
    rocksdb::WriteBatch batch;
    batch.Put((*store)->handle(Column::kCatalog), "k", "v");
    ASSERT_TRUE((*store)->WriteDurable(&batch).ok());
  }
  auto store = RocksStore::Open({.data_dir = dir.Path("data")});
  ASSERT_TRUE(store.ok()) << store.status();
  auto value = (*store)->Get(Column::kCatalog, "k");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value->value_or(""), "v");
  // Column families are separate key spaces.
  EXPECT_FALSE((*store)->Get(Column::kJournal, "k")->has_value());
}

TEST(RocksStoreTest, SecondOpenOfTheSameDirIsRefusedWithTheOwnersPid) {
  TempDir dir;
  auto first = RocksStore::Open({.data_dir = dir.path()});
  ASSERT_TRUE(first.ok());
  auto second = RocksStore::Open({.data_dir = dir.path()});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr(absl::StrCat("in use by another reprod (pid ", getpid(), ")")));
  first->reset();
  EXPECT_TRUE(RocksStore::Open({.data_dir = dir.path()}).ok());
}

TEST(RocksStoreTest, CorruptDatabaseIsDataLossWithAdvice) {
  TempDir dir;
  { ASSERT_TRUE(RocksStore::Open({.data_dir = dir.path()}).ok()); }
  // CURRENT names the MANIFEST; point it at garbage.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().filename().string().rfind("MANIFEST-", 0) == 0) {
      testing::WriteFileOrDie(entry.path().string(), std::string(4096, 'x'));
    }
  }
  auto store = RocksStore::Open({.data_dir = dir.path()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("is corrupt"));
}

TEST(RocksStoreTest, UnwritableDataDirIsRefused) {
  TempDir dir;
  testing::UnwritableDir ro(dir.Path("ro"));
  if (!ro.ok()) GTEST_SKIP() << "cannot make a directory unwritable here";
  auto store = RocksStore::Open({.data_dir = dir.Path("ro")});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("is not writable"));
}

TEST(RocksStoreTest, DataDirThatIsAFileIsRefused) {
  TempDir dir;
  testing::WriteFileOrDie(dir.Path("file"), "x");
  auto store = RocksStore::Open({.data_dir = dir.Path("file")});
  EXPECT_FALSE(store.ok());
}

TEST(RocksStoreTest, ScanPrefixStopsAtPrefixEnd) {
  TempDir dir;
  auto store = RocksStore::Open({.data_dir = dir.path()});
  ASSERT_TRUE(store.ok());
  rocksdb::WriteBatch batch;
  for (const char* key : {"a/1", "a/2", "ab/1", "b/1"}) {
    batch.Put((*store)->handle(Column::kCatalog), key, "v");
  }
  ASSERT_TRUE((*store)->WriteDurable(&batch).ok());
  std::vector<std::string> keys;
  ASSERT_TRUE((*store)
                  ->ScanPrefix(Column::kCatalog, "a/",
                               [&](absl::string_view k, absl::string_view) {
                                 keys.emplace_back(k);
                                 return true;
                               })
                  .ok());
  EXPECT_THAT(keys, ::testing::ElementsAre("a/1", "a/2"));
}

}  // namespace
}  // namespace repro
