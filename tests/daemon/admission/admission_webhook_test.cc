// The webhook's HTTP handlers in-process: what reaches them, what they answer, what they count.
#include "daemon/admission/admission_webhook.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/admission_reviews.h"

namespace repro {
namespace {

using nlohmann::json;
using ::repro::testing::AdmissionReviewFor;
using ::repro::testing::PatchOf;
using ::repro::testing::TrainingJob;
using ::repro::testing::TrainingPod;
using ::testing::HasSubstr;

class AdmissionWebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<AdmissionWebhook>> webhook = AdmissionWebhook::Create(
        {.admit =
             [](absl::string_view job) {
               v1::AdmitResponse response;
               response.set_admitted(job == "pinned");
               if (job != "pinned") response.set_reason(absl::StrCat("job ", job, " has no pin"));
               return absl::StatusOr<v1::AdmitResponse>(response);
             },
         .pinned = [](absl::string_view job) -> absl::StatusOr<PinnedData> {
           if (job == "store-down") return absl::UnavailableError("etcd is unreachable");
           if (job != "pinned") return absl::NotFoundError("no pin");
           PinnedData data;
           data.pin.set_owner("k8s:ml");  // TrainingPod's namespace
           v1::PinnedVersion* v = data.pin.add_versions();
           v->set_dataset("ctr");
           v->set_version("v1");
           v->set_root("/ml/ctr");
           v->set_path("/ml/ctr/v1");
           return data;
         },
         .csi_driver = "shim.repro.dev",
         .metrics = &metrics_});
    ASSERT_TRUE(webhook.ok()) << webhook.status();
    webhook_ = *std::move(webhook);
  }

  static HttpRequest Post(const std::string& path, std::string body) {
    HttpRequest request;
    request.method = "POST";
    request.path = path;
    request.headers.Add("Content-Type", "application/json");
    request.body = std::move(body);
    request.peer = "127.0.0.1:5555";
    return request;
  }

  // Answers `object`'s review on `endpoint`, expecting 200 and the uid echoed.
  json Review(const std::string& endpoint, const json& object,
              const std::string& operation = "CREATE") {
    HttpRequest request = Post(endpoint, AdmissionReviewFor(object, "uid-7", operation).dump());
    HttpResponse response =
        endpoint == "/validate" ? webhook_->Validate(request) : webhook_->Mutate(request);
    EXPECT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(response.content_type, "application/json");
    json review = json::parse(response.body);
    EXPECT_EQ(review["response"]["uid"], "uid-7");
    return review;
  }

  uint64_t Reviews(const std::string& webhook, const std::string& result) {
    return metrics_
        .GetCounter("repro_admission_reviews_total", "", {{"webhook", webhook}, {"result", result}})
        ->value();
  }

  Metrics metrics_;
  std::unique_ptr<AdmissionWebhook> webhook_;
};

TEST_F(AdmissionWebhookTest, ValidateAnswersWithThePolicysVerdict) {
  EXPECT_EQ(Review("/validate", TrainingPod("pinned"))["response"]["allowed"], true);
  json refused = Review("/validate", TrainingPod("nope"));
  EXPECT_EQ(refused["response"]["allowed"], false);
  EXPECT_EQ(refused["response"]["status"]["code"], 403);
  EXPECT_THAT(refused["response"]["status"]["message"].get<std::string>(),
              HasSubstr("job nope has no pin"));
  EXPECT_EQ(Review("/validate", TrainingJob("pinned"))["response"]["allowed"], true);
  // The job belongs to namespace ml: a Pod of another namespace could not join it.
  json elsewhere = TrainingPod("pinned");
  elsewhere["metadata"]["namespace"] = "research";
  json foreign = Review("/validate", elsewhere);
  EXPECT_EQ(foreign["response"]["allowed"], false);
  EXPECT_THAT(foreign["response"]["status"]["message"].get<std::string>(),
              HasSubstr("--owner k8s:research"));
  EXPECT_EQ(Reviews("validate", "allowed"), 2u);
  EXPECT_EQ(Reviews("validate", "refused"), 2u);
}

