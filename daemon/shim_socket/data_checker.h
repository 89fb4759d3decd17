// DataChecker: is the file a job's process opened the data its pin promises? Looks the file up in
// the manifest of the version it lies in (kept in memory as an index, path -> entry) and compares
// content: "stat match, else re-hash", through the stat-keyed HashCache, so an unchanged file is
// never read.
//
//   DataChecker checker(versions, DefaultFileSystem(), hash_cache);
//   OpenCheck c = checker.Check(pin, "user_ctr", "/ml/user_ctr/v1/part-0.csv");
//   if (c.verdict != v1::VERDICT_MATCH) ... c.detail ...
//
// Only files listed in a registered manifest are ever hashed, at the path made from the registered
// version directory and the manifest's relative path: a shim cannot make reprod read arbitrary
// files.
#ifndef REPRO_DAEMON_SHIM_SOCKET_DATA_CHECKER_H_
#define REPRO_DAEMON_SHIM_SOCKET_DATA_CHECKER_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/os/file_system.h"
#include "daemon/registry/version_registry.h"
#include "repro/v1/journal.pb.h"

namespace repro {

struct OpenCheck {
  v1::Verdict verdict = v1::VERDICT_UNSPECIFIED;
  std::string version;        // the version the file lies in (pinned or other); may be empty
  std::string relative_path;  // inside that version; empty when not in a version
  std::string sha256;         // the file's content as reprod found it (32 bytes), when hashed
  FileStat stat;              // the stat that sha256 belongs to
  std::string detail;         // one line for violations and refusals
};

// Thread-safe. Collaborators are not owned and must outlive it.
class DataChecker {
 public:
  // `max_indexes`: manifests kept in memory (least recently used ones are dropped).
  DataChecker(VersionRegistry* versions, FileSystem* fs, HashCache* cache, size_t max_indexes = 16);

  // Checks `opened_path` (absolute, normalized, as the shim opened it) for a job pinned by `pin`
  // to a version of `dataset`. Never fails: problems are verdicts (NOT_IN_MANIFEST when the
  // dataset is not pinned or the path is not a manifest entry, OTHER_VERSION, CONTENT_CHANGED,
  // UNREADABLE).
  OpenCheck Check(const v1::Pin& pin, absl::string_view dataset, absl::string_view opened_path);

 private:
  // Relative path -> manifest entry, for one version.
  using ManifestIndex = absl::flat_hash_map<std::string, v1::FileEntry>;

  // The index of dataset@version, loaded on first use; null (with *error set) when the manifest
  // cannot be read.
  std::shared_ptr<const ManifestIndex> IndexOf(const std::string& dataset,
                                               const std::string& version, std::string* error);
  // Hashes `path` (served by the cache when unchanged) and compares it with `entry`.
  void CompareContent(const std::string& path, const v1::FileEntry& entry, OpenCheck* check);
  std::unique_ptr<FileHasher> TakeHasher();
  void ReturnHasher(std::unique_ptr<FileHasher> hasher);

  VersionRegistry* const versions_;
  FileSystem* const fs_;
  HashCache* const cache_;
  const size_t max_indexes_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const ManifestIndex>> indexes_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::string> loaded_ ABSL_GUARDED_BY(mu_);  // index keys, oldest first
  std::vector<std::unique_ptr<FileHasher>> idle_hashers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_DATA_CHECKER_H_
