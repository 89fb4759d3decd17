// diff and export: a job's provenance (provenance.h), compared with another job's or printed as
// one JSON document.
#include "absl/strings/str_cat.h"
#include "client/cli/diff_text.h"
#include "client/cli/job_diff.h"
#include "client/cli/provenance.h"
#include "client/cli/verbs.h"
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
  ASSIGN_OR_RETURN(v1::Provenance provenance, FetchProvenance(inv.client(), job, /*verify=*/true));
  RETURN_IF_ERROR(EmbedHeadLogEvidence(inv.client(), &provenance));
  *provenance.mutable_exported_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  Output& out = inv.output();
  RETURN_IF_ERROR(out.json() ? out.Json(provenance) : out.JsonDocument(provenance));
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

}  // namespace repro::cli
