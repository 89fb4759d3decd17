#include "tests/daemon/pin_store/pin_store_backends.h"

#include "daemon/pin_store/rocks_pin_store.h"
#include "daemon/store/rocks_store.h"

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

}  // namespace

std::vector<PinStoreBackend> AllPinStoreBackends() {
  std::vector<PinStoreBackend> backends;
  backends.push_back({"Embedded", [](const std::string& dir)
                                      -> absl::StatusOr<std::unique_ptr<PinStoreHandle>> {
                        auto db = RocksStore::Open({.data_dir = dir + "/data"});
                        if (!db.ok()) return db.status();
                        return std::unique_ptr<PinStoreHandle>(new RocksHandle(*std::move(db)));
                      }});
  return backends;
}

}  // namespace repro
