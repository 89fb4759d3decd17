// FaultFileSystem: a FileSystem for tests that wraps a real one, injects failures per path and
// counts what was opened and read.
//
//   FaultFileSystem fs;                                        // wraps DefaultFileSystem()
//   fs.FailOn(FaultFileSystem::Op::kOpen, dir.Path("v1/a"), EACCES);
//   fs.ChangeWhileRead(dir.Path("v1/b"));                      // fstat moves after a Read
//   ... run the code under test against &fs ...
//   EXPECT_EQ(fs.bytes_read(), 0);
//
// Paths are matched exactly as the code under test passes them (no normalisation).
#ifndef REPRO_TESTS_TESTUTIL_FAULT_FILE_SYSTEM_H_
#define REPRO_TESTS_TESTUTIL_FAULT_FILE_SYSTEM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/os/file_system.h"

namespace repro::testing {

// Thread-safe, like every FileSystem. Files it opens are not (like every ReadableFile).
class FaultFileSystem : public FileSystem {
 public:
  enum class Op { kStat, kRealPath, kListDirectory, kOpen, kRead, kFstat };

  // `base` must outlive this; by default the real file system.
  explicit FaultFileSystem(FileSystem* base = DefaultFileSystem());

  // From now on, `op` on `path` fails with PosixError(err, ...) naming the path. kRead and kFstat
  // apply to files opened through this file system.
  void FailOn(Op op, const std::string& path, int err) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes the next `opens` opens of `path` (-1: all of them) look like a file that is written
  // while it is read: once the file has been read from, its Stat() reports an mtime 1 s later.
  void ChangeWhileRead(const std::string& path, int opens = -1) ABSL_LOCKS_EXCLUDED(mu_);
  // Calls `hook(path)` before every Read or ReadAt of a file opened through this file system, on
  // the reading thread (e.g. to cancel an operation midway). Empty: no hook.
  void SetReadHook(std::function<void(const std::string& path)> hook) ABSL_LOCKS_EXCLUDED(mu_);
  // Removes every fault and the hook, and zeroes the counters.
  void Reset() ABSL_LOCKS_EXCLUDED(mu_);

  // Counters since construction or Reset().
  uint64_t opens() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t opens(const std::string& path) const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t bytes_read() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t list_directory_calls() const ABSL_LOCKS_EXCLUDED(mu_);

  // FileSystem:
  absl::StatusOr<FileStat> Stat(const std::string& path) override;
  absl::StatusOr<std::string> RealPath(const std::string& path) override;
  absl::StatusOr<std::vector<DirEntry>> ListDirectory(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override;

 private:
  class File;

  // The injected error for `op` on `path`, or OK.
  absl::Status Fault(Op op, const std::string& path) const ABSL_LOCKS_EXCLUDED(mu_);
  // Runs the read hook, if any.
  void BeforeRead(const std::string& path) ABSL_LOCKS_EXCLUDED(mu_);
  void CountRead(size_t n) ABSL_LOCKS_EXCLUDED(mu_);

  FileSystem* const base_;
  mutable absl::Mutex mu_;
  std::map<std::pair<Op, std::string>, int> faults_ ABSL_GUARDED_BY(mu_);  // -> errno
  std::map<std::string, int> changing_ ABSL_GUARDED_BY(mu_);  // path -> opens left (-1: all)
  std::function<void(const std::string&)> read_hook_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> opens_ ABSL_GUARDED_BY(mu_);
  uint64_t total_opens_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_read_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t list_directory_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_FAULT_FILE_SYSTEM_H_
