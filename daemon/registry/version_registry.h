// VersionRegistry: registers immutable data versions (hash every file, store manifest and
// digest) and answers questions about them.
//
//   VersionRegistry versions(pin_store, &hasher, DefaultFileSystem(), DefaultClock(), "node-a");
//   ASSIGN_OR_RETURN(v1::RegisterResult r, versions.Register(request, callbacks));
//
// Rules: a version is a directory whose parent is the dataset root (where aliases such as
// `latest` live); every version of a dataset shares that root and no two datasets share one.
// Registering dataset@version again with the same path and content is a no-op; anything else
// under an existing name is ALREADY_EXISTS (versions are immutable).
#ifndef REPRO_DAEMON_REGISTRY_VERSION_REGISTRY_H_
#define REPRO_DAEMON_REGISTRY_VERSION_REGISTRY_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/hashing/tree_hasher.h"
#include "daemon/os/clock.h"
#include "daemon/os/file_system.h"
#include "daemon/pin_store/pin_store.h"
#include "repro/v1/repro.pb.h"

namespace repro {

struct RegisterCallbacks {
  std::function<void(const v1::RegisterProgress&)> progress;  // may be empty
  std::function<bool()> cancelled;                             // may be empty
};

// Thread-safe. Does not own its collaborators; they must outlive it.
class VersionRegistry {
 public:
  VersionRegistry(PinStore* store, TreeHasher* hasher, FileSystem* fs, Clock* clock,
                  std::string node);

  // Hashes request.path and registers it. INVALID_ARGUMENT for bad names, a relative path, or a
  // tree that cannot be a version (symlinks, special files, no files); NOT_FOUND when the path
  // does not exist; FAILED_PRECONDITION when the path breaks the dataset-root rule;
  // ALREADY_EXISTS when the name is taken by other content or another path; CANCELLED.
  absl::StatusOr<v1::RegisterResult> Register(const v1::RegisterVersionRequest& request,
                                              const RegisterCallbacks& callbacks);

  absl::StatusOr<v1::VersionInfo> Get(absl::string_view dataset, absl::string_view version);
  absl::StatusOr<v1::Manifest> GetManifest(absl::string_view dataset, absl::string_view version);
  // `dataset` empty: every dataset. INVALID_ARGUMENT for a bad dataset name.
  absl::StatusOr<std::vector<v1::VersionInfo>> List(absl::string_view dataset);

 private:
  // FAILED_PRECONDITION when `root` is not the root of `dataset` or is another dataset's root.
  absl::Status CheckDatasetRoot(absl::string_view dataset, absl::string_view root);

  PinStore* const store_;
  TreeHasher* const hasher_;
  FileSystem* const fs_;
  Clock* const clock_;
  const std::string node_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_REGISTRY_VERSION_REGISTRY_H_
