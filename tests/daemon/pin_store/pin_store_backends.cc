#include "tests/daemon/pin_store/pin_store_backends.h"

#include "absl/time/time.h"
#include "daemon/etcd/etcd_client.h"
#include "daemon/etcd/etcd_keys.h"
#include "daemon/etcd/etcd_mirror.h"
#include "daemon/pin_store/etcd_pin_store.h"
#include "daemon/pin_store/rocks_pin_store.h"
#include "daemon/store/rocks_store.h"
#include "tests/testutil/etcd_cluster.h"

namespace repro {
namespace {

class RocksHandle : public PinStoreHandle {
 public:
  explicit RocksHandle(std::unique_ptr<RocksStore> db)
      : db_(std::move(db)), store_(db_.get()) {}
  PinStore* store() override { return &store_; }

 private:
  std::unique_ptr<RocksStore> db_;
  RocksPinStore store_;
};

// One single-member etcd for the whole test binary (the suite tests the store's logic; the
// integration suite runs a real 3-member cluster). Stopped when the binary exits.
absl::StatusOr<testing::EtcdCluster*> SharedEtcd() {
  struct Shared {
    testing::TempDir dir;
    testing::EtcdCluster cluster{dir.Path("etcd"), 1};
    absl::Status started = cluster.Start();
  };
  static Shared shared;
  if (!shared.started.ok()) return shared.started;
  return &shared.cluster;
}

class EtcdHandle : public PinStoreHandle {
 public:
  explicit EtcdHandle(std::unique_ptr<EtcdClient> etcd)
      : etcd_(std::move(etcd)),
        mirror_(etcd_.get(), EtcdPinStore::MirroredPrefixes()),
        store_(etcd_.get(), &mirror_) {}
  PinStore* store() override { return &store_; }
  EtcdMirror& mirror() { return mirror_; }

 private:
  std::unique_ptr<EtcdClient> etcd_;
  EtcdMirror mirror_;
  EtcdPinStore store_;
};

absl::StatusOr<std::unique_ptr<PinStoreHandle>> MakeEtcdStore(const std::string&) {
  absl::StatusOr<testing::EtcdCluster*> cluster = SharedEtcd();
  if (!cluster.ok()) return cluster.status();
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Create({.endpoints = {(*cluster)->Endpoint(0)}});
  if (!etcd.ok()) return etcd.status();
  // A fresh, empty store: nothing under /repro/.
  etcdserverpb::DeleteRangeRequest wipe;
  wipe.set_key(std::string(etcd_keys::kRoot));
  wipe.set_range_end(etcd_keys::PrefixEnd(etcd_keys::kRoot));
  absl::Status wiped = (*etcd)->DeleteRange(wipe).status();
  if (!wiped.ok()) return wiped;
  auto handle = std::make_unique<EtcdHandle>(*std::move(etcd));
  handle->mirror().Start();
  if (!handle->mirror().WaitUntilCurrent(absl::Seconds(10))) {
    return absl::DeadlineExceededError(handle->mirror().StatusText());
  }
  return std::unique_ptr<PinStoreHandle>(std::move(handle));
}

}  // namespace

std::vector<PinStoreBackend> AllPinStoreBackends() {
  std::vector<PinStoreBackend> backends;
  backends.push_back({"Embedded", [](const std::string& dir)
                                      -> absl::StatusOr<std::unique_ptr<PinStoreHandle>> {
                        auto db = RocksStore::Open({.data_dir = dir + "/data"});
                        if (!db.ok()) return db.status();
                        return std::unique_ptr<PinStoreHandle>(new RocksHandle(*std::move(db)));
                      }});
  backends.push_back({"Etcd", MakeEtcdStore});
  return backends;
}

}  // namespace repro
