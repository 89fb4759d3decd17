#include "client/cli/exit_code.h"

#include "absl/strings/cord.h"
#include "absl/types/optional.h"

namespace repro::cli {
namespace {

constexpr absl::string_view kRpcPayload = "type.repro.dev/repro.cli.Rpc";

// Status codes whose exit code depends on the RPC that returned them; "*" matches every RPC.
// Statuses made on the client (a missing --tls_ca file is NOT_FOUND too) never match.
struct Rule {
  absl::string_view rpc;
  absl::StatusCode code;
  ExitCode exit_code;
};

constexpr Rule kRules[] = {
    {"*", absl::StatusCode::kNotFound, kExitNotFound},
    {"*", absl::StatusCode::kPermissionDenied, kExitPermissionDenied},
    {"Pin", absl::StatusCode::kFailedPrecondition, kExitConflict},
    {"RegisterVersion", absl::StatusCode::kAlreadyExists, kExitConflict},
    {"SignAttestation", absl::StatusCode::kDataLoss, kExitTampered},
};

}  // namespace

absl::Status TagRpc(absl::Status status, absl::string_view rpc) {
  if (!status.ok()) status.SetPayload(kRpcPayload, absl::Cord(rpc));
  return status;
}

ExitCode ExitCodeForStatus(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRpcPayload);
  if (!payload.has_value()) return kExitError;
  std::string rpc(*payload);
  for (const Rule& rule : kRules) {
    if (rule.code == status.code() && (rule.rpc == "*" || rule.rpc == rpc)) return rule.exit_code;
  }
  return kExitError;
}

}  // namespace repro::cli
