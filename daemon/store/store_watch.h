// StoreWatch: watches whether the node's database accepts writes, so that a storage fault is
// reported while it lasts (gRPC health NOT_SERVING, repro_store_writable 0 on /metrics) and
// noticed when it clears without waiting for a write.
//
//   StoreWatch watch(store, &metrics, [&](const absl::Status& writable) {
//     grpc->SetServing(writable.ok());
//   });
#ifndef REPRO_DAEMON_STORE_STORE_WATCH_H_
#define REPRO_DAEMON_STORE_STORE_WATCH_H_

#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/rocks_store.h"

namespace repro {

// Thread-safe. Runs one thread until destroyed.
class StoreWatch {
 public:
  using OnChange = std::function<void(const absl::Status& writable)>;

  // Every `interval`, calls store->Recover() and, when whether writes are accepted changed since
  // the last check (the first check counts as a change only when not writable), calls `on_change`
  // on the watch thread with the new state; after every check that finds writes accepted, calls
  // `while_writable` when set (e.g. GapRecorder::FlushPending: what a fault lost is journaled as
  // soon as writing works again). `store` and `metrics` are not owned and must outlive this.
  StoreWatch(RocksStore* store, Metrics* metrics, OnChange on_change,
             absl::Duration interval = absl::Seconds(1),
             std::function<void()> while_writable = nullptr);
  ~StoreWatch();

  StoreWatch(const StoreWatch&) = delete;
  StoreWatch& operator=(const StoreWatch&) = delete;

 private:
  void Run();

  RocksStore* const store_;
  Gauge* const writable_;
  const OnChange on_change_;
  const std::function<void()> while_writable_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_STORE_WATCH_H_
