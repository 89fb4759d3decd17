// TreeHasher: the manifest and digest of a version directory, hashed on all cores.
//
//   TreeHasher hasher(DefaultFileSystem(), &cache, /*threads=*/0);  // 0: one per core
//   TreeHashOptions options;
//   options.progress = [&](const v1::RegisterProgress& p) { stream->Write(p); };
//   options.cancelled = [&] { return context->IsCancelled(); };
//   ASSIGN_OR_RETURN(TreeHashResult r, hasher.HashTree("/ml_data/user_ctr/v20250108", options));
//   // r.manifest: sorted, valid; r.digest == ManifestDigest(r.manifest)
//
// A version directory must be self-contained: only regular files and directories, no symlinks,
// FIFOs, sockets or devices anywhere inside. Empty directories are allowed but not recorded.
//
// How it works: worker threads walk the tree in parallel (directories and batches of lstat calls
// are the units of work), then hash the files in parallel, largest first so that a few huge files
// do not end up alone at the tail; each worker keeps one FileHasher (buffer reused) and takes the
// next file with one atomic increment. Files whose stat matches the HashCache are not read. The
// calling thread coordinates: it polls `cancelled`, reports progress and sorts the manifest while
// the workers hash.
#ifndef REPRO_DAEMON_HASHING_TREE_HASHER_H_
#define REPRO_DAEMON_HASHING_TREE_HASHER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/os/file_system.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro {

struct TreeHashOptions {
  // Called on the thread that called HashTree (so never concurrently) while files are hashed, at
  // most once per `progress_interval`, and once more on success with the final totals (files_done
  // == files_total, bytes_done == bytes_total). Values never decrease while the tree does not
  // change. May be empty. Should return quickly: it delays cancellation polling, not hashing.
  std::function<void(const v1::RegisterProgress&)> progress;
  absl::Duration progress_interval = absl::Milliseconds(100);
  // Polled on the calling thread about every 10 ms; once it returns true, the workers stop and
  // HashTree returns CANCELLED. May be empty.
  std::function<bool()> cancelled;
};

struct TreeHashResult {
  v1::Manifest manifest;      // every regular file, sorted by path (ValidateManifest holds)
  std::string digest;         // ManifestDigest(manifest): 32 raw bytes
  uint64_t files_hashed = 0;  // read and hashed in this call
  uint64_t files_cached = 0;  // served from the HashCache without reading
  uint64_t bytes_hashed = 0;  // size of the files read
  uint64_t total_bytes = 0;   // size of all files
};

// Thread-safe: HashTree may run concurrently from several threads (each call has its own workers).
class TreeHasher {
 public:
  // `fs` must outlive the hasher; `cache` may be null (no caching), else it must outlive it.
  // `threads` workers hash each tree; 0 means std::thread::hardware_concurrency().
  TreeHasher(FileSystem* fs, HashCache* cache, int threads);

  TreeHasher(const TreeHasher&) = delete;
  TreeHasher& operator=(const TreeHasher&) = delete;

  // Hashes every regular file under `dir` (paths in the manifest are relative to it).
  // Errors, naming the path: NOT_FOUND when `dir` does not exist; INVALID_ARGUMENT when `dir` is
  // not a directory (a symlink to one included), when a symlink, FIFO, socket or device is found
  // inside it, or when it contains no regular file; PERMISSION_DENIED (or another FileSystem code)
  // when something cannot be listed, stat'ed or read; ABORTED when a file kept changing while it
  // was read or something disappeared during the walk; CANCELLED when options.cancelled returned
  // true. The first error stops all workers.
  absl::StatusOr<TreeHashResult> HashTree(const std::string& dir,
                                          const TreeHashOptions& options = {});

  int threads() const { return threads_; }

 private:
  FileSystem* const fs_;
  HashCache* const cache_;
  const int threads_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_HASHING_TREE_HASHER_H_
