#include "daemon/loaded_code/loaded_recorder.h"

#include <utility>

#include "spdlog/spdlog.h"

namespace repro {

LoadedRecorder::LoadedRecorder(LoadedRecorderParts parts, LoadedRecorderOptions options)
    : parts_(parts),
      metrics_(parts.metrics != nullptr ? parts.metrics : &own_metrics_),
      builder_(parts.fs, parts.hash_cache, parts.auth, options.max_hash_bytes),
      queue_({.name = "shim-loaded", .max_queued = options.max_queued, .nice = options.nice},
             [this](Report report) { Describe(std::move(report)); }) {
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
}

bool LoadedRecorder::Record(LoadedSource source, LoadedReport loaded) {
  const std::string job = source.job;
  const pid_t pid = source.pid;
  if (queue_.Push({std::move(source), std::move(loaded)})) {
    reports_->Increment();
    return true;
  }
  dropped_->Increment();
  if (parts_.lost != nullptr) parts_.lost->OnLost(job, "loaded", 1);
  spdlog::debug("loaded: dropped a report of pid {} (job {}): the queue is full", pid, job);
  return false;
}

void LoadedRecorder::Describe(Report report) {
  LoadedEntries built = builder_.Build(report.source, report.loaded);
  skipped_libraries_->Increment(built.skipped_libraries);
  skipped_packages_->Increment(built.skipped_packages);
  if (built.items.empty()) return;
  JournalDone done =
      parts_.lost != nullptr ? parts_.lost->Watch(report.source.job, built.items) : JournalDone();
  parts_.journal->AppendAsync(report.source.job, std::move(built.items), std::move(done));
}

}  // namespace repro
