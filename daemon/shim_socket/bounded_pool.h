// BoundedPool: a few threads running queued tasks, with a bounded queue: a task that does not fit
// is refused at once rather than queued without end. reprod hashes executables on one, so a huge
// or slow file occupies one of its threads, never a shim worker.
//
//   BoundedPool pool("exe-hash", /*threads=*/2, /*max_queued=*/1024);
//   if (!pool.Submit([] { Hash(...); })) CountRefused();
//   pool.Stop();  // runs what was queued, then joins
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_BOUNDED_POOL_H_
#define REPRO_DAEMON_SHIM_SOCKET_BOUNDED_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace repro {

class BoundedPool {
 public:
  // Starts max(1, threads) threads named `name`.
  BoundedPool(const std::string& name, int threads, size_t max_queued);
  ~BoundedPool();  // Stop()
  BoundedPool(const BoundedPool&) = delete;
  BoundedPool& operator=(const BoundedPool&) = delete;

  // Queues `task`; false (and `task` is dropped unrun) when max_queued tasks wait already or the
  // pool is stopped.
  bool Submit(std::function<void()> task);

  // Runs the tasks still queued, then joins the threads. Idempotent.
  void Stop();

 private:
  void Loop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !tasks_.empty(); }

  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_BOUNDED_POOL_H_
