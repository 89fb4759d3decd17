#include "client/cli/subjects.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "common/sha256.h"

namespace repro::cli {
namespace {

absl::StatusOr<std::string> HashPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, absl::StrCat("cannot read subject ", path));
  Sha256 hash;
  std::string buffer(1 << 20, '\0');
  while (true) {
    ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return PosixError(err, absl::StrCat("cannot read subject ", path));
    }
    if (n == 0) break;
    hash.Update(buffer.data(), static_cast<size_t>(n));
  }
  close(fd);
  return hash.Finish();
}

}  // namespace

absl::StatusOr<std::vector<SubjectFile>> ExpandSubjects(const std::vector<std::string>& globs) {
  std::vector<SubjectFile> out;
  std::set<std::string> seen;
  for (const std::string& pattern : globs) {
    glob_t matches{};
    int rc = glob(pattern.c_str(), GLOB_ERR, nullptr, &matches);
    size_t found = 0;
    for (size_t i = 0; rc == 0 && i < matches.gl_pathc; ++i) {
      std::string name = matches.gl_pathv[i];
      struct stat st {};
      char resolved[PATH_MAX];
      if (stat(name.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
          realpath(name.c_str(), resolved) == nullptr) {
        continue;
      }
      ++found;
      if (!seen.insert(resolved).second) continue;
      absl::StatusOr<std::string> sha256 = HashPath(resolved);
      if (!sha256.ok()) {
        globfree(&matches);
        return sha256.status();
      }
      out.push_back({std::move(name), resolved, *std::move(sha256)});
    }
    globfree(&matches);
    if (found == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--subject '", pattern, "' matches no regular file"));
    }
  }
  return out;
}

}  // namespace repro::cli
