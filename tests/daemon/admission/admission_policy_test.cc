#include "daemon/admission/admission_policy.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/admission_reviews.h"

namespace repro {
namespace {

using nlohmann::json;
using ::repro::testing::AdmissionReviewFor;
using ::repro::testing::TrainingJob;
using ::repro::testing::TrainingPod;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Admits "pinned"; refuses every other job the way PinRegistry does; "Bad!" is not a job id.
class AdmissionPolicyTest : public ::testing::Test {
 protected:
  AdmissionVerdict Validate(const json& object, const std::string& operation = "CREATE") {
    absl::StatusOr<AdmissionRequest> request =
        ParseAdmissionReview(AdmissionReviewFor(object, "uid-1", operation).dump());
    EXPECT_TRUE(request.ok()) << request.status();
    return policy_.Validate(*request);
  }

  std::vector<std::string> asked_;
  AdmissionPolicy policy_{[this](absl::string_view job) -> absl::StatusOr<v1::AdmitResponse> {
    asked_.emplace_back(job);
    if (job == "Bad!") return absl::InvalidArgumentError("job id \"Bad!\" has invalid characters");
    v1::AdmitResponse response;
    response.set_admitted(job == "pinned");
    if (job != "pinned") {
      response.set_reason(absl::StrCat("job ", job,
                                       " has no pinned data version: run `reproctl pin ", job,
                                       " dataset@version`"));
    }
    return response;
  }};
};

TEST_F(AdmissionPolicyTest, AdmitsAPodOfAPinnedJob) {
  EXPECT_TRUE(Validate(TrainingPod("pinned")).allowed);
  EXPECT_THAT(asked_, ElementsAre("pinned"));
}

TEST_F(AdmissionPolicyTest, RefusesAPodOfAnUnpinnedJobWithAdmitsReason) {
  AdmissionVerdict verdict = Validate(TrainingPod("train-9"));
  EXPECT_FALSE(verdict.allowed);
  EXPECT_EQ(verdict.message,
            "Pod ml/train-0 (repro.dev/job=train-9): job train-9 has no pinned data version: run "
            "`reproctl pin train-9 dataset@version`");
}

TEST_F(AdmissionPolicyTest, RefusesAnUnlabelledPodNamingTheLabelAndTheFix) {
  AdmissionVerdict verdict = Validate(TrainingPod(""));
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.message, AllOf(HasSubstr("Pod ml/train-0 has no repro.dev/job label"),
                                     HasSubstr("namespace ml"), HasSubstr("repro.dev/enforce=true"),
                                     HasSubstr("reproctl pin JOB dataset@version"),
                                     HasSubstr("label the Pod repro.dev/job=JOB")));
  EXPECT_TRUE(asked_.empty());
}

TEST_F(AdmissionPolicyTest, RefusesAnInvalidJobId) {
  AdmissionVerdict verdict = Validate(TrainingPod("Bad!"));
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.message, HasSubstr("cannot admit repro.dev/job=\"Bad!\": job id"));
}

TEST_F(AdmissionPolicyTest, RefusesAnUnknownMode) {
  json pod = TrainingPod("pinned");
  pod["metadata"]["annotations"]["repro.dev/mode"] = "strict";
  AdmissionVerdict verdict = Validate(pod);
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.message,
              HasSubstr("repro.dev/mode=\"strict\" must be \"record\" or \"enforce\""));
  pod["metadata"]["annotations"]["repro.dev/mode"] = "enforce";
  EXPECT_TRUE(Validate(pod).allowed);
}

TEST_F(AdmissionPolicyTest, JudgesAJobByItsPodTemplate) {
  EXPECT_TRUE(Validate(TrainingJob("pinned")).allowed);
  AdmissionVerdict unpinned = Validate(TrainingJob("train-9"));
  EXPECT_FALSE(unpinned.allowed);
  EXPECT_THAT(unpinned.message,
              HasSubstr("Job ml/train (repro.dev/job=train-9): job train-9 has no"));

  AdmissionVerdict unlabelled = Validate(TrainingJob(""));
  EXPECT_FALSE(unlabelled.allowed);
  EXPECT_THAT(unlabelled.message,
              HasSubstr("label its Pod template (spec.template.metadata.labels)"));

  json template_annotated = TrainingJob("pinned");
  template_annotated["spec"]["template"]["metadata"]["annotations"]["repro.dev/mode"] = "x";
  EXPECT_FALSE(Validate(template_annotated).allowed);
}

