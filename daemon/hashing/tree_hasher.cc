#include "daemon/hashing/tree_hasher.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <iterator>
#include <memory>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/hashing/manifest.h"

namespace repro {
namespace {

// How often the coordinating thread polls `cancelled`.
constexpr absl::Duration kPollInterval = absl::Milliseconds(10);
// A directory's files are lstat'ed in batches of this many, so one huge directory is still
// walked by all workers.
constexpr size_t kStatBatch = 256;
// Files at least this large are hashed first, largest first; smaller ones in walk order.
constexpr uint64_t kLargeFile = kHashChunkSize;
// Each worker writes its new hash cache entries this many at a time.
constexpr size_t kCacheBatch = 256;

// The absolute path of `relative` (possibly "") under the root directory `root`.
std::string JoinPath(const std::string& root, const std::string& relative) {
  if (relative.empty()) return root;
  return root == "/" ? absl::StrCat("/", relative) : absl::StrCat(root, "/", relative);
}

// The relative path of entry `name` of the relative directory `dir` ("" is the root).
std::string ChildPath(const std::string& dir, absl::string_view name) {
  return dir.empty() ? std::string(name) : absl::StrCat(dir, "/", name);
}

// A unit of walking: list a directory, or lstat some of its entries.
struct WalkTask {
  std::string dir;                 // relative to the root; "" is the root
  std::vector<std::string> names;  // empty: list `dir`; else: lstat these entries of `dir`
};

// One regular file found by the walk.
struct FileSlot {
  std::string path;                      // relative to the root
  FileStat lstat;                        // taken by the walk
  std::unique_ptr<v1::FileEntry> entry;  // set by the worker that hashed the file
};

// What one hash worker has done. Written by its worker only, read by the coordinator: relaxed
// atomics on a cache line of their own, so counting costs no contention.
struct alignas(64) WorkerCounters {
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> files_cached{0};
  std::atomic<uint64_t> bytes_done{0};    // progress: bytes read so far plus cached sizes
  std::atomic<uint64_t> bytes_hashed{0};  // sizes of files read, once finished
  std::atomic<uint64_t> bytes_cached{0};
};

// Single-writer increment.
void Bump(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// The state of one HashTree call. Run() is called once, on the calling thread.
class HashRun {
 public:
  HashRun(FileSystem* fs, HashCache* cache, int threads, std::string root,
          const TreeHashOptions& options)
      : fs_(fs), cache_(cache), threads_(threads), root_(std::move(root)), options_(options) {}

  absl::StatusOr<TreeHashResult> Run();

 private:
  absl::Status CheckRoot();

  // Walk phase: fills files_.
  absl::Status Walk();
  void WalkWorker(std::vector<FileSlot>* found);
  absl::Status ListDirectory(const std::string& dir, std::vector<WalkTask>* more);
  absl::Status StatEntries(const WalkTask& task, std::vector<WalkTask>* more,
                           std::vector<FileSlot>* found);

  // Hash phase: fills files_[i].entry for every i, largest files first.
  absl::Status HashFiles(std::vector<uint32_t>* by_path);
  void HashWorker(WorkerCounters* counters);

  // Runs work(i) for i in [0, n) on n new threads. Meanwhile polls `cancelled` on this thread
  // and, when `report_progress`, reports progress; `meanwhile` runs here first.
  void RunWorkers(int n, const std::function<void(int)>& work, bool report_progress,
                  const std::function<void()>& meanwhile = {});
  v1::RegisterProgress Progress() const;

  // Records the first error and stops every worker.
  void Fail(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  // `status`, except that NOT_FOUND (something listed a moment ago is gone) becomes ABORTED: the
  // tree changed while it was hashed, which is not the same as a missing version directory.
  absl::Status TreeChanged(absl::Status status) const;
  bool stopped() const { return stop_.load(std::memory_order_relaxed); }
  absl::Status error() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return error_;
  }

  FileSystem* const fs_;
  HashCache* const cache_;
  const int threads_;
  const std::string root_;
  const TreeHashOptions& options_;

  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // worker threads not yet finished
  std::deque<WalkTask> walk_queue_ ABSL_GUARDED_BY(mu_);
  int walk_busy_ ABSL_GUARDED_BY(mu_) = 0;  // walk tasks being processed
  std::atomic<bool> stop_{false};           // set (under mu_) with the first error

  // Hash phase. files_ and order_ are fixed before the workers start; each worker writes only
  // the entries of the slots it claimed through next_.
  std::vector<FileSlot> files_;
  std::vector<uint32_t> order_;  // indices into files_, in hashing order
  std::atomic<size_t> next_{0};  // next position in order_ to claim
  std::unique_ptr<WorkerCounters[]> counters_;
  int hash_workers_ = 0;
  uint64_t walk_bytes_ = 0;
};

absl::StatusOr<TreeHashResult> HashRun::Run() {
  if (options_.cancelled && options_.cancelled()) {
    return absl::CancelledError(absl::StrCat("hashing ", root_, " was cancelled"));
  }
  RETURN_IF_ERROR(CheckRoot());
  RETURN_IF_ERROR(Walk());
  if (files_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(root_, " contains no files; a version needs at least one regular file"));
  }
  std::vector<uint32_t> by_path;
  RETURN_IF_ERROR(HashFiles(&by_path));

  TreeHashResult result;
  auto* files = result.manifest.mutable_files();
  files->Reserve(static_cast<int>(files_.size()));
  for (uint32_t i : by_path) files->AddAllocated(files_[i].entry.release());
  result.digest = ManifestDigest(result.manifest);
  for (int i = 0; i < hash_workers_; ++i) {
    const WorkerCounters& c = counters_[i];
    result.files_cached += c.files_cached.load(std::memory_order_relaxed);
    result.bytes_hashed += c.bytes_hashed.load(std::memory_order_relaxed);
    result.total_bytes += c.bytes_hashed.load(std::memory_order_relaxed) +
                          c.bytes_cached.load(std::memory_order_relaxed);
  }
  result.files_hashed = files_.size() - result.files_cached;

  if (options_.progress) {
    v1::RegisterProgress last;
    last.set_files_total(files_.size());
    last.set_bytes_total(result.total_bytes);
    last.set_files_done(files_.size());
    last.set_bytes_done(result.total_bytes);
    last.set_files_cached(result.files_cached);
    options_.progress(last);
  }
  return result;
}

absl::Status HashRun::CheckRoot() {
  absl::StatusOr<FileStat> stat = fs_->Stat(root_);
  if (absl::IsNotFound(stat.status())) {
    return absl::NotFoundError(
        absl::StrCat(root_, " does not exist (", stat.status().message(), ")"));
  }
  RETURN_IF_ERROR(stat.status());
  if (stat->type == FileType::kSymlink) {
    return absl::InvalidArgumentError(absl::StrCat(
        root_,
        " is a symlink; pass the directory it points to, so the version keeps its data "
        "when the link moves"));
  }
  if (stat->type != FileType::kDirectory) {
    return absl::InvalidArgumentError(
        absl::StrCat(root_, " is ", FileKindName(*stat), ", not a directory"));
  }
  return absl::OkStatus();
}

absl::Status HashRun::Walk() {
  {
    absl::MutexLock lock(&mu_);
    walk_queue_.push_back(WalkTask{});  // the root
  }
  std::vector<std::vector<FileSlot>> found(threads_);
  RunWorkers(
      threads_, [&](int i) { WalkWorker(&found[i]); }, /*report_progress=*/false);
  RETURN_IF_ERROR(error());

  size_t total = 0;
  for (const auto& f : found) total += f.size();
  files_.reserve(total);
  for (auto& f : found) std::move(f.begin(), f.end(), std::back_inserter(files_));
  return absl::OkStatus();
}

void HashRun::WalkWorker(std::vector<FileSlot>* found) {
  // The walk is over when no task is queued and none is being processed (which could queue more).
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopped() || !walk_queue_.empty() || walk_busy_ == 0;
  };
  std::vector<WalkTask> more;
  while (true) {
    WalkTask task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&ready));
      if (stopped() || walk_queue_.empty()) return;
      task = std::move(walk_queue_.front());
      walk_queue_.pop_front();
      ++walk_busy_;
    }
    more.clear();
    absl::Status status =
        task.names.empty() ? ListDirectory(task.dir, &more) : StatEntries(task, &more, found);
    if (!status.ok()) Fail(std::move(status));
    absl::MutexLock lock(&mu_);
    --walk_busy_;
    for (WalkTask& t : more) walk_queue_.push_back(std::move(t));
  }
}

