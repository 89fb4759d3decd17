// Kubernetes objects and AdmissionReview documents for webhook tests and benchmarks, the
// certificates a test webhook serves with, and a reference JSON Patch implementation (Debian's
// python3-jsonpatch) to apply what the webhook answers.
//
//   nlohmann::json pod = TrainingPod("train-42");
//   std::string body = AdmissionReviewFor(pod, "uid-1").dump();
//   ... POST it to /mutate, parse the answer into `review` ...
//   absl::StatusOr<nlohmann::json> patch = PatchOf(review);
//   absl::StatusOr<nlohmann::json> injected = ApplyJsonPatch(pod, *patch);
#ifndef REPRO_TESTS_TESTUTIL_ADMISSION_REVIEWS_H_
#define REPRO_TESTS_TESTUTIL_ADMISSION_REVIEWS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace repro::testing {

// A Pod in namespace "ml" labelled repro.dev/job=`job` (unlabelled when `job` is empty) with
// what the webhook must keep intact: an init container "fetch-code", a hostPath volume "data"
// mounted at /ml_data, and two containers — "trainer" with env EPOCHS=10 and
// LD_PRELOAD=/usr/lib/libtcmalloc.so.4, and "sidecar" with no env and no mounts.
nlohmann::json TrainingPod(absl::string_view job);
// A batch/v1 Job in "ml" whose Pod template is labelled repro.dev/job=`job` (a TrainingPod's
// metadata and spec); the Job's own metadata is unlabelled.
nlohmann::json TrainingJob(absl::string_view job);

// An admission.k8s.io/v1 AdmissionReview asking about `object` (request.kind, resource,
// namespace and name taken from it).
nlohmann::json AdmissionReviewFor(const nlohmann::json& object, absl::string_view uid,
                                  absl::string_view operation = "CREATE");

// The JSON Patch carried by an AdmissionReview response (base64 in response.patch); [] when it
// carries none. INVALID_ARGUMENT when the patch is not base64 of a JSON array, or patchType is
// not JSONPatch.
absl::StatusOr<nlohmann::json> PatchOf(const nlohmann::json& review);

// Applies `patch` to `document` with python3-jsonpatch (/usr/bin/python3).
// FAILED_PRECONDITION with the reason when the patch does not apply.
absl::StatusOr<nlohmann::json> ApplyJsonPatch(const nlohmann::json& document,
                                              const nlohmann::json& patch);

// A CA and a server certificate it signed for DNS:localhost and IP:127.0.0.1, made with the
// openssl command line in `dir`: ca.crt, tls.crt, tls.key.
struct WebhookCertificates {
  std::string ca;
  std::string cert;
  std::string key;
};
absl::StatusOr<WebhookCertificates> MakeWebhookCertificates(const std::string& dir);

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_ADMISSION_REVIEWS_H_
