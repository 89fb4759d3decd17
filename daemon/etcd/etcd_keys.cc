#include "daemon/etcd/etcd_keys.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace repro::etcd_keys {

std::string Version(absl::string_view dataset, absl::string_view version) {
  return absl::StrCat(kVersions, dataset, "/", version);
}

std::string VersionsOf(absl::string_view dataset) {
  return dataset.empty() ? std::string(kVersions) : absl::StrCat(kVersions, dataset, "/");
}

std::string ManifestUpload(const v1::VersionInfo& info) {
  return absl::StrCat(
      kManifests, info.dataset(), "/", info.version(), "/", info.registered_on(), "-",
      google::protobuf::util::TimeUtil::TimestampToNanoseconds(info.registered_at()), "/");
}

std::string ManifestChunk(absl::string_view upload, uint32_t index, uint32_t count) {
  return absl::StrCat(upload, absl::StrFormat("%08u-of-%08u", index, count));
}

bool ParseManifestChunk(absl::string_view key, uint32_t* index, uint32_t* count) {
  std::vector<absl::string_view> parts = absl::StrSplit(LastPart(key), "-of-");
  return parts.size() == 2 && absl::SimpleAtoi(parts[0], index) &&
         absl::SimpleAtoi(parts[1], count);
}

std::string Pin(absl::string_view job) { return absl::StrCat(kPins, job); }

std::string Head(absl::string_view job, absl::string_view node) {
  return absl::StrCat(kHeads, job, "/", node);
}

std::string HeadsOf(absl::string_view job) { return absl::StrCat(kHeads, job, "/"); }

std::string Node(absl::string_view node) { return absl::StrCat(kNodes, node); }

std::string TreeHead(absl::string_view node) { return absl::StrCat(kTreeHeads, node); }
std::string Fork(absl::string_view node) { return absl::StrCat(kForks, node); }

absl::string_view LastPart(absl::string_view key) {
  size_t slash = key.rfind('/');
  return slash == absl::string_view::npos ? key : key.substr(slash + 1);
}

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

std::string Encode(const google::protobuf::Message& record) {
  std::string json;
  // Printing a valid message cannot fail (no Any fields in our records).
  google::protobuf::util::MessageToJsonString(record, &json, google::protobuf::util::JsonPrintOptions());
  return json;
}

absl::Status DecodeInto(absl::string_view value, absl::string_view key,
                        google::protobuf::Message* record) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(value.data(), value.size()), record, options);
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat("the record at etcd key ", key, " is not a valid ",
                                            record->GetTypeName(), ": ", status.ToString()));
  }
  return absl::OkStatus();
}

}  // namespace repro::etcd_keys
