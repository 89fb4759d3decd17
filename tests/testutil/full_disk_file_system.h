// A RocksDB FileSystem for tests that can pretend the disk is full: while full, creating,
// appending to and syncing files fail with "No space left on device", as a real full disk does.
//
//   auto fs = std::make_shared<FullDiskFileSystem>();
//   std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
//   ... RocksStore::Open({.data_dir = dir, .env = env.get()}) ...
//   fs->set_full(true);   // the next synced write fails
#ifndef REPRO_TESTS_TESTUTIL_FULL_DISK_FILE_SYSTEM_H_
#define REPRO_TESTS_TESTUTIL_FULL_DISK_FILE_SYSTEM_H_

#include <atomic>
#include <memory>

#include "rocksdb/file_system.h"

namespace repro::testing {

// Thread-safe.
class FullDiskFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FullDiskFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}

  static const char* kClassName() { return "FullDiskFileSystem"; }
  const char* Name() const override { return kClassName(); }

  void set_full(bool full) { full_ = full; }
  bool full() const { return full_; }

  // Zero while full, so RocksDB's recovery waits for space like it would on a real disk.
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& options,
                                 uint64_t* free_space, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& name,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;

 private:
  std::atomic<bool> full_{false};
};

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_FULL_DISK_FILE_SYSTEM_H_
