// The journal's storage format: keys, stored values and the hash chain.
//
// Journal column:  key   = job || "/" || be64(seq)          (job names never contain '/')
//                  value = hash_n (32 bytes) || payload_n   (payload = serialized JournalEntry)
// Chain:           hash_n = SHA-256(hash_{n-1} || payload_n), hash_0 = 32 zero bytes.
// Heads column:    key = job, value = serialized JournalHead, signed over HeadSigningBytes().
// Index column:    key = job || "/" || once_key, value = be64(seq) of the entry it deduplicates.
//
// Verification always hashes the payload bytes exactly as stored; nothing is re-serialized.
#ifndef REPRO_DAEMON_STORE_CHAIN_H_
#define REPRO_DAEMON_STORE_CHAIN_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/signed_statements.h"  // ChainHash, GenesisHash, HeadSigningBytes, be64

namespace repro {

std::string JournalKey(absl::string_view job, uint64_t seq);
// The prefix shared by every key of `job` in the journal and index columns.
std::string JobPrefix(absl::string_view job);
// The sequence number of a journal key of `job`; nullopt when the key is not one.
std::optional<uint64_t> SeqFromJournalKey(absl::string_view key, absl::string_view job);
std::string OnceIndexKey(absl::string_view job, absl::string_view once_key);

struct StoredEntryView {
  absl::string_view hash;
  absl::string_view payload;
};
std::string EncodeStoredEntry(absl::string_view hash, absl::string_view payload);
// DATA_LOSS when the value is shorter than a hash.
absl::StatusOr<StoredEntryView> DecodeStoredEntry(absl::string_view value);

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_CHAIN_H_
