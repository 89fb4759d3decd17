#include "common/pinned_env.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace repro {

std::string PinnedEnvValue(const v1::Pin& pin) {
  std::vector<std::string> parts;
  for (const v1::PinnedVersion& v : pin.versions()) {
    if (absl::StrContains(v.path(), ':')) continue;
    parts.push_back(absl::StrCat(v.dataset(), "@", v.version(), "=", v.path()));
  }
  return absl::StrJoin(parts, ":");
}

}  // namespace repro
