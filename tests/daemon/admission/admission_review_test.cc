#include "daemon/admission/admission_review.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/admission_reviews.h"

namespace repro {
namespace {

using nlohmann::json;
using ::repro::testing::AdmissionReviewFor;
using ::repro::testing::TrainingJob;
using ::repro::testing::TrainingPod;
using ::testing::HasSubstr;

absl::StatusOr<AdmissionRequest> Parse(const json& review) {
  return ParseAdmissionReview(review.dump());
}

TEST(ParseAdmissionReviewTest, ReadsAPodReview) {
  absl::StatusOr<AdmissionRequest> request = Parse(AdmissionReviewFor(TrainingPod("j1"), "u-1"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->uid, "u-1");
  EXPECT_TRUE(request->Is("", "Pod"));
  EXPECT_EQ(request->version, "v1");
  EXPECT_EQ(request->operation, "CREATE");
  EXPECT_EQ(request->namespace_name, "ml");
  EXPECT_EQ(request->name, "train-0");
  EXPECT_EQ(request->object["metadata"]["labels"]["repro.dev/job"], "j1");
  EXPECT_EQ(request->Describe(), "Pod ml/train-0");
}

TEST(ParseAdmissionReviewTest, ReadsAJobReview) {
  absl::StatusOr<AdmissionRequest> request = Parse(AdmissionReviewFor(TrainingJob("j1"), "u-2"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(request->Is("batch", "Job"));
  EXPECT_EQ(request->Describe(), "Job ml/train");
}

TEST(ParseAdmissionReviewTest, DescribesGeneratedNames) {
  json pod = TrainingPod("j1");
  pod["metadata"].erase("name");
  pod["metadata"]["generateName"] = "train-";
  absl::StatusOr<AdmissionRequest> request = Parse(AdmissionReviewFor(pod, "u"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->Describe(), "Pod ml/train-*");
}

TEST(ParseAdmissionReviewTest, DeleteNeedsNoObject) {
  absl::StatusOr<AdmissionRequest> request =
      Parse(AdmissionReviewFor(TrainingPod("j1"), "u", "DELETE"));
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(request->object.is_null());
}

TEST(ParseAdmissionReviewTest, RefusesOtherApiVersionsNamingTheOneItSpeaks) {
  json review = AdmissionReviewFor(TrainingPod("j1"), "u");
  review["apiVersion"] = "admission.k8s.io/v1beta1";
  absl::StatusOr<AdmissionRequest> request = Parse(review);
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(request.status().message(), HasSubstr("\"admission.k8s.io/v1beta1\""));
  EXPECT_THAT(request.status().message(), HasSubstr("admissionReviewVersions: [v1]"));
}

TEST(ParseAdmissionReviewTest, RefusesMalformedReviews) {
  struct Case {
    const char* what;
    std::function<void(json&)> spoil;
    const char* message;
  } cases[] = {
      {"no apiVersion", [](json& r) { r.erase("apiVersion"); }, "apiVersion is missing"},
      {"wrong kind", [](json& r) { r["kind"] = "Pod"; }, "kind is not AdmissionReview"},
      {"no request", [](json& r) { r.erase("request"); }, "request is missing"},
      {"request not an object", [](json& r) { r["request"] = "x"; }, "request is missing"},
      {"no uid", [](json& r) { r["request"].erase("uid"); }, "request.uid is missing"},
      {"empty uid", [](json& r) { r["request"]["uid"] = ""; }, "request.uid is empty"},
      {"numeric uid", [](json& r) { r["request"]["uid"] = 7; }, "request.uid is not a string"},
      {"no kind", [](json& r) { r["request"].erase("kind"); }, "request.kind.kind is missing"},
      {"no operation", [](json& r) { r["request"].erase("operation"); },
       "request.operation is missing"},
      {"create without object", [](json& r) { r["request"]["object"] = nullptr; },
       "request.object of a CREATE is not an object"},
  };
  for (Case& c : cases) {
    json review = AdmissionReviewFor(TrainingPod("j1"), "u");
    c.spoil(review);
    absl::StatusOr<AdmissionRequest> request = Parse(review);
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(request.status().message(), HasSubstr(c.message)) << c.what;
  }
  EXPECT_THAT(ParseAdmissionReview("[1]").status().message(), HasSubstr("not a JSON object"));
  EXPECT_THAT(ParseAdmissionReview("{").status().message(), HasSubstr("invalid JSON"));
}

TEST(RenderAdmissionResponseTest, AllowsEchoingTheUid) {
  json review = json::parse(RenderAdmissionResponse("u-\"1", AdmissionVerdict::Allow()));
  EXPECT_EQ(review, json::parse(R"({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                    "response": {"uid": "u-\"1", "allowed": true}})"));
}

TEST(RenderAdmissionResponseTest, RefusesWith403AndTheMessage) {
  json review = json::parse(RenderAdmissionResponse("u", AdmissionVerdict::Refuse("no pin")));
  EXPECT_EQ(review["response"]["allowed"], false);
  EXPECT_EQ(review["response"]["status"]["code"], 403);
  EXPECT_EQ(review["response"]["status"]["message"], "no pin");
  EXPECT_FALSE(review["response"].contains("patch"));
}

TEST(RenderAdmissionResponseTest, SendsAPatchInBase64) {
  AdmissionVerdict verdict;
  verdict.patch = json::array({{{"op", "add"}, {"path", "/a"}, {"value", 1}}});
  json review = json::parse(RenderAdmissionResponse("u", verdict));
  EXPECT_EQ(review["response"]["patchType"], "JSONPatch");
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(review["response"]["patch"].get<std::string>(), &decoded));
  EXPECT_EQ(json::parse(decoded), verdict.patch);

  verdict.patch = json::array();  // nothing to change: no patch at all
  review = json::parse(RenderAdmissionResponse("u", verdict));
  EXPECT_FALSE(review["response"].contains("patch"));
  EXPECT_FALSE(review["response"].contains("patchType"));
}

}  // namespace
}  // namespace repro
