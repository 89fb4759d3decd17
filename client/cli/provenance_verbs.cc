// diff and export: a job's provenance (provenance.h), compared with another job's or printed as
// one JSON document.
#include "absl/strings/str_cat.h"
#include "client/cli/diff_text.h"
#include "client/cli/job_diff.h"
#include "client/cli/provenance.h"
#include "client/cli/verbs.h"
#include "common/names.h"
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
  *provenance.mutable_exported_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  Output& out = inv.output();
  RETURN_IF_ERROR(out.json() ? out.Json(provenance) : out.JsonDocument(provenance));
  if (!provenance.journal_intact()) {
    out.err() << "reproctl: the journal of job " << job
              << " is not intact (the document says so); run `reproctl verify " << job
              << "` for where it breaks\n";
    return kExitTampered;
  }
  return kExitOk;
}

}  // namespace repro::cli
