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
//
// Recovery from a storage fault happens in the process: when RocksDB cannot resume writes by
// itself (RocksDB 7.8.3's DB::Resume fails after a non-retryable IO error such as EIO on a WAL
// sync), Recover closes and reopens the database, like a restart would, once no Lease is held.
// Reopening may bring back writes whose sync failed (never acknowledged, but in the OS's cache):
// whoever keeps state derived from the database (the journal's heads, the head log's frontier)
// re-derives it when generation() changes.
class RocksStore {
 public:
  // Keeps the database from being reopened while it lives, so that db() and handle() stay valid:
  // hold one around every direct use of them (a batch's Put, an iterator's life), and check
  // status() first. A batch may outlive the lease its Puts ran under: it holds column family ids,
  // which a reopen keeps. Leases nest; a Lease never waits for another Lease, only for a reopen
  // that is in progress (bounded: a DB::Open).
  class Lease {
   public:
    explicit Lease(const RocksStore* store);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    // OK while the database is open; UNAVAILABLE naming the fault while a failed reopen keeps it
    // closed (db() is then null).
    absl::Status status() const;
    // The store's generation when the lease was taken (it cannot change while the lease lives).
    uint64_t generation() const { return generation_; }

   private:
    const RocksStore* const store_;
    uint64_t generation_;
  };

  // Creates the directory if needed and opens (or creates) the database. Fails with
  // FAILED_PRECONDITION when another process holds the data dir (message names its pid),
  // PERMISSION_DENIED when it is not writable, DATA_LOSS when the database is corrupt.
  static absl::StatusOr<std::unique_ptr<RocksStore>> Open(const RocksStoreOptions& options);
  ~RocksStore();

  RocksStore(const RocksStore&) = delete;
  RocksStore& operator=(const RocksStore&) = delete;

  // Only under a Lease whose status() is OK.
  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* handle(Column column) const;
  const std::string& data_dir() const { return data_dir_; }

  // How many times the database was reopened to recover from a storage fault (0 at first).
  uint64_t generation() const;

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
  // WAL held and starts a new one); when RocksDB cannot, closes and reopens the database (when no
  // Lease is held; otherwise at a later call) and proves it with a synced write to the WAL.
  // Returns WriteHealth(). Writes call it first; a health monitor (StoreWatch) calls it so that a
  // fault that clears is noticed without waiting for a write. Must not be called under a Lease
  // to be able to reopen.
  absl::Status Recover() ABSL_LOCKS_EXCLUDED(fault_mu_, use_mu_);

  // The value stored under `key`, or nullopt.
  absl::StatusOr<std::optional<std::string>> Get(Column column, absl::string_view key) const;

  // Calls `fn(key, value)` for each key starting with `prefix`, in key order, until it returns
  // false.
  absl::Status ScanPrefix(Column column, absl::string_view prefix,
                          const std::function<bool(absl::string_view, absl::string_view)>& fn) const;

 private:
  RocksStore(std::string data_dir, int lock_fd, rocksdb::Env* env);
  // Opens the database into db_ and handles_ (both empty).
  absl::Status OpenDb();
  // Destroys the handles and closes the database.
  void CloseDb();
  // Closes and reopens the database, then writes a synced probe to its WAL; nullopt (nothing
  // done) while a Lease is held or another reopen runs.
  std::optional<absl::Status> Reopen() ABSL_LOCKS_EXCLUDED(use_mu_);
  absl::Status WriteWith(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch);

  const std::string data_dir_;
  const int lock_fd_;
  rocksdb::Env* const env_;  // null: RocksDB's default
  // Changed only by OpenDb/CloseDb: at Open, and during a reopen, while no Lease is held.
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // indexed by Column
  class FaultListener;
  // Marks writes refused until Recover, with the reason.
  void SetFault(std::string reason) ABSL_LOCKS_EXCLUDED(fault_mu_);

  std::atomic<bool> needs_resume_{false};               // a write failed: Resume() first
  mutable absl::Mutex fault_mu_;
  std::string fault_ ABSL_GUARDED_BY(fault_mu_);  // why writes are refused

  // Leases and reopening.
  mutable absl::Mutex use_mu_;
  mutable int leases_ ABSL_GUARDED_BY(use_mu_) = 0;
  bool leasable_ ABSL_GUARDED_BY(use_mu_) = true;  // false while reopening
  uint64_t generation_ ABSL_GUARDED_BY(use_mu_) = 0;
};

inline absl::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
inline rocksdb::Slice ToSlice(absl::string_view s) { return {s.data(), s.size()}; }

// Converts a RocksDB status to the canonical code that fits ("IO error: No space" ->
// RESOURCE_EXHAUSTED, Corruption -> DATA_LOSS, ...), prefixing `context`.
absl::Status FromRocksStatus(const rocksdb::Status& status, absl::string_view context);

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_ROCKS_STORE_H_
