#include "daemon/hashing/hash_cache.h"

#include <endian.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/sha256.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr size_t kKeySize = 16;
// Value layout, version 1 (see hash_cache.h).
constexpr char kValueVersion = 1;
constexpr size_t kSizeOffset = 1;
constexpr size_t kMtimeOffset = kSizeOffset + 8;
constexpr size_t kCtimeOffset = kMtimeOffset + 8;
constexpr size_t kShaOffset = kCtimeOffset + 8;
constexpr size_t kValueSize = kShaOffset + kSha256Size;

void PutBe64(uint64_t v, char* out) {
  uint64_t be = htobe64(v);
  memcpy(out, &be, sizeof(be));
}

uint64_t GetBe64(const char* in) {
  uint64_t be;
  memcpy(&be, in, sizeof(be));
  return be64toh(be);
}

// True for the 1st, 2nd, 4th, 8th... occurrence: errors that repeat for every file of a large
// tree are logged a bounded number of times.
bool ShouldLog(uint64_t count) { return (count & (count - 1)) == 0; }

}  // namespace

HashCache::HashCache(RocksStore* store, HashCacheOptions options)
    : store_(store),
      racy_window_(options.racy_window),
      clock_(options.clock != nullptr ? options.clock : DefaultClock()) {}

std::string HashCache::KeyFor(const FileStat& stat) {
  std::string key(kKeySize, '\0');
  PutBe64(stat.device, key.data());
  PutBe64(stat.inode, key.data() + 8);
  return key;
}

std::optional<std::string> HashCache::Lookup(const FileStat& stat) {
  absl::StatusOr<std::optional<std::string>> value = store_->Get(Column::kHashCache, KeyFor(stat));
  if (!value.ok()) {
    CountStoreError(value.status(), "read");
    return std::nullopt;
  }
  if (!value->has_value()) return std::nullopt;
  const std::string& v = **value;
  if (v.size() != kValueSize || v[0] != kValueVersion) {
    uint64_t n = corrupt_entries_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (ShouldLog(n)) {
      spdlog::warn(
          "hash cache: ignoring malformed entry for device {} inode {} ({} bytes, "
          "version byte {}); {} malformed so far",
          stat.device, stat.inode, v.size(), v.empty() ? -1 : int{v[0]}, n);
    }
    return std::nullopt;
  }
  if (GetBe64(v.data() + kSizeOffset) != stat.size ||
      static_cast<int64_t>(GetBe64(v.data() + kMtimeOffset)) != stat.mtime_ns ||
      static_cast<int64_t>(GetBe64(v.data() + kCtimeOffset)) != stat.ctime_ns) {
    return std::nullopt;
  }
  return v.substr(kShaOffset);
}

void HashCache::Insert(const FileStat& stat, absl::string_view sha256) {
  rocksdb::WriteBatch batch;
  AddTo(stat, sha256, &batch);
  Write(&batch);
}

void HashCache::AddTo(const FileStat& stat, absl::string_view sha256, rocksdb::WriteBatch* batch) {
  if (sha256.size() != kSha256Size) {
    spdlog::error("hash cache: refusing a {}-byte SHA-256 for device {} inode {}", sha256.size(),
                  stat.device, stat.inode);
    return;
  }
  const int64_t newest_change_ns = std::max(stat.mtime_ns, stat.ctime_ns);
  if (absl::FromUnixNanos(newest_change_ns) > clock_->Now() - racy_window_) return;

  char value[kValueSize];
  value[0] = kValueVersion;
  PutBe64(stat.size, value + kSizeOffset);
  PutBe64(static_cast<uint64_t>(stat.mtime_ns), value + kMtimeOffset);
  PutBe64(static_cast<uint64_t>(stat.ctime_ns), value + kCtimeOffset);
  memcpy(value + kShaOffset, sha256.data(), kSha256Size);
  RocksStore::Lease lease(store_);
  if (!lease.status().ok()) return;  // a storage fault: the cache just misses this file
  batch->Put(store_->handle(Column::kHashCache), ToSlice(KeyFor(stat)),
             rocksdb::Slice(value, sizeof(value)));
}

void HashCache::Write(rocksdb::WriteBatch* batch) {
  if (batch->Count() == 0) return;
  absl::Status status = store_->WriteFast(batch);
  if (!status.ok()) CountStoreError(status, "write");
}

HashCache::BatchWriter::BatchWriter(HashCache* cache, size_t batch_size)
    : cache_(cache), batch_size_(std::max<size_t>(batch_size, 1)) {}

HashCache::BatchWriter::~BatchWriter() { Flush(); }

void HashCache::BatchWriter::Insert(const FileStat& stat, absl::string_view sha256) {
  cache_->AddTo(stat, sha256, &batch_);
  if (static_cast<size_t>(batch_.Count()) >= batch_size_) Flush();
}

void HashCache::BatchWriter::Flush() {
  cache_->Write(&batch_);
  batch_.Clear();
}

void HashCache::CountStoreError(const absl::Status& status, const char* what) {
  uint64_t n = store_errors_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (ShouldLog(n)) {
    spdlog::warn("hash cache: {} failed, treating it as a miss ({} errors so far): {}", what, n,
                 status.ToString());
  }
}

}  // namespace repro
