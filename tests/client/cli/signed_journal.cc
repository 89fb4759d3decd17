#include "tests/client/cli/signed_journal.h"

#include "absl/strings/str_cat.h"
#include "common/signed_statements.h"

namespace repro::cli {

void RechainAndSign(const NodeKey& key, SignedJournal* journal) {
  std::string hash = GenesisHash();
  for (v1::ReplayResponse& r : journal->replay) {
    hash = ChainHash(hash, r.payload());
    r.set_hash(hash);
  }
  v1::JournalHead* head = journal->check.mutable_head();
  head->set_seq(journal->replay.size());
  head->set_hash(hash);
  head->set_public_key(key.public_key());
  head->set_signature(
      key.Sign(HeadSigningBytes(head->node(), head->job(), head->seq(), head->hash())));
}

SignedJournal MakeSignedJournal(const NodeKey& key, const std::string& job,
                                const std::string& node, int entries) {
  SignedJournal journal;
  for (int seq = 1; seq <= entries; ++seq) {
    v1::ReplayResponse r;
    v1::JournalEntry* entry = r.mutable_entry();
    entry->set_job(job);
    entry->set_node(node);
    entry->set_seq(seq);
    v1::Fact* fact = entry->mutable_record()->add_facts();
    fact->set_key("step");
    fact->set_value(absl::StrCat(seq));
    r.set_payload(entry->SerializeAsString());
    journal.replay.push_back(std::move(r));
  }
  journal.check.set_node(node);
  journal.check.set_intact(true);
  journal.check.set_entries(entries);
  journal.check.mutable_head()->set_job(job);
  journal.check.mutable_head()->set_node(node);
  RechainAndSign(key, &journal);
  return journal;
}

}  // namespace repro::cli
