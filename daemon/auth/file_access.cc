#include "daemon/auth/file_access.h"

#include <sys/stat.h>
#include <sys/xattr.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace repro {
namespace {

// Whether `who` is granted `want` (a mask of 4 = read, 1 = search) on the inode at `path`
// (not following a final symlink: callers pass resolved paths).
bool Granted(const Identity& who, const std::string& path, mode_t want) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return false;
  if (lgetxattr(path.c_str(), "system.posix_acl_access", nullptr, 0) >= 0 && st.st_uid != who.uid) {
    return false;  // an ACL may grant or deny named users and groups: not decided by the bits
  }
  mode_t bits;
  if (st.st_uid == who.uid) {
    bits = (st.st_mode >> 6) & 7;
  } else if (who.InGroup(st.st_gid)) {
    bits = (st.st_mode >> 3) & 7;
  } else {
    bits = st.st_mode & 7;
  }
  return (bits & want) == want;
}

// Whether every directory from "/" down to the parent of the resolved `real` is searchable.
bool PathSearchable(const Identity& who, const std::string& real) {
  std::string dir = "/";
  if (!Granted(who, dir, 1)) return false;
  size_t pos = 1;
  for (;;) {
    size_t slash = real.find('/', pos);
    if (slash == std::string::npos) return true;
    dir = real.substr(0, slash);
    if (!Granted(who, dir, 1)) return false;
    pos = slash + 1;
  }
}

std::string Resolve(const std::string& path) {
  char buffer[PATH_MAX];
  if (realpath(path.c_str(), buffer) == nullptr) return "";
  return buffer;
}

bool MayReadResolved(const Identity& who, const std::string& real, bool directory) {
  if (!PathSearchable(who, real)) return false;
  return Granted(who, real, directory ? 4 | 1 : 4);
}

}  // namespace

bool MayRead(const Identity& who, const std::string& path) {
  if (who.kind != Identity::Kind::kUnix) return false;
  if (who.uid == 0) return true;
  std::string real = Resolve(path);
  if (real.empty()) return false;
  struct stat st {};
  if (stat(real.c_str(), &st) != 0) return false;
  return MayReadResolved(who, real, S_ISDIR(st.st_mode));
}

absl::Status CheckTreeReadable(const Identity& who, const std::string& root) {
  std::error_code ec;
  if (!std::filesystem::exists(root, ec)) {
    return absl::NotFoundError(absl::StrCat(root, " does not exist"));
  }
  if (who.kind == Identity::Kind::kUnix && who.uid == 0) return absl::OkStatus();
  auto denied = [&](const std::string& path) {
    return absl::PermissionDeniedError(absl::StrCat(
        who.Describe(), " may not read ", path,
        ": registering a version needs read access to every file of it, or the admin role"));
  };
  if (!MayRead(who, root)) return denied(root);
  std::filesystem::recursive_directory_iterator it(
      root, std::filesystem::directory_options::follow_directory_symlink, ec);
  for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string path = it->path().string();
    if (!MayRead(who, path)) return denied(path);
  }
  if (ec) return denied(absl::StrCat(root, " (", ec.message(), ")"));
  return absl::OkStatus();
}

}  // namespace repro
