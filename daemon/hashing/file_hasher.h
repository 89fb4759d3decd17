// Hashing one file: SHA-256 of a regular file's content, consistent with its stat, served from the
// HashCache when the file is unchanged.
//
//   ASSIGN_OR_RETURN(HashedFile f, HashFile(DefaultFileSystem(), "/data/v1/a.bin", cache));
//   // f.sha256: 32 raw bytes; f.stat: the fstat the content belongs to
//
// Used to register versions (through TreeHasher), to re-hash pinned data when verifying a journal,
// and to check files opened by training jobs. To hash many files on one thread, keep a FileHasher:
// it reuses its 1 MiB buffer and digest context.
#ifndef REPRO_DAEMON_HASHING_FILE_HASHER_H_
#define REPRO_DAEMON_HASHING_FILE_HASHER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/os/file_system.h"

namespace repro {

// Files are read in chunks of this size.
inline constexpr size_t kHashChunkSize = size_t{1} << 20;
// A file found changed after it was read is read again at most this many times.
inline constexpr int kHashFileRetries = 3;

struct HashedFile {
  FileStat stat;            // the stat the content belongs to (unchanged while it was read)
  std::string sha256;       // 32 raw bytes
  bool from_cache = false;  // served by the HashCache; not a byte was read
};

struct HashFileOptions {
  // Polled before each chunk; once it returns true, Hash fails with CANCELLED. May be empty.
  std::function<bool()> cancelled;
  // Called after each chunk with the number of bytes read beyond the furthest point reached by
  // earlier attempts of the same Hash call, so the arguments add up to the size of the file as
  // finally read (bytes read again on a retry are not reported twice). May be empty.
  std::function<void(uint64_t)> on_read;
  // An lstat of the path taken just before (e.g. by a directory walk). When the cache knows it,
  // the file is not even opened. Null: none. Must stay valid during the call.
  const FileStat* lstat = nullptr;
  // A file larger than this is not read (a cached hash is still returned): RESOURCE_EXHAUSTED.
  // 0: no limit.
  uint64_t max_bytes = 0;
};

// Hashes files one after the other with a reused buffer and digest context. Not thread-safe: use
// one per thread.
class FileHasher {
 public:
  // `fs` must outlive the hasher; `cache` may be null (no caching), else it must outlive it.
  // New cache entries are written `cache_batch` at a time (see HashCache::BatchWriter); entries
  // still buffered are written by Flush() and on destruction. Use 1 for a long-lived hasher that
  // hashes now and then, so each entry is visible at once.
  FileHasher(FileSystem* fs, HashCache* cache, size_t cache_batch = 1);

  FileHasher(const FileHasher&) = delete;
  FileHasher& operator=(const FileHasher&) = delete;

  // Opens `path` without following a symlink, fstats it and, on a cache hit, returns without
  // reading. Otherwise reads its content, fstats it again and, when the stat is unchanged and
  // matches the bytes read, records the hash in the cache and returns it. A file found changed is
  // read again, up to kHashFileRetries times.
  //
  // Errors name the path: INVALID_ARGUMENT when it is not a regular file (symlink, directory,
  // FIFO, ...); NOT_FOUND, PERMISSION_DENIED, ... from the FileSystem when it cannot be opened,
  // read or stat'ed; ABORTED when it kept changing while being read; CANCELLED when
  // options.cancelled returned true; RESOURCE_EXHAUSTED when it is larger than options.max_bytes.
  absl::StatusOr<HashedFile> Hash(const std::string& path, const HashFileOptions& options = {});

  // Writes the cache entries still buffered.
  void Flush();

 private:
  // One attempt: the result, or nullopt when the file changed while it was read. `reported` is
  // the high-water mark of bytes passed to options.on_read so far.
  absl::StatusOr<std::optional<HashedFile>> HashOnce(const std::string& path,
                                                     const HashFileOptions& options,
                                                     uint64_t* reported);

  FileSystem* const fs_;
  HashCache* const cache_;
  std::optional<HashCache::BatchWriter> cache_writer_;  // set when cache_ is
  const std::unique_ptr<char[]> buffer_;                // kHashChunkSize bytes
  Sha256 sha_;
  bool sha_dirty_ = false;  // sha_ holds a partial digest from an attempt that failed
};

// One-shot FileHasher(fs, cache).Hash(path, {.cancelled = cancelled}): same contract. Allocates a
// 1 MiB buffer per call; keep a FileHasher to hash many files.
absl::StatusOr<HashedFile> HashFile(FileSystem* fs, const std::string& path, HashCache* cache,
                                    const std::function<bool()>& cancelled = {});

// "a regular file", "a directory", "a symlink", "a FIFO", "a socket", "a character device",
// "a block device" or "an unknown kind of file", from `stat.mode` (and `stat.type`).
absl::string_view FileKindName(const FileStat& stat);

}  // namespace repro

#endif  // REPRO_DAEMON_HASHING_FILE_HASHER_H_
