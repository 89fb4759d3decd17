// run: pin the job if asked, then replace reproctl with the command, under the shim.
//
//   reproctl run --job train-42 --pin user_ctr@v1 --seed 7 -- python train.py --lr 0.1
//
// The command gets LD_PRELOAD=libreproshim.so and REPRO_JOB, REPRO_MODE, REPRO_SEED,
// PYTHONHASHSEED, REPRO_SHIM_SOCKET (reprod's, unless already set) and REPRO_PINNED (the pinned
// version directories, which let the shim hold on to the pin while reprod is unreachable).
//
// With --isolate, reproctl re-executes itself (kIsolatedExecVerb) with the isolation plan: the
// fresh single-threaded image enters the private mount namespace (isolate/isolate.h), which a
// process running gRPC's threads cannot, and then becomes the command, keeping reproctl's pid.
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/exec_command.h"
#include "client/cli/format.h"
#include "client/cli/isolate/isolation_plan.h"
#include "client/cli/requests.h"
#include "client/cli/verbs.h"
#include "common/names.h"
#include "common/pinned_env.h"

extern char** environ;

namespace repro::cli {
namespace {

constexpr char kShimName[] = "libreproshim.so";

bool IsFile(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

// libreproshim.so: $REPRO_SHIM_LIB, else beside this reproctl (build/bin -> build/lib), else the
// install locations. Absolute, because the command may change its working directory.
absl::StatusOr<std::string> FindShim() {
  if (const char* given = getenv("REPRO_SHIM_LIB"); given != nullptr && given[0] != '\0') {
    if (given[0] == '/' && IsFile(given)) return std::string(given);
    return absl::NotFoundError(absl::StrCat("REPRO_SHIM_LIB=", given,
                                            " is not a readable absolute path"));
  }
  std::vector<std::string> candidates;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string dir(self, n);
    dir = dir.substr(0, dir.rfind('/'));
    candidates.push_back(absl::StrCat(dir, "/../lib/", kShimName));
    candidates.push_back(absl::StrCat(dir, "/", kShimName));
  }
  candidates.push_back(absl::StrCat("/usr/local/lib/repro/", kShimName));
  candidates.push_back(absl::StrCat("/usr/lib/repro/", kShimName));
  for (const std::string& path : candidates) {
    if (IsFile(path)) {
      char real[4096];
      return realpath(path.c_str(), real) != nullptr ? std::string(real) : path;
    }
  }
  return absl::NotFoundError(absl::StrCat("cannot find ", kShimName, " (looked in ",
                                          absl::StrJoin(candidates, ", "),
                                          "); set REPRO_SHIM_LIB"));
}

// The process environment with `set` applied and `unset` removed, as "K=V" strings.
std::vector<std::string> CommandEnvironment(const std::map<std::string, std::string>& set,
                                            const std::vector<std::string>& unset) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    std::string key(entry.substr(0, entry.find('=')));
    if (set.count(key) > 0 || std::find(unset.begin(), unset.end(), key) != unset.end()) continue;
    out.emplace_back(entry);
  }
  for (const auto& [key, value] : set) out.push_back(absl::StrCat(key, "=", value));
  return out;
}

// LD_PRELOAD with the shim first, once.
std::string Preload(const std::string& shim) {
  std::vector<std::string> libs = {shim};
  if (const char* current = getenv("LD_PRELOAD"); current != nullptr) {
    for (absl::string_view lib : absl::StrSplit(current, absl::ByAnyChar(": "), absl::SkipEmpty())) {
      if (lib != shim) libs.emplace_back(lib);
    }
  }
  return absl::StrJoin(libs, ":");
}

// The job's pin: made (or confirmed) from --pin and --seed, else the existing one.
absl::StatusOr<v1::Pin> JobPin(Invocation& inv, const std::string& job) {
  std::vector<std::string> refs;
  for (const std::string& value : inv.args().Values("pin")) {
    for (absl::string_view ref : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      refs.emplace_back(ref);
    }
  }
  std::optional<std::string> seed = inv.args().Value("seed");
  if (refs.empty()) {
    if (seed.has_value()) {
      return inv.UsageError("--seed goes with --pin (the seed of a pinned job is fixed)");
    }
    v1::GetPinRequest request;
    request.set_job(job);
    absl::StatusOr<v1::GetPinResponse> response = inv.client().Call(kGetPin, request);
    if (absl::IsNotFound(response.status())) {
      return TagRpc(absl::NotFoundError(absl::StrCat(
                        "job ", job, " has no pin; give --pin DATASET@VERSION or run `reproctl pin ",
                        job, " DATASET@VERSION` first")),
                    kGetPin.name);
    }
    RETURN_IF_ERROR(response.status());
    return response->pin();
  }
  absl::StatusOr<v1::PinRequest> request = BuildPinRequest({.job = job, .refs = refs, .seed = seed});
  if (!request.ok()) return inv.UsageError(request.status().message());
  ASSIGN_OR_RETURN(v1::PinResponse response, inv.client().Call(kPin, *request));
  return response.pin();
}

