// The admission webhook of the real reprod binary over real HTTPS (a CA and a server certificate
// made with the openssl command line), against real pins made with the real reproctl; the
// patches /mutate returns are applied by python3-jsonpatch.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/admission_reviews.h"
#include "tests/testutil/http_client.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using nlohmann::json;
using ::repro::testing::AdmissionReviewFor;
using ::repro::testing::ApplyJsonPatch;
using ::repro::testing::HttpClientOptions;
using ::repro::testing::HttpFetch;
using ::repro::testing::HttpTestClient;
using ::repro::testing::HttpTestResponse;
using ::repro::testing::PatchOf;
using ::repro::testing::ReprodProcess;
using ::repro::testing::RunCommand;
using ::repro::testing::RunResult;
using ::repro::testing::TempDir;
using ::repro::testing::TrainingJob;
using ::repro::testing::TrainingPod;
using ::repro::testing::WebhookCertificates;
using ::testing::HasSubstr;
using ::testing::Not;

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<WebhookCertificates> certs = testing::MakeWebhookCertificates(dir_.path());
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = *certs;
    webhook_port_ = testing::PickFreePort();
    metrics_port_ = testing::PickFreePort();
    reprod_ = std::make_unique<ReprodProcess>(
        dir_.Path("node"),
        testing::ReprodOptions{
            .extra_flags = {absl::StrCat("--webhook_listen=127.0.0.1:", webhook_port_),
                            "--webhook_tls_cert=" + certs_.cert, "--webhook_tls_key=" + certs_.key,
                            "--csi_driver_name=shim.itest.dev",
                            absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port_)}});
    ASSERT_TRUE(reprod_->Start().ok());
    testing::WriteFileOrDie(dir_.Path("ml/users/v1/a.csv"), "id\n1\n");
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"version", "add", "users", "v1", dir_.Path("ml/users/v1")},
          std::vector<std::string>{"pin", "train-42", "users@v1", "--seed", "7", "--owner",
                                   "k8s:ml"}}) {
      RunResult r = reprod_->Ctl(args);
      ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    }
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }

  HttpClientOptions ClientOptions() const {
    return {.port = webhook_port_, .ca_file = certs_.ca, .server_name = "localhost"};
  }

  // A verified TLS connection; the webhook may still be starting when gRPC already answers.
  std::unique_ptr<HttpTestClient> Connect() {
    absl::Status last;
    for (absl::Time deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;) {
      absl::StatusOr<std::unique_ptr<HttpTestClient>> client =
          HttpTestClient::Connect(ClientOptions());
      if (client.ok()) return *std::move(client);
      last = client.status();
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "cannot connect to the webhook: " << last << "\n" << reprod_->log();
    return nullptr;
  }

  // POSTs `body` on the keep-alive connection.
  HttpTestResponse Post(const std::string& path, const std::string& body) {
    absl::StatusOr<HttpTestResponse> response =
        client_->Request("POST", path, body, {{"Content-Type", "application/json"}});
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpTestResponse();
  }

  // Reviews `object` on `path`; checks the 200 and the echoed uid, returns response.response.
  json Review(const std::string& path, const json& object) {
    const std::string uid = absl::StrCat("uid-", ++reviews_);
    HttpTestResponse http = Post(path, AdmissionReviewFor(object, uid).dump());
    EXPECT_EQ(http.status, 200) << http.body;
    json review = json::parse(http.body, nullptr, false);
    EXPECT_EQ(review.value("apiVersion", ""), "admission.k8s.io/v1");
    EXPECT_EQ(review.value("kind", ""), "AdmissionReview");
    EXPECT_EQ(review["response"]["uid"], uid);
    return review;
  }

  std::string Metrics() {
    absl::StatusOr<HttpTestResponse> response =
        HttpFetch({.port = metrics_port_}, "GET", "/metrics");
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->body : "";
  }

  TempDir dir_;
  WebhookCertificates certs_;
  int webhook_port_ = 0;
  int metrics_port_ = 0;
  int reviews_ = 0;
  std::unique_ptr<ReprodProcess> reprod_;
  std::unique_ptr<HttpTestClient> client_;
};

