// reproctl as a library: RunCli runs one command line and returns the process exit code, so main()
// is one line and tests drive the whole CLI in-process against a fake reprod.
//
//   std::ostringstream out, err;
//   Environment env{.out = &out, .err = &err};
//   int code = RunCli({"--addr", "unix:/tmp/r.sock", "pin", "show", "job-7"}, env);
#ifndef REPRO_CLIENT_CLI_CLI_H_
#define REPRO_CLIENT_CLI_CLI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/cli/environment.h"

namespace repro::cli {

// Runs `args` (argv without the program name). Results go to env.out; on failure exactly one line
// "reproctl: ..." goes to env.err. Returns an ExitCode (exit_code.h). Thread-compatible; only one
// `journal --follow` may run at a time in a process (it owns SIGINT while it runs).
int RunCli(absl::Span<const std::string> args, const Environment& env);

// Parses --timeout: an absl duration ("30s", "1m30s", "inf") or plain seconds ("45").
// INVALID_ARGUMENT for anything else or a duration that is not positive.
absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_CLI_H_
