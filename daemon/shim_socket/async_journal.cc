#include "daemon/shim_socket/async_journal.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "spdlog/spdlog.h"

namespace repro {

AsyncJournal::AsyncJournal(Journal* journal, AsyncJournalOptions options)
    : journal_(journal), options_(options), thread_([this] { Loop(); }) {}

AsyncJournal::~AsyncJournal() { Stop(); }

void AsyncJournal::Write(std::string job, std::vector<JournalItem> items) {
  const size_t count = items.size();
  absl::StatusOr<std::vector<Appended>> appended = journal_->Append(job, std::move(items));
  if (!appended.ok()) {
    if (options_.errors != nullptr) options_.errors->Increment(count);
    spdlog::error("cannot journal {} entries of job {}: {}", count, job,
                  appended.status().ToString());
  }
}

void AsyncJournal::Append(std::string job, std::vector<JournalItem> items) {
  if (items.empty()) return;
  {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return pending_ < options_.max_pending || stopping_;
    };
    mu_.Await(absl::Condition(&room));
    if (!stopping_) {
      pending_ += items.size();
      queue_.push_back({std::move(job), std::move(items)});
      ++queued_;
      return;
    }
  }
  Write(std::move(job), std::move(items));  // stopped: the caller writes it
}

void AsyncJournal::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = queued_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return written_ >= target; };
  mu_.Await(absl::Condition(&done));
}

void AsyncJournal::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void AsyncJournal::Loop() {
  pthread_setname_np(pthread_self(), "shim-journal");
  if (options_.nice != 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options_.nice);
  for (;;) {
    std::deque<Batch> taken;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything is written
      taken.swap(queue_);
      pending_ = 0;
    }
    // One append per job, in the order the jobs' batches came: a job's entries keep their order
    // and share one durable commit.
    std::vector<Batch> merged;
    for (Batch& batch : taken) {
      auto same = std::find_if(merged.begin(), merged.end(),
                               [&](const Batch& m) { return m.job == batch.job; });
      if (same == merged.end()) {
        merged.push_back(std::move(batch));
      } else {
        std::move(batch.items.begin(), batch.items.end(), std::back_inserter(same->items));
      }
    }
    for (Batch& batch : merged) Write(std::move(batch.job), std::move(batch.items));
    absl::MutexLock lock(&mu_);
    written_ += taken.size();
  }
}

}  // namespace repro
