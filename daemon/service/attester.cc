#include "daemon/service/attester.h"

#include "absl/strings/str_cat.h"
#include "client/cli/attestation.h"
#include "client/cli/dsse.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "daemon/hashing/file_hasher.h"
#include "google/protobuf/util/time_util.h"

namespace repro {
namespace {

// The subjects, each re-hashed from `fs` and compared with the caller's digest.
absl::StatusOr<cli::StatementOptions> CheckSubjects(
    FileSystem* fs, const google::protobuf::RepeatedPtrField<v1::AttestationSubject>& subjects) {
  if (subjects.size() > kMaxAttestationSubjects) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxAttestationSubjects, " subjects per statement, not ", subjects.size()));
  }
  cli::StatementOptions options;
  for (const v1::AttestationSubject& s : subjects) {
    if (s.path().empty() || s.path()[0] != '/' || s.name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "subject \"", s.name(), "\" needs a name and an absolute path, not \"", s.path(), "\""));
    }
    if (s.sha256().size() != kSha256Size) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject ", s.path(), ": the claimed SHA-256 is not 32 bytes"));
    }
    ASSIGN_OR_RETURN(HashedFile hashed, HashFile(fs, s.path(), /*cache=*/nullptr));
    if (hashed.sha256 != s.sha256()) {
      // Never the file's real digest: reprod reads files its callers may not be able to read.
      return absl::FailedPreconditionError(absl::StrCat(
          "subject ", s.path(), " does not have the claimed SHA-256 ", HexDigest(s.sha256()),
          " on this node (changed since it was hashed?)"));
    }
    options.subjects.push_back({s.name(), s.sha256()});
  }
  return options;
}

}  // namespace

absl::StatusOr<v1::SignAttestationResponse> Attester::Sign(
    const v1::SignAttestationRequest& request) const {
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  ASSIGN_OR_RETURN(cli::ExportFormat format, cli::ParseExportFormat(request.format()));
  if (!cli::IsStatement(format)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "only in-toto and runtime-trace statements are signed, not \"", request.format(), "\""));
  }
  ASSIGN_OR_RETURN(cli::StatementOptions options, CheckSubjects(fs_, request.subjects()));
  ASSIGN_OR_RETURN(v1::Provenance provenance, provenance_(request.job()));
  if (!provenance.journal_intact()) {
    return absl::DataLossError(absl::StrCat(
        "the journal of job ", request.job(), " is not intact; reprod signs only intact journals",
        " (run `reproctl verify ", request.job(), "`)"));
  }
  *provenance.mutable_exported_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  if (!options.subjects.empty()) {
    options.subjects_checked_on = node_;
    options.subjects_checked_at =
        google::protobuf::util::TimeUtil::ToString(provenance.exported_at());
  }
  nlohmann::ordered_json statement = format == cli::ExportFormat::kInToto
                                         ? cli::InTotoStatement(provenance, options)
                                         : cli::RuntimeTraceStatement(provenance, options);
  cli::DsseEnvelope envelope;
  envelope.payload_type = cli::kInTotoPayloadType;
  envelope.payload = statement.dump();
  envelope.signatures.push_back(
      {HexDigest(key_->public_key()),
       key_->Sign(cli::PreAuthEncoding(envelope.payload_type, envelope.payload))});
  v1::SignAttestationResponse response;
  response.set_envelope(cli::EnvelopeJson(envelope));
  return response;
}

}  // namespace repro
