#include "daemon/shim_socket/verdict_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/paths.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "proto/shim/shim_index.h"

namespace repro {
namespace {

// Jobs whose index is kept; the cache is emptied when it grows past this.
constexpr size_t kMaxCachedIndexes = 256;
// Building runs while a shim waits for its PIN: past this, the files not yet looked at are left
// out (they keep asking reprod) rather than letting the HELLO time out on a huge version.
constexpr absl::Duration kBuildBudget = absl::Milliseconds(500);

}  // namespace

absl::StatusOr<std::unique_ptr<VerdictIndex>> VerdictIndex::Build(
    const std::vector<VerdictIndexEntry>& entries) {
  uint64_t slots = 16;
  while (slots < 2 * entries.size()) slots *= 2;
  uint64_t strings_size = 0;
  for (const VerdictIndexEntry& e : entries) strings_size += e.path.size();
  const uint64_t strings_offset =
      REPRO_SHIM_INDEX_HEADER_SIZE + slots * sizeof(repro_shim_index_slot);
  const uint64_t size = strings_offset + strings_size;

  int fd = memfd_create("repro-verdict-index", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return PosixError(errno, "memfd_create for a verdict index");
  void* map = MAP_FAILED;
  if (ftruncate(fd, static_cast<off_t>(size)) == 0) {
    map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (map == MAP_FAILED) {
    int err = errno;
    close(fd);
    return PosixError(err, "sizing a verdict index");
  }
  auto* bytes = static_cast<uint8_t*>(map);
  const uint32_t magic = REPRO_SHIM_INDEX_MAGIC, version = REPRO_SHIM_INDEX_VERSION;
  std::memcpy(bytes, &magic, 4);
  std::memcpy(bytes + 4, &version, 4);
  std::memcpy(bytes + 8, &slots, 8);
  std::memcpy(bytes + 16, &strings_offset, 8);
  std::memcpy(bytes + 24, &strings_size, 8);
  auto* table = reinterpret_cast<repro_shim_index_slot*>(bytes + REPRO_SHIM_INDEX_HEADER_SIZE);
  uint64_t at = 0;
  for (const VerdictIndexEntry& e : entries) {
    const uint64_t hash = repro_shim_index_hash(e.path.data(), e.path.size());
    uint64_t i = hash & (slots - 1);
    while (table[i].hash != 0) i = (i + 1) & (slots - 1);
    repro_shim_index_slot& s = table[i];
    s.hash = hash;
    s.path_offset = at;
    s.path_len = e.path.size();
    s.device = e.stat.device;
    s.inode = e.stat.inode;
    s.size = e.stat.size;
    s.mtime_ns = e.stat.mtime_ns;
    s.ctime_ns = e.stat.ctime_ns;
    std::memcpy(s.sha256, e.sha256.data(), std::min<size_t>(e.sha256.size(), 32));
    std::memcpy(bytes + strings_offset + at, e.path.data(), e.path.size());
    at += e.path.size();
  }
  munmap(map, size);
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int err = errno;
    close(fd);
    return PosixError(err, "sealing a verdict index");
  }
  return std::unique_ptr<VerdictIndex>(new VerdictIndex(fd, size, entries.size()));
}

VerdictIndex::~VerdictIndex() { close(fd_); }

absl::StatusOr<std::shared_ptr<const VerdictIndex>> VerdictIndexes::ForPin(const v1::Pin& pin) {
  {
    absl::MutexLock lock(&mu_);
    auto it = by_job_.find(pin.job());
    if (it != by_job_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const VerdictIndex> index, BuildFor(pin));
  absl::MutexLock lock(&mu_);
  if (by_job_.size() >= kMaxCachedIndexes) by_job_.clear();
  by_job_.emplace(pin.job(), index);
  return index;
}

absl::StatusOr<std::shared_ptr<const VerdictIndex>> VerdictIndexes::BuildFor(const v1::Pin& pin) {
  std::vector<VerdictIndexEntry> entries;
  const absl::Time deadline = absl::Now() + kBuildBudget;
  size_t looked_at = 0;
  for (const v1::PinnedVersion& v : pin.versions()) {
    if (cache_ == nullptr || absl::Now() > deadline) break;
    ASSIGN_OR_RETURN(v1::Manifest manifest, versions_->GetManifest(v.dataset(), v.version()));
    const std::string dir = absl::StrCat(v.root(), "/", Basename(v.path()), "/");
    for (const v1::FileEntry& file : manifest.files()) {
      if (++looked_at % 1024 == 0 && absl::Now() > deadline) break;
      std::string path = dir + file.path();
      absl::StatusOr<FileStat> stat = fs_->Stat(path);
      if (!stat.ok() || stat->type != FileType::kRegular) continue;
      std::optional<std::string> sha = cache_->Lookup(*stat);
      if (!sha.has_value() || *sha != file.sha256()) continue;  // not verified as it is now
      entries.push_back({std::move(path), *stat, *std::move(sha)});
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<VerdictIndex> index, VerdictIndex::Build(entries));
  return std::shared_ptr<const VerdictIndex>(std::move(index));
}

}  // namespace repro
