#include "tests/testutil/fault_file_system.h"

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "common/status_macros.h"

namespace repro::testing {
namespace {

// Verb of the error message, as the real file system words it.
const char* Verb(FaultFileSystem::Op op) {
  switch (op) {
    case FaultFileSystem::Op::kStat:
      return "stat";
    case FaultFileSystem::Op::kRealPath:
      return "resolve";
    case FaultFileSystem::Op::kListDirectory:
      return "open directory";
    case FaultFileSystem::Op::kOpen:
      return "open";
    case FaultFileSystem::Op::kRead:
      return "read";
    case FaultFileSystem::Op::kFstat:
      return "fstat";
  }
  return "?";
}

}  // namespace

class FaultFileSystem::File : public ReadableFile {
 public:
  File(FaultFileSystem* fs, std::string path, std::unique_ptr<ReadableFile> base, bool changes)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)), changes_(changes) {}

  absl::StatusOr<size_t> Read(char* buffer, size_t n) override {
    return ReadThrough([&] { return base_->Read(buffer, n); });
  }

  absl::StatusOr<size_t> ReadAt(uint64_t offset, char* buffer, size_t n) override {
    return ReadThrough([&] { return base_->ReadAt(offset, buffer, n); });
  }

  absl::StatusOr<FileStat> Stat() override {
    RETURN_IF_ERROR(fs_->Fault(Op::kFstat, path_));
    ASSIGN_OR_RETURN(FileStat stat, base_->Stat());
    if (changes_ && was_read_) stat.mtime_ns += 1000000000;
    return stat;
  }

 private:
  // `read` (of the base file) with the read hook, the injected fault and the counting around it.
  template <typename ReadFn>
  absl::StatusOr<size_t> ReadThrough(ReadFn read) {
    fs_->BeforeRead(path_);
    RETURN_IF_ERROR(fs_->Fault(Op::kRead, path_));
    ASSIGN_OR_RETURN(size_t got, read());
    fs_->CountRead(got);
    was_read_ = true;
    return got;
  }

  FaultFileSystem* const fs_;
  const std::string path_;
  const std::unique_ptr<ReadableFile> base_;
  const bool changes_;
  bool was_read_ = false;
};

FaultFileSystem::FaultFileSystem(FileSystem* base) : base_(base) {}

void FaultFileSystem::FailOn(Op op, const std::string& path, int err) {
  absl::MutexLock lock(&mu_);
  faults_[{op, path}] = err;
}

void FaultFileSystem::ChangeWhileRead(const std::string& path, int opens) {
  absl::MutexLock lock(&mu_);
  changing_[path] = opens;
}

void FaultFileSystem::SetReadHook(std::function<void(const std::string& path)> hook) {
  absl::MutexLock lock(&mu_);
  read_hook_ = std::move(hook);
}

void FaultFileSystem::Reset() {
  absl::MutexLock lock(&mu_);
  faults_.clear();
  changing_.clear();
  read_hook_ = nullptr;
  opens_.clear();
  total_opens_ = 0;
  bytes_read_ = 0;
  list_directory_calls_ = 0;
}

uint64_t FaultFileSystem::opens() const {
  absl::MutexLock lock(&mu_);
  return total_opens_;
}

uint64_t FaultFileSystem::opens(const std::string& path) const {
  absl::MutexLock lock(&mu_);
  auto it = opens_.find(path);
  return it == opens_.end() ? 0 : it->second;
}

uint64_t FaultFileSystem::bytes_read() const {
  absl::MutexLock lock(&mu_);
  return bytes_read_;
}

uint64_t FaultFileSystem::list_directory_calls() const {
  absl::MutexLock lock(&mu_);
  return list_directory_calls_;
}

absl::Status FaultFileSystem::Fault(Op op, const std::string& path) const {
  absl::MutexLock lock(&mu_);
  auto it = faults_.find({op, path});
  if (it == faults_.end()) return absl::OkStatus();
  return PosixError(it->second, absl::StrCat(Verb(op), " ", path));
}

void FaultFileSystem::BeforeRead(const std::string& path) {
  std::function<void(const std::string&)> hook;
  {
    absl::MutexLock lock(&mu_);
    hook = read_hook_;
  }
  if (hook) hook(path);  // outside the lock: the hook may call back into this file system
}

void FaultFileSystem::CountRead(size_t n) {
  absl::MutexLock lock(&mu_);
  bytes_read_ += n;
}

absl::StatusOr<FileStat> FaultFileSystem::Stat(const std::string& path) {
  RETURN_IF_ERROR(Fault(Op::kStat, path));
  return base_->Stat(path);
}

absl::StatusOr<std::string> FaultFileSystem::RealPath(const std::string& path) {
  RETURN_IF_ERROR(Fault(Op::kRealPath, path));
  return base_->RealPath(path);
}

absl::StatusOr<std::vector<DirEntry>> FaultFileSystem::ListDirectory(const std::string& path) {
  {
    absl::MutexLock lock(&mu_);
    ++list_directory_calls_;
  }
  RETURN_IF_ERROR(Fault(Op::kListDirectory, path));
  return base_->ListDirectory(path);
}

absl::StatusOr<std::unique_ptr<ReadableFile>> FaultFileSystem::OpenForRead(
    const std::string& path) {
  RETURN_IF_ERROR(Fault(Op::kOpen, path));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> base, base_->OpenForRead(path));
  bool changes = false;
  {
    absl::MutexLock lock(&mu_);
    ++total_opens_;
    ++opens_[path];
    auto it = changing_.find(path);
    if (it != changing_.end() && it->second != 0) {
      changes = true;
      if (it->second > 0) --it->second;
    }
  }
  return std::unique_ptr<ReadableFile>(new File(this, path, std::move(base), changes));
}

}  // namespace repro::testing