absl::Status HashRun::ListDirectory(const std::string& dir, std::vector<WalkTask>* more) {
  absl::StatusOr<std::vector<DirEntry>> listed = fs_->ListDirectory(JoinPath(root_, dir));
  if (!listed.ok()) return TreeChanged(listed.status());
  std::vector<DirEntry>& entries = *listed;
  std::vector<std::string> names;  // everything but directories: lstat tells what they are
  for (DirEntry& e : entries) {
    if (e.type == FileType::kDirectory) {
      more->push_back(WalkTask{ChildPath(dir, e.name), {}});
    } else {
      names.push_back(std::move(e.name));
    }
  }
  for (size_t begin = 0; begin < names.size(); begin += kStatBatch) {
    size_t end = std::min(names.size(), begin + kStatBatch);
    WalkTask batch{dir, {}};
    batch.names.assign(std::make_move_iterator(names.begin() + begin),
                       std::make_move_iterator(names.begin() + end));
    more->push_back(std::move(batch));
  }
  return absl::OkStatus();
}

absl::Status HashRun::StatEntries(const WalkTask& task, std::vector<WalkTask>* more,
                                  std::vector<FileSlot>* found) {
  for (const std::string& name : task.names) {
    std::string relative = ChildPath(task.dir, name);
    std::string path = JoinPath(root_, relative);
    absl::StatusOr<FileStat> lstat = fs_->Stat(path);
    if (!lstat.ok()) return TreeChanged(lstat.status());
    const FileStat& stat = *lstat;
    switch (stat.type) {
      case FileType::kRegular:
        found->push_back(FileSlot{std::move(relative), stat, nullptr});
        break;
      case FileType::kDirectory:  // replaced by a directory since it was listed
        more->push_back(WalkTask{std::move(relative), {}});
        break;
      case FileType::kSymlink:
        return absl::InvalidArgumentError(absl::StrCat(
            path,
            " is a symlink; a version must be a self-contained directory tree (copy the "
            "data or register the link's target)"));
      case FileType::kOther:
        return absl::InvalidArgumentError(
            absl::StrCat(path, " is ", FileKindName(stat),
                         "; a version may contain only regular files and directories"));
    }
  }
  return absl::OkStatus();
}

