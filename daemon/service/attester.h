// Attester: builds an in-toto statement about a job from this node's own view of the job (its
// pin, the verified signed heads and the journal entries they cover), re-hashes the subject files
// the caller names, and signs the statement with the node key in a DSSE envelope.
//
//   Attester attester(sources, node_key, DefaultFileSystem());
//   ASSIGN_OR_RETURN(v1::SignAttestationResponse signed, attester.Sign(request));
//
// Why the statement is built here and not taken from the caller: the node key must never sign a
// claim about a job's inputs that the node did not make itself. The caller chooses only the job,
// the format and the subject files; each subject's bytes are re-hashed here and must match the
// digest the caller computed, and the statement says the node checked them (that the job wrote
// them stays the caller's claim: the journal records reads, not writes).
#ifndef REPRO_DAEMON_SERVICE_ATTESTER_H_
#define REPRO_DAEMON_SERVICE_ATTESTER_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/os/file_system.h"
#include "daemon/store/node_key.h"
#include "repro/v1/provenance.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro {

// At most this many subjects per statement: each one is read in full.
inline constexpr int kMaxAttestationSubjects = 4096;

// Thread-safe when `provenance` is.
class Attester {
 public:
  // The job's provenance as this node sees it, covering exactly what its verified heads sign
  // (NOT_FOUND for an unknown job).
  using ProvenanceSource = std::function<absl::StatusOr<v1::Provenance>(const std::string& job)>;

  // `key` and `fs` must outlive the attester.
  Attester(ProvenanceSource provenance, const NodeKey* key, FileSystem* fs, std::string node)
      : provenance_(std::move(provenance)), key_(key), fs_(fs), node_(std::move(node)) {}

  // INVALID_ARGUMENT for a bad job id, format (only "in-toto" and "runtime-trace" are
  // statements) or subject (relative path, bad digest, too many); DATA_LOSS when the journal is
  // not intact; FAILED_PRECONDITION when a subject's bytes differ from its claimed digest; the
  // file system's
  // code (NOT_FOUND, PERMISSION_DENIED) when a subject cannot be read.
  absl::StatusOr<v1::SignAttestationResponse> Sign(const v1::SignAttestationRequest& request) const;

 private:
  const ProvenanceSource provenance_;
  const NodeKey* const key_;
  FileSystem* const fs_;
  const std::string node_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SERVICE_ATTESTER_H_
