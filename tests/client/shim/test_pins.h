// Pins for the shim's unit tests, as reprod would send them: PIN messages built with the protocol
// writer and loaded through the shim's own parser.
//
//   std::unique_ptr<shim_pin> pin = MakePin({{"ds", "v1", "/ml/ds", "v1", {"v2"}}});
#ifndef REPRO_TESTS_CLIENT_SHIM_TEST_PINS_H_
#define REPRO_TESTS_CLIENT_SHIM_TEST_PINS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "client/shim/pin_table.h"
}

namespace repro::testing {

struct TestDataset {
  std::string name;
  std::string version;
  std::string root;
  std::string pinned_dir;
  std::vector<std::string> other_dirs;
};

// A PIN message (header included) for `datasets`, with the given seeds and mode.
std::vector<uint8_t> PinMessage(const std::vector<TestDataset>& datasets, uint64_t seed = 7,
                                uint64_t rank_seed = 8, uint64_t mode = 1);

// The pin the shim makes of PinMessage(datasets); aborts the test if the shim rejects it.
std::unique_ptr<shim_pin> MakePin(const std::vector<TestDataset>& datasets);

}  // namespace repro::testing

#endif  // REPRO_TESTS_CLIENT_SHIM_TEST_PINS_H_
