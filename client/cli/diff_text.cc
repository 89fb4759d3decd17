#include "client/cli/diff_text.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/format.h"

namespace repro::cli {
namespace {

constexpr size_t kHexDigestLength = 64;

// The heading of a group in text.
std::string Title(absl::string_view group) {
  if (group == "data") return "data versions";
  if (group == "files") return "files read";
  if (group == "python_packages") return "python packages";
  if (group == "facts") return "custom facts";
  return std::string(group);
}

bool IsLowerHex(char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); }

// "  ~ key: a -> b", "  + key: b", "  - key: a", indented by `indent`.
std::string Line(const v1::Difference& d, absl::string_view indent) {
  std::string value;
  if (d.change() == "added") {
    value = absl::StrCat("+ ", d.key(), ": ", d.b());
  } else if (d.change() == "removed") {
    value = absl::StrCat("- ", d.key(), ": ", d.a());
  } else {
    value = absl::StrCat("~ ", d.key(), ": ", d.a(), " -> ", d.b());
  }
  return absl::StrCat(indent, ShortenDigests(OneLine(value)), "\n");
}

}  // namespace

std::string ShortenDigests(absl::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t run = 0;
    while (i + run < text.size() && IsLowerHex(text[i + run])) ++run;
    bool word_start = i == 0 || !absl::ascii_isalnum(text[i - 1]);
    bool word_end = i + run == text.size() || !absl::ascii_isalnum(text[i + run]);
    if (run == kHexDigestLength && word_start && word_end) {
      absl::StrAppend(&out, text.substr(i, kShortDigestLength));
      i += run;
    } else if (run > 0) {
      absl::StrAppend(&out, text.substr(i, run));
      i += run;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::string FormatJobDiff(const v1::JobDiff& diff) {
  const std::string& a = diff.job_a();
  const std::string& b = diff.job_b();
  std::vector<std::string> compared;
  for (const v1::DiffGroup& group : diff.groups()) compared.push_back(Title(group.name()));
  if (diff.same()) {
    return absl::StrCat(a, " and ", b, " match (compared: ", absl::StrJoin(compared, ", "), ")\n");
  }
  std::string out = absl::StrCat(a, " and ", b, " differ (- only in ", a, ", + only in ", b, ", ~ ",
                                 a, " -> ", b, ")\n");
  for (const v1::DiffGroup& group : diff.groups()) {
    if (group.differences().empty()) continue;
    absl::StrAppend(&out, "\n", Title(group.name()), "\n");
    for (const v1::Difference& d : group.differences()) {
      absl::StrAppend(&out, Line(d, "  "));
      for (const v1::Difference& detail : d.details()) {
        absl::StrAppend(&out, Line(detail, "      "));
      }
      if (d.more_details() > 0) {
        absl::StrAppend(&out, "      ... and ", d.more_details(), " more\n");
      }
    }
  }
  return out;
}

}  // namespace repro::cli
