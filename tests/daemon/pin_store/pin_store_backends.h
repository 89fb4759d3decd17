// The PinStore backends that tests/daemon/pin_store/pin_store_test.cc runs against.
#ifndef REPRO_TESTS_DAEMON_PIN_STORE_PIN_STORE_BACKENDS_H_
#define REPRO_TESTS_DAEMON_PIN_STORE_PIN_STORE_BACKENDS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/pin_store/pin_store.h"
#include "tests/testutil/temp_dir.h"

namespace repro {

// Owns a PinStore and whatever it runs on (a RocksDB, an etcd cluster).
class PinStoreHandle {
 public:
  virtual ~PinStoreHandle() = default;
  virtual PinStore* store() = 0;
};

struct PinStoreBackend {
  std::string name;
  // Creates a fresh, empty store with its state under `dir`.
  std::function<absl::StatusOr<std::unique_ptr<PinStoreHandle>>(const std::string& dir)> make;
};

std::vector<PinStoreBackend> AllPinStoreBackends();

}  // namespace repro

#endif  // REPRO_TESTS_DAEMON_PIN_STORE_PIN_STORE_BACKENDS_H_
