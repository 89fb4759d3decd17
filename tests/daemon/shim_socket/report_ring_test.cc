// The report ring between the shim's writer (proto/shim/shim_ring.h) and reprod's ReportRing:
// order across many wrap-arounds, the doorbell rule, a full ring, and a damaged one.
#include "daemon/shim_socket/report_ring.h"

#include <sys/mman.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/shim/shim_ring.h"

namespace repro {
namespace {

class ReportRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ring = ReportRing::Create();
    ASSERT_TRUE(ring.ok()) << ring.status();
    ring_ = *std::move(ring);
    // The shim's own mapping of the descriptor it received.
    void* shim =
        mmap(nullptr, REPRO_SHIM_RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ring_->fd(), 0);
    ASSERT_NE(shim, MAP_FAILED);
    shim_ = static_cast<uint8_t*>(shim);
  }
  void TearDown() override { munmap(shim_, REPRO_SHIM_RING_SIZE); }

  int Put(const std::string& message) {
    return repro_shim_ring_put(shim_, reinterpret_cast<const uint8_t*>(message.data()),
                               static_cast<uint32_t>(message.size()));
  }
  std::vector<std::string> Drain() {
    std::vector<std::string> out;
    EXPECT_GE(ring_->Drain([&](absl::string_view m) { out.emplace_back(m); }), 0);
    return out;
  }

  std::unique_ptr<ReportRing> ring_;
  uint8_t* shim_ = nullptr;
};

TEST_F(ReportRingTest, TheFirstReportWakesReprodAndTheRestRideAlong) {
  EXPECT_EQ(Put("one"), 1);  // a new ring sleeps: ring the doorbell
  EXPECT_EQ(Put("two"), 0);  // awake: no doorbell
  EXPECT_EQ(Drain(), (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(ring_->Sleep());  // empty: sleeps
  EXPECT_EQ(Put("three"), 1);
  EXPECT_EQ(Put("four"), 0);
  EXPECT_FALSE(ring_->Sleep());  // published meanwhile: stays awake
  EXPECT_EQ(Put("five"), 0);
  EXPECT_EQ(Drain(), (std::vector<std::string>{"three", "four", "five"}));
}

TEST_F(ReportRingTest, KeepsOrderAcrossWrapArounds) {
  int next_read = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string message = absl::StrCat("report ", i, std::string(i % 300, 'x'));
    if (Put(message) < 0) {
      for (const std::string& m : Drain()) {
        EXPECT_EQ(m.substr(0, m.find('x')), absl::StrCat("report ", next_read++));
      }
      ASSERT_GE(Put(message), 0) << i;
    }
  }
  for (const std::string& m : Drain()) {
    EXPECT_EQ(m.substr(0, m.find('x')), absl::StrCat("report ", next_read++));
  }
  EXPECT_EQ(next_read, 20000);
}

TEST_F(ReportRingTest, AFullRingRefusesWithoutWriting) {
  const std::string big(8000, 'b');
  int published = 0;
  while (Put(big) >= 0) ++published;
  EXPECT_EQ(published,
            static_cast<int>(REPRO_SHIM_RING_CAPACITY / repro_shim_ring_record_size(8000)));
  EXPECT_EQ(Drain().size(), static_cast<size_t>(published));
  EXPECT_GE(Put(big), 0);  // room again
}

TEST_F(ReportRingTest, ADamagedRingIsReportedAndStaysDamaged) {
  ASSERT_GE(Put("fine"), 0);
  uint32_t huge = REPRO_SHIM_MAX_MESSAGE + 1;  // the process overwrites its record's size
  std::memcpy(repro_shim_ring_data(shim_), &huge, sizeof(huge));
  EXPECT_EQ(ring_->Drain([](absl::string_view) { ADD_FAILURE(); }), -1);
  EXPECT_EQ(ring_->Drain([](absl::string_view) { ADD_FAILURE(); }), -1);
}

TEST_F(ReportRingTest, ATailBeyondTheCapacityIsDamage) {
  __atomic_store_n(repro_shim_ring_tail(shim_), REPRO_SHIM_RING_CAPACITY + 8, __ATOMIC_SEQ_CST);
  EXPECT_EQ(ring_->Drain([](absl::string_view) { ADD_FAILURE(); }), -1);
}

TEST_F(ReportRingTest, MadeIsUnknownUntilTheShimWritesItsCount) {
  EXPECT_FALSE(ring_->Made().has_value());  // no shim took the ring
  __atomic_store_n(repro_shim_ring_made(shim_), 0, __ATOMIC_RELEASE);
  EXPECT_EQ(ring_->Made(), 0u);
  __atomic_store_n(repro_shim_ring_made(shim_), 41, __ATOMIC_RELEASE);
  EXPECT_EQ(ring_->Made(), 41u);
}

}  // namespace
}  // namespace repro
