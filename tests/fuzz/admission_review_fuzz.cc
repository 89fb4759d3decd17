// Fuzzes what the admission webhook does with a POSTed AdmissionReview (daemon/admission): parsing,
// the /validate policy, the answer, and the /mutate JSON Patch, which must apply to the Pod it was
// made for and leave nothing to patch on a second look (the webhook is reinvoked by Kubernetes).
#include <exception>
#include <string>

#include "daemon/admission/admission_policy.h"
#include "daemon/admission/admission_review.h"
#include "daemon/admission/json_util.h"
#include "daemon/admission/labels.h"
#include "daemon/admission/shim_injector.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using repro::fuzz::FuzzCheck;

// Admits the job "train-42" only, so both the admitted and the refused paths run.
absl::StatusOr<repro::v1::AdmitResponse> AdmitOne(absl::string_view job) {
  repro::v1::AdmitResponse response;
  response.set_admitted(job == "train-42");
  if (!response.admitted()) response.set_reason("job is not pinned");
  return response;
}

// The pin the injector hands the Pod: ds@v1 under /ml/ds, with v2 registered beside it, so that
// hostPath volumes through an alias (/ml/ds/latest) are rewritten too.
const repro::PinnedData& Pinned() {
  static const repro::PinnedData* pinned = [] {
    auto* p = new repro::PinnedData;
    repro::v1::PinnedVersion* v = p->pin.add_versions();
    v->set_dataset("ds");
    v->set_version("v1");
    v->set_root("/ml/ds");
    v->set_path("/ml/ds/v1");
    repro::v1::VersionInfo& other = p->registered.emplace_back();
    other.set_dataset("ds");
    other.set_version("v2");
    other.set_root("/ml/ds");
    other.set_path("/ml/ds/v2");
    return p;
  }();
  return *pinned;
}

void CheckPatch(const repro::ShimInjector& injector, const nlohmann::json& pod) {
  absl::StatusOr<nlohmann::json> patch = injector.Patch(pod, Pinned());
  if (!patch.ok()) return;
  FuzzCheck(patch->is_array(), "a JSON Patch that is not an array");
  nlohmann::json patched;
  try {
    patched = pod.patch(*patch);
  } catch (const std::exception& e) {
    FuzzCheck(false, "the shim injector's patch does not apply to its Pod");
  }
  absl::StatusOr<nlohmann::json> again = injector.Patch(patched, Pinned());
  FuzzCheck(again.ok(), "an injected Pod is refused by the injector");
  FuzzCheck(again->empty(), "an injected Pod is patched again (not idempotent)");
}

}  // namespace

REPRO_FUZZ_TARGET(admission_review) {
  static const repro::ShimInjector* injector =
      new repro::ShimInjector(*repro::ShimInjector::Create({.csi_driver = "shim.repro.dev"}));
  static const repro::AdmissionPolicy* policy = new repro::AdmissionPolicy(&AdmitOne);

  absl::StatusOr<repro::AdmissionRequest> request =
      repro::ParseAdmissionReview(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!request.ok()) return 0;
  repro::AdmissionVerdict verdict = policy->Validate(*request);
  FuzzCheck(verdict.allowed || !verdict.message.empty(), "a refusal without a message");
  std::string answer = repro::RenderAdmissionResponse(request->uid, verdict);
  absl::StatusOr<nlohmann::json> parsed = repro::ParseJson(answer);
  FuzzCheck(parsed.ok(), "the webhook's answer is not JSON");
  const std::string* uid = repro::FindString(*parsed, {"response", "uid"});
  FuzzCheck(uid != nullptr && *uid == request->uid, "the answer does not echo the uid");
  (void)request->Describe();
  if (request->Is("", "Pod") && repro::Label(request->object, repro::kJobLabel) != nullptr) {
    CheckPatch(*injector, request->object);
  }
  return 0;
}
