#include "daemon/pin_store/rocks_pin_store.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/pin_store/manifest_chunks.h"
#include "daemon/store/chain.h"

namespace repro {
namespace {

std::string VersionKey(absl::string_view dataset, absl::string_view version) {
  return absl::StrCat("v/", dataset, "/", version);
}
std::string ManifestPrefix(absl::string_view dataset, absl::string_view version) {
  return absl::StrCat("m/", dataset, "/", version, "/");
}
std::string PinKey(absl::string_view job) { return absl::StrCat("p/", job); }

std::string ChunkKey(absl::string_view prefix, uint32_t index) {
  return absl::StrCat(prefix, EncodeBigEndian64(index).substr(4));
}

template <typename T>
absl::StatusOr<T> Parse(absl::string_view bytes, absl::string_view what) {
  T record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("stored ", what, " is corrupt"));
  }
  return record;
}

// The record under `key`, NOT_FOUND with `missing` when absent.
template <typename T>
absl::StatusOr<T> GetRecord(RocksStore* store, const std::string& key, absl::string_view what,
                            const std::string& missing) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, store->Get(Column::kCatalog, key));
  if (!value.has_value()) return absl::NotFoundError(missing);
  return Parse<T>(*value, what);
}

// Every record under `prefix`, in key order.
template <typename T>
absl::StatusOr<std::vector<T>> ScanRecords(RocksStore* store, const std::string& prefix,
                                           absl::string_view what) {
  std::vector<T> out;
  absl::Status parse_error;
  RETURN_IF_ERROR(store->ScanPrefix(Column::kCatalog, prefix,
                                    [&](absl::string_view, absl::string_view value) {
                                      absl::StatusOr<T> record = Parse<T>(value, what);
                                      if (!record.ok()) {
                                        parse_error = record.status();
                                        return false;
                                      }
                                      out.push_back(*std::move(record));
                                      return true;
                                    }));
  RETURN_IF_ERROR(parse_error);
  return out;
}

}  // namespace

absl::StatusOr<Created<v1::VersionInfo>> RocksPinStore::CreateVersion(
    const v1::VersionInfo& info, const v1::Manifest& manifest) {
  absl::MutexLock lock(&create_mu_);
  absl::StatusOr<v1::VersionInfo> existing = GetVersion(info.dataset(), info.version());
  if (existing.ok()) return Created<v1::VersionInfo>{*std::move(existing), false};
  if (!absl::IsNotFound(existing.status())) return existing.status();

  RocksStore::Lease lease(store_);
  RETURN_IF_ERROR(lease.status());
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* catalog = store_->handle(Column::kCatalog);
  std::string prefix = ManifestPrefix(info.dataset(), info.version());
  std::vector<std::string> chunks = SplitManifest(manifest);
  for (size_t i = 0; i < chunks.size(); ++i) {
    batch.Put(catalog, ChunkKey(prefix, static_cast<uint32_t>(i)), chunks[i]);
  }
  batch.Put(catalog, VersionKey(info.dataset(), info.version()), info.SerializeAsString());
  RETURN_IF_ERROR(store_->WriteDurable(&batch));
  return Created<v1::VersionInfo>{info, true};
}

absl::StatusOr<v1::VersionInfo> RocksPinStore::GetVersion(absl::string_view dataset,
                                                          absl::string_view version) {
  return GetRecord<v1::VersionInfo>(store_, VersionKey(dataset, version), "version",
                                    absl::StrCat(dataset, "@", version, " is not registered"));
}

absl::StatusOr<v1::Manifest> RocksPinStore::GetManifest(absl::string_view dataset,
                                                        absl::string_view version) {
  RETURN_IF_ERROR(GetVersion(dataset, version).status());
  std::vector<std::string> chunks;
  RETURN_IF_ERROR(store_->ScanPrefix(Column::kCatalog, ManifestPrefix(dataset, version),
                                     [&chunks](absl::string_view, absl::string_view value) {
                                       chunks.emplace_back(value);
                                       return true;
                                     }));
  if (chunks.empty()) {
    return absl::DataLossError(absl::StrCat("the manifest of ", dataset, "@", version,
                                            " is missing from the store"));
  }
  return JoinManifest(chunks);
}

absl::StatusOr<std::vector<v1::VersionInfo>> RocksPinStore::ListVersions(
    absl::string_view dataset) {
  return ScanRecords<v1::VersionInfo>(
      store_, dataset.empty() ? std::string("v/") : absl::StrCat("v/", dataset, "/"), "version");
}

absl::StatusOr<Created<v1::Pin>> RocksPinStore::CreatePin(const v1::Pin& pin) {
  absl::MutexLock lock(&create_mu_);
  absl::StatusOr<v1::Pin> existing = GetPin(pin.job());
  if (existing.ok()) return Created<v1::Pin>{*std::move(existing), false};
  if (!absl::IsNotFound(existing.status())) return existing.status();
  RocksStore::Lease lease(store_);
  RETURN_IF_ERROR(lease.status());
  rocksdb::WriteBatch batch;
  batch.Put(store_->handle(Column::kCatalog), PinKey(pin.job()), pin.SerializeAsString());
  RETURN_IF_ERROR(store_->WriteDurable(&batch));
  return Created<v1::Pin>{pin, true};
}

absl::StatusOr<v1::Pin> RocksPinStore::GetPin(absl::string_view job) {
  return GetRecord<v1::Pin>(store_, PinKey(job), "pin", absl::StrCat("job ", job, " has no pin"));
}

absl::StatusOr<std::vector<v1::Pin>> RocksPinStore::ListPins() {
  return ScanRecords<v1::Pin>(store_, "p/", "pin");
}

}  // namespace repro
