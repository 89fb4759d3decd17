#include "daemon/shim_socket/loaded_recorder.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <utility>

#include "spdlog/spdlog.h"

namespace repro {

LoadedRecorder::LoadedRecorder(LoadedRecorderParts parts, LoadedRecorderOptions options)
    : parts_(parts),
      options_(options),
      metrics_(parts.metrics != nullptr ? parts.metrics : &own_metrics_),
      builder_(parts.fs, parts.hash_cache, parts.auth) {
  reports_ =
      metrics_->GetCounter("repro_shim_loaded_reports_total",
                           "LOADED reports (libraries, Python packages) queued for journaling.");
  dropped_ = metrics_->GetCounter("repro_shim_loaded_dropped_total",
                                  "LOADED reports dropped: the recorder's queue was full.");
  for (auto [counter, what] :
       {std::pair{&skipped_libraries_, "library"}, std::pair{&skipped_packages_, "package"}}) {
    *counter = metrics_->GetCounter("repro_shim_loaded_skipped_total",
                                    "Libraries and Python packages reported by shims and not "
                                    "journaled: missing, unreadable by the process, not found.",
                                    {{"what", what}});
  }
  thread_ = std::thread([this] { Loop(); });
}

LoadedRecorder::~LoadedRecorder() { Stop(); }

bool LoadedRecorder::Record(LoadedSource source, ShimLoaded loaded) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && queue_.size() < options_.max_queued) {
      queue_.push_back({std::move(source), std::move(loaded)});
      ++queued_;
      reports_->Increment();
      return true;
    }
  }
  dropped_->Increment();
  spdlog::debug("loaded: dropped a report of pid {} (job {}): the queue is full", source.pid,
                source.job);
  return false;
}

void LoadedRecorder::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = queued_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ >= target; };
  mu_.Await(absl::Condition(&done));
}

void LoadedRecorder::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void LoadedRecorder::Loop() {
  pthread_setname_np(pthread_self(), "shim-loaded");
  if (options_.nice != 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options_.nice);
  for (;;) {
    Report report;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything is journaled
      report = std::move(queue_.front());
      queue_.pop_front();
    }
    LoadedEntries built = builder_.Build(report.source, report.loaded);
    skipped_libraries_->Increment(built.skipped_libraries);
    skipped_packages_->Increment(built.skipped_packages);
    parts_.journal->Append(report.source.job, std::move(built.items));
    absl::MutexLock lock(&mu_);
    ++done_;
  }
}

}  // namespace repro
