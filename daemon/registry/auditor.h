// Auditor: checks a job's journal (hash chain, signed head) and, on request, re-reads the
// pinned data to report drift from the registered manifests.
//
//   Auditor auditor(pin_store, &journal, &rehasher);
//   ASSIGN_OR_RETURN(v1::VerifyJournalResponse r, auditor.Verify(request));
//   if (!r.intact() || r.drift_size() > 0) { /* exit 4 */ }
#ifndef REPRO_DAEMON_REGISTRY_AUDITOR_H_
#define REPRO_DAEMON_REGISTRY_AUDITOR_H_

#include <vector>

#include "absl/status/statusor.h"
#include "daemon/hashing/tree_hasher.h"
#include "daemon/pin_store/pin_store.h"
#include "daemon/store/journal.h"
#include "repro/v1/repro.pb.h"

namespace repro {

// Thread-safe. Does not own its collaborators. `rehasher` must read every byte (no hash cache):
// drift is exactly what a stat-keyed cache could hide.
class Auditor {
 public:
  // `head_log` may be null (no head log proofs then).
  Auditor(PinStore* store, Journal* journal, TreeHasher* rehasher,
          const HeadLog* head_log = nullptr)
      : store_(store), journal_(journal), rehasher_(rehasher), head_log_(head_log) {}

  // NOT_FOUND when the job has no journal on this node. Broken chains and drift are results.
  absl::StatusOr<v1::VerifyJournalResponse> Verify(const v1::VerifyJournalRequest& request);

  // The job's signed head with the head log's signed tree head and proofs (repro.proto
  // GetHeadLogProof). NOT_FOUND when the job has no journal here; FAILED_PRECONDITION without a
  // head log. A head signed before the log existed comes without an inclusion proof. With an
  // empty job: the signed tree head and the consistency proof only.
  absl::StatusOr<v1::HeadLogProofResponse> ProveHead(const v1::HeadLogProofRequest& request);

 private:
  // Appends to `response` how the data of `version` differs from its manifest.
  absl::Status Rehash(const v1::PinnedVersion& version, v1::VerifyJournalResponse* response);

  PinStore* const store_;
  Journal* const journal_;
  TreeHasher* const rehasher_;
  const HeadLog* const head_log_;
};

// The differences between a registered manifest and a fresh one, as Drift records of
// `dataset`@`version`, in path order.
std::vector<v1::Drift> DiffManifests(const v1::Manifest& registered, const v1::Manifest& now,
                                     absl::string_view dataset, absl::string_view version);

}  // namespace repro

#endif  // REPRO_DAEMON_REGISTRY_AUDITOR_H_
