#include "common/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace repro {
namespace {

bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; }

// Quotes a user-supplied string for an error message, cut to a readable length.
std::string Quoted(absl::string_view s) {
  constexpr size_t kShown = 64;
  std::string shown(s.substr(0, kShown));
  for (char& c : shown) {
    if (!absl::ascii_isprint(c)) c = '?';
  }
  return absl::StrCat("\"", shown, s.size() > kShown ? "...\"" : "\"");
}

}  // namespace

absl::Status ValidateName(absl::string_view what, absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", Quoted(name), " is longer than ",
                                                   kMaxNameLength, " characters"));
  }
  if (!absl::ascii_isalnum(name[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", Quoted(name), " must start with a letter or digit"));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", Quoted(name), " may only contain letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFact(absl::string_view key, absl::string_view value) {
  if (key.empty()) return absl::InvalidArgumentError("fact key is empty");
  if (key.size() > kMaxFactKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("fact key ", Quoted(key), " is longer than ", kMaxFactKeyLength, " bytes"));
  }
  for (char c : key) {
    if (!IsNameChar(c) && c != '/' && c != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          "fact key ", Quoted(key), " may only contain letters, digits, '.', '_', '-', '/', ':'"));
    }
  }
  if (value.size() > kMaxFactValueLength) {
    return absl::InvalidArgumentError(absl::StrCat("value of fact ", Quoted(key), " is ",
                                                   value.size(), " bytes; the limit is ",
                                                   kMaxFactValueLength));
  }
  return absl::OkStatus();
}

absl::StatusOr<DatasetVersion> ParseDatasetVersion(absl::string_view ref) {
  std::vector<absl::string_view> parts = absl::StrSplit(ref, '@');
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(ref), " is not of the form DATASET@VERSION"));
  }
  DatasetVersion out{std::string(parts[0]), std::string(parts[1])};
  if (absl::Status s = ValidateDatasetName(out.dataset); !s.ok()) return s;
  if (absl::Status s = ValidateVersionName(out.version); !s.ok()) return s;
  return out;
}

std::string NormalizePackageName(absl::string_view name) {
  std::string out;
  bool in_separator = false;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      if (!in_separator) out.push_back('-');
      in_separator = true;
    } else {
      out.push_back(absl::ascii_tolower(c));
      in_separator = false;
    }
  }
  return out;
}

}  // namespace repro