absl::Status HashRun::HashFiles(std::vector<uint32_t>* by_path) {
  const uint32_t n = static_cast<uint32_t>(files_.size());
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  auto large_end = std::stable_partition(order_.begin(), order_.end(), [this](uint32_t i) {
    return files_[i].lstat.size >= kLargeFile;
  });
  std::sort(order_.begin(), large_end,
            [this](uint32_t a, uint32_t b) { return files_[a].lstat.size > files_[b].lstat.size; });
  for (const FileSlot& f : files_) walk_bytes_ += f.lstat.size;

  hash_workers_ = static_cast<int>(std::min<uint32_t>(n, static_cast<uint32_t>(threads_)));
  counters_ = std::make_unique<WorkerCounters[]>(hash_workers_);
  // While the workers hash, sort the manifest order here: workers never touch FileSlot::path.
  auto sort_by_path = [&] {
    by_path->resize(n);
    std::iota(by_path->begin(), by_path->end(), 0);
    std::sort(by_path->begin(), by_path->end(),
              [this](uint32_t a, uint32_t b) { return files_[a].path < files_[b].path; });
  };
  RunWorkers(
      hash_workers_, [this](int i) { HashWorker(&counters_[i]); },
      /*report_progress=*/true, sort_by_path);
  return error();
}

