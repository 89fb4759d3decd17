// BackgroundQueue: a bounded queue of work items served, in order, by one background thread.
//
//   BackgroundQueue<Report> queue({.name = "shim-loaded", .max_queued = 256, .nice = 10},
//                                 [this](Report r) { Describe(std::move(r)); });
//   if (!queue.Push(std::move(report))) dropped->Increment();  // full, or stopped
//   queue.Flush();  // everything pushed so far has been served
//   queue.Stop();   // serves what is queued, then ends the thread
//
// For slow work that a caller must never wait for (hashing a 1 GB library): Push never blocks,
// and refuses what does not fit so that the caller can count it.
//
// Thread-safe.
#ifndef REPRO_DAEMON_OS_BACKGROUND_QUEUE_H_
#define REPRO_DAEMON_OS_BACKGROUND_QUEUE_H_

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace repro {

struct BackgroundQueueOptions {
  std::string name = "background";  // thread name (at most 15 characters are kept)
  size_t max_queued = 256;          // items waiting; Push refuses more
  int nice = 0;                     // nice value of the thread (10: yields to other work)
};

template <typename T>
class BackgroundQueue {
 public:
  // `serve` runs on the queue's thread, once per item, in Push order.
  BackgroundQueue(BackgroundQueueOptions options, std::function<void(T)> serve)
      : options_(std::move(options)), serve_(std::move(serve)), thread_([this] { Loop(); }) {}
  // Stop().
  ~BackgroundQueue() { Stop(); }
  BackgroundQueue(const BackgroundQueue&) = delete;
  BackgroundQueue& operator=(const BackgroundQueue&) = delete;

  // Queues `item` and returns at once. False when it was refused: max_queued items wait, or the
  // queue is stopped.
  bool Push(T item) {
    absl::MutexLock lock(&mu_);
    if (stopping_ || queue_.size() >= options_.max_queued) return false;
    queue_.push_back(std::move(item));
    ++pushed_;
    return true;
  }

  // Returns once every item pushed before the call has been served.
  void Flush() {
    absl::MutexLock lock(&mu_);
    const uint64_t target = pushed_;
    auto served = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return served_ >= target; };
    mu_.Await(absl::Condition(&served));
  }

  // Serves what is queued and ends the thread; later pushes are refused. Idempotent.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    pthread_setname_np(pthread_self(), options_.name.substr(0, 15).c_str());
    if (options_.nice != 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options_.nice);
    for (;;) {
      T item;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !queue_.empty() || stopping_;
        };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;  // stopping, and everything is served
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      serve_(std::move(item));
      absl::MutexLock lock(&mu_);
      ++served_;
    }
  }

  const BackgroundQueueOptions options_;
  const std::function<void(T)> serve_;
  absl::Mutex mu_;
  std::deque<T> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t pushed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t served_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace repro

#endif  // REPRO_DAEMON_OS_BACKGROUND_QUEUE_H_