TEST_F(WebhookTest, ValidateAdmitsPinnedJobsAndRefusesTheRest) {
  EXPECT_EQ(Review("/validate", TrainingPod("train-42"))["response"]["allowed"], true);

  json unpinned = Review("/validate", TrainingPod("train-99"))["response"];
  EXPECT_EQ(unpinned["allowed"], false);
  EXPECT_EQ(unpinned["status"]["code"], 403);
  EXPECT_THAT(unpinned["status"]["message"].get<std::string>(),
              HasSubstr("Pod ml/train-0 (repro.dev/job=train-99): job train-99 has no pinned data "
                        "version: run `reproctl pin train-99 dataset@version`"));

  // train-42 belongs to namespace ml (pinned --owner k8s:ml): a Pod of another namespace, whose
  // processes speak for that namespace, is refused with the command that would fix it.
  json elsewhere = TrainingPod("train-42");
  elsewhere["metadata"]["namespace"] = "research";
  json foreign = Review("/validate", elsewhere)["response"];
  EXPECT_EQ(foreign["allowed"], false);
  EXPECT_THAT(foreign["status"]["message"].get<std::string>(),
              HasSubstr("job train-42 belongs to k8s:ml, but the processes of Pods in namespace "
                        "research speak for k8s:research"));

  json unlabelled = Review("/validate", TrainingPod(""))["response"];
  EXPECT_EQ(unlabelled["allowed"], false);
  EXPECT_THAT(unlabelled["status"]["message"].get<std::string>(),
              HasSubstr("has no repro.dev/job label"));
  EXPECT_THAT(unlabelled["status"]["message"].get<std::string>(), HasSubstr("reproctl pin JOB"));

  EXPECT_EQ(Review("/validate", TrainingJob("train-42"))["response"]["allowed"], true);
  json unpinned_job = Review("/validate", TrainingJob("train-99"))["response"];
  EXPECT_EQ(unpinned_job["allowed"], false);
  EXPECT_THAT(unpinned_job["status"]["message"].get<std::string>(), HasSubstr("Job ml/train"));

  EXPECT_THAT(reprod_->log(), HasSubstr("webhook: /validate refused Pod ml/train-0"));
  EXPECT_THAT(
      Metrics(),
      HasSubstr("repro_admission_reviews_total{result=\"refused\",webhook=\"validate\"} 4"));
}

