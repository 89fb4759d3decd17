#include "daemon/store/chain.h"

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace repro {

std::string JobPrefix(absl::string_view job) { return absl::StrCat(job, "/"); }

std::string JournalKey(absl::string_view job, uint64_t seq) {
  return absl::StrCat(job, "/", EncodeBigEndian64(seq));
}

std::optional<uint64_t> SeqFromJournalKey(absl::string_view key, absl::string_view job) {
  if (key.size() != job.size() + 9 || key.substr(0, job.size()) != job || key[job.size()] != '/') {
    return std::nullopt;
  }
  return DecodeBigEndian64(key.substr(job.size() + 1));
}

std::string OnceIndexKey(absl::string_view job, absl::string_view once_key) {
  return absl::StrCat(job, "/", once_key);
}

std::string EncodeStoredEntry(absl::string_view hash, absl::string_view payload) {
  return absl::StrCat(hash, payload);
}

absl::StatusOr<StoredEntryView> DecodeStoredEntry(absl::string_view value) {
  if (value.size() < kSha256Size) {
    return absl::DataLossError(
        absl::StrCat("stored entry is ", value.size(), " bytes, shorter than its hash"));
  }
  return StoredEntryView{value.substr(0, kSha256Size), value.substr(kSha256Size)};
}

}  // namespace repro
