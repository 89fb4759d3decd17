// pin, pin show, pin list, admit.
#include "client/cli/verbs.h"

#include "client/cli/message_text.h"
#include "client/cli/requests.h"
#include "common/names.h"

namespace repro::cli {

absl::StatusOr<ExitCode> RunPin(Invocation& inv) {
  const std::vector<std::string>& ops = inv.operands();
  PinSpec spec;
  spec.job = ops[0];
  spec.refs.assign(ops.begin() + 1, ops.end());
  spec.seed = inv.args().Value("seed");
  spec.like = inv.args().Value("like");
  spec.owner = inv.args().Value("owner");
  absl::StatusOr<v1::PinRequest> request = BuildPinRequest(spec);
  if (!request.ok()) return inv.UsageError(request.status().message());
  RETURN_IF_ERROR(inv.CallAndPrint(kPin, *request, FormatPinResponse).status());
  return kExitOk;
}

absl::StatusOr<ExitCode> RunPinShow(Invocation& inv) {
  v1::GetPinRequest request;
  request.set_job(inv.operands()[0]);
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  RETURN_IF_ERROR(inv.CallAndPrint(kGetPin, request,
                                   [](const v1::GetPinResponse& r) { return FormatPin(r.pin()); })
                      .status());
  return kExitOk;
}

absl::StatusOr<ExitCode> RunPinList(Invocation& inv) {
  RETURN_IF_ERROR(inv.CallAndPrintEach(
                         kListPins, v1::ListPinsRequest(),
                         [](const v1::ListPinsResponse& r) -> const auto& { return r.pins(); },
                         FormatPinList)
                      .status());
  return kExitOk;
}

absl::StatusOr<ExitCode> RunAdmit(Invocation& inv) {
  v1::AdmitRequest request;
  request.set_job(inv.operands()[0]);
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  ASSIGN_OR_RETURN(v1::AdmitResponse response,
                   inv.CallAndPrint(kAdmit, request, [&](const v1::AdmitResponse& r) {
                     return FormatAdmit(request.job(), r);
                   }));
  if (response.admitted()) return kExitOk;
  inv.output().err() << "reproctl: " << AdmitRefusal(request.job(), response) << '\n';
  return kExitRefused;
}

}  // namespace repro::cli
