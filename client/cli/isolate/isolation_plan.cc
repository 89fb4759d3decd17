#include "client/cli/isolate/isolation_plan.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace repro::cli {
namespace {

// The last component of `path` when `path` is `root` + "/" + that component; else "".
std::string NameInRoot(const std::string& root, const std::string& path) {
  if (root.empty() || path.size() <= root.size() + 1 || !absl::StartsWith(path, root) ||
      path[root.size()] != '/') {
    return "";
  }
  std::string name = path.substr(root.size() + 1);
  if (name == "." || name == ".." || absl::StrContains(name, '/')) return "";
  return name;
}

bool IsName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && !absl::StrContains(name, '/') &&
         !absl::StrContains(name, '\0');
}

// Reads words[*at] as a count that fits in the words left.
absl::StatusOr<size_t> Count(absl::Span<const std::string> words, size_t* at) {
  size_t n = 0;
  if (*at >= words.size() || !absl::SimpleAtoi(words[*at], &n) || n > words.size() - *at - 1) {
    return absl::InvalidArgumentError(absl::StrCat("isolation plan: bad count at word ", *at));
  }
  ++*at;
  return n;
}

}  // namespace

absl::StatusOr<IsolationPlan> PlanIsolation(const v1::Pin& pin,
                                            absl::Span<const v1::VersionInfo> registered,
                                            bool enforce) {
  IsolationPlan plan;
  plan.enforce = enforce;
  std::map<std::string, IsolatedRoot> roots;
  std::map<std::string, std::string> dataset_of_root;
  for (const v1::PinnedVersion& v : pin.versions()) {
    std::string name = NameInRoot(v.root(), v.path());
    if (v.root().empty() || v.root()[0] != '/' || name.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot isolate ", v.dataset(), "@", v.version(), ": its path \"", v.path(),
                       "\" is not a directory directly under its root \"", v.root(), "\""));
    }
    auto [it, added] = dataset_of_root.emplace(v.root(), v.dataset());
    if (!added) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot isolate: datasets ", it->second, " and ", v.dataset(),
                       " share the root ", v.root(), ", so its aliases would be ambiguous"));
    }
    roots[v.root()] = IsolatedRoot{.root = v.root(), .pinned = name, .others = {}};
  }
  for (const v1::VersionInfo& v : registered) {
    auto it = roots.find(v.root());
    if (it == roots.end()) continue;
    std::string name = NameInRoot(v.root(), v.path());
    if (name.empty() || name == it->second.pinned) continue;
    std::vector<std::string>& others = it->second.others;
    if (std::find(others.begin(), others.end(), name) == others.end()) others.push_back(name);
  }
  for (auto& [root, isolated] : roots) {
    std::sort(isolated.others.begin(), isolated.others.end());
    plan.roots.push_back(std::move(isolated));
  }
  return plan;
}

std::vector<std::string> EncodeIsolationPlan(const IsolationPlan& plan) {
  std::vector<std::string> words = {plan.enforce ? "enforce" : "record", plan.announce};
  for (const IsolatedRoot& r : plan.roots) {
    words.insert(words.end(), {"--root", r.root, r.pinned, std::to_string(r.others.size())});
    words.insert(words.end(), r.others.begin(), r.others.end());
  }
  words.insert(words.end(), {"--env", std::to_string(plan.env.size())});
  words.insert(words.end(), plan.env.begin(), plan.env.end());
  words.push_back("--");
  words.insert(words.end(), plan.command.begin(), plan.command.end());
  return words;
}

absl::StatusOr<IsolationPlan> DecodeIsolationPlan(absl::Span<const std::string> words) {
  IsolationPlan plan;
  if (words.empty() || (words[0] != "record" && words[0] != "enforce")) {
    return absl::InvalidArgumentError("isolation plan: the first word is record or enforce");
  }
  plan.enforce = words[0] == "enforce";
  if (words.size() < 2) return absl::InvalidArgumentError("isolation plan: no announcement");
  plan.announce = words[1];
  size_t at = 2;
  while (at < words.size() && words[at] == "--root") {
    if (at + 3 >= words.size()) return absl::InvalidArgumentError("isolation plan: short --root");
    IsolatedRoot r{.root = words[at + 1], .pinned = words[at + 2], .others = {}};
    at += 3;
    absl::StatusOr<size_t> n = Count(words, &at);
    if (!n.ok()) return n.status();
    r.others.assign(words.begin() + at, words.begin() + at + *n);
    at += *n;
    if (r.root.empty() || r.root[0] != '/' || !IsName(r.pinned) ||
        !std::all_of(r.others.begin(), r.others.end(), IsName)) {
      return absl::InvalidArgumentError(absl::StrCat("isolation plan: bad root ", r.root));
    }
    plan.roots.push_back(std::move(r));
  }
  if (at >= words.size() || words[at] != "--env") {
    return absl::InvalidArgumentError(absl::StrCat("isolation plan: --env expected at word ", at));
  }
  ++at;
  absl::StatusOr<size_t> n = Count(words, &at);
  if (!n.ok()) return n.status();
  plan.env.assign(words.begin() + at, words.begin() + at + *n);
  at += *n;
  if (at >= words.size() || words[at] != "--" || at + 1 == words.size()) {
    return absl::InvalidArgumentError("isolation plan: -- COMMAND expected at the end");
  }
  plan.command.assign(words.begin() + at + 1, words.end());
  return plan;
}

}  // namespace repro::cli
