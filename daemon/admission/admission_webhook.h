// AdmissionWebhook: reprod's Kubernetes admission webhook, the HTTP handlers the API server calls
// (served by an HttpServer over TLS): POST /validate judges Pods and Jobs (AdmissionPolicy), POST
// /mutate injects the shim into labelled Pods (ShimInjector), GET /healthz answers probes.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<AdmissionWebhook> webhook,
//                    AdmissionWebhook::Create({.admit = [&](absl::string_view job) {
//                                                return pins.Admit(job);
//                                              },
//                                              .pinned = [&](absl::string_view job) {
//                                                return PinnedDataOf(job);
//                                              },
//                                              .csi_driver = "shim.repro.dev",
//                                              .metrics = &metrics}));
//   HttpServerOptions options;  // name "webhook", TLS files, listen address
//   options.max_body_bytes = AdmissionWebhook::kMaxReviewBytes;
//   ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> server,
//                    HttpServer::Start(options, webhook->Routes()));
//
// A body that is not a well-formed admission.k8s.io/v1 AdmissionReview is answered 400 with the
// reason, logged (warning) and counted; a body above kMaxReviewBytes gets the server's 413 (also
// counted, in repro_http_requests_total{server="webhook",code="413"}). Every other review is
// answered 200 with an AdmissionReview whose response echoes the request's uid. /mutate never
// changes an unlabelled Pod, anything but a Pod CREATE, or an injected Pod; it refuses a labelled
// Pod whose job's pin cannot be read (an unpinned job gets an empty REPRO_PINNED; /validate
// judges it). Refusals are logged
// (info) with the object and the reason. Counted in
// repro_admission_reviews_total{webhook="validate"|"mutate",
//                               result="allowed"|"patched"|"refused"|"malformed"}.
#ifndef REPRO_DAEMON_ADMISSION_ADMISSION_WEBHOOK_H_
#define REPRO_DAEMON_ADMISSION_ADMISSION_WEBHOOK_H_

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/admission/admission_policy.h"
#include "daemon/admission/shim_injector.h"
#include "daemon/http/http_server.h"
#include "daemon/metrics/metrics.h"

namespace repro {

struct AdmissionWebhookOptions {
  // Answers whether a job may run (PinRegistry::Admit).
  Admitter admit;
  // The pin of a job and the registered versions of its datasets, for /mutate (ShimInjector::
  // Patch), and its owner for /validate, which admits only Pods of the namespace that owns the
  // job (AdmissionPolicy). NOT_FOUND: the job is not pinned. Null: every job counts as unpinned
  // to /mutate, and /validate does not check owners.
  std::function<absl::StatusOr<PinnedData>(absl::string_view job)> pinned;
  // See ShimInjectorOptions.
  std::string csi_driver = "shim.repro.dev";
  // Where to count reviews; null: counted privately.
  Metrics* metrics = nullptr;
};

// Thread-safe: handlers run concurrently on the server's connection threads.
class AdmissionWebhook {
 public:
  // Kubernetes objects are at most about 1.5 MiB (etcd's request limit); an UPDATE review
  // carries two of them.
  static constexpr size_t kMaxReviewBytes = 3 << 20;

  // INVALID_ARGUMENT when the CSI driver name is unusable (see ShimInjector::Create).
  static absl::StatusOr<std::unique_ptr<AdmissionWebhook>> Create(AdmissionWebhookOptions options);

  AdmissionWebhook(const AdmissionWebhook&) = delete;
  AdmissionWebhook& operator=(const AdmissionWebhook&) = delete;

  // The handlers, for tests; Routes() serves them.
  HttpResponse Validate(const HttpRequest& request);
  HttpResponse Mutate(const HttpRequest& request);
  // POST /validate, POST /mutate, GET /healthz. The routes refer to this object, which must
  // outlive the server.
  std::vector<HttpRoute> Routes();

 private:
  enum Endpoint { kValidate = 0, kMutate = 1 };
  enum Result { kAllowed = 0, kPatched, kRefused, kMalformed, kResultCount };

  AdmissionWebhook(AdmissionWebhookOptions options, ShimInjector injector);

  // Parses the review, asks `endpoint`'s judge, answers, logs and counts.
  HttpResponse Review(Endpoint endpoint, const HttpRequest& request);
  AdmissionVerdict MutateVerdict(const AdmissionRequest& request) const;

  Metrics private_metrics_;  // when no Metrics was given
  const AdmissionPolicy policy_;
  const ShimInjector injector_;
  const std::function<absl::StatusOr<PinnedData>(absl::string_view job)> pinned_;
  // repro_admission_reviews_total by endpoint and result (validate has no kPatched).
  std::array<std::array<Counter*, kResultCount>, 2> reviews_{};
};

}  // namespace repro

#endif  // REPRO_DAEMON_ADMISSION_ADMISSION_WEBHOOK_H_
