// IsolationPlan: what `reproctl run --isolate` shows a job under each pinned dataset root, made
// from the job's pin and the registered versions, and carried across reproctl's re-exec of
// itself as command-line words (the mounting half runs in a fresh, single-threaded image, since
// a process with gRPC's threads may not enter a user namespace).
//
//   ASSIGN_OR_RETURN(IsolationPlan plan, PlanIsolation(pin, versions, /*enforce=*/true));
//   plan.env = command_env;  plan.command = {"python", "train.py"};
//   std::vector<std::string> words = EncodeIsolationPlan(plan);   // after kIsolatedExecVerb
//   ASSIGN_OR_RETURN(IsolationPlan same, DecodeIsolationPlan(words));
#ifndef REPRO_CLIENT_CLI_ISOLATE_ISOLATION_PLAN_H_
#define REPRO_CLIENT_CLI_ISOLATE_ISOLATION_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "repro/v1/journal.pb.h"

namespace repro::cli {

// The hidden first word of reproctl's command line for the re-executed, isolating half.
inline constexpr char kIsolatedExecVerb[] = "__isolated-exec";

// One pinned dataset root as the job sees it.
struct IsolatedRoot {
  std::string root;                 // absolute, symlink-free (VersionInfo.root)
  std::string pinned;               // name of the pinned version's directory inside root
  std::vector<std::string> others;  // names of the other registered versions inside root
};

struct IsolationPlan {
  // enforce: the other registered versions are absent from the view; record: they stay visible.
  bool enforce = false;
  std::vector<IsolatedRoot> roots;   // sorted by path, so an enclosing root is mounted first
  std::vector<std::string> env;      // the command's environment, "K=V"
  std::vector<std::string> command;  // argv of the command; command[0] is looked up in PATH
  std::string announce;              // printed on stderr once the view is built ("": nothing)
};

// The roots of `pin`, each with the names of the other versions in `registered` (every
// registered version of every dataset) that live in the same root. `env` and `command` are left
// empty. FAILED_PRECONDITION when two pinned versions share a root (their aliases would be
// ambiguous) or a pinned version lacks its root or path.
absl::StatusOr<IsolationPlan> PlanIsolation(const v1::Pin& pin,
                                            absl::Span<const v1::VersionInfo> registered,
                                            bool enforce);

// The plan as words: "record"|"enforce", the announcement, then per root "--root" ROOT PINNED N
// OTHER..., then "--env" N K=V..., then "--" COMMAND...
std::vector<std::string> EncodeIsolationPlan(const IsolationPlan& plan);
// The inverse; INVALID_ARGUMENT naming the word that does not fit.
absl::StatusOr<IsolationPlan> DecodeIsolationPlan(absl::Span<const std::string> words);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_ISOLATE_ISOLATION_PLAN_H_
