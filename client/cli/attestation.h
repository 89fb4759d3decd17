// A job's provenance (provenance.h) in the formats other tools read, as `reproctl export
// --format` prints them and reprod signs them:
//   - in-toto: an in-toto Statement v1 whose predicate is SLSA Provenance v1;
//   - runtime-trace: an in-toto Statement v1 with the runtime-trace predicate (every file read,
//     with its digest);
//   - openlineage: a START and a COMPLETE RunEvent with the pinned datasets as inputs.
//
//   StatementOptions options;
//   options.subjects.push_back({"ckpt/epoch1.pt", raw_sha256});
//   nlohmann::ordered_json statement = InTotoStatement(provenance, options);
//
// Everything but the subjects comes from the provenance, that is from the job's pin and journal.
// Without subjects, a statement is about the job's journal: one subject per node head.
#ifndef REPRO_CLIENT_CLI_ATTESTATION_H_
#define REPRO_CLIENT_CLI_ATTESTATION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "repro/v1/provenance.pb.h"

namespace repro::cli {

enum class ExportFormat { kRepro, kInToto, kRuntimeTrace, kOpenLineage };

// "repro", "in-toto", "runtime-trace" or "openlineage"; INVALID_ARGUMENT otherwise.
absl::StatusOr<ExportFormat> ParseExportFormat(absl::string_view text);
// True for the formats that are in-toto statements (what a DSSE envelope may carry).
bool IsStatement(ExportFormat format);

inline constexpr char kStatementType[] = "https://in-toto.io/Statement/v1";
inline constexpr char kSlsaProvenanceType[] = "https://slsa.dev/provenance/v1";
inline constexpr char kRuntimeTraceType[] = "https://in-toto.io/attestation/runtime-trace/v0.1";
inline constexpr char kBuildType[] = "https://repro.dev/training-job/v1";

// A file the statement is about, e.g. a checkpoint the job wrote.
struct Subject {
  std::string name;
  std::string sha256;  // 32 raw bytes
};

struct StatementOptions {
  std::vector<Subject> subjects;
  // Set when reprod re-hashed the subjects before signing: the node it ran on and when (RFC
  // 3339). Recorded as a byproduct so a verifier knows who checked the subject digests; that the
  // job wrote those files stays the exporter's claim (the journal records reads, not writes).
  std::string subjects_checked_on;
  std::string subjects_checked_at;
};

// in-toto Statement v1 + SLSA Provenance v1 (field order as in the specs).
nlohmann::ordered_json InTotoStatement(const v1::Provenance& p, const StatementOptions& options);

// in-toto Statement v1 + runtime-trace predicate: every dataset file read, with its digest.
nlohmann::ordered_json RuntimeTraceStatement(const v1::Provenance& p,
                                             const StatementOptions& options);

// OpenLineage START and COMPLETE RunEvents (in that order) for the job's run: the pinned versions
// as inputs (version facet, plus a `repro` facet with the manifest digest); the run id is a UUID
// derived from the job name, the same in every export of the job.
std::vector<nlohmann::ordered_json> OpenLineageEvents(const v1::Provenance& p);

// The byproducts that prove which journal the statement covers: one per node head. The node's
// signed tree head (head log, issue 13) joins here: TreeHeadByproducts is the one place.
nlohmann::ordered_json JournalByproducts(const v1::Provenance& p);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_ATTESTATION_H_
