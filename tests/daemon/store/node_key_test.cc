#include "daemon/store/node_key.h"

#include <sys/stat.h>

#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using testing::TempDir;

TEST(NodeKeyTest, CreatesOnceThenLoadsTheSameKey) {
  TempDir dir;
  std::string path = dir.Path("node_key.pem");
  absl::StatusOr<std::unique_ptr<NodeKey>> first = NodeKey::LoadOrCreate(path);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<std::unique_ptr<NodeKey>> second = NodeKey::LoadOrCreate(path);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*first)->public_key(), (*second)->public_key());
  EXPECT_EQ((*first)->public_key().size(), 32u);
}

TEST(NodeKeyTest, SignaturesVerifyOnlyForTheSameMessageAndKey) {
  TempDir dir;
  auto a = NodeKey::LoadOrCreate(dir.Path("a.pem"));
  auto b = NodeKey::LoadOrCreate(dir.Path("b.pem"));
  ASSERT_TRUE(a.ok() && b.ok());
  std::string sig = (*a)->Sign("head");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(NodeKey::Verify((*a)->public_key(), "head", sig));
  EXPECT_FALSE(NodeKey::Verify((*a)->public_key(), "heaD", sig));
  EXPECT_FALSE(NodeKey::Verify((*b)->public_key(), "head", sig));
  sig[10] ^= 1;
  EXPECT_FALSE(NodeKey::Verify((*a)->public_key(), "head", sig));
  EXPECT_FALSE(NodeKey::Verify("short", "head", sig));
}

TEST(NodeKeyTest, GarbageKeyFileIsDataLoss) {
  TempDir dir;
  testing::WriteFileOrDie(dir.Path("node_key.pem"), "not a key");
  auto key = NodeKey::LoadOrCreate(dir.Path("node_key.pem"));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace repro
