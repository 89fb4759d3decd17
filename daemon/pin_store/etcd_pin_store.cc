#include "daemon/pin_store/etcd_pin_store.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/etcd/etcd_keys.h"
#include "daemon/pin_store/manifest_chunks.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr int64_t kRecordPage = 1000;
// Chunks are at most ~512 KiB: a page stays well under the client's 64 MiB message limit.
constexpr int64_t kChunkPage = 16;

}  // namespace

std::vector<MirroredPrefix> EtcdPinStore::MirroredPrefixes() {
  return {{std::string(etcd_keys::kVersions), &v1::VersionInfo::default_instance()},
          {std::string(etcd_keys::kPins), &v1::Pin::default_instance()}};
}

absl::StatusOr<EtcdPinStore::Stored> EtcdPinStore::CreateIfAbsent(const std::string& key,
                                                                  const std::string& value) {
  etcdserverpb::TxnRequest txn;
  CompareAbsent(key, &txn);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  txn.add_failure()->mutable_request_range()->set_key(key);
  ASSIGN_OR_RETURN(etcdserverpb::TxnResponse response, etcd_->Txn(txn));
  Stored stored;
  if (response.succeeded()) {
    stored.created = true;
    stored.value = value;
    stored.mod_revision = response.header().revision();
    return stored;
  }
  if (response.responses_size() != 1 || response.responses(0).response_range().kvs_size() != 1) {
    return absl::AbortedError(absl::StrCat("etcd key ", key, " changed during create; retry"));
  }
  const mvccpb::KeyValue& kv = response.responses(0).response_range().kvs(0);
  // Our own earlier attempt of this call (its answer was lost and the client retried).
  stored.created = kv.value() == value;
  stored.value = kv.value();
  stored.mod_revision = kv.mod_revision();
  return stored;
}

template <typename T>
absl::StatusOr<Created<T>> EtcdPinStore::CreateRecord(const std::string& key, const T& record) {
  ASSIGN_OR_RETURN(Stored stored, CreateIfAbsent(key, etcd_keys::Encode(record)));
  auto value = std::make_shared<T>(record);
  if (!stored.created) {
    ASSIGN_OR_RETURN(*value, etcd_keys::Decode<T>(stored.value, key));
  }
  mirror_->Learn(key, value, stored.mod_revision);
  return Created<T>{*value, stored.created};
}

template <typename T>
absl::StatusOr<T> EtcdPinStore::GetRecord(const std::string& key, absl::string_view missing) {
  if (std::optional<MirrorRecord> mirrored = mirror_->Get(key)) {
    return static_cast<const T&>(*mirrored->record);
  }
  etcdserverpb::RangeRequest range;
  range.set_key(key);
  ASSIGN_OR_RETURN(etcdserverpb::RangeResponse response, etcd_->Range(range));
  if (response.kvs_size() == 0) return absl::NotFoundError(missing);
  ASSIGN_OR_RETURN(T record, etcd_keys::Decode<T>(response.kvs(0).value(), key));
  mirror_->Learn(key, std::make_shared<T>(record), response.kvs(0).mod_revision());
  return record;
}

absl::StatusOr<std::vector<mvccpb::KeyValue>> EtcdPinStore::RangePrefix(const std::string& prefix,
                                                                        int64_t page) {
  std::vector<mvccpb::KeyValue> out;
  etcdserverpb::RangeRequest range;
  range.set_key(prefix);
  range.set_range_end(etcd_keys::PrefixEnd(prefix));
  range.set_limit(page);
  while (true) {
    ASSIGN_OR_RETURN(etcdserverpb::RangeResponse response, etcd_->Range(range));
    for (mvccpb::KeyValue& kv : *response.mutable_kvs()) out.push_back(std::move(kv));
    if (!response.more() || out.empty()) return out;
    range.set_key(out.back().key() + '\0');  // the next key after the last one
    range.set_revision(response.header().revision());
  }
}

template <typename T>
absl::StatusOr<std::vector<T>> EtcdPinStore::ListRecords(const std::string& prefix) {
  std::vector<T> out;
  if (mirror_->current()) {
    for (const auto& [key, mirrored] : mirror_->List(prefix)) {
      out.push_back(static_cast<const T&>(*mirrored.record));
    }
    return out;
  }
  ASSIGN_OR_RETURN(std::vector<mvccpb::KeyValue> kvs, RangePrefix(prefix, kRecordPage));
  for (const mvccpb::KeyValue& kv : kvs) {
    ASSIGN_OR_RETURN(T record, etcd_keys::Decode<T>(kv.value(), kv.key()));
    out.push_back(std::move(record));
  }
  return out;
}

