// FileAccess: may a caller read a file with their own credentials? reprod runs as root and can
// hash anything; it must not tell a caller the SHA-256 of a file the caller could not read.
//
//   if (!MayRead(caller, "/usr/lib/libfoo.so")) { /* do not hash it */ }
//   RETURN_IF_ERROR(CheckTreeReadable(caller, "/ml_data/users/v1"));
//
// How it decides, and why this way: by owner, group and mode bits of the file and of every
// directory on its (symlink-free) path, against the caller's uid, primary and supplementary groups,
// exactly as the kernel's generic permission check does without capabilities (root, uid 0, may read
// everything). It fails closed where the bits do not tell the whole story: a file or directory
// carrying a POSIX ACL (the system.posix_acl_access attribute) is treated as unreadable for anyone
// but root and its owner's bits. The alternative, opening each file as the caller through a forked
// helper that drops to the caller's fsuid/groups, lets the kernel (ACLs, LSMs) decide too, but it
// costs a fork per check on the shim's LOADED path and fork() of a many-threaded daemon; the bits
// are exact for the common case and never say "readable" when the kernel would refuse, except
// under an LSM policy (SELinux, AppArmor) that denies more — documented in the README.
//
// Thread-safe (stateless).
#ifndef REPRO_DAEMON_AUTH_FILE_ACCESS_H_
#define REPRO_DAEMON_AUTH_FILE_ACCESS_H_

#include <string>

#include "absl/status/status.h"
#include "daemon/auth/identity.h"

namespace repro {

// Whether `who` (a Unix identity; any other kind may read nothing this way) could open `path`
// for reading: every directory on its resolved path searchable, the file itself readable.
bool MayRead(const Identity& who, const std::string& path);

// OK when `who` could read every file and list every directory of the tree at `root` (symlinks
// are followed to their targets, which must be readable too). PERMISSION_DENIED naming the first
// path that is not; NOT_FOUND when `root` does not exist.
absl::Status CheckTreeReadable(const Identity& who, const std::string& root);

}  // namespace repro

#endif  // REPRO_DAEMON_AUTH_FILE_ACCESS_H_
