// version add / show / list.
#include "client/cli/verbs.h"

#include <optional>

#include "absl/time/clock.h"
#include "client/cli/message_text.h"
#include "client/cli/progress.h"
#include "client/cli/requests.h"
#include "common/names.h"

namespace repro::cli {

absl::StatusOr<ExitCode> RunVersionAdd(Invocation& inv) {
  const std::vector<std::string>& ops = inv.operands();
  RETURN_IF_ERROR(ValidateDatasetName(ops[0]));
  RETURN_IF_ERROR(ValidateVersionName(ops[1]));
  v1::RegisterVersionRequest request;
  request.set_dataset(ops[0]);
  request.set_version(ops[1]);
  ASSIGN_OR_RETURN(*request.mutable_path(), AbsolutePath(ops[2], inv.env().cwd));

  std::optional<ProgressLine> progress;
  if (inv.env().stderr_is_tty) progress.emplace(&inv.output().err(), absl::Now());
  std::optional<v1::RegisterResult> result;
  absl::Status status = inv.client().Stream(
      kRegisterVersion, request,
      [&](const v1::RegisterVersionResponse& response) {
        if (response.has_progress() && progress.has_value()) {
          progress->Update(response.progress(), absl::Now());
        }
        if (response.has_result()) result = response.result();
        return absl::OkStatus();
      },
      CallLength::kLong);
  if (progress.has_value()) progress->Clear();
  RETURN_IF_ERROR(status);
  if (!result.has_value()) {
    return absl::UnknownError("reprod ended RegisterVersion without a result");
  }
  RETURN_IF_ERROR(inv.Print(*result, FormatRegisterResult));
  return kExitOk;
}

absl::StatusOr<ExitCode> RunVersionShow(Invocation& inv) {
  ASSIGN_OR_RETURN(DatasetVersion ref, ParseDatasetVersion(inv.operands()[0]));
  v1::GetVersionRequest request;
  request.mutable_ref()->set_dataset(ref.dataset);
  request.mutable_ref()->set_version(ref.version);
  bool files = inv.args().Bool("files");
  request.set_include_files(files);
  RETURN_IF_ERROR(inv.CallAndPrint(kGetVersion, request,
                                   [files](const v1::GetVersionResponse& r) {
                                     return files ? FormatManifest(r.manifest())
                                                  : FormatVersion(r.version());
                                   })
                      .status());
  return kExitOk;
}

absl::StatusOr<ExitCode> RunVersionList(Invocation& inv) {
  v1::ListVersionsRequest request;
  if (!inv.operands().empty()) {
    RETURN_IF_ERROR(ValidateDatasetName(inv.operands()[0]));
    request.set_dataset(inv.operands()[0]);
  }
  RETURN_IF_ERROR(
      inv.CallAndPrintEach(
             kListVersions, request,
             [](const v1::ListVersionsResponse& r) -> const auto& { return r.versions(); },
             FormatVersionList)
          .status());
  return kExitOk;
}

}  // namespace repro::cli
