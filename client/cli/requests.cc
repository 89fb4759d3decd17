#include "client/cli/requests.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace repro::cli {

absl::StatusOr<v1::Fact> ParseFact(absl::string_view arg) {
  size_t eq = arg.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", arg, "\" is not KEY=VALUE"));
  }
  v1::Fact fact;
  fact.set_key(std::string(arg.substr(0, eq)));
  fact.set_value(std::string(arg.substr(eq + 1)));
  RETURN_IF_ERROR(ValidateFact(fact.key(), fact.value()));
  return fact;
}

absl::StatusOr<std::vector<v1::Fact>> ParseFacts(absl::Span<const std::string> args) {
  std::vector<v1::Fact> facts;
  std::set<std::string, std::less<>> keys;
  for (const std::string& arg : args) {
    ASSIGN_OR_RETURN(v1::Fact fact, ParseFact(arg));
    if (!keys.insert(fact.key()).second) {
      return absl::InvalidArgumentError(absl::StrCat("fact ", fact.key(), " given twice"));
    }
    facts.push_back(std::move(fact));
  }
  return facts;
}

absl::StatusOr<uint64_t> ParseUint64Flag(absl::string_view flag, absl::string_view text) {
  uint64_t value = 0;
  // SimpleAtoi takes "+5" and " 5"; a seed is written as plain digits.
  bool digits = !text.empty();
  for (char c : text) digits = digits && absl::ascii_isdigit(c);
  if (!digits || !absl::SimpleAtoi(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " takes a number from 0 to 18446744073709551615, not \"", text, "\""));
  }
  return value;
}

absl::StatusOr<v1::PinRequest> BuildPinRequest(const PinSpec& spec) {
  RETURN_IF_ERROR(ValidateJobId(spec.job));
  v1::PinRequest request;
  request.set_job(spec.job);
  if (spec.owner.has_value()) request.set_owner(*spec.owner);
  if (spec.like.has_value()) {
    if (!spec.refs.empty() || spec.seed.has_value()) {
      return absl::InvalidArgumentError(
          "--like copies the versions and the seed of another job; give neither with it");
    }
    RETURN_IF_ERROR(ValidateJobId(*spec.like));
    request.set_like_job(*spec.like);
    return request;
  }
  if (spec.refs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no data versions to pin ", spec.job,
                                                   " to (DATASET@VERSION... or --like JOB)"));
  }
  std::set<std::string, std::less<>> datasets;
  for (const std::string& ref : spec.refs) {
    ASSIGN_OR_RETURN(DatasetVersion parsed, ParseDatasetVersion(ref));
    if (!datasets.insert(parsed.dataset).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset ", parsed.dataset, " given twice; a job pins one version of each"));
    }
    v1::VersionRef* version = request.add_versions();
    version->set_dataset(std::move(parsed.dataset));
    version->set_version(std::move(parsed.version));
  }
  if (spec.seed.has_value()) {
    ASSIGN_OR_RETURN(uint64_t seed, ParseUint64Flag("seed", *spec.seed));
    request.set_seed(seed);
  }
  return request;
}

absl::StatusOr<std::string> AbsolutePath(absl::string_view path, absl::string_view cwd) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  std::vector<absl::string_view> parts;
  auto add = [&parts](absl::string_view p) {
    for (absl::string_view part : absl::StrSplit(p, '/', absl::SkipEmpty())) {
      if (part != ".") parts.push_back(part);
    }
  };
  if (path[0] != '/') add(cwd);
  add(path);
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

}  // namespace repro::cli
