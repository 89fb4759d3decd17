#include "daemon/admission/json_util.h"

#include "absl/strings/str_cat.h"

namespace repro {
namespace {

// How deep arrays and objects nest in `text`, counting only brackets outside strings; stops
// counting once past `limit`. Linear, so the parser never sees a pathological document.
int NestingDepth(absl::string_view text, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, int max_depth) {
  if (NestingDepth(text, max_depth) > max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON nests deeper than ", max_depth, " levels"));
  }
  // nlohmann reports the position and reason of a syntax error only through its exception; this
  // is the one place that catches it.
  try {
    return nlohmann::json::parse(text.data(), text.data() + text.size());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", e.what()));
  }
}

const nlohmann::json* Find(const nlohmann::json& value,
                           std::initializer_list<absl::string_view> path) {
  const nlohmann::json* current = &value;
  for (absl::string_view key : path) {
    if (!current->is_object()) return nullptr;
    auto it = current->find(std::string(key));
    if (it == current->end()) return nullptr;
    current = &*it;
  }
  return current;
}

const std::string* FindString(const nlohmann::json& value,
                              std::initializer_list<absl::string_view> path) {
  const nlohmann::json* found = Find(value, path);
  return found != nullptr && found->is_string() ? found->get_ptr<const std::string*>() : nullptr;
}

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace repro
