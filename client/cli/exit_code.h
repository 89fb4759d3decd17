// The exit codes of reproctl and the one mapping from a failed call's status to an exit code.
//
//   absl::Status s = TagRpc(FromGrpcStatus(grpc_status), "Pin");
//   return ExitCodeForStatus(s);  // FAILED_PRECONDITION from Pin -> kConflict (2)
//
// The codes are part of the contract in DESIGN.md ("Interfaces"); scripts depend on them.
#ifndef REPRO_CLIENT_CLI_EXIT_CODE_H_
#define REPRO_CLIENT_CLI_EXIT_CODE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace repro::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,     // usage error, unreachable daemon, any other failure
  kExitConflict = 2,  // a different pin exists; a version name holds different content
  kExitRefused = 3,   // admit: the job would not be admitted
  kExitTampered = 4,  // verify: a chain or signature is broken, or the data drifted
  kExitNotFound = 5,  // unknown job or version
  kExitPermissionDenied = 6,  // reprod refused the caller (PERMISSION_DENIED, with its reason)
};

// Marks `status` as the outcome of the RPC `rpc` (e.g. "Pin"), which decides the exit code of
// some codes. OK stays OK.
absl::Status TagRpc(absl::Status status, absl::string_view rpc);

// The exit code for a failed command. NOT_FOUND from any RPC -> 5; PERMISSION_DENIED from any
// RPC -> 6; FAILED_PRECONDITION from Pin
// and ALREADY_EXISTS from RegisterVersion -> 2; everything else -> 1 (statuses not tagged by
// TagRpc, i.e. made on the client, always -> 1).
ExitCode ExitCodeForStatus(const absl::Status& status);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_EXIT_CODE_H_
