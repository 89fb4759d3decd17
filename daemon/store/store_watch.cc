#include "daemon/store/store_watch.h"

#include <utility>

#include "spdlog/spdlog.h"

namespace repro {

StoreWatch::StoreWatch(RocksStore* store, Metrics* metrics, OnChange on_change,
                       absl::Duration interval, std::function<void()> while_writable)
    : store_(store),
      writable_(metrics->GetGauge("repro_store_writable",
                                  "1 while the database accepts writes; 0 during a storage fault "
                                  "(gRPC health is then NOT_SERVING)")),
      on_change_(std::move(on_change)),
      while_writable_(std::move(while_writable)),
      interval_(interval) {
  writable_->Set(1);
  thread_ = std::thread([this] { Run(); });
}

StoreWatch::~StoreWatch() {
  stop_.Notify();
  thread_.join();
}

void StoreWatch::Run() {
  bool writable = true;
  do {
    absl::Status status = store_->Recover();
    if (status.ok() != writable) {
      writable = status.ok();
      writable_->Set(writable ? 1 : 0);
      if (writable) {
        spdlog::info("storage recovered: writes are accepted again");
      } else {
        spdlog::error("{}; health is NOT_SERVING until it clears", std::string(status.message()));
      }
      on_change_(status);
    }
    if (writable && while_writable_) while_writable_();
  } while (!stop_.WaitForNotificationWithTimeout(interval_));
}

}  // namespace repro
