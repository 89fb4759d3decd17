// AdmissionPolicy: which Pods and batch/v1 Jobs may be created in a namespace that enforces repro
// (labelled repro.dev/enforce=true) — the judgement behind the webhook's /validate.
//
//   AdmissionPolicy policy([&](absl::string_view job) { return pins.Admit(job); });
//   AdmissionVerdict verdict = policy.Validate(request);
//
// The rules:
// - A Pod is allowed when it is labelled repro.dev/job=JOB and Admit(JOB) admits (JOB is pinned
//   and its pinned data is still there); Admit's reason is the refusal message. With an owner
//   lookup, JOB must also belong to the Pod's namespace (owner k8s:<namespace>): the shim socket
//   a Pod gets (daemon/csi/) speaks for its namespace, so a Pod of another owner's job could not
//   say HELLO; it is refused here, with the command that pins the job for the namespace.
// - A Job is judged by the label on its Pod template (spec.template.metadata.labels), the one its
//   Pods inherit and are judged by again when the Job controller creates them. A label on the
//   Job's own metadata is optional but must name the same job; a Job labelled only there is
//   refused, since its Pods would be.
// - An unlabelled Pod or Job is refused with a message naming the label and the commands that fix
//   it. A repro.dev/mode annotation other than record or enforce is refused.
// - Only CREATE is judged. UPDATE, DELETE and CONNECT, subresources and other kinds are allowed:
//   judging them could wedge running workloads (a Pod whose pin went away could never have its
//   finalizers removed), and the webhook configuration does not send them anyway.
#ifndef REPRO_DAEMON_ADMISSION_ADMISSION_POLICY_H_
#define REPRO_DAEMON_ADMISSION_ADMISSION_POLICY_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/admission/admission_review.h"
#include "repro/v1/repro.pb.h"

namespace repro {

// PinRegistry::Admit's contract: a refusal is a response with a reason; an error is an invalid
// job id (or a failure that leaves the job unjudged, which the policy also refuses).
using Admitter = std::function<absl::StatusOr<v1::AdmitResponse>(absl::string_view job)>;
// The owner of a pinned job (v1::Pin.owner): "k8s:ml", "uid:1000", "" when none was recorded.
using OwnerLookup = std::function<absl::StatusOr<std::string>(absl::string_view job)>;

// Thread-safe when its Admitter and OwnerLookup are.
class AdmissionPolicy {
 public:
  // `owner` may be null: owners are not checked.
  explicit AdmissionPolicy(Admitter admit, OwnerLookup owner = nullptr)
      : admit_(std::move(admit)), owner_(std::move(owner)) {}

  AdmissionVerdict Validate(const AdmissionRequest& request) const;

 private:
  AdmissionVerdict ValidatePod(const AdmissionRequest& request) const;
  AdmissionVerdict ValidateJob(const AdmissionRequest& request) const;
  // Judges `job`, the repro.dev/job label of `what` ("Pod ml/x") in namespace `ns`, after
  // `labelled` (the object or Pod template carrying the label and the mode annotation) passed the
  // annotation check.
  AdmissionVerdict AdmitJob(const std::string& what, const std::string& ns,
                            const std::string& job, const nlohmann::json& labelled) const;

  const Admitter admit_;
  const OwnerLookup owner_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_ADMISSION_ADMISSION_POLICY_H_
