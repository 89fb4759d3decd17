#include "tests/client/shim/test_pins.h"

#include "proto/shim/shim_protocol.h"
#include "gtest/gtest.h"

namespace repro::testing {

std::vector<uint8_t> PinMessage(const std::vector<TestDataset>& datasets, uint64_t seed,
                                uint64_t rank_seed, uint64_t mode) {
  std::vector<uint8_t> buf(REPRO_SHIM_MAX_MESSAGE);
  repro_shim_writer w;
  repro_shim_writer_init(&w, buf.data(), buf.size(), REPRO_SHIM_PIN, 1);
  repro_shim_put_u64(&w, REPRO_SHIM_F_SEED, seed);
  repro_shim_put_u64(&w, REPRO_SHIM_F_RANK_SEED, rank_seed);
  repro_shim_put_u64(&w, REPRO_SHIM_F_MODE, mode);
  for (const TestDataset& d : datasets) {
    uint32_t at = repro_shim_begin_nested(&w, REPRO_SHIM_F_DATASET);
    repro_shim_put_str(&w, REPRO_SHIM_F_NAME, d.name.data(), d.name.size());
    repro_shim_put_str(&w, REPRO_SHIM_F_VERSION, d.version.data(), d.version.size());
    repro_shim_put_str(&w, REPRO_SHIM_F_ROOT, d.root.data(), d.root.size());
    repro_shim_put_str(&w, REPRO_SHIM_F_PINNED_DIR, d.pinned_dir.data(), d.pinned_dir.size());
    for (const std::string& other : d.other_dirs) {
      repro_shim_put_str(&w, REPRO_SHIM_F_OTHER_DIR, other.data(), other.size());
    }
    repro_shim_end_nested(&w, at);
  }
  buf.resize(repro_shim_finish(&w));
  return buf;
}

std::unique_ptr<shim_pin> MakePin(const std::vector<TestDataset>& datasets) {
  auto pin = std::make_unique<shim_pin>();
  std::vector<uint8_t> msg = PinMessage(datasets);
  if (msg.empty() || shim_pin_from_message(pin.get(), msg.data(), msg.size()) != 0) {
    ADD_FAILURE() << "the shim rejected the test pin";
    std::abort();
  }
  return pin;
}

}  // namespace repro::testing
