#include "daemon/store/rocks_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"

namespace repro {
namespace {

constexpr const char* kColumnNames[] = {"catalog", "journal", "journal_heads", "journal_index",
                                        "hash_cache", "head_log"};
constexpr size_t kColumnCount = sizeof(kColumnNames) / sizeof(kColumnNames[0]);

absl::Status EnsureWritableDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return PosixError(ec.value(), absl::StrCat("create data dir ", dir));
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return PosixError(errno, absl::StrCat("data dir ", dir, " is not writable by uid ", getuid()));
  }
  return absl::OkStatus();
}

// Takes an exclusive, non-blocking flock on <dir>/reprod.lock and writes our pid into it.
absl::StatusOr<int> LockDataDir(const std::string& dir) {
  std::string path = absl::StrCat(dir, "/reprod.lock");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError(errno, absl::StrCat("open ", path));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (err == EWOULDBLOCK) {
      std::string owner = n > 0 ? absl::StrCat(" (pid ", absl::StripAsciiWhitespace(buf), ")") : "";
      return absl::FailedPreconditionError(
          absl::StrCat("data dir ", dir, " is in use by another reprod", owner,
                       "; stop it or start this one with another --data_dir"));
    }
    return PosixError(err, absl::StrCat("lock ", path));
  }
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    int err = errno;
    close(fd);
    return PosixError(err, absl::StrCat("write ", path));
  }
  return fd;
}

// The journal column's keys are job || "/" || be64(seq) (store/chain.h): a job's entries are
// appended in key order, so the memtable keeps an insert hint per job and an append does not
// search the whole skiplist. The prefix is the key without its sequence number.
class JobOfJournalKey : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "repro.JobOfJournalKey"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - kSeqBytes);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() > kSeqBytes && key[key.size() - kSeqBytes - 1] == '/';
  }

 private:
  static constexpr size_t kSeqBytes = 8;
};

rocksdb::ColumnFamilyOptions ColumnOptions(Column column) {
  rocksdb::ColumnFamilyOptions options;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (column == Column::kCatalog) options.compression = rocksdb::kNoCompression;
  if (column == Column::kJournal) {
    options.memtable_insert_with_hint_prefix_extractor = std::make_shared<JobOfJournalKey>();
  }
  if (column == Column::kJournalIndex || column == Column::kHashCache) {
    // Looked up once per journaled item (once-keys, mostly absent) and per reported open (hash
    // cache): a whole-key bloom filter in the memtable answers "absent" without a skiplist search.
    options.memtable_prefix_bloom_size_ratio = 0.02;
    options.memtable_whole_key_filtering = true;
  }
  return options;
}

}  // namespace

absl::Status FromRocksStatus(const rocksdb::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", status.ToString());
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (status.IsNoSpace() || status.IsMemoryLimit()) return absl::ResourceExhaustedError(message);
  if (status.IsBusy() || status.IsTryAgain() || status.IsTimedOut()) {
    return absl::UnavailableError(message);
  }
  if (status.IsIOError() && status.ToString().find("No space left") != std::string::npos) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

RocksStore::RocksStore(std::string data_dir, int lock_fd, rocksdb::Env* env)
    : data_dir_(std::move(data_dir)), lock_fd_(lock_fd), env_(env) {}

RocksStore::~RocksStore() {
  CloseDb();
  close(lock_fd_);  // releases the flock
}

RocksStore::Lease::Lease(const RocksStore* store) : store_(store) {
  absl::MutexLock lock(&store_->use_mu_);
  // Never waits while this thread holds another Lease: a reopen starts only with none held.
  store_->use_mu_.Await(absl::Condition(&store_->leasable_));
  ++store_->leases_;
  generation_ = store_->generation_;
}

RocksStore::Lease::~Lease() {
  absl::MutexLock lock(&store_->use_mu_);
  --store_->leases_;
}

absl::Status RocksStore::Lease::status() const {
  if (store_->db_ != nullptr) return absl::OkStatus();
  absl::Status health = store_->WriteHealth();
  return health.ok() ? absl::UnavailableError("storage fault: the database is closed") : health;
}

uint64_t RocksStore::generation() const {
  absl::MutexLock lock(&use_mu_);
  return generation_;
}

// Notices background errors (a flush or compaction that could not write), after which RocksDB
// refuses writes until resumed.
class RocksStore::FaultListener : public rocksdb::EventListener {
 public:
  explicit FaultListener(RocksStore* store) : store_(store) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error != nullptr && !error->ok()) store_->SetFault(error->ToString());
  }

 private:
  RocksStore* const store_;
};

absl::StatusOr<std::unique_ptr<RocksStore>> RocksStore::Open(const RocksStoreOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data_dir is empty");
  RETURN_IF_ERROR(EnsureWritableDirectory(options.data_dir));
  ASSIGN_OR_RETURN(int lock_fd, LockDataDir(options.data_dir));
  std::unique_ptr<RocksStore> store(new RocksStore(options.data_dir, lock_fd, options.env));
  RETURN_IF_ERROR(store->OpenDb());
  return store;
}

