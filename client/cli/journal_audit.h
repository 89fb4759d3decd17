// Client-side verification: reproctl re-checks a job's journal from the stored bytes reprod
// replays, against node keys the auditor trusts, so a lying or compromised daemon cannot make a
// broken, rewritten or rolled-back journal pass (the daemon's own verdict is only a fast path).
//
//   KeyTrust trust = ...;  // --trusted_keys, an earlier export, or pinned on first use
//   NodeAudit audit = AuditNode(job, head, entries, proof, exported, trust);
//   if (!audit.problem.ok()) { /* exit 4 */ }
//
// What one node's audit proves (README "Threat model"):
//   - the entries are dense from 1, each stored hash is SHA-256(previous || stored bytes), and the
//     entry shown is exactly the parse of those bytes;
//   - the signed head covers the last of them and is signed by a trusted key (or a key that a
//     chain of rotation statements from a trusted key names);
//   - with a head log proof: the signed tree head verifies and contains the head;
//   - with an earlier export: today's chain still holds the exported head, and today's tree
//     extends the exported tree (consistency proof): no rollback, truncation or deleted job.
#ifndef REPRO_CLIENT_CLI_JOURNAL_AUDIT_H_
#define REPRO_CLIENT_CLI_JOURNAL_AUDIT_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "repro/v1/provenance.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro::cli {

// Which raw Ed25519 keys the auditor trusts for which node, and why. Not thread-safe.
class KeyTrust {
 public:
  // Lines "NODE HEX_PUBLIC_KEY" ('#' comments and blank lines skipped). INVALID_ARGUMENT names
  // the bad line.
  static absl::StatusOr<KeyTrust> FromFile(const std::string& path, std::string source);
  // The keys of every node head in an earlier export.
  static KeyTrust FromExport(const v1::Provenance& exported, std::string source);
  // Trust on first use: keys pinned in `path` (created when missing); a node seen for the first
  // time is pinned with the key it presents. Empty path: nothing is pinned or remembered.
  static absl::StatusOr<KeyTrust> PinnedOnFirstUse(const std::string& path);

  // The key to check `node`'s signatures with: the trusted one when it is `presented` or a chain
  // of valid rotation statements leads from it to `presented`. A node not yet known is pinned
  // (first use) and `*first_use` set. PERMISSION_DENIED when `presented` is not trusted.
  absl::Status Accept(const std::string& node, absl::string_view presented,
                      const std::vector<v1::KeyRotation>& rotations, bool* first_use);
  const std::string& source() const { return source_; }

 private:
  std::map<std::string, std::set<std::string>> keys_;  // node -> raw keys
  std::string source_;
  std::string pin_file_;       // non-empty: trust on first use, remembered here
  bool accept_unknown_ = false;  // no pin file: a node not yet known is taken at its word
};

// This node's part, as reprod served it.
struct NodeEvidence {
  std::string node;
  v1::JournalHead head;                        // the newest signed head (VerifyJournal)
  std::vector<v1::ReplayResponse> entries;     // its replayed entries up to `head`, oldest first
  std::optional<v1::HeadLogProofResponse> proof;  // GetHeadLogProof, when the node served one
};

struct NodeAudit {
  absl::Status problem;                        // OK: everything checked holds
  std::map<std::string, uint64_t> lost;        // gap entries: kind -> count
  bool log_checked = false;                    // the head log proof was checked
};

// Audits one node's part of `job`. `exported` is that node's head in an earlier export (with
// its tree head), if any. `key` is the key Accept() approved for the node.
NodeAudit AuditNode(const std::string& job, const NodeEvidence& evidence,
                    const v1::ProvenanceHead* exported, absl::string_view key);

// Checks an exported head on its own: its signature, its tree head's signature, and its
// inclusion in that tree. Used for nodes whose journal is gone today too.
absl::Status CheckExportedHead(const std::string& job, const v1::ProvenanceHead& exported,
                               absl::string_view key);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_JOURNAL_AUDIT_H_
