#include "daemon/admission/admission_review.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/admission/json_util.h"

namespace repro {
namespace {

// The string at request.<field>; "" when absent. INVALID_ARGUMENT when present but not a string
// (or, for a required field, absent or empty).
absl::StatusOr<std::string> RequestString(const nlohmann::json& request,
                                          std::initializer_list<absl::string_view> path,
                                          absl::string_view name, bool required) {
  const nlohmann::json* value = Find(request, path);
  if (value == nullptr || value->is_null()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat(name, " is missing"));
    return std::string();
  }
  if (!value->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is not a string"));
  }
  if (required && value->get_ref<const std::string&>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is empty"));
  }
  return value->get<std::string>();
}

}  // namespace

std::string AdmissionRequest::Describe() const {
  std::string who = name;
  if (who.empty()) {
    const std::string* generate_name = FindString(object, {"metadata", "generateName"});
    who = generate_name != nullptr ? absl::StrCat(*generate_name, "*") : "(unnamed)";
  }
  return namespace_name.empty() ? absl::StrCat(kind, " ", who)
                                : absl::StrCat(kind, " ", namespace_name, "/", who);
}

absl::StatusOr<AdmissionRequest> ParseAdmissionReview(absl::string_view body) {
  ASSIGN_OR_RETURN(nlohmann::json review, ParseJson(body));
  if (!review.is_object()) return absl::InvalidArgumentError("the review is not a JSON object");
  const std::string* api_version = FindString(review, {"apiVersion"});
  if (api_version == nullptr || *api_version != kAdmissionApiVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("apiVersion is ",
                     api_version != nullptr ? absl::StrCat("\"", *api_version, "\"") : "missing",
                     "; this webhook speaks ", kAdmissionApiVersion,
                     " only (set admissionReviewVersions: [v1] in the webhook configuration)"));
  }
  const std::string* kind = FindString(review, {"kind"});
  if (kind == nullptr || *kind != "AdmissionReview") {
    return absl::InvalidArgumentError("kind is not AdmissionReview");
  }
  nlohmann::json* request = nullptr;
  if (auto it = review.find("request"); it != review.end() && it->is_object()) request = &*it;
  if (request == nullptr) return absl::InvalidArgumentError("request is missing or not an object");

  AdmissionRequest out;
  ASSIGN_OR_RETURN(out.uid, RequestString(*request, {"uid"}, "request.uid", true));
  ASSIGN_OR_RETURN(out.group,
                   RequestString(*request, {"kind", "group"}, "request.kind.group", false));
  ASSIGN_OR_RETURN(out.version,
                   RequestString(*request, {"kind", "version"}, "request.kind.version", false));
  ASSIGN_OR_RETURN(out.kind, RequestString(*request, {"kind", "kind"}, "request.kind.kind", true));
  ASSIGN_OR_RETURN(out.sub_resource,
                   RequestString(*request, {"subResource"}, "request.subResource", false));
  ASSIGN_OR_RETURN(out.operation,
                   RequestString(*request, {"operation"}, "request.operation", true));
  ASSIGN_OR_RETURN(out.namespace_name,
                   RequestString(*request, {"namespace"}, "request.namespace", false));
  ASSIGN_OR_RETURN(out.name, RequestString(*request, {"name"}, "request.name", false));
  const nlohmann::json* dry_run = Find(*request, {"dryRun"});
  out.dry_run = dry_run != nullptr && dry_run->is_boolean() && dry_run->get<bool>();
  if (auto it = request->find("object"); it != request->end()) out.object = std::move(*it);
  if ((out.operation == "CREATE" || out.operation == "UPDATE") && !out.object.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request.object of a ", out.operation, " is not an object"));
  }
  return out;
}

std::string RenderAdmissionResponse(absl::string_view uid, const AdmissionVerdict& verdict) {
  nlohmann::json response = {{"uid", std::string(uid)}, {"allowed", verdict.allowed}};
  if (!verdict.allowed) {
    response["status"] = {{"code", 403}, {"reason", "Forbidden"}, {"message", verdict.message}};
  }
  if (verdict.patch.is_array() && !verdict.patch.empty()) {
    response["patchType"] = "JSONPatch";
    response["patch"] = absl::Base64Escape(DumpJson(verdict.patch));
  }
  return DumpJson({{"apiVersion", kAdmissionApiVersion},
                   {"kind", "AdmissionReview"},
                   {"response", std::move(response)}});
}

}  // namespace repro
