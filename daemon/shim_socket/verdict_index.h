// VerdictIndex: the sealed, read-only table of a job's pinned files that reprod passes to shims
// in enforce mode (format: proto/shim/shim_index.h), so that an unchanged file is allowed without
// a verdict round trip. VerdictIndexes builds one per job on its first HELLO and keeps it.
//
//   VerdictIndexes indexes(versions, DefaultFileSystem(), hash_cache);
//   absl::StatusOr<std::shared_ptr<const VerdictIndex>> index = indexes.ForPin(pin);
//   SendWithFds(socket, pin_reply, {ring_fd, (*index)->fd()});
//
// A file is entered only when its current stat has the manifest's SHA-256 in the hash cache (the
// file was verified with exactly this identity); others are left out and keep asking reprod. The
// build runs while the first shim of the job waits for its PIN, so it stops after 500 ms: on a
// version too large to stat in that time, the rest of its files keep asking reprod.
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_VERDICT_INDEX_H_
#define REPRO_DAEMON_SHIM_SOCKET_VERDICT_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/os/file_system.h"
#include "daemon/registry/version_registry.h"

namespace repro {

// One entry: the absolute path the shim opens, the identity reprod verified, the content hash.
struct VerdictIndexEntry {
  std::string path;
  FileStat stat;
  std::string sha256;  // 32 bytes
};

// An immutable index in a sealed memfd. Not copyable; the descriptor closes with it.
class VerdictIndex {
 public:
  // Builds the index of `entries` (paths unique). INTERNAL when the memfd cannot be made.
  static absl::StatusOr<std::unique_ptr<VerdictIndex>> Build(
      const std::vector<VerdictIndexEntry>& entries);
  ~VerdictIndex();
  VerdictIndex(const VerdictIndex&) = delete;
  VerdictIndex& operator=(const VerdictIndex&) = delete;

  // Read-only, sealed: safe to hand to any process.
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  size_t entries() const { return entries_; }

 private:
  VerdictIndex(int fd, uint64_t size, size_t entries) : fd_(fd), size_(size), entries_(entries) {}
  const int fd_;
  const uint64_t size_;
  const size_t entries_;
};

class VerdictIndexes {
 public:
  // None is owned; each must outlive this object. `cache` may be null (then every index is empty).
  VerdictIndexes(VersionRegistry* versions, FileSystem* fs, HashCache* cache)
      : versions_(versions), fs_(fs), cache_(cache) {}

  // The index of the files `pin` pins, built on first use per job. The manifest's error when a
  // pinned manifest cannot be read.
  absl::StatusOr<std::shared_ptr<const VerdictIndex>> ForPin(const v1::Pin& pin);

 private:
  absl::StatusOr<std::shared_ptr<const VerdictIndex>> BuildFor(const v1::Pin& pin);

  VersionRegistry* const versions_;
  FileSystem* const fs_;
  HashCache* const cache_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const VerdictIndex>> by_job_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_VERDICT_INDEX_H_