absl::StatusOr<Created<v1::VersionInfo>> EtcdPinStore::CreateVersion(
    const v1::VersionInfo& info, const v1::Manifest& manifest) {
  absl::StatusOr<v1::VersionInfo> existing = GetVersion(info.dataset(), info.version());
  if (existing.ok()) return Created<v1::VersionInfo>{*std::move(existing), false};
  if (!absl::IsNotFound(existing.status())) return existing.status();

  const std::string upload = etcd_keys::ManifestUpload(info);
  std::vector<std::string> chunks = SplitManifest(manifest);
  for (size_t i = 0; i < chunks.size(); ++i) {
    std::string key = etcd_keys::ManifestChunk(upload, static_cast<uint32_t>(i),
                                               static_cast<uint32_t>(chunks.size()));
    ASSIGN_OR_RETURN(Stored chunk, CreateIfAbsent(key, chunks[i]));
    if (!chunk.created) {
      return absl::AbortedError(absl::StrCat("another registration of ", info.dataset(), "@",
                                             info.version(), " wrote ", key, "; retry"));
    }
  }
  ASSIGN_OR_RETURN(Created<v1::VersionInfo> stored,
                   CreateRecord(etcd_keys::Version(info.dataset(), info.version()), info));
  if (!stored.created) {  // lost the race: our chunks belong to no version
    etcdserverpb::DeleteRangeRequest orphans;
    orphans.set_key(upload);
    orphans.set_range_end(etcd_keys::PrefixEnd(upload));
    absl::Status deleted = etcd_->DeleteRange(orphans).status();
    if (!deleted.ok()) spdlog::warn("cannot delete {}: {}", upload, deleted.ToString());
  }
  return stored;
}

absl::StatusOr<v1::VersionInfo> EtcdPinStore::GetVersion(absl::string_view dataset,
                                                         absl::string_view version) {
  return GetRecord<v1::VersionInfo>(etcd_keys::Version(dataset, version),
                                    absl::StrCat(dataset, "@", version, " is not registered"));
}

absl::StatusOr<v1::Manifest> EtcdPinStore::GetManifest(absl::string_view dataset,
                                                       absl::string_view version) {
  ASSIGN_OR_RETURN(v1::VersionInfo info, GetVersion(dataset, version));
  ASSIGN_OR_RETURN(std::vector<mvccpb::KeyValue> kvs,
                   RangePrefix(etcd_keys::ManifestUpload(info), kChunkPage));
  std::vector<std::string> chunks;
  for (mvccpb::KeyValue& kv : kvs) {
    uint32_t index = 0, count = 0;
    if (!etcd_keys::ParseManifestChunk(kv.key(), &index, &count) || index != chunks.size() ||
        count != kvs.size()) {
      return absl::DataLossError(absl::StrCat("the manifest of ", dataset, "@", version,
                                              " in etcd is damaged at ", kv.key(), " (",
                                              kvs.size(), " chunks stored)"));
    }
    chunks.push_back(std::move(*kv.mutable_value()));
  }
  if (chunks.empty()) {
    return absl::DataLossError(absl::StrCat("the manifest of ", dataset, "@", version,
                                            " is missing from etcd"));
  }
  return JoinManifest(chunks);
}

absl::StatusOr<std::vector<v1::VersionInfo>> EtcdPinStore::ListVersions(
    absl::string_view dataset) {
  return ListRecords<v1::VersionInfo>(etcd_keys::VersionsOf(dataset));
}

absl::StatusOr<Created<v1::Pin>> EtcdPinStore::CreatePin(const v1::Pin& pin) {
  return CreateRecord(etcd_keys::Pin(pin.job()), pin);
}

absl::StatusOr<v1::Pin> EtcdPinStore::GetPin(absl::string_view job) {
  return GetRecord<v1::Pin>(etcd_keys::Pin(job), absl::StrCat("job ", job, " has no pin"));
}

absl::StatusOr<std::vector<v1::Pin>> EtcdPinStore::ListPins() {
  return ListRecords<v1::Pin>(std::string(etcd_keys::kPins));
}

}  // namespace repro
