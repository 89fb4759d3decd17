// RocksPinStore: the embedded PinStore, in the node's RocksDB (column "catalog").
//
// Keys:  "v/" dataset "/" version               -> VersionInfo
//        "m/" dataset "/" version "/" be32(i)    -> manifest chunk i (manifest_chunks.h)
//        "p/" job                                -> Pin
// Every Create* is one synced write batch, so an acknowledged record survives a crash.
#ifndef REPRO_DAEMON_PIN_STORE_ROCKS_PIN_STORE_H_
#define REPRO_DAEMON_PIN_STORE_ROCKS_PIN_STORE_H_

#include "absl/synchronization/mutex.h"
#include "daemon/pin_store/pin_store.h"
#include "daemon/store/rocks_store.h"

namespace repro {

// Thread-safe. Create-if-absent is serialized by a mutex: this process is the only writer of
// the database (RocksStore holds the data dir lock).
class RocksPinStore : public PinStore {
 public:
  // `store` is not owned and must outlive this object.
  explicit RocksPinStore(RocksStore* store) : store_(store) {}

  absl::StatusOr<Created<v1::VersionInfo>> CreateVersion(const v1::VersionInfo& info,
                                                         const v1::Manifest& manifest) override;
  absl::StatusOr<v1::VersionInfo> GetVersion(absl::string_view dataset,
                                             absl::string_view version) override;
  absl::StatusOr<v1::Manifest> GetManifest(absl::string_view dataset,
                                           absl::string_view version) override;
  absl::StatusOr<std::vector<v1::VersionInfo>> ListVersions(absl::string_view dataset) override;
  absl::StatusOr<Created<v1::Pin>> CreatePin(const v1::Pin& pin) override;
  absl::StatusOr<v1::Pin> GetPin(absl::string_view job) override;
  absl::StatusOr<std::vector<v1::Pin>> ListPins() override;
  std::string mode() const override { return "embedded"; }

 private:
  RocksStore* const store_;
  absl::Mutex create_mu_;  // serializes check-then-write in Create*
};

}  // namespace repro

#endif  // REPRO_DAEMON_PIN_STORE_ROCKS_PIN_STORE_H_
