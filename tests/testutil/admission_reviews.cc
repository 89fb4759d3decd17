#include "tests/testutil/admission_reviews.h"

#include <cctype>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/testutil/subprocess.h"
#include "tests/testutil/temp_dir.h"
#include "tests/testutil/test_certificates.h"

namespace repro::testing {
namespace {

using nlohmann::json;

json Metadata(absl::string_view name, absl::string_view job) {
  json metadata = {
      {"name", std::string(name)}, {"namespace", "ml"}, {"labels", {{"app", "trainer"}}}};
  if (!job.empty()) metadata["labels"]["repro.dev/job"] = std::string(job);
  return metadata;
}

json PodSpec() {
  return json::parse(R"({
    "restartPolicy": "Never",
    "initContainers": [{"name": "fetch-code", "image": "alpine:3.20", "command": ["true"]}],
    "containers": [
      {"name": "trainer", "image": "pytorch/pytorch:2.3.1", "command": ["python", "train.py"],
       "env": [{"name": "EPOCHS", "value": "10"},
               {"name": "LD_PRELOAD", "value": "/usr/lib/libtcmalloc.so.4"}],
       "volumeMounts": [{"name": "data", "mountPath": "/ml_data", "readOnly": true}]},
      {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]}
    ],
    "volumes": [{"name": "data", "hostPath": {"path": "/ml_data", "type": "Directory"}}]
  })");
}

}  // namespace

json TrainingPod(absl::string_view job) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", Metadata("train-0", job)},
          {"spec", PodSpec()}};
}

json TrainingJob(absl::string_view job) {
  json template_metadata = Metadata("", job);
  template_metadata.erase("name");
  template_metadata.erase("namespace");
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", Metadata("train", "")},
          {"spec",
           {{"completions", 2},
            {"parallelism", 2},
            {"completionMode", "Indexed"},
            {"template", {{"metadata", template_metadata}, {"spec", PodSpec()}}}}}};
}

json AdmissionReviewFor(const json& object, absl::string_view uid, absl::string_view operation) {
  const std::string api_version = object.value("apiVersion", "v1");
  const size_t slash = api_version.find('/');
  const std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
  const std::string version = api_version.substr(slash == std::string::npos ? 0 : slash + 1);
  const std::string kind = object.value("kind", "");
  std::string resource = kind;
  for (char& c : resource) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  resource += "s";
  const json metadata = object.value("metadata", json::object());
  json request = {
      {"uid", std::string(uid)},
      {"kind", {{"group", group}, {"version", version}, {"kind", kind}}},
      {"resource", {{"group", group}, {"version", version}, {"resource", resource}}},
      {"requestKind", {{"group", group}, {"version", version}, {"kind", kind}}},
      {"namespace", metadata.value("namespace", "")},
      {"operation", std::string(operation)},
      {"userInfo",
       {{"username", "kubernetes-admin"}, {"groups", {"system:masters", "system:authenticated"}}}},
      {"object", operation == "DELETE" ? json(nullptr) : object},
      {"oldObject", operation == "CREATE" ? json(nullptr) : object},
      {"dryRun", false}};
  if (metadata.contains("name")) request["name"] = metadata["name"];
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", request}};
}

absl::StatusOr<json> PatchOf(const json& review) {
  const json response = review.value("response", json::object());
  if (!response.contains("patch")) return json::array();
  if (response.value("patchType", "") != "JSONPatch") {
    return absl::InvalidArgumentError("response.patchType is not JSONPatch");
  }
  std::string decoded;
  if (!response["patch"].is_string() ||
      !absl::Base64Unescape(response["patch"].get<std::string>(), &decoded)) {
    return absl::InvalidArgumentError("response.patch is not base64");
  }
  json patch = json::parse(decoded, nullptr, /*allow_exceptions=*/false);
  if (!patch.is_array()) return absl::InvalidArgumentError("response.patch is not a JSON array");
  return patch;
}

absl::StatusOr<json> ApplyJsonPatch(const json& document, const json& patch) {
  RunOptions options;
  options.stdin_text = json{{"document", document}, {"patch", patch}}.dump();
  RunResult run =
      RunCommand({"/usr/bin/python3", SourcePath("tests/testutil/apply_json_patch.py")}, options);
  if (run.exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("apply_json_patch.py exited ", run.exit_code, ": ", run.stderr_text));
  }
  json result = json::parse(run.stdout_text, nullptr, /*allow_exceptions=*/false);
  if (result.is_discarded()) return absl::InternalError("apply_json_patch.py printed no JSON");
  return result;
}

absl::StatusOr<WebhookCertificates> MakeWebhookCertificates(const std::string& dir) {
  absl::StatusOr<TestKeyPair> ca = MakeTestCa(dir, "ca");
  if (!ca.ok()) return ca.status();
  absl::StatusOr<TestKeyPair> server = MakeTestLeaf(*ca, dir, "tls", "localhost", kLocalServerSans);
  if (!server.ok()) return server.status();
  return WebhookCertificates{ca->cert, server->cert, server->key};
}

}  // namespace repro::testing
