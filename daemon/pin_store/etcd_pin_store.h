// EtcdPinStore: the cluster-mode PinStore. Pins and versions live in etcd under /repro/
// (daemon/etcd/etcd_keys.h), so every node sees the same ones.
//
//   EtcdMirror mirror(etcd, EtcdPinStore::MirroredPrefixes());
//   mirror.Start();
//   EtcdPinStore pins(etcd, &mirror);
//   ASSIGN_OR_RETURN(Created<v1::Pin> stored, pins.CreatePin(pin));
//
// Writes are create-if-absent transactions (compare create_revision == 0, then put; otherwise
// read what is there), so racing writers on any nodes get exactly one winner. A manifest's
// chunks are written first, under an upload of their own, and the version key last, so a reader
// that sees a version finds its whole manifest.
//
// Reads come from the mirror (kept current by Watch). Records are immutable, so a mirrored
// record is valid even while etcd is unreachable. A miss is read from etcd (linearizable), so a
// pin made a moment ago on another node is found; a miss while etcd is unreachable is
// UNAVAILABLE, never NOT_FOUND. Lists come from the mirror while it is current, else from etcd.
#ifndef REPRO_DAEMON_PIN_STORE_ETCD_PIN_STORE_H_
#define REPRO_DAEMON_PIN_STORE_ETCD_PIN_STORE_H_

#include <string>
#include <vector>

#include "daemon/etcd/etcd_client.h"
#include "daemon/etcd/etcd_mirror.h"
#include "daemon/pin_store/pin_store.h"

namespace repro {

// Thread-safe.
class EtcdPinStore : public PinStore {
 public:
  // The prefixes `mirror` must follow for this store.
  static std::vector<MirroredPrefix> MirroredPrefixes();

  // Neither is owned; both must outlive the store. `mirror` follows at least MirroredPrefixes().
  EtcdPinStore(EtcdClient* etcd, EtcdMirror* mirror) : etcd_(etcd), mirror_(mirror) {}

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
  absl::Status CheckAvailable() override { return mirror_->CheckAvailable(); }
  std::string mode() const override { return "cluster"; }

 private:
  struct Stored {
    bool created = false;  // this call (or an earlier attempt of it) wrote the key
    std::string value;     // the value now stored
    int64_t mod_revision = 0;
  };
  // Writes `value` at `key` unless the key exists.
  absl::StatusOr<Stored> CreateIfAbsent(const std::string& key, const std::string& value);
  // Create-if-absent of `record` at `key`; the stored record and whether this call wrote it.
  template <typename T>
  absl::StatusOr<Created<T>> CreateRecord(const std::string& key, const T& record);
  // The record at `key` (mirror, else etcd); NOT_FOUND with `missing` when absent.
  template <typename T>
  absl::StatusOr<T> GetRecord(const std::string& key, absl::string_view missing);
  // Every record under `prefix`, in key order.
  template <typename T>
  absl::StatusOr<std::vector<T>> ListRecords(const std::string& prefix);
  // Every key-value under `prefix`, in key order, read from etcd at one revision in pages of
  // `page` keys.
  absl::StatusOr<std::vector<mvccpb::KeyValue>> RangePrefix(const std::string& prefix,
                                                            int64_t page);

  EtcdClient* const etcd_;
  EtcdMirror* const mirror_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_PIN_STORE_ETCD_PIN_STORE_H_