TEST_F(AdmissionWebhookTest, MutatePatchesLabelledPodsOnly) {
  json patched = Review("/mutate", TrainingPod("pinned"));
  EXPECT_EQ(patched["response"]["allowed"], true);
  absl::StatusOr<json> patch = PatchOf(patched);
  ASSERT_TRUE(patch.ok()) << patch.status();
  EXPECT_FALSE(patch->empty());
  // The shim goes into the Pods of unpinned jobs too: refusing them is /validate's business.
  EXPECT_FALSE(PatchOf(Review("/mutate", TrainingPod("nope")))->empty());

  // Fail-safe: unlabelled Pods, other kinds and other operations pass unchanged.
  for (const json& review :
       {Review("/mutate", TrainingPod("")), Review("/mutate", TrainingJob("pinned")),
        Review("/mutate", TrainingPod("pinned"), "UPDATE"),
        Review("/mutate", TrainingPod("pinned"), "DELETE")}) {
    EXPECT_EQ(review["response"]["allowed"], true);
    EXPECT_FALSE(review["response"].contains("patch"));
  }
  EXPECT_EQ(Reviews("mutate", "patched"), 2u);
  EXPECT_EQ(Reviews("mutate", "allowed"), 4u);
}

TEST_F(AdmissionWebhookTest, MutateHandsThePinnedVersionsOrRefusesWhenItCannotReadThem) {
  std::string patch = PatchOf(Review("/mutate", TrainingPod("pinned")))->dump();
  EXPECT_THAT(patch, HasSubstr(R"({"name":"REPRO_PINNED","value":"ctr@v1=/ml/ctr/v1"})"));
  patch = PatchOf(Review("/mutate", TrainingPod("nope")))->dump();
  EXPECT_THAT(patch, HasSubstr(R"({"name":"REPRO_PINNED","value":""})"));
  json review = Review("/mutate", TrainingPod("store-down"));
  EXPECT_EQ(review["response"]["allowed"], false);
  EXPECT_THAT(review["response"]["status"]["message"].get<std::string>(),
              HasSubstr("cannot read the pin of job store-down: etcd is unreachable"));
  EXPECT_EQ(Reviews("mutate", "refused"), 1u);
}

TEST_F(AdmissionWebhookTest, MutateRefusesAPodItCannotInject) {
  json pod = TrainingPod("pinned");
  pod["metadata"]["annotations"]["repro.dev/mode"] = "audit";
  json review = Review("/mutate", pod);
  EXPECT_EQ(review["response"]["allowed"], false);
  EXPECT_THAT(review["response"]["status"]["message"].get<std::string>(),
              HasSubstr("Pod ml/train-0: annotation repro.dev/mode=\"audit\""));
  EXPECT_EQ(Reviews("mutate", "refused"), 1u);
}

TEST_F(AdmissionWebhookTest, MalformedReviewsGet400AndAreCounted) {
  json v1beta1 = AdmissionReviewFor(TrainingPod("pinned"), "u");
  v1beta1["apiVersion"] = "admission.k8s.io/v1beta1";
  for (const std::string& body :
       {std::string("{not json"), std::string(""), v1beta1.dump(), std::string(100000, '[')}) {
    HttpResponse validate = webhook_->Validate(Post("/validate", body));
    EXPECT_EQ(validate.status, 400) << body.substr(0, 40);
    EXPECT_THAT(validate.body, HasSubstr("400 Bad Request: "));
    EXPECT_EQ(webhook_->Mutate(Post("/mutate", body)).status, 400);
  }
  EXPECT_EQ(Reviews("validate", "malformed"), 4u);
  EXPECT_EQ(Reviews("mutate", "malformed"), 4u);
}

TEST_F(AdmissionWebhookTest, RoutesServeBothEndpointsAndHealth) {
  std::vector<HttpRoute> routes = webhook_->Routes();
  ASSERT_EQ(routes.size(), 3u);
  for (const HttpRoute& route : routes) {
    if (route.path == "/healthz") {
      EXPECT_EQ(route.method, "GET");
      EXPECT_EQ(route.handler(HttpRequest()).status, 200);
    } else {
      EXPECT_EQ(route.method, "POST");
      EXPECT_EQ(route.handler(Post(route.path, "{}")).status, 400);
    }
  }
}

TEST_F(AdmissionWebhookTest, CreateRefusesAnUnusableCsiDriverName) {
  absl::StatusOr<std::unique_ptr<AdmissionWebhook>> webhook =
      AdmissionWebhook::Create({.csi_driver = ""});
  EXPECT_EQ(webhook.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace repro