TEST_F(WebhookTest, MalformedAndOversizedReviewsGetCleanErrors) {
  HttpTestResponse malformed = Post("/validate", "{\"apiVersion\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.body, HasSubstr("invalid JSON"));

  client_ = Connect();  // a 400 closes the connection
  json v1beta1 = AdmissionReviewFor(TrainingPod("train-42"), "u");
  v1beta1["apiVersion"] = "admission.k8s.io/v1beta1";
  HttpTestResponse wrong_version = Post("/validate", v1beta1.dump());
  EXPECT_EQ(wrong_version.status, 400);
  EXPECT_THAT(wrong_version.body, HasSubstr("this webhook speaks admission.k8s.io/v1"));

  client_ = Connect();
  EXPECT_EQ(Post("/mutate", std::string(1 << 20, '[')).status, 400);

  // What a client sends cannot forge log lines.
  client_ = Connect();
  json forged = AdmissionReviewFor(TrainingPod("train-42"), "u");
  forged["apiVersion"] = "v1\nFORGED log line";
  EXPECT_EQ(Post("/validate", forged.dump()).status, 400);

  // Announced above the limit: refused from the head, before any of it is read.
  client_ = Connect();
  ASSERT_TRUE(client_
                  ->Send(absl::StrCat("POST /validate HTTP/1.1\r\nHost: localhost\r\n"
                                      "Content-Type: application/json\r\nContent-Length: ",
                                      (3 << 20) + 1, "\r\n\r\n"))
                  .ok());
  absl::StatusOr<HttpTestResponse> oversized = client_->ReadResponse();
  ASSERT_TRUE(oversized.ok()) << oversized.status();
  EXPECT_EQ(oversized->status, 413);

  // The daemon lives on and says why.
  client_ = Connect();
  EXPECT_EQ(Review("/validate", TrainingPod("train-42"))["response"]["allowed"], true);
  EXPECT_TRUE(reprod_->running());
  const std::string log = reprod_->log();
  EXPECT_THAT(log, HasSubstr("webhook: malformed review on /validate from 127.0.0.1:"));
  EXPECT_THAT(log, HasSubstr("webhook: malformed review on /mutate"));
  EXPECT_THAT(log, HasSubstr("apiVersion is \"v1 FORGED log line\""));
  EXPECT_THAT(log, Not(HasSubstr("\nFORGED")));
  const std::string metrics = Metrics();
  EXPECT_THAT(
      metrics,
      HasSubstr("repro_admission_reviews_total{result=\"malformed\",webhook=\"validate\"} 3"));
  EXPECT_THAT(
      metrics,
      HasSubstr("repro_admission_reviews_total{result=\"malformed\",webhook=\"mutate\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("repro_http_requests_total{code=\"413\",server=\"webhook\"} 1"));
}

TEST_F(WebhookTest, MutateInjectsTheShimOnceKeepingThePodsOwnSpec) {
  json pod = TrainingPod("train-42");
  // A volume of the dataset through its alias: the Pod gets the pinned version there.
  const std::string root = std::filesystem::canonical(dir_.Path("ml/users")).string();
  pod["spec"]["volumes"].push_back(
      {{"name", "users"}, {"hostPath", {{"path", root + "/latest"}, {"type", "Directory"}}}});
  pod["spec"]["containers"][0]["volumeMounts"].push_back(
      {{"name", "users"}, {"mountPath", root + "/latest"}});
  json answer = Review("/mutate", pod)["response"];
  EXPECT_EQ(answer["allowed"], true);
  absl::StatusOr<json> patch = PatchOf({{"response", answer}});
  ASSERT_TRUE(patch.ok()) << patch.status();
  absl::StatusOr<json> injected = ApplyJsonPatch(pod, *patch);
  ASSERT_TRUE(injected.ok()) << injected.status();

  const json& spec = (*injected)["spec"];
  // The user's init container, volume, env and mounts are intact, ours come after.
  EXPECT_EQ(spec["initContainers"], pod["spec"]["initContainers"]);
  EXPECT_EQ(spec["volumes"][0], pod["spec"]["volumes"][0]);
  EXPECT_EQ(spec["volumes"].size(), 3u);
  EXPECT_EQ(spec["volumes"][1]["hostPath"]["path"], root + "/v1");
  EXPECT_EQ(spec["volumes"][2], json::parse(R"({"name": "repro-shim",
      "csi": {"driver": "shim.itest.dev", "readOnly": true}})"));
  const json& trainer = spec["containers"][0];
  EXPECT_EQ(trainer["env"][0], pod["spec"]["containers"][0]["env"][0]);
  EXPECT_EQ(trainer["env"][1], json::parse(R"({"name": "LD_PRELOAD",
      "value": "/opt/repro/libreproshim.so:/usr/lib/libtcmalloc.so.4"})"));
  EXPECT_EQ(trainer["volumeMounts"][0], pod["spec"]["containers"][0]["volumeMounts"][0]);
  // Mounted at the alias path, the volume is also where the shim sends reads through the alias.
  EXPECT_THAT(trainer["volumeMounts"].dump(),
              HasSubstr(absl::StrCat(R"({"mountPath":")", root,
                                     R"(/v1","name":"users","readOnly":true})")));
  for (const json& container : spec["containers"]) {
    std::map<std::string, std::string> env;
    for (const json& var : container["env"]) env[var["name"]] = var.value("value", "");
    EXPECT_EQ(env["REPRO_JOB"], "train-42");
    EXPECT_EQ(env["REPRO_SHIM_SOCKET"], "/opt/repro/shim.sock");
    EXPECT_EQ(env["REPRO_MODE"], "record");
    EXPECT_EQ(env["REPRO_PINNED"], "users@v1=" + root + "/v1");  // reprod may be out of reach
    EXPECT_THAT(env["LD_PRELOAD"], HasSubstr("/opt/repro/libreproshim.so"));
  }

  // Reinvoked on its own result, the webhook changes nothing more.
  json again = Review("/mutate", *injected)["response"];
  EXPECT_EQ(again["allowed"], true);
  absl::StatusOr<json> no_patch = PatchOf({{"response", again}});
  ASSERT_TRUE(no_patch.ok());
  EXPECT_EQ(*no_patch, json::array());
  EXPECT_EQ(*ApplyJsonPatch(*injected, *no_patch), *injected);

  // An unlabelled Pod passes unchanged.
  json unlabelled = Review("/mutate", TrainingPod(""))["response"];
  EXPECT_EQ(unlabelled["allowed"], true);
  EXPECT_FALSE(unlabelled.contains("patch"));
}

// Pod Security `restricted` (and `baseline`) admit these volume types only; hostPath is not one.
bool RestrictedAllowsVolume(const json& volume) {
  for (const char* type : {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}) {
    if (volume.contains(type)) return true;
  }
  return false;
}

TEST_F(WebhookTest, AMutatedPodMountsOnlyTheCsiVolumeAndNoHostPath) {
  // A Pod that meets `restricted` on its own: no host path, non-root, no privilege.
  json pod = TrainingPod("train-42");
  pod["spec"]["volumes"][0] = {
      {"name", "data"}, {"persistentVolumeClaim", {{"claimName", "ml-data"}, {"readOnly", true}}}};
  pod["spec"]["securityContext"] = {{"runAsNonRoot", true},
                                    {"seccompProfile", {{"type", "RuntimeDefault"}}}};
  for (json& volume : pod["spec"]["volumes"]) ASSERT_TRUE(RestrictedAllowsVolume(volume));
  absl::StatusOr<json> patch = PatchOf(Review("/mutate", pod));
  ASSERT_TRUE(patch.ok()) << patch.status();
  EXPECT_THAT(patch->dump(), Not(HasSubstr("hostPath")));
  absl::StatusOr<json> injected = ApplyJsonPatch(pod, *patch);
  ASSERT_TRUE(injected.ok()) << injected.status();
  const json& spec = (*injected)["spec"];

  for (const json& volume : spec["volumes"]) {
    EXPECT_TRUE(RestrictedAllowsVolume(volume)) << volume.dump();
  }
  EXPECT_EQ(spec["initContainers"], pod["spec"]["initContainers"]);  // nothing privileged added
  EXPECT_EQ(spec["securityContext"], pod["spec"]["securityContext"]);
  for (size_t i = 0; i < spec["containers"].size(); ++i) {
    const json& container = spec["containers"][i];
    const json& before = pod["spec"]["containers"][i];
    EXPECT_EQ(container.value("securityContext", json()), before.value("securityContext", json()));
    // What the webhook added to its mounts: the CSI volume, read-only, and nothing else.
    const json theirs = before.value("volumeMounts", json::array());
    json added = json::array();
    for (const json& mount : container["volumeMounts"]) {
      if (std::find(theirs.begin(), theirs.end(), mount) == theirs.end()) added.push_back(mount);
    }
    EXPECT_EQ(added, json::parse(R"([{"name": "repro-shim", "mountPath": "/opt/repro",
                                      "readOnly": true}])"));
  }
}

TEST(WebhookStartTest, RefusesToServeWithoutACertificate) {
  TempDir dir;
  RunResult run =
      RunCommand({testing::BinPath("reprod"), "--data_dir=" + dir.Path("data"),
                  "--grpc_listen=unix:" + dir.Path("reprod.sock"),
                  "--shim_socket=" + dir.Path("shim.sock"), "--webhook_listen=127.0.0.1:0"},
                 {.timeout = absl::Seconds(60)});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.stderr_text, HasSubstr("--webhook_listen needs --webhook_tls_cert"));
}

}  // namespace
}  // namespace repro
