// PinStore: where pins and version registrations live — the node's RocksDB in embedded mode,
// etcd in cluster mode (--etcd_endpoints). Both implementations pass the same test suite
// (tests/daemon/pin_store/pin_store_test.cc).
//
// Records are immutable: Create* writes only when the key is absent (create-if-absent), and
// otherwise returns what is already stored, so racing writers on any node see one winner.
//
//   ASSIGN_OR_RETURN(Created<v1::Pin> stored, pins->CreatePin(pin));
//   if (!stored.created && !SamePin(stored.value, pin)) { /* conflict */ }
#ifndef REPRO_DAEMON_PIN_STORE_PIN_STORE_H_
#define REPRO_DAEMON_PIN_STORE_PIN_STORE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "repro/v1/journal.pb.h"

namespace repro {

template <typename T>
struct Created {
  T value;       // the stored record: ours when created, else the one that was there
  bool created;  // true: this call wrote it
};

// Thread-safe. Every method may fail with UNAVAILABLE when the backing store cannot be reached
// (cluster mode); callers must fail closed.
class PinStore {
 public:
  virtual ~PinStore() = default;

  // Stores `info` and its `manifest` unless info.dataset@info.version exists.
  virtual absl::StatusOr<Created<v1::VersionInfo>> CreateVersion(const v1::VersionInfo& info,
                                                                 const v1::Manifest& manifest) = 0;
  // NOT_FOUND when not registered.
  virtual absl::StatusOr<v1::VersionInfo> GetVersion(absl::string_view dataset,
                                                     absl::string_view version) = 0;
  // NOT_FOUND when not registered; DATA_LOSS when the stored manifest is damaged.
  virtual absl::StatusOr<v1::Manifest> GetManifest(absl::string_view dataset,
                                                   absl::string_view version) = 0;
  // Versions of `dataset` (every dataset when empty), sorted by dataset then version.
  virtual absl::StatusOr<std::vector<v1::VersionInfo>> ListVersions(absl::string_view dataset) = 0;

  // Stores `pin` unless pin.job is already pinned.
  virtual absl::StatusOr<Created<v1::Pin>> CreatePin(const v1::Pin& pin) = 0;
  // NOT_FOUND when the job has no pin.
  virtual absl::StatusOr<v1::Pin> GetPin(absl::string_view job) = 0;
  // Every pin, sorted by job.
  virtual absl::StatusOr<std::vector<v1::Pin>> ListPins() = 0;

  // OK when the store can answer authoritatively now; UNAVAILABLE with the reason while its
  // backing store cannot be reached. Admission refuses while it is not OK (fail closed).
  virtual absl::Status CheckAvailable() { return absl::OkStatus(); }

  // "embedded" or "cluster".
  virtual std::string mode() const = 0;
};

}  // namespace repro

#endif  // REPRO_DAEMON_PIN_STORE_PIN_STORE_H_
