#include "client/cli/isolate/isolate.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/exec_command.h"
#include "client/cli/format.h"
#include "common/posix_error.h"
#include "common/status_macros.h"

namespace repro::cli {
namespace {

// How an entry directly under a dataset root appears in the view.
enum class EntryKind {
  kPinned,     // the pinned version: bound read-only
  kOther,      // another registered version: absent (enforce) or bound through (record)
  kDirAlias,   // a directory that is no registered version: a read-only bind of the pinned one
  kLinkAlias,  // a symlink that leads to a directory: a symlink to the pinned directory's name
  kThrough,    // anything else (files, other symlinks): as it is
};

struct Entry {
  std::string name;
  EntryKind kind;
};

// Closes a file descriptor at scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status Errno(absl::string_view what) { return PosixError(errno, what); }

absl::Status WriteProcFile(const char* path, const std::string& text) {
  Fd fd(open(path, O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0 || write(fd.get(), text.data(), text.size()) != ssize_t(text.size())) {
    return Errno(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

// Enters a new mount namespace whose mounts are slaves of the host's. Root with CAP_SYS_ADMIN
// needs nothing else; anyone else goes through a user namespace mapping its uid and gid to
// themselves (setgroups denied, as an unprivileged map requires). Sets *user_ns accordingly.
absl::Status EnterMountNamespace(bool* user_ns) {
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  *user_ns = !(uid == 0 && unshare(CLONE_NEWNS) == 0);
  if (*user_ns) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--isolate needs a user namespace and this system refuses to create one (",
          strerror(errno),
          "); enable them (sysctl kernel.unprivileged_userns_clone=1 where it exists, "
          "user.max_user_namespaces > 0; in a container: a runtime or seccomp profile that "
          "allows them) or run as root; the job was not started"));
    }
    RETURN_IF_ERROR(WriteProcFile("/proc/self/setgroups", "deny"));
    RETURN_IF_ERROR(WriteProcFile("/proc/self/uid_map", absl::StrCat(uid, " ", uid, " 1\n")));
    RETURN_IF_ERROR(WriteProcFile("/proc/self/gid_map", absl::StrCat(gid, " ", gid, " 1\n")));
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return Errno("cannot make the mounts of the new namespace slaves");
  }
  return absl::OkStatus();
}

EntryKind Classify(int root_fd, const IsolatedRoot& root, const std::string& name) {
  if (name == root.pinned) return EntryKind::kPinned;
  if (std::find(root.others.begin(), root.others.end(), name) != root.others.end()) {
    return EntryKind::kOther;
  }
  struct stat st;
  if (fstatat(root_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return EntryKind::kThrough;
  if (S_ISDIR(st.st_mode)) return EntryKind::kDirAlias;
  if (S_ISLNK(st.st_mode) && fstatat(root_fd, name.c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode)) {
    return EntryKind::kLinkAlias;
  }
  return EntryKind::kThrough;
}

// The entries of the directory `root_fd` (an O_PATH descriptor) with their kinds.
absl::StatusOr<std::vector<Entry>> ListRoot(int root_fd, const IsolatedRoot& root) {
  int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dir = fd >= 0 ? fdopendir(fd) : nullptr;
  if (dir == nullptr) {
    if (fd >= 0) close(fd);
    return Errno(absl::StrCat("cannot list ", root.root));
  }
  std::vector<Entry> entries;
  bool pinned_seen = false;
  while (const dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    entries.push_back({name, Classify(root_fd, root, name)});
    pinned_seen |= entries.back().kind == EntryKind::kPinned;
  }
  closedir(dir);
  if (!pinned_seen) {
    return absl::NotFoundError(
        absl::StrCat("the pinned version ", root.root, "/", root.pinned, " is not there"));
  }
  return entries;
}

// The MS_* flags a read-only remount of `path` must keep: in a user namespace the mount's
// nosuid, nodev, noexec and atime flags are locked, and a remount dropping them fails.
unsigned long KeptFlags(const std::string& path) {
  struct statvfs vfs;
  if (statvfs(path.c_str(), &vfs) != 0) return 0;
  unsigned long flags = 0;
  if (vfs.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (vfs.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (vfs.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (vfs.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (vfs.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (vfs.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

absl::Status Bind(const std::string& source, const std::string& target, bool read_only) {
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Errno(absl::StrCat("cannot bind ", target));
  }
  if (read_only && mount(nullptr, target.c_str(), nullptr,
                         MS_REMOUNT | MS_BIND | MS_RDONLY | KeptFlags(target), nullptr) != 0) {
    return Errno(absl::StrCat("cannot make ", target, " read-only"));
  }
  return absl::OkStatus();
}

// Puts `entry` into the view at root.root, which is already covered by the tmpfs; `real` is the
// path of the covered root ("/proc/self/fd/N").
absl::Status PlaceEntry(const IsolatedRoot& root, bool enforce, int root_fd,
                        const std::string& real, const Entry& entry) {
  const std::string target = absl::StrCat(root.root, "/", entry.name);
  const std::string pinned = absl::StrCat(real, "/", root.pinned);
  switch (entry.kind) {
    case EntryKind::kOther:
      if (enforce) return absl::OkStatus();
      [[fallthrough]];
    case EntryKind::kThrough: {
      struct stat st;
      if (fstatat(root_fd, entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return absl::OkStatus();  // gone since the listing
      }
      if (S_ISLNK(st.st_mode)) {
        char link[4096];
        ssize_t n = readlinkat(root_fd, entry.name.c_str(), link, sizeof(link));
        if (n < 0) return Errno(absl::StrCat("cannot read the symlink ", target));
        if (n == ssize_t(sizeof(link))) {
          return absl::OutOfRangeError(absl::StrCat("the symlink ", target, " is too long"));
        }
        link[n] = '\0';
        if (symlink(link, target.c_str()) != 0) return Errno(absl::StrCat("cannot make ", target));
        return absl::OkStatus();
      }
      int made = S_ISDIR(st.st_mode) ? mkdir(target.c_str(), 0755)
                                     : mknod(target.c_str(), S_IFREG | 0644, 0);
      if (made != 0) return Errno(absl::StrCat("cannot make ", target));
      return Bind(absl::StrCat(real, "/", entry.name), target, /*read_only=*/false);
    }
    case EntryKind::kPinned:
    case EntryKind::kDirAlias:
      if (mkdir(target.c_str(), 0755) != 0) return Errno(absl::StrCat("cannot make ", target));
      return Bind(pinned, target, /*read_only=*/true);
    case EntryKind::kLinkAlias:
      if (symlink(root.pinned.c_str(), target.c_str()) != 0) {
        return Errno(absl::StrCat("cannot make ", target));
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

// Covers root.root with a tmpfs holding the view of that root, then makes the tmpfs read-only.
absl::Status MountRoot(const IsolatedRoot& root, bool enforce, bool user_ns) {
  // The covered root stays reachable through this descriptor's /proc/self/fd link.
  Fd root_fd(open(root.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root_fd.get() < 0) return Errno(absl::StrCat("cannot open the dataset root ", root.root));
  struct stat st;
  if (fstat(root_fd.get(), &st) != 0) return Errno(absl::StrCat("cannot stat ", root.root));
  ASSIGN_OR_RETURN(std::vector<Entry> entries, ListRoot(root_fd.get(), root));

  // The tmpfs looks like the root: its mode, and its owner where the namespace maps it.
  std::string options = absl::StrFormat("mode=%o", st.st_mode & 07777);
  if (!user_ns) absl::StrAppend(&options, ",uid=", st.st_uid, ",gid=", st.st_gid);
  if (mount("repro-view", root.root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    return Errno(absl::StrCat("cannot mount the view over ", root.root));
  }
  const std::string real = absl::StrCat("/proc/self/fd/", root_fd.get());
  for (const Entry& entry : entries) {
    RETURN_IF_ERROR(PlaceEntry(root, enforce, root_fd.get(), real, entry));
  }
  if (mount(nullptr, root.root.c_str(), nullptr,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    return Errno(absl::StrCat("cannot make the view of ", root.root, " read-only"));
  }
  return absl::OkStatus();
}

// The working directory by the name the job was started in: $PWD when it names the working
// directory (a shell in latest/ has $PWD=ROOT/latest while the kernel's is ROOT/v2), else the
// kernel's; "" when neither is known. Under a root it must be entered again once the view covers
// it, by this name, so that it leads to the pinned version.
std::string WorkingDirectory() {
  struct stat here, named;
  const char* pwd = getenv("PWD");
  if (pwd != nullptr && pwd[0] == '/' && stat(".", &here) == 0 && stat(pwd, &named) == 0 &&
      here.st_dev == named.st_dev && here.st_ino == named.st_ino) {
    return pwd;
  }
  std::unique_ptr<char, decltype(&free)> cwd(getcwd(nullptr, 0), &free);
  return cwd != nullptr ? std::string(cwd.get()) : "";
}

}  // namespace

absl::Status EnterIsolatedView(const IsolationPlan& plan) {
  const std::string cwd = WorkingDirectory();
  bool user_ns = false;
  RETURN_IF_ERROR(EnterMountNamespace(&user_ns));
  for (const IsolatedRoot& root : plan.roots) {
    RETURN_IF_ERROR(MountRoot(root, plan.enforce, user_ns));
  }
  if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
    return Errno(absl::StrCat("the working directory ", cwd, " is not in the job's view"));
  }
  return absl::OkStatus();
}

int RunIsolatedExec(absl::Span<const std::string> words, std::ostream& err) {
  absl::StatusOr<IsolationPlan> plan = DecodeIsolationPlan(words);
  absl::Status entered = plan.ok() ? EnterIsolatedView(*plan) : plan.status();
  if (!entered.ok()) {
    err << "reproctl: " << OneLine(entered.message()) << '\n';
    err.flush();
    return 1;
  }
  if (!plan->announce.empty()) err << plan->announce << '\n';
  err.flush();
  return ExecCommand(plan->command, plan->env, err);
}

}  // namespace repro::cli
