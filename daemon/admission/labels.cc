#include "daemon/admission/labels.h"

#include "absl/strings/str_cat.h"
#include "daemon/admission/json_util.h"

namespace repro {

const std::string* Label(const nlohmann::json& object, absl::string_view key) {
  return FindString(object, {"metadata", "labels", key});
}

const std::string* Annotation(const nlohmann::json& object, absl::string_view key) {
  return FindString(object, {"metadata", "annotations", key});
}

absl::StatusOr<std::string> ShimMode(const nlohmann::json& object) {
  const std::string* mode = Annotation(object, kModeAnnotation);
  if (mode == nullptr) return std::string("record");
  if (*mode != "record" && *mode != "enforce") {
    return absl::InvalidArgumentError(absl::StrCat("annotation ", kModeAnnotation, "=\"", *mode,
                                                   "\" must be \"record\" or \"enforce\""));
  }
  return *mode;
}

}  // namespace repro
