// Turns what a process reported it runs with (a LOADED message) into journal entries: one
// LibrariesLoaded per shared library (path, soname, version, SHA-256) and one PythonPackages per
// Python distribution it imported from (name, version, dist-info/egg-info location).
//
//   LoadedEntryBuilder builder(DefaultFileSystem(), hash_cache);
//   LoadedEntries built = builder.Build({.job = "job-1", .pid = pid, .rank = 0}, loaded);
//   journal->Append("job-1", std::move(built.items));
//
// Each entry carries a once-key, so that what many processes of a job load is journaled once per
// job (and node):
//   "lib/<path>/<sha256 hex>"       <path>: the library's symlink-free path
//   "pkg/<name>/<version>"          <name>: the distribution's PEP 503 name (NormalizePackageName)
//
// The paths come from untrusted processes: a library is hashed only after the Authorizer said the
// reporting process could read it itself (Authorizer::MayHash: mode bits of the file and every
// directory on its path against its uid and groups), so a process cannot learn through the
// journal the hash of a file it may not read.
#ifndef REPRO_DAEMON_LOADED_CODE_LOADED_ENTRIES_H_
#define REPRO_DAEMON_LOADED_CODE_LOADED_ENTRIES_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "daemon/auth/authorizer.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/os/file_system.h"
#include "daemon/loaded_code/python_packages.h"
#include "daemon/loaded_code/loaded_report.h"
#include "daemon/store/journal.h"

namespace repro {

// The process a LOADED report came from: its job and rank from its HELLO, the rest from
// SO_PEERCRED.
struct LoadedSource {
  std::string job;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS)
  int64_t rank = 0;

  Identity identity() const { return Identity::Unix(uid, gid, groups); }
};

struct LoadedEntries {
  std::vector<JournalItem> items;
  size_t skipped_libraries = 0;  // not described: missing, not a regular file, not readable
  size_t skipped_packages = 0;   // no distribution found, or its metadata not readable
};

// Not thread-safe (it caches site directory maps): one per thread.
class LoadedEntryBuilder {
 public:
  // `fs` must outlive the builder; `hash_cache` and `auth` may be null, else they must outlive
  // it. Without `auth`, a default Authorizer decides (root may hash anything, others what they
  // can read). Libraries larger than `max_hash_bytes` are skipped unread (0: no limit).
  LoadedEntryBuilder(FileSystem* fs, HashCache* hash_cache, Authorizer* auth = nullptr,
                     uint64_t max_hash_bytes = 0);

  // The journal items for `loaded`, in report order: libraries first, then packages (those of
  // package directories and of libraries lying under a "*-packages" directory). Entries repeated
  // within the report appear once. Never fails: what cannot be described is skipped, counted and
  // logged at debug.
  LoadedEntries Build(const LoadedSource& source, const LoadedReport& loaded);

 private:
  // The LibrariesLoaded item for the library the loader named `path`, or nullopt.
  std::optional<JournalItem> LibraryItem(const LoadedSource& source, const std::string& path,
                                         absl::string_view libc_version);
  // The PythonPackages item for the distribution providing `module` of `site`, or nullopt.
  std::optional<JournalItem> PackageItem(const LoadedSource& source, const SiteModule& module);

  FileSystem* const fs_;
  Authorizer own_auth_{AuthorizerOptions{}};
  Authorizer* const auth_;
  FileHasher hasher_;
  const uint64_t max_hash_bytes_;
  PythonPackageResolver packages_;
};

// The version journaled for a library: for libc ("libc.so.6") the version the process reported
// (`libc_version`), when it did; else the version in the file name of `real_path`, else in
// `soname` (see VersionFromFileName).
std::string LibraryVersion(absl::string_view soname, absl::string_view real_path,
                           absl::string_view libc_version);

// Whether a process with `uid` and `gid` may read the file `stat` describes, by its owner, group
// and mode bits (root may read everything; supplementary groups, ACLs and the directories on the
// way are not considered).
bool ProcessMayRead(uid_t uid, gid_t gid, const FileStat& stat);

}  // namespace repro

#endif  // REPRO_DAEMON_LOADED_CODE_LOADED_ENTRIES_H_
