// The shim's lock-free hash tables: lookups, updates, eviction when full, concurrent use.
#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

extern "C" {
#include "client/shim/fixed_table.h"
}

namespace repro::testing {
namespace {

constexpr uint32_t kSlots = 64;

class FixedTableTest : public ::testing::Test {
 protected:
  shim_slot slots_[kSlots] = {};
  shim_table table_ = SHIM_TABLE_INIT(slots_, kSlots);
};

TEST_F(FixedTableTest, PutGetUpdate) {
  uint64_t key = shim_hash("abc", 3, 1);
  uint64_t value = 0;
  EXPECT_FALSE(shim_table_get(&table_, key, &value));
  shim_table_put(&table_, key, 5);
  ASSERT_TRUE(shim_table_get(&table_, key, &value));
  EXPECT_EQ(value, 5u);
  shim_table_put(&table_, key, 6);
  ASSERT_TRUE(shim_table_get(&table_, key, &value));
  EXPECT_EQ(value, 6u);
  EXPECT_TRUE(shim_table_get(&table_, key, nullptr));
}

TEST_F(FixedTableTest, HashIsSeededAndNeverZero) {
  EXPECT_NE(shim_hash("abc", 3, 1), shim_hash("abc", 3, 2));
  EXPECT_NE(shim_hash("abc", 3, 1), shim_hash("abd", 3, 1));
  EXPECT_NE(shim_hash("/a/b/c/d/e/f/g", 14, 1), shim_hash("/a/b/c/d/e/f/h", 14, 1));
  EXPECT_NE(shim_hash("", 0, 1), 0u);
}

TEST_F(FixedTableTest, FullTableEvictsAndNeverMixesUpValues) {
  std::vector<uint64_t> keys;
  for (uint64_t i = 0; i < 4 * kSlots; ++i) {
    uint64_t key = shim_hash(&i, sizeof(i), 9);
    keys.push_back(key);
    shim_table_put(&table_, key, i);
  }
  int found = 0;
  for (uint64_t i = 0; i < keys.size(); ++i) {
    uint64_t value;
    if (shim_table_get(&table_, keys[i], &value)) {
      EXPECT_EQ(value, i);
      ++found;
    }
  }
  EXPECT_GT(found, 0);
  EXPECT_LE(found, static_cast<int>(kSlots));
}

TEST_F(FixedTableTest, ConcurrentWritersAndReaders) {
  std::atomic<bool> wrong{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 20000; ++i) {
        uint64_t n = i % 200;
        uint64_t key = shim_hash(&n, sizeof(n), 3);
        if (t % 2 == 0) {
          shim_table_put(&table_, key, n);
        } else {
          uint64_t value;
          if (shim_table_get(&table_, key, &value) && value != n) wrong = true;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(wrong);
}

}  // namespace
}  // namespace repro::testing
