#include "daemon/store/chain.h"

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace repro {

const std::string& GenesisHash() {
  static const std::string* genesis = new std::string(kSha256Size, '\0');
  return *genesis;
}

std::string ChainHash(absl::string_view prev, absl::string_view payload) {
  Sha256 h;
  h.Update(prev);
  h.Update(payload);
  return h.Finish();
}

std::string EncodeBigEndian64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

uint64_t DecodeBigEndian64(absl::string_view bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

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

std::string HeadSigningBytes(absl::string_view node, absl::string_view job, uint64_t seq,
                             absl::string_view hash) {
  return absl::StrCat(absl::string_view("repro.head.v1\0", 14), node, absl::string_view("\0", 1),
                      job, absl::string_view("\0", 1), EncodeBigEndian64(seq), hash);
}

}  // namespace repro
