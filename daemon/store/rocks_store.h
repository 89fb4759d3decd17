// RocksStore: the node's RocksDB database under --data_dir, with one column family per kind of
// record, an exclusive lock on the directory, and a durable write path.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<RocksStore> store, RocksStore::Open({.data_dir = dir}));
//   rocksdb::WriteBatch batch;
//   batch.Put(store->handle(Column::kCatalog), key, value);
//   RETURN_IF_ERROR(store->WriteDurable(&batch));  // WAL fdatasync'ed before return
//
// Column families (keys are documented by their owners):
//   catalog        versions, manifests, pins              (daemon/pin_store/rocks_pin_store.h)
//   journal        job/be64(seq) -> hash || entry bytes  (daemon/store/journal.h)
//   journal_heads  job -> JournalHead
//   journal_index  job/once_key -> be64(seq)
//   hash_cache     be64(dev) be64(ino) -> stat + SHA-256  (daemon/hashing/hash_cache.h)
//   head_log       the node's Merkle tree of signed heads (daemon/store/head_log.h)
#ifndef REPRO_DAEMON_STORE_ROCKS_STORE_H_
#define REPRO_DAEMON_STORE_ROCKS_STORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/write_batch.h"

namespace repro {

enum class Column { kCatalog, kJournal, kJournalHeads, kJournalIndex, kHashCache, kHeadLog };

struct RocksStoreOptions {
  std::string data_dir;
  // Env for RocksDB's file IO; tests wrap the default one to inject IO errors. Null: default.
  rocksdb::Env* env = nullptr;
};

// Thread-safe (RocksDB is). Holds an exclusive flock on <data_dir>/reprod.lock while open.
class RocksStore {
 public:
  // Creates the directory if needed and opens (or creates) the database. Fails with
  // FAILED_PRECONDITION when another process holds the data dir (message names its pid),
  // PERMISSION_DENIED when it is not writable, DATA_LOSS when the database is corrupt.
  static absl::StatusOr<std::unique_ptr<RocksStore>> Open(const RocksStoreOptions& options);
  ~RocksStore();

  RocksStore(const RocksStore&) = delete;
  RocksStore& operator=(const RocksStore&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* handle(Column column) const;
  const std::string& data_dir() const { return data_dir_; }

  // Applies `batch` atomically and returns after the WAL is synced to disk. Concurrent callers
  // are group-committed by RocksDB (one WAL write and one sync for many batches).
  absl::Status WriteDurable(rocksdb::WriteBatch* batch);
  // Applies `batch` without waiting for the disk: for rebuildable data such as the hash cache.
  absl::Status WriteFast(rocksdb::WriteBatch* batch);
  // Both fail with UNAVAILABLE naming the fault when the disk failed them (EIO; nothing was
  // written) or fails still (see Recover), RESOURCE_EXHAUSTED when it is full.

  // OK while writes are accepted. After a failed write, or a flush or compaction that could not
  // write, UNAVAILABLE naming the storage fault until Recover succeeds.
  absl::Status WriteHealth() const ABSL_LOCKS_EXCLUDED(fault_mu_);
  // When writes are refused, asks RocksDB to resume them (DB::Resume: it flushes what the failed
  // WAL held and starts a new one) and returns WriteHealth(). Writes call it first; a health
  // monitor calls it so that a fault that clears is noticed without waiting for a write.
  absl::Status Recover() ABSL_LOCKS_EXCLUDED(fault_mu_);

  // The value stored under `key`, or nullopt.
  absl::StatusOr<std::optional<std::string>> Get(Column column, absl::string_view key) const;

  // Calls `fn(key, value)` for each key starting with `prefix`, in key order, until it returns
  // false.
  absl::Status ScanPrefix(Column column, absl::string_view prefix,
                          const std::function<bool(absl::string_view, absl::string_view)>& fn) const;

 private:
  RocksStore(std::string data_dir, int lock_fd);
  absl::Status WriteWith(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch);

  const std::string data_dir_;
  const int lock_fd_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // indexed by Column
  class FaultListener;
  // Marks writes refused until Recover, with the reason.
  void SetFault(std::string reason) ABSL_LOCKS_EXCLUDED(fault_mu_);

  std::atomic<bool> needs_resume_{false};               // a write failed: Resume() first
  mutable absl::Mutex fault_mu_;
  std::string fault_ ABSL_GUARDED_BY(fault_mu_);  // why writes are refused
};

inline absl::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
inline rocksdb::Slice ToSlice(absl::string_view s) { return {s.data(), s.size()}; }

// Converts a RocksDB status to the canonical code that fits ("IO error: No space" ->
// RESOURCE_EXHAUSTED, Corruption -> DATA_LOSS, ...), prefixing `context`.
absl::Status FromRocksStatus(const rocksdb::Status& status, absl::string_view context);

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_ROCKS_STORE_H_
