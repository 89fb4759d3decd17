#include "tests/testutil/full_disk_file_system.h"

namespace repro::testing {
namespace {

rocksdb::IOStatus NoSpace() { return rocksdb::IOStatus::NoSpace("No space left on device"); }

// A writable file whose writes fail while its file system is full.
class FullDiskWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FullDiskWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target,
                       const FullDiskFileSystem* fs)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    return fs_->full() ? NoSpace() : target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    return fs_->full() ? NoSpace() : target()->Append(data, options, info, dbg);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return fs_->full() ? NoSpace() : target()->Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return fs_->full() ? NoSpace() : target()->Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return fs_->full() ? NoSpace() : target()->Fsync(options, dbg);
  }

 private:
  const FullDiskFileSystem* const fs_;
};

}  // namespace

rocksdb::IOStatus FullDiskFileSystem::GetFreeSpace(const std::string& path,
                                                   const rocksdb::IOOptions& options,
                                                   uint64_t* free_space,
                                                   rocksdb::IODebugContext* dbg) {
  if (full_) {
    *free_space = 0;
    return rocksdb::IOStatus::OK();
  }
  return target()->GetFreeSpace(path, options, free_space, dbg);
}

rocksdb::IOStatus FullDiskFileSystem::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (full_) return NoSpace();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->NewWritableFile(name, options, &file, dbg);
  if (s.ok()) result->reset(new FullDiskWritableFile(std::move(file), this));
  return s;
}

rocksdb::IOStatus FullDiskFileSystem::ReopenWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (full_) return NoSpace();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->ReopenWritableFile(name, options, &file, dbg);
  if (s.ok()) result->reset(new FullDiskWritableFile(std::move(file), this));
  return s;
}

}  // namespace repro::testing
