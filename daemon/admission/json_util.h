// JSON for the admission webhook, over nlohmann::json: parsing that bounds nesting and reports
// errors as absl::Status instead of throwing, lookups that return null instead of throwing, and
// dumping that cannot fail.
//
//   ASSIGN_OR_RETURN(nlohmann::json review, ParseJson(request.body));
//   const std::string* uid = FindString(review, {"request", "uid"});
//   if (uid == nullptr) return absl::InvalidArgumentError("request.uid is missing");
//   std::string text = DumpJson(answer);
#ifndef REPRO_DAEMON_ADMISSION_JSON_UTIL_H_
#define REPRO_DAEMON_ADMISSION_JSON_UTIL_H_

#include <initializer_list>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace repro {

// Deep enough for any Pod or Job with its managedFields (about 20 levels); shallow enough that a
// hostile document costs no more than its bytes.
inline constexpr int kMaxJsonDepth = 64;

// Parses one JSON document (RFC 8259, UTF-8, nothing but whitespace after it). INVALID_ARGUMENT
// with the parser's reason, or when arrays and objects nest deeper than `max_depth`.
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, int max_depth = kMaxJsonDepth);

// The value at `path` (object member names, outermost first) under `value`; null when a step is
// missing or is not an object. An empty path gives `value` itself.
const nlohmann::json* Find(const nlohmann::json& value,
                           std::initializer_list<absl::string_view> path);

// Find(), but only a string: null when the value is missing or of another type.
const std::string* FindString(const nlohmann::json& value,
                              std::initializer_list<absl::string_view> path);

// Compact JSON. Invalid UTF-8 in strings (which ParseJson never produces, but a flag might) is
// replaced by U+FFFD instead of throwing.
std::string DumpJson(const nlohmann::json& value);

}  // namespace repro

#endif  // REPRO_DAEMON_ADMISSION_JSON_UTIL_H_
