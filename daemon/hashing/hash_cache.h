// HashCache: remembers the SHA-256 of files by their stat, so an unchanged file is never re-read.
//
//   HashCache cache(store);                     // store: the node's RocksStore
//   ASSIGN_OR_RETURN(FileStat st, file->Stat());
//   if (std::optional<std::string> sha = cache.Lookup(st)) return *sha;  // not a byte read
//   std::string sha = ...hash the file...;
//   cache.Insert(st, sha);
//
// Entries live in the RocksDB column family Column::kHashCache:
//
//   key   = be64(device) || be64(inode)                                          (16 bytes)
//   value = u8 version (1) || be64(size) || be64(mtime_ns) || be64(ctime_ns) || sha256  (57 bytes)
//
// Keying by (device, inode) means a file overwritten in place replaces its own entry instead of
// leaving a stale one behind. A lookup hits only when device, inode, size, mtime_ns and ctime_ns
// all match the stored ones; ctime changes on every write and cannot be set by users, so tools that
// restore mtime after a write (cp -p, rsync) still cause a miss.
//
// Racy entries: file systems stamp times from a coarse clock (one kernel tick, a few ms), so a
// write in the same tick as the one before it leaves mtime and ctime unchanged. Insert therefore
// skips files changed less than `racy_window` ago; they are cached the next time they are hashed.
//
// The cache is rebuildable: writes are not synced, and every error (RocksDB, a malformed value) is
// logged and treated as a miss, never returned.
#ifndef REPRO_DAEMON_HASHING_HASH_CACHE_H_
#define REPRO_DAEMON_HASHING_HASH_CACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/os/clock.h"
#include "daemon/os/file_system.h"
#include "daemon/store/rocks_store.h"
#include "rocksdb/write_batch.h"

namespace repro {

struct HashCacheOptions {
  // Files whose mtime or ctime is later than now - racy_window are not inserted. Must exceed the
  // file system's timestamp granularity (Linux: one tick, at most 10 ms). Tests that hash files
  // they have just written set it to zero.
  absl::Duration racy_window = absl::Milliseconds(20);
  // Time source for the racy check; must outlive the cache. Null: DefaultClock().
  Clock* clock = nullptr;
};

// Thread-safe.
class HashCache {
 public:
  // `store` must outlive the cache.
  explicit HashCache(RocksStore* store, HashCacheOptions options = {});

  HashCache(const HashCache&) = delete;
  HashCache& operator=(const HashCache&) = delete;

  // The 32-byte SHA-256 recorded for the file described by `stat`, or nullopt when there is no
  // entry, the entry does not match device, inode, size, mtime_ns and ctime_ns, or the entry is
  // malformed (counted in corrupt_entries()) or unreadable (counted in store_errors()).
  std::optional<std::string> Lookup(const FileStat& stat);

  // Records `sha256` (32 bytes) as the content hash of the file described by `stat`, replacing
  // any entry for the same device and inode. The caller must have read the content while the file
  // had exactly this stat. Unsynced (WriteFast); a write error is logged and counted, never
  // returned. Racy files (see above) and hashes of the wrong size are not recorded.
  void Insert(const FileStat& stat, absl::string_view sha256);

  // Buffers inserts and writes them in batches: one RocksDB write per `batch_size` entries
  // instead of one per file (a write costs several microseconds, more under contention). Buffered
  // entries are not visible to Lookup until written. Not thread-safe: one per thread.
  class BatchWriter {
   public:
    // `cache` must outlive the writer.
    BatchWriter(HashCache* cache, size_t batch_size);
    // Writes what is buffered.
    ~BatchWriter();
    BatchWriter(const BatchWriter&) = delete;
    BatchWriter& operator=(const BatchWriter&) = delete;

    // Same contract as HashCache::Insert, written at the latest when the batch is full.
    void Insert(const FileStat& stat, absl::string_view sha256);
    // Writes what is buffered now.
    void Flush();

   private:
    HashCache* const cache_;
    const size_t batch_size_;
    rocksdb::WriteBatch batch_;
  };

  // Malformed values seen by Lookup since construction.
  uint64_t corrupt_entries() const { return corrupt_entries_.load(std::memory_order_relaxed); }
  // RocksDB read or write errors since construction.
  uint64_t store_errors() const { return store_errors_.load(std::memory_order_relaxed); }

  // The key of the entry for `stat` (be64(device) || be64(inode)); exposed for tests and tools.
  static std::string KeyFor(const FileStat& stat);

 private:
  // Adds the entry for `stat` to `batch` unless it must not be recorded (racy, bad hash size).
  void AddTo(const FileStat& stat, absl::string_view sha256, rocksdb::WriteBatch* batch);
  void Write(rocksdb::WriteBatch* batch);
  void CountStoreError(const absl::Status& status, const char* what);

  RocksStore* const store_;
  const absl::Duration racy_window_;
  Clock* const clock_;
  std::atomic<uint64_t> corrupt_entries_{0};
  std::atomic<uint64_t> store_errors_{0};
};

}  // namespace repro

#endif  // REPRO_DAEMON_HASHING_HASH_CACHE_H_