void HashRun::HashWorker(WorkerCounters* counters) {
  FileHasher hasher(fs_, cache_, kCacheBatch);
  HashFileOptions options;
  options.cancelled = [this] { return stopped(); };
  options.on_read = [counters](uint64_t n) { Bump(counters->bytes_done, n); };
  while (!stopped()) {
    size_t k = next_.fetch_add(1, std::memory_order_relaxed);
    if (k >= order_.size()) return;
    FileSlot& slot = files_[order_[k]];
    options.lstat = &slot.lstat;
    absl::StatusOr<HashedFile> hashed = hasher.Hash(JoinPath(root_, slot.path), options);
    if (!hashed.ok()) {
      Fail(TreeChanged(hashed.status()));
      return;
    }
    auto entry = std::make_unique<v1::FileEntry>();
    entry->set_path(slot.path);
    entry->set_size(hashed->stat.size);
    entry->set_mtime_ns(hashed->stat.mtime_ns);
    entry->set_sha256(std::move(hashed->sha256));
    slot.entry = std::move(entry);
    if (hashed->from_cache) {
      Bump(counters->files_cached, 1);
      Bump(counters->bytes_cached, hashed->stat.size);
      Bump(counters->bytes_done, hashed->stat.size);
    } else {
      Bump(counters->bytes_hashed, hashed->stat.size);
    }
    Bump(counters->files_done, 1);
  }
}

void HashRun::RunWorkers(int n, const std::function<void(int)>& work, bool report_progress,
                         const std::function<void()>& meanwhile) {
  {
    absl::MutexLock lock(&mu_);
    running_ = n;
  }
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([this, &work, i] {
      work(i);
      absl::MutexLock lock(&mu_);
      --running_;
    });
  }
  if (meanwhile) meanwhile();

  report_progress = report_progress && options_.progress != nullptr;
  absl::Time next_progress = absl::Now() + options_.progress_interval;
  auto finished = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&finished), kPollInterval)) break;
    }
    if (!stopped() && options_.cancelled && options_.cancelled()) {
      Fail(absl::CancelledError(absl::StrCat("hashing ", root_, " was cancelled")));
    }
    if (report_progress && absl::Now() >= next_progress) {
      options_.progress(Progress());
      next_progress = absl::Now() + options_.progress_interval;
    }
  }
  for (std::thread& t : threads) t.join();
}

v1::RegisterProgress HashRun::Progress() const {
  v1::RegisterProgress progress;
  progress.set_files_total(files_.size());
  progress.set_bytes_total(walk_bytes_);
  uint64_t files_done = 0, bytes_done = 0, files_cached = 0;
  for (int i = 0; i < hash_workers_; ++i) {
    files_done += counters_[i].files_done.load(std::memory_order_relaxed);
    bytes_done += counters_[i].bytes_done.load(std::memory_order_relaxed);
    files_cached += counters_[i].files_cached.load(std::memory_order_relaxed);
  }
  progress.set_files_done(files_done);
  progress.set_bytes_done(bytes_done);
  progress.set_files_cached(files_cached);
  return progress;
}

void HashRun::Fail(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (error_.ok()) error_ = std::move(status);
  stop_.store(true, std::memory_order_relaxed);
}

absl::Status HashRun::TreeChanged(absl::Status status) const {
  if (!absl::IsNotFound(status)) return status;
  return absl::AbortedError(
      absl::StrCat(root_, " changed while it was being hashed: ", status.message()));
}

// "/a/b/" -> "/a/b"; "/" stays "/".
std::string TrimTrailingSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

TreeHasher::TreeHasher(FileSystem* fs, HashCache* cache, int threads)
    : fs_(fs),
      cache_(cache),
      threads_(threads > 0 ? threads
                           : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {}

absl::StatusOr<TreeHashResult> TreeHasher::HashTree(const std::string& dir,
                                                    const TreeHashOptions& options) {
  if (dir.empty()) return absl::InvalidArgumentError("the directory to hash is empty");
  HashRun run(fs_, cache_, threads_, TrimTrailingSlashes(dir), options);
  return run.Run();
}

}  // namespace repro
