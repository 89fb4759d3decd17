// A real, signed journal for reproctl's client-side verification tests: entries with their
// stored bytes and chain hashes, and a head signed by a real Ed25519 node key, as reprod would
// serve them — so a test can then alter any part the way a lying daemon would.
//
//   SignedJournal journal = MakeSignedJournal(*key, "j", "node-a", 3);
//   fake.replay = journal.replay;
//   *fake.verify.add_nodes() = journal.check;
#ifndef REPRO_TESTS_CLIENT_CLI_SIGNED_JOURNAL_H_
#define REPRO_TESTS_CLIENT_CLI_SIGNED_JOURNAL_H_

#include <string>
#include <vector>

#include "daemon/store/node_key.h"
#include "repro/v1/repro.pb.h"

namespace repro::cli {

struct SignedJournal {
  std::vector<v1::ReplayResponse> replay;  // entries 1..n with payload and hash
  v1::NodeJournalCheck check;              // intact, with the head signed by the key
};

// `entries` record entries of `job` on `node`, fact "step" = 1..entries.
SignedJournal MakeSignedJournal(const NodeKey& key, const std::string& job,
                                const std::string& node, int entries);

// Re-chains `journal` from its entries' payloads (after a test rewrote some) and re-signs its
// head with `key`: what an attacker holding `key` would do.
void RechainAndSign(const NodeKey& key, SignedJournal* journal);

}  // namespace repro::cli

#endif  // REPRO_TESTS_CLIENT_CLI_SIGNED_JOURNAL_H_
