// BoundedPool: a few threads running queued tasks, with a bounded queue: a task that does not fit
// is refused at once rather than queued without end. Tasks belong to uids, which take turns
// (FairQueue), and one uid may queue at most max_queued_per_uid. reprod hashes executables on
// one, so a huge or slow file occupies one of its threads, never a shim worker, and one user's
// many files do not make another user's wait longer than one task per thread.
//
//   BoundedPool pool("exe-hash", /*threads=*/2, /*max_queued=*/1024, /*max_queued_per_uid=*/64);
//   if (!pool.Submit(uid, [] { Hash(...); })) CountRefused();
//   pool.Stop();  // runs what was queued, then joins
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_BOUNDED_POOL_H_
#define REPRO_DAEMON_SHIM_SOCKET_BOUNDED_POOL_H_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "daemon/shim_socket/fair_queue.h"

namespace repro {

class BoundedPool {
 public:
  // Starts max(1, threads) threads named `name`.
  BoundedPool(const std::string& name, int threads, size_t max_queued, size_t max_queued_per_uid);
  ~BoundedPool();  // Stop()
  BoundedPool(const BoundedPool&) = delete;
  BoundedPool& operator=(const BoundedPool&) = delete;

  // Queues `task` of `uid`; false (and `task` is dropped unrun) when max_queued tasks wait
  // already, or max_queued_per_uid of `uid`, or the pool is stopped.
  bool Submit(uid_t uid, std::function<void()> task);

  // Runs the tasks still queued, then joins the threads. Idempotent.
  void Stop();

 private:
  void Loop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !tasks_.empty(); }

  const size_t max_queued_;
  const size_t max_queued_per_uid_;
  absl::Mutex mu_;
  FairQueue<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_BOUNDED_POOL_H_
