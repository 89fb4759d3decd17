#include "daemon/shim_socket/bounded_pool.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

namespace repro {

BoundedPool::BoundedPool(const std::string& name, int threads, size_t max_queued,
                         size_t max_queued_per_uid)
    : max_queued_(max_queued), max_queued_per_uid_(max_queued_per_uid) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([this, name] {
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      Loop();
    });
  }
}

BoundedPool::~BoundedPool() { Stop(); }

bool BoundedPool::Submit(uid_t uid, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || tasks_.size() >= max_queued_ || tasks_.SizeOf(uid) >= max_queued_per_uid_) {
    return false;
  }
  tasks_.Push(uid, /*urgent=*/false, std::move(task));
  return true;
}

void BoundedPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void BoundedPool::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &BoundedPool::HasWork));
      if (tasks_.empty()) return;  // stopping, and nothing left to run
      task = tasks_.Pop();
    }
    task();
  }
}

}  // namespace repro
