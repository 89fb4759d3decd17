// The handlers of reproctl's verbs, one per entry of the command table (command_table.cc).
// Each validates its operands and flags, calls reprod and prints the reply (see command.h).
#ifndef REPRO_CLIENT_CLI_VERBS_H_
#define REPRO_CLIENT_CLI_VERBS_H_

#include "absl/status/statusor.h"
#include "client/cli/command.h"
#include "client/cli/exit_code.h"

namespace repro::cli {

// version_verbs.cc
absl::StatusOr<ExitCode> RunVersionAdd(Invocation& inv);
absl::StatusOr<ExitCode> RunVersionShow(Invocation& inv);
absl::StatusOr<ExitCode> RunVersionList(Invocation& inv);

// pin_verbs.cc
absl::StatusOr<ExitCode> RunPin(Invocation& inv);
absl::StatusOr<ExitCode> RunPinShow(Invocation& inv);
absl::StatusOr<ExitCode> RunPinList(Invocation& inv);
absl::StatusOr<ExitCode> RunAdmit(Invocation& inv);

// journal_verbs.cc
absl::StatusOr<ExitCode> RunRecord(Invocation& inv);
absl::StatusOr<ExitCode> RunJournal(Invocation& inv);
absl::StatusOr<ExitCode> RunVerify(Invocation& inv);
absl::StatusOr<ExitCode> RunNode(Invocation& inv);

// provenance_verbs.cc
absl::StatusOr<ExitCode> RunDiff(Invocation& inv);
absl::StatusOr<ExitCode> RunExport(Invocation& inv);
absl::StatusOr<ExitCode> RunVerifyExport(Invocation& inv);

// run_verb.cc
absl::StatusOr<ExitCode> RunRun(Invocation& inv);

// command_table.cc
absl::StatusOr<ExitCode> RunHelp(Invocation& inv);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_VERBS_H_
