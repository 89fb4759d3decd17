#include "daemon/admission/admission_policy.h"

#include "absl/strings/str_cat.h"
#include "daemon/admission/json_util.h"
#include "daemon/admission/labels.h"

namespace repro {
namespace {

// The refusal of an unlabelled object; `where` says where the label goes.
AdmissionVerdict RefuseUnlabelled(const AdmissionRequest& request, absl::string_view where) {
  return AdmissionVerdict::Refuse(absl::StrCat(
      request.Describe(), " has no ", kJobLabel, " label, and namespace ", request.namespace_name,
      " admits only pinned repro jobs (it is labelled ", kEnforceNamespaceLabel,
      "=true). Pin the job (`reproctl pin JOB dataset@version`), then label ", where, " ",
      kJobLabel, "=JOB."));
}

}  // namespace

AdmissionVerdict AdmissionPolicy::Validate(const AdmissionRequest& request) const {
  if (request.operation != "CREATE" || !request.sub_resource.empty()) {
    return AdmissionVerdict::Allow();
  }
  if (request.Is("", "Pod")) return ValidatePod(request);
  if (request.Is("batch", "Job")) return ValidateJob(request);
  return AdmissionVerdict::Allow();
}

AdmissionVerdict AdmissionPolicy::ValidatePod(const AdmissionRequest& request) const {
  const std::string* job = Label(request.object, kJobLabel);
  if (job == nullptr) return RefuseUnlabelled(request, "the Pod");
  return AdmitJob(request.Describe(), request.namespace_name, *job, request.object);
}

AdmissionVerdict AdmissionPolicy::ValidateJob(const AdmissionRequest& request) const {
  const std::string* own = Label(request.object, kJobLabel);
  static const nlohmann::json kNoTemplate = nlohmann::json::object();
  const nlohmann::json* found = Find(request.object, {"spec", "template"});
  const nlohmann::json& pod_template = found != nullptr ? *found : kNoTemplate;
  const std::string* templated = Label(pod_template, kJobLabel);
  if (templated == nullptr) {
    if (own == nullptr) {
      return RefuseUnlabelled(request, "its Pod template (spec.template.metadata.labels)");
    }
    return AdmissionVerdict::Refuse(
        absl::StrCat(request.Describe(), " is labelled ", kJobLabel, "=", *own,
                     " but its Pod template is not, so its Pods would be refused: add ", kJobLabel,
                     ": ", *own, " to spec.template.metadata.labels."));
  }
  if (own != nullptr && *own != *templated) {
    return AdmissionVerdict::Refuse(absl::StrCat(request.Describe(), " is labelled ", kJobLabel,
                                                 "=", *own, " but its Pod template ", kJobLabel,
                                                 "=", *templated, ": they must name one job."));
  }
  return AdmitJob(request.Describe(), request.namespace_name, *templated, pod_template);
}

AdmissionVerdict AdmissionPolicy::AdmitJob(const std::string& what, const std::string& ns,
                                           const std::string& job,
                                           const nlohmann::json& labelled) const {
  if (absl::StatusOr<std::string> mode = ShimMode(labelled); !mode.ok()) {
    return AdmissionVerdict::Refuse(absl::StrCat(what, ": ", mode.status().message()));
  }
  absl::StatusOr<v1::AdmitResponse> admitted = admit_(job);
  if (!admitted.ok()) {
    return AdmissionVerdict::Refuse(absl::StrCat(what, ": cannot admit ", kJobLabel, "=\"", job,
                                                 "\": ", admitted.status().message()));
  }
  if (!admitted->admitted()) {
    return AdmissionVerdict::Refuse(
        absl::StrCat(what, " (", kJobLabel, "=", job, "): ", admitted->reason()));
  }
  if (owner_ == nullptr) return AdmissionVerdict::Allow();
  absl::StatusOr<std::string> owner = owner_(job);
  const std::string pods_identity = absl::StrCat("k8s:", ns);
  if (!owner.ok()) {
    return AdmissionVerdict::Refuse(absl::StrCat(what, ": cannot read the owner of job ", job,
                                                 ": ", owner.status().message()));
  }
  if (*owner != pods_identity) {
    return AdmissionVerdict::Refuse(absl::StrCat(
        what, ": job ", job, " belongs to ", owner->empty() ? "no recorded owner" : *owner,
        ", but the processes of Pods in namespace ", ns, " speak for ", pods_identity,
        " (their shim socket is bound to the namespace), so they could not join it. Pin it for "
        "the namespace: `reproctl pin ", job, " dataset@version --owner ", pods_identity,
        "` (as an admin), or use a job of your own."));
  }
  return AdmissionVerdict::Allow();
}

}  // namespace repro
