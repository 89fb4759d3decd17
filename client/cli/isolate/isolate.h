// The kernel-enforced view of `reproctl run --isolate`: a private mount namespace (entered
// through a user namespace that maps the caller to itself, unless the caller is root) in which
// each pinned dataset root is replaced by a read-only tmpfs holding
//   - the pinned version's directory, bound read-only;
//   - every alias in its place: a symlink alias (latest -> v2) becomes a symlink to the pinned
//     directory's name, any other directory that is not a registered version becomes a read-only
//     bind of the pinned directory;
//   - the other registered versions: absent in enforce mode, bound through as they are in record
//     mode;
//   - everything else (files, symlinks that do not lead to a directory) bound or copied through.
// Mounts are slaves of the host's, so nothing made here is seen outside, while the host's later
// mounts still are. Programs the shim cannot see (static binaries, raw syscalls, io_uring) see the
// view too. It is a consistent view for the job, not a sandbox against its own user: another
// process of the same user may still look at the real roots.
//
//   // main(): argv[1] == kIsolatedExecVerb
//   return RunIsolatedExec(args_after_the_verb, std::cerr);  // returns only on failure
#ifndef REPRO_CLIENT_CLI_ISOLATE_ISOLATE_H_
#define REPRO_CLIENT_CLI_ISOLATE_ISOLATE_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/cli/isolate/isolation_plan.h"

namespace repro::cli {

// Moves the calling process into a private mount namespace and builds the view of every root of
// `plan`. Precondition: the process is single-threaded (a user namespace requires it).
// FAILED_PRECONDITION with one line saying what to enable when user namespaces are refused;
// other codes (from errno) naming the mount step that failed. On failure the process may be left
// in a half-built namespace: it must not go on to run the command.
absl::Status EnterIsolatedView(const IsolationPlan& plan);

// The re-executed half of `run --isolate`: decodes the plan from `words` (the words after
// kIsolatedExecVerb), enters the view and replaces the process with the plan's command. Returns
// only on failure, with the exit code (1 when isolation failed, 127/126 when the command could
// not be run as the shell counts them) after one line on `err`.
int RunIsolatedExec(absl::Span<const std::string> words, std::ostream& err);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_ISOLATE_ISOLATE_H_