// The command line that re-executes reproctl as the isolating half of `run --isolate` for
// `command` with environment `env`, printing `announce` once isolated: the plan made from `pin`
// and every registered version.
absl::StatusOr<std::vector<std::string>> IsolatedExecArgv(Invocation& inv, const v1::Pin& pin,
                                                          bool enforce,
                                                          const std::vector<std::string>& env,
                                                          const std::vector<std::string>& command,
                                                          const std::string& announce) {
  ASSIGN_OR_RETURN(v1::ListVersionsResponse versions,
                   inv.client().Call(kListVersions, v1::ListVersionsRequest()));
  const std::vector<v1::VersionInfo> registered(versions.versions().begin(),
                                                versions.versions().end());
  ASSIGN_OR_RETURN(IsolationPlan plan, PlanIsolation(pin, registered, enforce));
  plan.env = env;
  plan.command = command;
  plan.announce = announce;
  std::vector<std::string> argv = {"/proc/self/exe", kIsolatedExecVerb};
  for (std::string& word : EncodeIsolationPlan(plan)) argv.push_back(std::move(word));
  return argv;
}

std::string Describe(const v1::Pin& pin) {
  std::vector<std::string> versions;
  for (const v1::PinnedVersion& v : pin.versions()) {
    versions.push_back(absl::StrCat(v.dataset(), "@", v.version()));
  }
  return absl::StrCat(absl::StrJoin(versions, ", "), ", seed ", pin.seed());
}

}  // namespace

absl::StatusOr<ExitCode> RunRun(Invocation& inv) {
  std::optional<std::string> job = inv.args().Value("job");
  if (!job.has_value()) return inv.UsageError("--job JOB is required");
  RETURN_IF_ERROR(ValidateJobId(*job));
  const std::string mode = inv.args().Value("mode").value_or("record");
  if (mode != "record" && mode != "enforce") {
    return inv.UsageError(absl::StrCat("--mode is record or enforce, not \"", OneLine(mode), "\""));
  }
  ASSIGN_OR_RETURN(v1::Pin pin, JobPin(inv, *job));
  ASSIGN_OR_RETURN(std::string shim, FindShim());

  std::map<std::string, std::string> set = {
      {"LD_PRELOAD", Preload(shim)},
      {"REPRO_JOB", *job},
      {"REPRO_MODE", mode},
      {"REPRO_SEED", std::to_string(pin.seed())},
      {"PYTHONHASHSEED", std::to_string(pin.seed() % (uint64_t{1} << 32))},
      {kPinnedEnvVariable, PinnedEnvValue(pin)},
  };
  const char* socket = getenv("REPRO_SHIM_SOCKET");
  if (socket == nullptr || socket[0] == '\0') {
    absl::StatusOr<v1::NodeInfo> node = inv.client().Call(kGetNodeInfo, v1::GetNodeInfoRequest());
    if (node.ok() && !node->shim_socket().empty()) set["REPRO_SHIM_SOCKET"] = node->shim_socket();
  }
  // A rank seed in our environment belongs to another process; the shim sets the command's.
  std::vector<std::string> env = CommandEnvironment(set, {"REPRO_RANK_SEED"});

  const std::vector<std::string>& command = inv.command_line();
  const bool isolate = inv.args().Bool("isolate");
  const std::string announce =
      absl::StrCat("reproctl: running ", QuoteIfNeeded(command[0]), " as job ", *job, " (",
                   Describe(pin), ", ", mode, " mode", isolate ? ", isolated" : "", ")");
  inv.output().Flush();
  if (!isolate) {
    inv.output().err() << announce << '\n';
    inv.output().err().flush();
    return static_cast<ExitCode>(ExecCommand(command, env, inv.output().err()));
  }
  // The isolating half announces the command once the view is built, and runs with reproctl's
  // own environment (not under the shim); the command's travels in the plan.
  ASSIGN_OR_RETURN(std::vector<std::string> isolated,
                   IsolatedExecArgv(inv, pin, mode == "enforce", env, command, announce));
  return static_cast<ExitCode>(
      ExecCommand(isolated, CommandEnvironment({}, {}), inv.output().err()));
}

}  // namespace repro::cli
