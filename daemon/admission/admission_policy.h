// AdmissionPolicy: which Pods and batch/v1 Jobs may be created in a namespace that enforces repro
// (labelled repro.dev/enforce=true) — the judgement behind the webhook's /validate.
//
//   AdmissionPolicy policy([&](absl::string_view job) { return pins.Admit(job); });
//   AdmissionVerdict verdict = policy.Validate(request);
//
// The rules:
// - A Pod is allowed when it is labelled repro.dev/job=JOB and Admit(JOB) admits (JOB is pinned
//   and its pinned data is still there); Admit's reason is the refusal message.
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

// Thread-safe when its Admitter is.
class AdmissionPolicy {
 public:
  explicit AdmissionPolicy(Admitter admit) : admit_(std::move(admit)) {}

  AdmissionVerdict Validate(const AdmissionRequest& request) const;

 private:
  AdmissionVerdict ValidatePod(const AdmissionRequest& request) const;
  AdmissionVerdict ValidateJob(const AdmissionRequest& request) const;
  // Judges `job`, the repro.dev/job label of `what` ("Pod ml/x"), after `labelled` (the object or
  // Pod template carrying the label and the mode annotation) passed the annotation check.
  AdmissionVerdict AdmitJob(const std::string& what, const std::string& job,
                            const nlohmann::json& labelled) const;

  const Admitter admit_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_ADMISSION_ADMISSION_POLICY_H_
