#include "daemon/registry/version_registry.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "google/protobuf/util/time_util.h"

namespace repro {
namespace {

using google::protobuf::util::TimeUtil;

std::string ParentDirectory(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? std::string("/") : std::string(path.substr(0, slash));
}

std::string ShortDigest(absl::string_view digest) { return HexDigest(digest).substr(0, 12); }

}  // namespace

VersionRegistry::VersionRegistry(PinStore* store, TreeHasher* hasher, FileSystem* fs, Clock* clock,
                                 std::string node)
    : store_(store), hasher_(hasher), fs_(fs), clock_(clock), node_(std::move(node)) {}

absl::Status VersionRegistry::CheckDatasetRoot(absl::string_view dataset,
                                               absl::string_view root) {
  ASSIGN_OR_RETURN(std::vector<v1::VersionInfo> all, store_->ListVersions(""));
  for (const v1::VersionInfo& v : all) {
    if (v.dataset() == dataset && v.root() != root) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dataset ", dataset, " lives in ", v.root(), " (", dataset, "@", v.version(), " is ",
          v.path(), "); a new version must be a directory directly inside ", v.root()));
    }
    if (v.dataset() != dataset && v.root() == root) {
      return absl::FailedPreconditionError(absl::StrCat(
          root, " is already the root of dataset ", v.dataset(),
          "; give each dataset its own directory"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::RegisterResult> VersionRegistry::Register(
    const v1::RegisterVersionRequest& request, const RegisterCallbacks& callbacks) {
  RETURN_IF_ERROR(ValidateDatasetName(request.dataset()));
  RETURN_IF_ERROR(ValidateVersionName(request.version()));
  const std::string name = absl::StrCat(request.dataset(), "@", request.version());
  if (request.path().empty() || request.path()[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("path \"", request.path(), "\" of ", name, " must be absolute"));
  }
  absl::StatusOr<std::string> real = fs_->RealPath(request.path());
  if (!real.ok()) {
    if (absl::IsNotFound(real.status())) {
      return absl::NotFoundError(absl::StrCat(request.path(), " does not exist"));
    }
    return real.status();
  }
  ASSIGN_OR_RETURN(FileStat st, fs_->Stat(*real));
  if (st.type != FileType::kDirectory || *real == "/") {
    return absl::InvalidArgumentError(
        absl::StrCat(request.path(), " is not a directory that can hold a version"));
  }
  const std::string root = ParentDirectory(*real);
  RETURN_IF_ERROR(CheckDatasetRoot(request.dataset(), root));

  absl::StatusOr<v1::VersionInfo> existing = store_->GetVersion(request.dataset(), request.version());
  if (existing.ok() && existing->path() != *real) {
    return absl::AlreadyExistsError(absl::StrCat(
        name, " is already registered at ", existing->path(),
        "; versions are immutable: register this directory under a new version name"));
  }
  if (!existing.ok() && !absl::IsNotFound(existing.status())) return existing.status();

  const absl::Time start = clock_->Now();
  TreeHashOptions options;
  options.progress = callbacks.progress;
  options.cancelled = callbacks.cancelled;
  ASSIGN_OR_RETURN(TreeHashResult hashed, hasher_->HashTree(*real, options));

  v1::VersionInfo info;
  info.set_dataset(request.dataset());
  info.set_version(request.version());
  info.set_root(root);
  info.set_path(*real);
  info.set_digest(hashed.digest);
  info.set_file_count(static_cast<uint64_t>(hashed.manifest.files_size()));
  info.set_total_bytes(hashed.total_bytes);
  *info.mutable_registered_at() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_->Now()));
  info.set_registered_on(node_);
  ASSIGN_OR_RETURN(Created<v1::VersionInfo> stored, store_->CreateVersion(info, hashed.manifest));
  if (!stored.created && stored.value.digest() != info.digest()) {
    return absl::AlreadyExistsError(absl::StrCat(
        name, " is already registered with digest ", ShortDigest(stored.value.digest()),
        ", but ", *real, " now hashes to ", ShortDigest(info.digest()),
        "; versions are immutable: register the new content under a new version name"));
  }
  if (!stored.created && stored.value.path() != info.path()) {
    return absl::AlreadyExistsError(
        absl::StrCat(name, " is already registered at ", stored.value.path()));
  }

  v1::RegisterResult result;
  *result.mutable_version() = stored.value;
  result.set_created(stored.created);
  result.set_files_hashed(hashed.files_hashed);
  result.set_files_cached(hashed.files_cached);
  result.set_bytes_hashed(hashed.bytes_hashed);
  result.set_seconds(absl::ToDoubleSeconds(clock_->Now() - start));
  return result;
}

absl::StatusOr<v1::VersionInfo> VersionRegistry::Get(absl::string_view dataset,
                                                     absl::string_view version) {
  RETURN_IF_ERROR(ValidateDatasetName(dataset));
  RETURN_IF_ERROR(ValidateVersionName(version));
  return store_->GetVersion(dataset, version);
}

absl::StatusOr<v1::Manifest> VersionRegistry::GetManifest(absl::string_view dataset,
                                                          absl::string_view version) {
  RETURN_IF_ERROR(ValidateDatasetName(dataset));
  RETURN_IF_ERROR(ValidateVersionName(version));
  return store_->GetManifest(dataset, version);
}

absl::StatusOr<std::vector<v1::VersionInfo>> VersionRegistry::List(absl::string_view dataset) {
  if (!dataset.empty()) RETURN_IF_ERROR(ValidateDatasetName(dataset));
  return store_->ListVersions(dataset);
}

}  // namespace repro
