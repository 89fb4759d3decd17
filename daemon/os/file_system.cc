#include "daemon/os/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"

namespace repro {
namespace {

FileType TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return FileType::kRegular;
  if (S_ISDIR(mode)) return FileType::kDirectory;
  if (S_ISLNK(mode)) return FileType::kSymlink;
  return FileType::kOther;
}

FileStat FromStat(const struct stat& st) {
  FileStat out;
  out.type = TypeOf(st.st_mode);
  out.device = st.st_dev;
  out.inode = st.st_ino;
  out.size = static_cast<uint64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  out.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  out.mode = st.st_mode;
  out.uid = st.st_uid;
  out.gid = st.st_gid;
  return out;
}

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadableFile() override { close(fd_); }

  absl::StatusOr<size_t> Read(char* buffer, size_t n) override {
    while (true) {
      ssize_t got = read(fd_, buffer, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return PosixError(errno, absl::StrCat("read ", path_));
    }
  }

  absl::StatusOr<size_t> ReadAt(uint64_t offset, char* buffer, size_t n) override {
    if (offset > static_cast<uint64_t>(INT64_MAX)) return 0;
    while (true) {
      ssize_t got = pread(fd_, buffer, n, static_cast<off_t>(offset));
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return PosixError(errno, absl::StrCat("read ", path_));
    }
  }

  absl::StatusOr<FileStat> Stat() override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return PosixError(errno, absl::StrCat("fstat ", path_));
    return FromStat(st);
  }

 private:
  const int fd_;
  const std::string path_;
};

class PosixFileSystem : public FileSystem {
 public:
  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return PosixError(errno, absl::StrCat("stat ", path));
    return FromStat(st);
  }

  absl::StatusOr<std::string> RealPath(const std::string& path) override {
    char resolved[PATH_MAX];
    if (realpath(path.c_str(), resolved) == nullptr) {
      return PosixError(errno, absl::StrCat("resolve ", path));
    }
    return std::string(resolved);
  }

  absl::StatusOr<std::vector<DirEntry>> ListDirectory(const std::string& path) override {
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError(errno, absl::StrCat("open directory ", path));
    DIR* dir = fdopendir(fd);
    if (dir == nullptr) {
      int err = errno;
      close(fd);
      return PosixError(err, absl::StrCat("open directory ", path));
    }
    std::vector<DirEntry> entries;
    errno = 0;
    while (struct dirent* e = readdir(dir)) {
      absl::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      FileType type;
      switch (e->d_type) {
        case DT_REG: type = FileType::kRegular; break;
        case DT_DIR: type = FileType::kDirectory; break;
        case DT_LNK: type = FileType::kSymlink; break;
        case DT_UNKNOWN: {
          // Some file systems (XFS without ftype, some FUSE) do not fill d_type.
          struct stat st;
          if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            int err = errno;
            closedir(dir);
            return PosixError(err, absl::StrCat("stat ", path, "/", name));
          }
          type = TypeOf(st.st_mode);
          break;
        }
        default: type = FileType::kOther;
      }
      entries.push_back({std::string(name), type});
    }
    int err = errno;
    closedir(dir);
    if (err != 0) return PosixError(err, absl::StrCat("read directory ", path));
    return entries;
  }

  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override {
    // O_NONBLOCK: a path that became a FIFO must not hang the caller; it is rejected by type.
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return PosixError(errno, absl::StrCat("open ", path));
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<ReadableFile>(new PosixReadableFile(fd, path));
  }
};

}  // namespace

bool SameFileState(const FileStat& a, const FileStat& b) {
  return a.device == b.device && a.inode == b.inode && a.size == b.size &&
         a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns;
}

FileSystem* DefaultFileSystem() {
  static FileSystem* fs = new PosixFileSystem();
  return fs;
}

}  // namespace repro
