// FileSystem seam: the part of the OS that reads data trees (walking, stat, reading files).
//
// Everything in reprod that reads user data goes through a FileSystem so tests can inject
// failures (EIO, EACCES, files changing while they are read) without root or special mounts.
//
//   FileSystem* fs = DefaultFileSystem();
//   ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> f, fs->OpenForRead("/data/v1/a.bin"));
//   ASSIGN_OR_RETURN(FileStat st, f->Stat());
#ifndef REPRO_DAEMON_OS_FILE_SYSTEM_H_
#define REPRO_DAEMON_OS_FILE_SYSTEM_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace repro {

enum class FileType { kRegular, kDirectory, kSymlink, kOther };

struct FileStat {
  FileType type = FileType::kOther;
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  mode_t mode = 0;
  uid_t uid = 0;  // owner
  gid_t gid = 0;  // group
};

// True when two stats describe the same unchanged file (device, inode, size, mtime, ctime).
bool SameFileState(const FileStat& a, const FileStat& b);

struct DirEntry {
  std::string name;
  FileType type;  // from lstat: a symlink is reported as kSymlink, never followed
};

// An open file read front to back. Not thread-safe.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `n` bytes; returns 0 at end of file.
  virtual absl::StatusOr<size_t> Read(char* buffer, size_t n) = 0;
  // Reads up to `n` bytes at `offset` (pread) without moving the position Read continues from;
  // returns 0 at or past the end of the file.
  virtual absl::StatusOr<size_t> ReadAt(uint64_t offset, char* buffer, size_t n) = 0;
  // fstat of the open file.
  virtual absl::StatusOr<FileStat> Stat() = 0;
};

// Thread-safe. Errors carry the path and the most specific canonical code (see PosixError).
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // lstat: a symlink is described, not followed.
  virtual absl::StatusOr<FileStat> Stat(const std::string& path) = 0;
  // Absolute, symlink-free path (realpath(3)).
  virtual absl::StatusOr<std::string> RealPath(const std::string& path) = 0;
  // Entries of a directory except "." and "..", in no particular order.
  virtual absl::StatusOr<std::vector<DirEntry>> ListDirectory(const std::string& path) = 0;
  // Opens a regular file for reading; refuses to follow a symlink in the last component.
  virtual absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) = 0;
};

// The real POSIX file system (never null, never destroyed).
FileSystem* DefaultFileSystem();

}  // namespace repro

#endif  // REPRO_DAEMON_OS_FILE_SYSTEM_H_
