// Test helpers for files: a temporary directory removed at scope exit, and small file IO.
//
//   TempDir dir;
//   WriteFileOrDie(dir.Path("v1/a.txt"), "hello");  // creates v1/
#ifndef REPRO_TESTS_TESTUTIL_TEMP_DIR_H_
#define REPRO_TESTS_TESTUTIL_TEMP_DIR_H_

#include <string>
#include <string_view>

namespace repro::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction. Not thread-safe.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + relative.
  std::string Path(std::string_view relative) const;

 private:
  std::string path_;
};

// Writes `contents` to `path`, creating parent directories; aborts the test binary on failure.
void WriteFileOrDie(const std::string& path, std::string_view contents);
// Reads a whole file; aborts on failure.
std::string ReadFileOrDie(const std::string& path);

// Makes `dir` unwritable even for root (chattr +i when running as root, else mode 0500) until the
// object is destroyed. ok() is false when the file system does not support it.
class UnwritableDir {
 public:
  explicit UnwritableDir(std::string dir);
  ~UnwritableDir();
  UnwritableDir(const UnwritableDir&) = delete;
  UnwritableDir& operator=(const UnwritableDir&) = delete;
  bool ok() const { return ok_; }

 private:
  const std::string dir_;
  bool ok_ = false;
};

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_TEMP_DIR_H_
