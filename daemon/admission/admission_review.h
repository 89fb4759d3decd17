// The AdmissionReview v1 documents of Kubernetes admission webhooks: the request the API server
// POSTs (ParseAdmissionReview) and the answer it expects back (RenderAdmissionResponse).
//
//   ASSIGN_OR_RETURN(AdmissionRequest request, ParseAdmissionReview(http_request.body));
//   AdmissionVerdict verdict = AdmissionVerdict::Refuse("job train-42 has no pinned data version");
//   std::string body = RenderAdmissionResponse(request.uid, verdict);
//
// Only admission.k8s.io/v1 is spoken (the webhook configurations say admissionReviewVersions:
// [v1]); v1beta1 reviews are refused as malformed.
#ifndef REPRO_DAEMON_ADMISSION_ADMISSION_REVIEW_H_
#define REPRO_DAEMON_ADMISSION_ADMISSION_REVIEW_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace repro {

inline constexpr char kAdmissionApiVersion[] = "admission.k8s.io/v1";

// What an AdmissionReview asks about. A value type.
struct AdmissionRequest {
  std::string uid;           // echoed in the response
  std::string group;         // request.kind: "" (core) for Pods, "batch" for Jobs
  std::string version;       // "v1"
  std::string kind;          // "Pod", "Job", ...
  std::string sub_resource;  // "" unless a subresource ("status", "ephemeralcontainers") is changed
  std::string operation;     // "CREATE", "UPDATE", "DELETE" or "CONNECT"
  std::string namespace_name;
  std::string name;  // "" when the object is created with metadata.generateName
  bool dry_run = false;
  // request.object: the object as it would be stored (null for DELETE and CONNECT).
  nlohmann::json object;

  bool Is(absl::string_view want_group, absl::string_view want_kind) const {
    return group == want_group && kind == want_kind;
  }
  // "Pod ml/train-0" ("Pod ml/train-*" for a generateName of "train-"), for messages and logs.
  std::string Describe() const;
};

// Parses a POSTed AdmissionReview. INVALID_ARGUMENT with the reason when the body is not JSON,
// is not an admission.k8s.io/v1 AdmissionReview, or lacks request.uid, request.kind.kind or
// request.operation, or when a CREATE or UPDATE carries no object.
absl::StatusOr<AdmissionRequest> ParseAdmissionReview(absl::string_view body);

// The webhook's answer. A value type.
struct AdmissionVerdict {
  bool allowed = true;
  std::string message;  // why, for a refusal (shown to the user by kubectl)
  // An RFC 6902 JSON Patch (an array of operations) for a mutating webhook; null or empty:
  // nothing to change.
  nlohmann::json patch;

  static AdmissionVerdict Allow() { return AdmissionVerdict(); }
  static AdmissionVerdict Refuse(std::string message) {
    AdmissionVerdict verdict;
    verdict.allowed = false;
    verdict.message = std::move(message);
    return verdict;
  }
};

// The AdmissionReview v1 response for the request `uid`: refusals carry status code 403 and the
// message; a non-empty patch is sent base64-encoded with patchType JSONPatch.
std::string RenderAdmissionResponse(absl::string_view uid, const AdmissionVerdict& verdict);

}  // namespace repro

#endif  // REPRO_DAEMON_ADMISSION_ADMISSION_REVIEW_H_