absl::Status RocksStore::OpenDb() {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  // Concurrent synced writers share one WAL write and one fdatasync; pipelining lets the memtable
  // insert of one group overlap the WAL write of the next.
  db_options.enable_pipelined_write = true;
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.keep_log_file_num = 5;
  db_options.IncreaseParallelism(2);
  // Retryable IO errors are resumed by WriteWith before the next write, not by a background loop.
  db_options.max_bgerror_resume_count = 0;
  if (env_ != nullptr) db_options.env = env_;
  db_options.listeners.push_back(std::make_shared<FaultListener>(this));

  std::vector<rocksdb::ColumnFamilyDescriptor> columns;
  columns.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (size_t i = 0; i < kColumnCount; ++i) {
    columns.emplace_back(kColumnNames[i], ColumnOptions(static_cast<Column>(i)));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, data_dir_, columns, &handles, &db);
  if (!s.ok()) {
    absl::Status status = FromRocksStatus(s, absl::StrCat("open database in ", data_dir_));
    if (absl::IsDataLoss(status)) {
      return absl::DataLossError(absl::StrCat(
          "data dir ", data_dir_, " is corrupt (", s.ToString(),
          "); restore it from a backup, or salvage it with `ldb repair --db=", data_dir_,
          "` knowing that entries may be lost"));
    }
    return status;
  }
  db_.reset(db);
  db->DestroyColumnFamilyHandle(handles[0]);  // default: unused
  handles_.assign(handles.begin() + 1, handles.end());
  return absl::OkStatus();
}

void RocksStore::CloseDb() {
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close();
  db_.reset();
}

rocksdb::ColumnFamilyHandle* RocksStore::handle(Column column) const {
  return handles_[static_cast<size_t>(column)];
}

void RocksStore::SetFault(std::string reason) {
  absl::MutexLock lock(&fault_mu_);
  fault_ = std::move(reason);
  needs_resume_ = true;
}

absl::Status RocksStore::WriteHealth() const {
  if (!needs_resume_.load()) return absl::OkStatus();
  absl::MutexLock lock(&fault_mu_);
  return absl::UnavailableError(absl::StrCat(
      "storage fault: the database refuses writes until the disk recovers (", fault_, ")"));
}

std::optional<absl::Status> RocksStore::Reopen() {
  {
    absl::MutexLock lock(&use_mu_);
    if (leases_ > 0 || !leasable_) return std::nullopt;
    leasable_ = false;
  }
  CloseDb();
  absl::Status opened = OpenDb();
  if (opened.ok()) {
    // Prove that the disk takes synced writes again: a WAL record that changes no data.
    rocksdb::WriteBatch probe;
    probe.PutLogData("reprod: storage probe after reopening");
    rocksdb::WriteOptions synced;
    synced.sync = true;
    rocksdb::Status s = db_->Write(synced, &probe);
    if (!s.ok()) opened = FromRocksStatus(s, "probe write after reopening the database");
  }
  absl::MutexLock lock(&use_mu_);
  leasable_ = true;
  ++generation_;  // what was derived from the old database may be stale, even after a failure
  return opened;
}

absl::Status RocksStore::Recover() {
  // Resume when writes were refused, rather than right after the failure, when the cause is
  // likely still there. A full disk is recovered by RocksDB itself (its SstFileManager retries
  // every few seconds once space is free); meanwhile Resume() answers Busy.
  if (!needs_resume_.load()) return absl::OkStatus();
  rocksdb::Status resumed;
  {
    Lease lease(this);
    resumed = db_ != nullptr ? db_->Resume() : rocksdb::Status::IOError("the database is closed");
  }
  if (resumed.IsBusy()) {
    return absl::UnavailableError(
        "the database is recovering from a failed write (disk full?); writes resume a few "
        "seconds after space is freed");
  }
  if (!resumed.ok()) {
    // RocksDB does not resume after a non-retryable IO error: reopen, as a restart would; later
    // when a Lease is held now (the next call of the health monitor, which holds none).
    std::optional<absl::Status> reopened = Reopen();
    if (!reopened.has_value()) return WriteHealth();
    if (!reopened->ok()) {
      SetFault(std::string(reopened->message()));
      return WriteHealth();
    }
  }
  absl::MutexLock lock(&fault_mu_);
  fault_.clear();
  needs_resume_ = false;
  return absl::OkStatus();
}

absl::Status RocksStore::WriteWith(const rocksdb::WriteOptions& options,
                                   rocksdb::WriteBatch* batch) {
  RETURN_IF_ERROR(Recover());
  Lease lease(this);
  RETURN_IF_ERROR(lease.status());
  rocksdb::Status s = db_->Write(options, batch);
  if (s.ok()) return absl::OkStatus();
  SetFault(s.ToString());
  absl::Status status = FromRocksStatus(s, "write to database");
  if (absl::IsResourceExhausted(status)) return status;
  return absl::UnavailableError(absl::StrCat(
      "storage fault, nothing was written (writes resume when it clears): ", s.ToString()));
}

absl::Status RocksStore::WriteDurable(rocksdb::WriteBatch* batch) {
  rocksdb::WriteOptions options;
  options.sync = true;
  return WriteWith(options, batch);
}

absl::Status RocksStore::WriteFast(rocksdb::WriteBatch* batch) {
  return WriteWith(rocksdb::WriteOptions(), batch);
}

absl::StatusOr<std::optional<std::string>> RocksStore::Get(Column column,
                                                            absl::string_view key) const {
  Lease lease(this);
  RETURN_IF_ERROR(lease.status());
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(column),
                               ToSlice(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocksStatus(s, "read from database");
  return value;
}

absl::Status RocksStore::ScanPrefix(
    Column column, absl::string_view prefix,
    const std::function<bool(absl::string_view, absl::string_view)>& fn) const {
  Lease lease(this);
  RETURN_IF_ERROR(lease.status());
  rocksdb::ReadOptions read_options;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handle(column)));
  rocksdb::Slice start = ToSlice(prefix);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    if (!fn(ToView(it->key()), ToView(it->value()))) {
      break;
    }
  }
  return FromRocksStatus(it->status(), "scan database");
}

}  // namespace repro
