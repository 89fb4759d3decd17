// Fuzzes the decoding of what the journal stores (daemon/store/chain): a stored entry value
// (chain hash || serialized JournalEntry) as Verify and LoadHead read it, the entry as reproctl
// prints and summarizes it, a stored journal head and its signature check, and a journal key.
#include <string>

#include "client/cli/entry_text.h"
#include "client/cli/provenance.h"
#include "daemon/store/chain.h"
#include "daemon/store/node_key.h"
#include "repro/v1/journal.pb.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using repro::fuzz::FuzzCheck;

void DecodeEntry(absl::string_view value) {
  absl::StatusOr<repro::StoredEntryView> view = repro::DecodeStoredEntry(value);
  if (!view.ok()) return;
  FuzzCheck(view->hash.size() + view->payload.size() == value.size(), "stored entry split wrong");
  FuzzCheck(repro::EncodeStoredEntry(view->hash, view->payload) == value,
            "stored entry does not round-trip");
  (void)repro::ChainHash(repro::GenesisHash(), view->payload);
  repro::v1::JournalEntry entry;
  if (!entry.ParseFromArray(view->payload.data(), static_cast<int>(view->payload.size()))) return;
  (void)repro::cli::FormatJournalLine(entry);
  repro::cli::ProvenanceBuilder builder(entry.job());
  builder.Add(entry, view->hash);
  (void)builder.Build();
}

// A head as stored or published to etcd: its signature is checked against the key it names.
void DecodeHead(absl::string_view value) {
  repro::v1::JournalHead head;
  if (!head.ParseFromArray(value.data(), static_cast<int>(value.size()))) return;
  (void)repro::NodeKey::Verify(
      head.public_key(), repro::HeadSigningBytes(head.node(), head.job(), head.seq(), head.hash()),
      head.signature());
}

void DecodeKey(absl::string_view key) {
  std::optional<uint64_t> seq = repro::SeqFromJournalKey(key, "train-42");
  if (seq) FuzzCheck(repro::JournalKey("train-42", *seq) == key, "journal key does not round-trip");
}

}  // namespace

REPRO_FUZZ_TARGET(journal_entry) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  DecodeEntry(input);
  DecodeHead(input);
  DecodeKey(input);
  return 0;
}