TEST_F(AdmissionPolicyTest, AJobsOwnLabelMustAgreeWithItsTemplate) {
  json same = TrainingJob("pinned");
  same["metadata"]["labels"]["repro.dev/job"] = "pinned";
  EXPECT_TRUE(Validate(same).allowed);

  json differs = TrainingJob("pinned");
  differs["metadata"]["labels"]["repro.dev/job"] = "other";
  AdmissionVerdict verdict = Validate(differs);
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.message, HasSubstr("they must name one job"));

  json only_own = TrainingJob("");
  only_own["metadata"]["labels"]["repro.dev/job"] = "pinned";
  verdict = Validate(only_own);
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.message,
              HasSubstr("add repro.dev/job: pinned to spec.template.metadata.labels"));
}

TEST_F(AdmissionPolicyTest, JudgesOnlyCreation) {
  for (const char* operation : {"UPDATE", "DELETE", "CONNECT"}) {
    EXPECT_TRUE(Validate(TrainingPod(""), operation).allowed) << operation;
  }
  absl::StatusOr<AdmissionRequest> status_update =
      ParseAdmissionReview(AdmissionReviewFor(TrainingPod(""), "u").dump());
  ASSERT_TRUE(status_update.ok());
  status_update->sub_resource = "ephemeralcontainers";
  EXPECT_TRUE(policy_.Validate(*status_update).allowed);
  EXPECT_TRUE(asked_.empty());
}

TEST_F(AdmissionPolicyTest, AllowsKindsItDoesNotJudge) {
  json deployment = {{"apiVersion", "apps/v1"},
                     {"kind", "Deployment"},
                     {"metadata", {{"name", "web"}, {"namespace", "ml"}}}};
  EXPECT_TRUE(Validate(deployment).allowed);
}

// With owners: a Pod's processes speak for its namespace (their shim socket is bound to it), so
// only a job owned by k8s:<namespace> can take them.
TEST_F(AdmissionPolicyTest, WithOwnersAdmitsOnlyPodsOfTheNamespaceThatOwnsTheJob) {
  std::map<std::string, std::string> owners = {{"pinned", "k8s:ml"}};
  AdmissionPolicy policy(
      [](absl::string_view job) {
        v1::AdmitResponse response;
        response.set_admitted(true);
        return absl::StatusOr<v1::AdmitResponse>(response);
      },
      [&](absl::string_view job) -> absl::StatusOr<std::string> {
        if (job == "down") return absl::UnavailableError("etcd is unreachable");
        return owners[std::string(job)];
      });
  auto validate = [&](const json& object) {
    absl::StatusOr<AdmissionRequest> request =
        ParseAdmissionReview(AdmissionReviewFor(object, "uid-1", "CREATE").dump());
    EXPECT_TRUE(request.ok()) << request.status();
    return policy.Validate(*request);
  };
  EXPECT_TRUE(validate(TrainingPod("pinned")).allowed);
  EXPECT_TRUE(validate(TrainingJob("pinned")).allowed);
  json elsewhere = TrainingPod("pinned");
  elsewhere["metadata"]["namespace"] = "research";
  AdmissionVerdict refused = validate(elsewhere);
  EXPECT_FALSE(refused.allowed);
  EXPECT_THAT(refused.message,
              AllOf(HasSubstr("job pinned belongs to k8s:ml"), HasSubstr("speak for k8s:research"),
                    HasSubstr("--owner k8s:research")));
  owners["by-uid"] = "uid:1000";
  EXPECT_THAT(validate(TrainingPod("by-uid")).message, HasSubstr("belongs to uid:1000"));
  EXPECT_THAT(validate(TrainingPod("no-owner")).message, HasSubstr("belongs to no recorded owner"));
  EXPECT_THAT(validate(TrainingPod("down")).message, HasSubstr("etcd is unreachable"));
}

}  // namespace
}  // namespace repro
