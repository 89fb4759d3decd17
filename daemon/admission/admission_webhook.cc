#include "daemon/admission/admission_webhook.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/admission/labels.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr const char* kEndpointNames[] = {"validate", "mutate"};
constexpr const char* kResultNames[] = {"allowed", "patched", "refused", "malformed"};

// `text` made safe for one log line: what a client sent (names, parser excerpts) may hold line
// breaks or terminal escapes, and may be long.
std::string ForLog(absl::string_view text) {
  constexpr size_t kMaxLogText = 512;
  std::string out(text.substr(0, kMaxLogText));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (text.size() > kMaxLogText) out += "...";
  return out;
}

// The owners /validate checks, from the pins /mutate reads; null without them.
OwnerLookup OwnerLookupOf(
    const std::function<absl::StatusOr<PinnedData>(absl::string_view job)>& pinned) {
  if (pinned == nullptr) return nullptr;
  return [pinned](absl::string_view job) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(PinnedData data, pinned(job));
    return data.pin.owner();
  };
}

}  // namespace

absl::StatusOr<std::unique_ptr<AdmissionWebhook>> AdmissionWebhook::Create(
    AdmissionWebhookOptions options) {
  ASSIGN_OR_RETURN(ShimInjector injector, ShimInjector::Create({.csi_driver = options.csi_driver}));
  return std::unique_ptr<AdmissionWebhook>(
      new AdmissionWebhook(std::move(options), std::move(injector)));
}

AdmissionWebhook::AdmissionWebhook(AdmissionWebhookOptions options, ShimInjector injector)
    : policy_(std::move(options.admit), OwnerLookupOf(options.pinned)),
      injector_(std::move(injector)),
      pinned_(std::move(options.pinned)) {
  Metrics* metrics = options.metrics != nullptr ? options.metrics : &private_metrics_;
  for (int endpoint : {kValidate, kMutate}) {
    for (int result = 0; result < kResultCount; ++result) {
      if (endpoint == kValidate && result == kPatched) continue;  // validate never patches
      reviews_[endpoint][result] = metrics->GetCounter(
          "repro_admission_reviews_total",
          "Admission reviews answered by the Kubernetes webhook, by endpoint and result.",
          {{"webhook", kEndpointNames[endpoint]}, {"result", kResultNames[result]}});
    }
  }
}

std::vector<HttpRoute> AdmissionWebhook::Routes() {
  return {{"POST", "/validate", [this](const HttpRequest& r) { return Validate(r); }},
          {"POST", "/mutate", [this](const HttpRequest& r) { return Mutate(r); }},
          {"GET", "/healthz", [](const HttpRequest&) {
             return HttpResponse(200, "text/plain; charset=utf-8", "ok\n");
           }}};
}

HttpResponse AdmissionWebhook::Validate(const HttpRequest& request) {
  return Review(kValidate, request);
}

HttpResponse AdmissionWebhook::Mutate(const HttpRequest& request) {
  return Review(kMutate, request);
}

HttpResponse AdmissionWebhook::Review(Endpoint endpoint, const HttpRequest& http) {
  const char* name = kEndpointNames[endpoint];
  absl::StatusOr<AdmissionRequest> request = ParseAdmissionReview(http.body);
  if (!request.ok()) {
    reviews_[endpoint][kMalformed]->Increment();
    spdlog::warn("webhook: malformed review on /{} from {} ({} bytes): {}", name, http.peer,
                 http.body.size(), ForLog(request.status().message()));
    return HttpResponse(400, "text/plain; charset=utf-8",
                        absl::StrCat("400 Bad Request: ", request.status().message(), "\n"));
  }
  AdmissionVerdict verdict =
      endpoint == kValidate ? policy_.Validate(*request) : MutateVerdict(*request);
  const Result result = !verdict.allowed ? kRefused : verdict.patch.empty() ? kAllowed : kPatched;
  reviews_[endpoint][result]->Increment();
  if (result == kRefused) {
    spdlog::info("webhook: /{} refused {}{}: {}", name, ForLog(request->Describe()),
                 request->dry_run ? " (dry run)" : "", ForLog(verdict.message));
  } else {
    spdlog::debug("webhook: /{} {} {} {}", name, kResultNames[result], ForLog(request->operation),
                  ForLog(request->Describe()));
  }
  return HttpResponse(200, "application/json", RenderAdmissionResponse(request->uid, verdict));
}

AdmissionVerdict AdmissionWebhook::MutateVerdict(const AdmissionRequest& request) const {
  // Fail-safe: anything that is not the creation of a labelled Pod passes unchanged.
  if (request.operation != "CREATE" || !request.sub_resource.empty() || !request.Is("", "Pod") ||
      Label(request.object, kJobLabel) == nullptr) {
    return AdmissionVerdict::Allow();
  }
  const std::string& job = *Label(request.object, kJobLabel);
  absl::StatusOr<PinnedData> pinned =
      pinned_ != nullptr ? pinned_(job) : absl::NotFoundError("no pin lookup");
  if (absl::IsNotFound(pinned.status())) pinned = PinnedData();
  if (!pinned.ok()) {
    return AdmissionVerdict::Refuse(absl::StrCat(
        request.Describe(), ": cannot read the pin of job ", job, ": ", pinned.status().message()));
  }
  absl::StatusOr<nlohmann::json> patch = injector_.Patch(request.object, *pinned);
  if (!patch.ok()) {
    return AdmissionVerdict::Refuse(
        absl::StrCat(request.Describe(), ": ", patch.status().message()));
  }
  AdmissionVerdict verdict;
  verdict.patch = *std::move(patch);
  return verdict;
}

}  // namespace repro
