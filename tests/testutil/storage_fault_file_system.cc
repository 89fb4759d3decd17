#include "tests/testutil/storage_fault_file_system.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "common/posix_error.h"

namespace repro::testing {
namespace {

rocksdb::IOStatus Eio() { return rocksdb::IOStatus::IOError("Input/output error (injected)"); }

// A writable file that reports its appends and syncs to the file system, which may fail them.
class FaultWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target, std::string name,
                    StorageFaultFileSystem* fs)
      : FSWritableFileOwnerWrapper(std::move(target)), name_(std::move(name)), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (fs_->Failing(name_, /*sync=*/false)) return Eio();
    rocksdb::IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) fs_->Appended(name_, data.size());
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (fs_->Failing(name_, /*sync=*/false)) return Eio();
    rocksdb::IOStatus s = target()->Append(data, options, info, dbg);
    if (s.ok()) fs_->Appended(name_, data.size());
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Sync(options, dbg); });
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Fsync(options, dbg); });
  }

 private:
  template <typename F>
  rocksdb::IOStatus SyncWith(F sync) {
    if (fs_->Failing(name_, /*sync=*/true)) return Eio();
    rocksdb::IOStatus s = sync();
    if (s.ok()) fs_->Synced(name_);
    return s;
  }

  const std::string name_;
  StorageFaultFileSystem* const fs_;
};

}  // namespace

void StorageFaultFileSystem::Inject(Fault fault) {
  absl::MutexLock lock(&mu_);
  faults_[static_cast<int>(fault)] = true;
}

void StorageFaultFileSystem::ClearFaults() {
  absl::MutexLock lock(&mu_);
  for (bool& fault : faults_) fault = false;
}

void StorageFaultFileSystem::PowerCut() {
  absl::MutexLock lock(&mu_);
  powered_off_ = true;
}

bool StorageFaultFileSystem::Failing(const std::string& name, bool sync) {
  bool failing;
  {
    absl::MutexLock lock(&mu_);
    const bool wal = absl::EndsWith(name, ".log");
    const bool sst = absl::EndsWith(name, ".sst");
    failing = powered_off_ || (wal && !sync && faults_[static_cast<int>(Fault::kWalAppend)]) ||
              (wal && sync && faults_[static_cast<int>(Fault::kWalSync)]) ||
              (sst && faults_[static_cast<int>(Fault::kSstWrite)]);
  }
  if (failing) ++failures_;
  return failing;
}

void StorageFaultFileSystem::Appended(const std::string& name, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  files_[name].size += bytes;
}

void StorageFaultFileSystem::Synced(const std::string& name) {
  absl::MutexLock lock(&mu_);
  FileState& file = files_[name];
  file.synced = file.size;
}

absl::StatusOr<uint64_t> StorageFaultFileSystem::DropUnsyncedData() {
  absl::MutexLock lock(&mu_);
  uint64_t dropped = 0;
  for (const auto& [name, file] : files_) {
    struct stat st;
    if (::stat(name.c_str(), &st) != 0) continue;  // deleted since
    if (static_cast<uint64_t>(st.st_size) <= file.synced) continue;
    if (::truncate(name.c_str(), static_cast<off_t>(file.synced)) != 0) {
      return PosixError(errno, "truncate " + name);
    }
    dropped += static_cast<uint64_t>(st.st_size) - file.synced;
  }
  files_.clear();
  powered_off_ = false;
  return dropped;
}

rocksdb::IOStatus StorageFaultFileSystem::Open(const std::string& name,
                                               const rocksdb::FileOptions& options,
                                               std::unique_ptr<rocksdb::FSWritableFile>* result,
                                               rocksdb::IODebugContext* dbg, bool reopen) {
  {
    absl::MutexLock lock(&mu_);
    if (powered_off_) return Eio();
  }
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = reopen ? target()->ReopenWritableFile(name, options, &file, dbg)
                               : target()->NewWritableFile(name, options, &file, dbg);
  if (!s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    FileState& state = files_[name];
    struct stat st;
    // A reopened file keeps what it held; a new one starts empty.
    state.size = state.synced = (reopen && ::stat(name.c_str(), &st) == 0) ? st.st_size : 0;
  }
  result->reset(new FaultWritableFile(std::move(file), name, this));
  return s;
}

rocksdb::IOStatus StorageFaultFileSystem::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  return Open(name, options, result, dbg, /*reopen=*/false);
}

rocksdb::IOStatus StorageFaultFileSystem::ReopenWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  return Open(name, options, result, dbg, /*reopen=*/true);
}

rocksdb::IOStatus StorageFaultFileSystem::RenameFile(const std::string& src,
                                                     const std::string& dst,
                                                     const rocksdb::IOOptions& options,
                                                     rocksdb::IODebugContext* dbg) {
  {
    absl::MutexLock lock(&mu_);
    if (powered_off_) return Eio();
  }
  rocksdb::IOStatus s = target()->RenameFile(src, dst, options, dbg);
  if (s.ok()) {
    absl::MutexLock lock(&mu_);
    auto it = files_.find(src);
    if (it != files_.end()) {
      files_[dst] = it->second;
      files_.erase(it);
    }
  }
  return s;
}

rocksdb::IOStatus StorageFaultFileSystem::DeleteFile(const std::string& name,
                                                     const rocksdb::IOOptions& options,
                                                     rocksdb::IODebugContext* dbg) {
  {
    absl::MutexLock lock(&mu_);
    if (powered_off_) return Eio();
  }
  rocksdb::IOStatus s = target()->DeleteFile(name, options, dbg);
  if (s.ok()) {
    absl::MutexLock lock(&mu_);
    files_.erase(name);
  }
  return s;
}

}  // namespace repro::testing
