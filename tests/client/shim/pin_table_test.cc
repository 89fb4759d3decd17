// The pin as the shim holds it: parsed from reprod's PIN message (and refused when malformed),
// or taken from $REPRO_PINNED, and the name rules under a root.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/client/shim/test_pins.h"

extern "C" {
#include "proto/shim/shim_protocol.h"
}

namespace repro::testing {
namespace {

TEST(PinTableTest, ParsesReprodsPin) {
  std::unique_ptr<shim_pin> pin = MakePin({{"users", "v7", "/ml/users", "snap-7", {"snap-6", "v8"}},
                                           {"clicks", "2024", "/ml/clicks", "2024", {}}});
  EXPECT_TRUE(pin->complete);
  EXPECT_TRUE(pin->has_seeds);
  EXPECT_EQ(pin->seed, 7u);
  EXPECT_EQ(pin->rank_seed, 8u);
  ASSERT_EQ(pin->count, 2u);
  EXPECT_STREQ(pin->datasets[0].pinned_path, "/ml/users/snap-7");
  EXPECT_STREQ(pin->datasets[0].version, "v7");
  EXPECT_EQ(shim_pin_classify_name(pin.get(), 0, "snap-7", 6), SHIM_NAME_PINNED);
  EXPECT_EQ(shim_pin_classify_name(pin.get(), 0, "v8", 2), SHIM_NAME_OTHER);
  EXPECT_EQ(shim_pin_classify_name(pin.get(), 0, "latest", 6), SHIM_NAME_ALIAS);
  EXPECT_EQ(shim_pin_classify_name(pin.get(), 1, "v8", 2), SHIM_NAME_ALIAS);  // another dataset's
  EXPECT_EQ(shim_pin_find_root(pin.get(), "/ml/users/x", 11), 0);
  EXPECT_EQ(shim_pin_find_root(pin.get(), "/ml/users", 9), 0);
  EXPECT_EQ(shim_pin_find_root(pin.get(), "/ml/users2/x", 12), -1);
  EXPECT_EQ(shim_pin_find_root(pin.get(), "/ml/clicks/2024/a", 17), 1);
}

TEST(PinTableTest, RefusesMalformedPins) {
  auto pin = std::make_unique<shim_pin>();
  std::vector<uint8_t> good = PinMessage({{"d", "v1", "/ml/d", "v1", {}}});
  ASSERT_EQ(shim_pin_from_message(pin.get(), good.data(), good.size()), 0);
  std::vector<uint8_t> truncated(good.begin(), good.end() - 1);
  EXPECT_EQ(shim_pin_from_message(pin.get(), truncated.data(), truncated.size()), -1);
  for (const TestDataset& bad : std::vector<TestDataset>{
           {"d", "v1", "relative/root", "v1", {}},
           {"d", "v1", "/ml/d/", "v1", {}},
           {"d", "v1", "/ml/d", "a/b", {}},
           {"d", "v1", "/ml/d", "..", {}},
           {"d", "v1", "/ml/d", "v1", {"x/y"}},
       }) {
    std::vector<uint8_t> msg = PinMessage({bad});
    EXPECT_EQ(shim_pin_from_message(pin.get(), msg.data(), msg.size()), -1) << bad.root;
  }
  std::vector<uint8_t> bad_mode = PinMessage({{"d", "v1", "/ml/d", "v1", {}}}, 1, 2, 9);
  EXPECT_EQ(shim_pin_from_message(pin.get(), bad_mode.data(), bad_mode.size()), -1);
}

TEST(PinTableTest, EnvironmentRoundTrip) {
  std::unique_ptr<shim_pin> pin =
      MakePin({{"users", "v7", "/ml/users", "snap-7", {}}, {"clicks", "2024", "/c", "2024", {}}});
  char buf[256];
  ASSERT_EQ(shim_pin_to_env(pin.get(), buf, sizeof(buf)), 0);
  EXPECT_STREQ(buf, "users@v7=/ml/users/snap-7:clicks@2024=/c/2024");
  auto copy = std::make_unique<shim_pin>();
  EXPECT_EQ(shim_pin_from_env(copy.get(), buf, REPRO_SHIM_MODE_ENFORCE), 2);
  EXPECT_FALSE(copy->complete);
  EXPECT_EQ(copy->mode, REPRO_SHIM_MODE_ENFORCE);
  EXPECT_STREQ(copy->datasets[0].root, "/ml/users");
  EXPECT_STREQ(copy->datasets[0].pinned_dir, "snap-7");
  EXPECT_STREQ(copy->datasets[1].name, "clicks");
  EXPECT_EQ(shim_pin_to_env(pin.get(), buf, 10), -1);  // does not fit
  EXPECT_EQ(shim_pin_from_env(copy.get(), "junk:d@v=relative:d@v=/x", 1), 0);
}

}  // namespace
}  // namespace repro::testing
