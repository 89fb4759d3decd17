// StorageFaultFileSystem: a RocksDB FileSystem for tests that injects EIO where a failing disk
// would (WAL appends, WAL syncs, SST writes of flushes and compactions) and simulates a power cut
// that loses every byte not yet synced, like LevelDB's FaultInjectionTestEnv.
//
//   auto fs = std::make_shared<StorageFaultFileSystem>();
//   std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
//   ... RocksStore::Open({.data_dir = dir, .env = env.get()}) ...
//   fs->Inject(StorageFaultFileSystem::Fault::kWalSync);   // the next durable write fails
//   fs->ClearFaults();                                     // the disk is back
//
//   fs->PowerCut();         // from now on every write fails: the machine is off
//   store.reset();          // the process dies
//   fs->DropUnsyncedData(); // what the disk kept: each file up to its last sync; power back on
#ifndef REPRO_TESTS_TESTUTIL_STORAGE_FAULT_FILE_SYSTEM_H_
#define REPRO_TESTS_TESTUTIL_STORAGE_FAULT_FILE_SYSTEM_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/file_system.h"

namespace repro::testing {

// Thread-safe.
class StorageFaultFileSystem : public rocksdb::FileSystemWrapper {
 public:
  enum class Fault {
    kWalAppend,  // Append to a write-ahead log (*.log)
    kWalSync,    // Sync/Fsync of a write-ahead log
    kSstWrite,   // Append or sync of a table file (*.sst): flushes and compactions
  };

  StorageFaultFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}

  static const char* kClassName() { return "StorageFaultFileSystem"; }
  const char* Name() const override { return kClassName(); }

  // From now on `fault` fails with EIO, until ClearFaults().
  void Inject(Fault fault);
  void ClearFaults();
  // Operations failed by an injected fault or the power cut, since construction.
  uint64_t failures() const { return failures_.load(); }

  // From now on every write, sync, create, rename and delete fails with EIO.
  void PowerCut();
  // Call after the database is closed. Truncates every file written through this file system to
  // the size it had at its last sync (0 when never synced), then powers back on. Returns how many
  // bytes were dropped; fails when a file cannot be truncated.
  absl::StatusOr<uint64_t> DropUnsyncedData();

  // Which fault (if any) applies to a write or sync of file `name`; for the wrapped files.
  bool Failing(const std::string& name, bool sync);
  // Records `bytes` appended to `name`, or a sync of everything appended so far.
  void Appended(const std::string& name, uint64_t bytes);
  void Synced(const std::string& name);

  // FileSystem:
  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& name,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& name, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;

 private:
  struct FileState {
    uint64_t size = 0;    // bytes appended
    uint64_t synced = 0;  // of which synced
  };

  rocksdb::IOStatus Open(const std::string& name, const rocksdb::FileOptions& options,
                         std::unique_ptr<rocksdb::FSWritableFile>* result,
                         rocksdb::IODebugContext* dbg, bool reopen);

  mutable absl::Mutex mu_;
  bool faults_[3] ABSL_GUARDED_BY(mu_) = {false, false, false};
  bool powered_off_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, FileState> files_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> failures_{0};
};

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_STORAGE_FAULT_FILE_SYSTEM_H_
