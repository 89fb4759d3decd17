// diff and export: a job's provenance (provenance.h), compared with another job's or printed in
// one of the export formats (attestation.h), signed by reprod on request; verify-export checks a
// signed one.
#include <fstream>
#include <iterator>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/cli/attestation.h"
#include "client/cli/diff_text.h"
#include "client/cli/dsse.h"
#include "client/cli/job_diff.h"
#include "client/cli/provenance.h"
#include "client/cli/subjects.h"
#include "client/cli/verbs.h"
#include "common/ed25519_verify.h"
#include "common/names.h"
#include "common/sha256.h"
#include "google/protobuf/util/time_util.h"

namespace repro::cli {
namespace {

// `reproctl diff` exits 1 when the runs differ (DESIGN.md "Interfaces").
constexpr ExitCode kExitDifferent = kExitError;

// The provenance of `job` as reprod serves it: its pin (GetPin; NOT_FOUND for an unknown job)
// and every node's part of its journal (Replay). With `verify`, the signed heads come first
// (VerifyJournal), and the provenance covers exactly the entries they sign.
absl::StatusOr<v1::Provenance> FetchProvenance(ReproClient& client, const std::string& job,
                                               bool verify) {
  ProvenanceBuilder builder(job);
  v1::GetPinRequest pin_request;
  pin_request.set_job(job);
  ASSIGN_OR_RETURN(v1::GetPinResponse pin, client.Call(kGetPin, pin_request));
  builder.SetPin(pin.pin());
  if (verify) {
    v1::VerifyJournalRequest verify_request;
    verify_request.set_job(job);
    ASSIGN_OR_RETURN(v1::VerifyJournalResponse verified,
                     client.Call(kVerifyJournal, verify_request));
    builder.SetVerified(verified);
  }
  v1::ReplayRequest replay;
  replay.set_job(job);
  RETURN_IF_ERROR(client.Stream(
      kReplay, replay,
      [&builder](const v1::ReplayResponse& r) {
        builder.Add(r.entry(), r.hash());
        return absl::OkStatus();
      },
      CallLength::kShort));
  return builder.Build();
}

// Prints a JSON document: indented for people, one line with --output json.
void PrintJson(Output& out, const nlohmann::ordered_json& document) {
  out.Text(absl::StrCat(out.json() ? document.dump() : document.dump(2), "\n"));
}

// Has reprod build and sign the statement (the node key never leaves it) and prints the DSSE
// envelope as one line. DATA_LOSS (exit 4) when the journal is not intact.
absl::StatusOr<ExitCode> ExportSigned(Invocation& inv, const std::string& job,
                                      ExportFormat format, const std::vector<SubjectFile>& subjects) {
  v1::SignAttestationRequest request;
  request.set_job(job);
  request.set_format(format == ExportFormat::kInToto ? "in-toto" : "runtime-trace");
  for (const SubjectFile& s : subjects) {
    v1::AttestationSubject* subject = request.add_subjects();
    subject->set_name(s.name);
    subject->set_path(s.path);
    subject->set_sha256(s.sha256);
  }
  ASSIGN_OR_RETURN(v1::SignAttestationResponse response,
                   inv.client().Call(kSignAttestation, request, CallLength::kLong));
  inv.output().Text(absl::StrCat(response.envelope(), "\n"));
  return kExitOk;
}

// What a verified envelope holds, in one line; DATA_LOSS when no signature verifies with `keys`,
// INVALID_ARGUMENT when the payload is not an in-toto Statement v1.
absl::StatusOr<std::string> CheckEnvelope(const DsseEnvelope& envelope,
                                          const std::vector<std::string>& keys) {
  if (envelope.payload_type != kInTotoPayloadType) {
    return absl::InvalidArgumentError(
        absl::StrCat("payloadType is \"", envelope.payload_type, "\", not ", kInTotoPayloadType));
  }
  RETURN_IF_ERROR(VerifyEnvelope(envelope, keys));
  nlohmann::json statement = nlohmann::json::parse(envelope.payload, nullptr, false);
  if (statement.is_discarded() || !statement.is_object() ||
      statement.value("_type", "") != kStatementType || !statement.contains("predicate") ||
      !statement["subject"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the signed payload is not an in-toto Statement v1 (", kStatementType, ")"));
  }
  return absl::StrCat("signature OK; in-toto statement ", statement.value("predicateType", "?"),
                      " about ", statement["subject"].size(), " subject(s)");
}

// Embeds, for each node head in `provenance` that the node serves a head log proof for, the
// node's signed tree head and the head's inclusion proof, so that a later
// `reproctl verify JOB --against` the document can prove the journal only grew. Heads the proof
// does not cover (other nodes, a head signed before the log existed) are left as they are.
absl::Status EmbedHeadLogEvidence(ReproClient& client, v1::Provenance* provenance) {
  v1::HeadLogProofRequest request;
  request.set_job(provenance->job());
  absl::StatusOr<v1::HeadLogProofResponse> proof = client.Call(kGetHeadLogProof, request);
  if (absl::IsUnimplemented(proof.status()) || absl::IsFailedPrecondition(proof.status()) ||
      absl::IsNotFound(proof.status())) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(proof.status());
  if (!proof->has_inclusion()) return absl::OkStatus();
  for (v1::ProvenanceHead& head : *provenance->mutable_heads()) {
    // The proof is for the node's current head; the document's head may be older only when
    // the job appended in between, and then the document keeps its head without a proof.
    if (head.node() != proof->head().node() || head.seq() != proof->head().seq() ||
        head.hash() != HexDigest(proof->head().hash())) {
      continue;
    }
    const v1::SignedTreeHead& sth = proof->tree_head();
    v1::ProvenanceTreeHead* tree = head.mutable_tree_head();
    tree->set_size(sth.size());
    tree->set_root(HexDigest(sth.root()));
    tree->set_time_unix_nanos(sth.time_unix_nanos());
    tree->set_signature(HexDigest(sth.signature()));
    tree->set_public_key(HexDigest(sth.public_key()));
    head.set_leaf_index(proof->inclusion().leaf_index());
    for (const std::string& hash : proof->inclusion().path()) head.add_inclusion(HexDigest(hash));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExitCode> RunDiff(Invocation& inv) {
  const std::vector<std::string>& jobs = inv.operands();
  for (const std::string& job : jobs) RETURN_IF_ERROR(ValidateJobId(job));
  ASSIGN_OR_RETURN(v1::Provenance a, FetchProvenance(inv.client(), jobs[0], /*verify=*/false));
  ASSIGN_OR_RETURN(v1::Provenance b, FetchProvenance(inv.client(), jobs[1], /*verify=*/false));
  v1::JobDiff diff = DiffJobs(a, b);
  auto manifest = [&inv](const std::string& dataset,
                         const std::string& version) -> absl::StatusOr<v1::Manifest> {
    v1::GetVersionRequest request;
    request.mutable_ref()->set_dataset(dataset);
    request.mutable_ref()->set_version(version);
    request.set_include_files(true);
    ASSIGN_OR_RETURN(v1::GetVersionResponse response, inv.client().Call(kGetVersion, request));
    return std::move(*response.mutable_manifest());
  };
  RETURN_IF_ERROR(AddDataDetails(a, b, manifest, &diff));
  RETURN_IF_ERROR(inv.Print(diff, FormatJobDiff));
  return diff.same() ? kExitOk : kExitDifferent;
}

absl::StatusOr<ExitCode> RunExport(Invocation& inv) {
  const std::string& job = inv.operands()[0];
  RETURN_IF_ERROR(ValidateJobId(job));
  ASSIGN_OR_RETURN(ExportFormat format,
                   ParseExportFormat(inv.args().Value("format").value_or("repro")));
  const bool sign = inv.args().Bool("sign");
  const std::vector<std::string> globs = inv.args().Values("subject");
  if ((sign || !globs.empty()) && !IsStatement(format)) {
    return inv.UsageError("--sign and --subject need --format in-toto or runtime-trace");
  }
  ASSIGN_OR_RETURN(std::vector<SubjectFile> subjects, ExpandSubjects(globs));
  Output& out = inv.output();
  if (sign) return ExportSigned(inv, job, format, subjects);

  ASSIGN_OR_RETURN(v1::Provenance provenance, FetchProvenance(inv.client(), job, /*verify=*/true));
  RETURN_IF_ERROR(EmbedHeadLogEvidence(inv.client(), &provenance));
  *provenance.mutable_exported_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  StatementOptions options;
  for (const SubjectFile& s : subjects) options.subjects.push_back({s.name, s.sha256});
  switch (format) {
    case ExportFormat::kRepro:
      RETURN_IF_ERROR(out.json() ? out.Json(provenance) : out.JsonDocument(provenance));
      break;
    case ExportFormat::kInToto:
      PrintJson(out, InTotoStatement(provenance, options));
      break;
    case ExportFormat::kRuntimeTrace:
      PrintJson(out, RuntimeTraceStatement(provenance, options));
      break;
    case ExportFormat::kOpenLineage:
      for (const nlohmann::ordered_json& event : OpenLineageEvents(provenance)) {
        PrintJson(out, event);
      }
      break;
  }
  if (!provenance.journal_intact()) {
    out.err() << "reproctl: the journal of job " << job
              << " is not intact (the document says so); run `reproctl verify " << job
              << "` for where it breaks\n";
    return kExitTampered;
  }
  if (provenance.incomplete()) {
    out.err() << "reproctl: the record of job " << job
              << " is incomplete: a node journaled a gap (see \"gaps\" in the document)\n";
  }
  return kExitOk;
}

absl::StatusOr<ExitCode> RunVerifyExport(Invocation& inv) {
  const std::string& file = inv.operands()[0];
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<DsseEnvelope> envelope = ParseEnvelope(text);
  std::vector<std::string> keys;
  for (const std::string& hex : inv.args().Values("public_key")) {
    std::string raw = absl::HexStringToBytes(hex);
    if (hex.size() != 2 * kEd25519PublicKeySize || absl::BytesToHexString(raw) != hex) {
      return inv.UsageError(absl::StrCat("--public_key must be 64 lowercase hex digits, not ", hex));
    }
    keys.push_back(std::move(raw));
  }
  if (keys.empty()) {  // trust the key of the node reproctl talks to
    ASSIGN_OR_RETURN(v1::NodeInfo node, inv.client().Call(kGetNodeInfo, v1::GetNodeInfoRequest()));
    keys.push_back(node.public_key());
  }
  absl::StatusOr<std::string> verdict =
      envelope.ok() ? CheckEnvelope(*envelope, keys) : envelope.status();
  if (!verdict.ok()) {
    inv.output().err() << "reproctl: " << file << ": " << verdict.status().message() << "\n";
    return kExitTampered;
  }
  inv.output().Text(absl::StrCat(file, ": ", *verdict, "\n"));
  return kExitOk;
}

}  // namespace repro::cli
