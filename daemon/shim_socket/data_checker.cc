#include "daemon/shim_socket/data_checker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/paths.h"
#include "common/sha256.h"

namespace repro {
namespace {

// True when `rel` is a plain relative path: no empty, "." or ".." components.
bool IsPlainRelative(absl::string_view rel) {
  if (rel.empty()) return false;
  for (absl::string_view part : absl::StrSplit(rel, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

std::string ShortHex(absl::string_view digest) { return HexDigest(digest).substr(0, 12); }

}  // namespace

DataChecker::DataChecker(VersionRegistry* versions, FileSystem* fs, HashCache* cache,
                         size_t max_indexes)
    : versions_(versions), fs_(fs), cache_(cache), max_indexes_(std::max<size_t>(1, max_indexes)) {}

std::shared_ptr<const DataChecker::ManifestIndex> DataChecker::IndexOf(const std::string& dataset,
                                                                       const std::string& version,
                                                                       std::string* error) {
  const std::string key = absl::StrCat(dataset, "@", version);
  {
    absl::MutexLock lock(&mu_);
    auto it = indexes_.find(key);
    if (it != indexes_.end()) return it->second;
  }
  absl::StatusOr<v1::Manifest> manifest = versions_->GetManifest(dataset, version);
  if (!manifest.ok()) {
    *error = absl::StrCat("cannot read the manifest of ", key, ": ", manifest.status().message());
    return nullptr;
  }
  auto index = std::make_shared<ManifestIndex>();
  index->reserve(manifest->files_size());
  for (v1::FileEntry& entry : *manifest->mutable_files()) {
    std::string path = entry.path();
    index->emplace(std::move(path), std::move(entry));
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = indexes_.emplace(key, std::move(index));
  if (inserted) {
    loaded_.push_back(key);
    while (loaded_.size() > max_indexes_) {
      indexes_.erase(loaded_.front());
      loaded_.pop_front();
    }
  }
  return it->second;
}

std::unique_ptr<FileHasher> DataChecker::TakeHasher() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_hashers_.empty()) {
      std::unique_ptr<FileHasher> hasher = std::move(idle_hashers_.back());
      idle_hashers_.pop_back();
      return hasher;
    }
  }
  return std::make_unique<FileHasher>(fs_, cache_, /*cache_batch=*/1);
}

void DataChecker::ReturnHasher(std::unique_ptr<FileHasher> hasher) {
  absl::MutexLock lock(&mu_);
  idle_hashers_.push_back(std::move(hasher));
}

void DataChecker::CompareContent(const std::string& path, const v1::FileEntry& entry,
                                 OpenCheck* check) {
  // A file reprod hashed before, unchanged since (the hash cache's identity rule), costs one
  // lstat and no open: most reports are of such files.
  absl::StatusOr<FileStat> lstat = fs_->Stat(path);
  HashFileOptions options;
  if (lstat.ok()) options.lstat = &*lstat;
  std::unique_ptr<FileHasher> hasher = TakeHasher();
  absl::StatusOr<HashedFile> hashed = hasher->Hash(path, options);
  ReturnHasher(std::move(hasher));
  if (!hashed.ok()) {
    check->verdict = v1::VERDICT_UNREADABLE;
    check->detail = std::string(hashed.status().message());
    return;
  }
  check->sha256 = hashed->sha256;
  check->stat = hashed->stat;
  if (hashed->sha256 == entry.sha256()) {
    check->verdict = v1::VERDICT_MATCH;
    return;
  }
  check->verdict = v1::VERDICT_CONTENT_CHANGED;
  check->detail = absl::StrCat("its content no longer matches the registered one (sha256 ",
                               ShortHex(entry.sha256()), " registered, ",
                               ShortHex(hashed->sha256), " now)");
}

OpenCheck DataChecker::Check(const v1::Pin& pin, absl::string_view dataset,
                             absl::string_view opened_path) {
  OpenCheck check;
  check.verdict = v1::VERDICT_NOT_IN_MANIFEST;
  auto pinned = std::find_if(pin.versions().begin(), pin.versions().end(),
                             [&](const v1::PinnedVersion& v) { return v.dataset() == dataset; });
  if (pinned == pin.versions().end()) {
    check.detail = absl::StrCat("dataset ", dataset, " is not pinned by job ", pin.job());
    return check;
  }
  const std::string root = absl::StrCat(pinned->root(), "/");
  if (!absl::StartsWith(opened_path, root)) {
    check.detail = absl::StrCat("it is not under the root of ", dataset, " (", pinned->root(), ")");
    return check;
  }
  absl::string_view rest = opened_path.substr(root.size());
  size_t slash = rest.find('/');
  absl::string_view dir = rest.substr(0, slash);
  absl::string_view rel = slash == absl::string_view::npos ? "" : rest.substr(slash + 1);

  std::string version_path;
  if (dir == Basename(pinned->path())) {
    check.version = pinned->version();
    version_path = pinned->path();
  } else {
    absl::StatusOr<std::vector<v1::VersionInfo>> all = versions_->List(dataset);
    if (all.ok()) {
      for (const v1::VersionInfo& v : *all) {
        if (Basename(v.path()) == dir) {
          check.version = v.version();
          version_path = v.path();
        }
      }
    }
    if (check.version.empty()) {
      check.detail = absl::StrCat("it is not in a registered version of ", dataset);
      return check;
    }
  }
  const std::string where = absl::StrCat(dataset, "@", check.version);
  if (!IsPlainRelative(rel)) {
    check.detail = absl::StrCat("it is not a file of ", where);
    return check;
  }
  check.relative_path = std::string(rel);
  std::string error;
  std::shared_ptr<const ManifestIndex> index = IndexOf(std::string(dataset), check.version, &error);
  if (index == nullptr) {
    check.verdict = v1::VERDICT_UNREADABLE;
    check.detail = error;
    return check;
  }
  auto entry = index->find(check.relative_path);
  if (entry == index->end()) {
    check.detail = absl::StrCat(check.relative_path, " is not in the manifest of ", where);
    return check;
  }
  CompareContent(absl::StrCat(version_path, "/", check.relative_path), entry->second, &check);
  if (check.version != pinned->version() && check.verdict != v1::VERDICT_UNREADABLE) {
    check.verdict = v1::VERDICT_OTHER_VERSION;
    check.detail = absl::StrCat("it belongs to ", where, ", not to the pinned ", dataset, "@",
                                pinned->version());
  }
  return check;
}

}  // namespace repro
