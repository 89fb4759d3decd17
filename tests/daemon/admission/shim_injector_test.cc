// ShimInjector's patches, applied by a reference JSON Patch implementation (python3-jsonpatch).
#include "daemon/admission/shim_injector.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/admission_reviews.h"

namespace repro {
namespace {

using nlohmann::json;
using ::repro::testing::ApplyJsonPatch;
using ::repro::testing::TrainingPod;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kLib[] = "/opt/repro/libreproshim.so";
constexpr char kSocket[] = "/opt/repro/shim.sock";

class ShimInjectorTest : public ::testing::Test {
 protected:
  // Patches `pod`, applies the patch, and checks that a second look changes nothing.
  json Inject(const json& pod) {
    absl::StatusOr<json> patch = injector_.Patch(pod, pinned_);
    EXPECT_TRUE(patch.ok()) << patch.status();
    if (!patch.ok()) return pod;
    EXPECT_FALSE(patch->empty());
    absl::StatusOr<json> injected = ApplyJsonPatch(pod, *patch);
    EXPECT_TRUE(injected.ok()) << injected.status() << "\npatch: " << patch->dump();
    if (!injected.ok()) return pod;
    absl::StatusOr<json> again = injector_.Patch(*injected, pinned_);
    EXPECT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, json::array()) << "not idempotent";
    return *injected;
  }

  static json Env(const json& container, const std::string& name) {
    for (const json& var : container.value("env", json::array())) {
      if (var.value("name", "") == name) return var;
    }
    return nullptr;
  }

  static json Named(const json& list, const std::string& name) {
    for (const json& item : list) {
      if (item.value("name", "") == name) return item;
    }
    return nullptr;
  }

  // `pod` with everything the injector adds taken away again, and LD_PRELOAD restored.
  static json Uninjected(json pod) {
    json& spec = pod["spec"];
    auto drop = [](json& list, auto is_ours) {
      json kept = json::array();
      for (json& item : list) {
        if (!is_ours(item)) kept.push_back(std::move(item));
      }
      list = std::move(kept);
    };
    auto repro_named = [](const json& item) {
      return item.value("name", "").rfind("repro-", 0) == 0 ||
             item.value("name", "").rfind("REPRO_", 0) == 0;
    };
    drop(spec["volumes"], repro_named);
    drop(spec["initContainers"], repro_named);
    for (json& container : spec["containers"]) {
      drop(container["volumeMounts"], repro_named);
      drop(container["env"], repro_named);
      drop(container["env"], [](const json& v) {
        return v == json{{"name", "LD_PRELOAD"}, {"value", kLib}};
      });
      for (json& var : container["env"]) {
        if (var["name"] == "LD_PRELOAD") {
          var["value"] = var["value"].get<std::string>().substr(std::string(kLib).size() + 1);
        }
      }
      if (container["env"].empty()) container.erase("env");
      if (container["volumeMounts"].empty()) container.erase("volumeMounts");
    }
    return pod;
  }

  // ctr@v1 (ctr also has v0 and v2) and clicks@c3, both under /ml.
  static PinnedData Pinned() {
    PinnedData data;
    for (const auto& [dataset, version] :
         {std::pair<std::string, std::string>{"ctr", "v1"}, {"clicks", "c3"}}) {
      v1::PinnedVersion* v = data.pin.add_versions();
      v->set_dataset(dataset);
      v->set_version(version);
      v->set_root("/ml/" + dataset);
      v->set_path("/ml/" + dataset + "/" + version);
    }
    for (const char* version : {"v0", "v1", "v2"}) {
      v1::VersionInfo& info = data.registered.emplace_back();
      info.set_dataset("ctr");
      info.set_version(version);
      info.set_root("/ml/ctr");
      info.set_path(std::string("/ml/ctr/") + version);
    }
    return data;
  }

  ShimInjector injector_ = *ShimInjector::Create({.csi_driver = "shim.repro.dev"});
  PinnedData pinned_ = Pinned();
};

TEST_F(ShimInjectorTest, InjectsTheShimAndKeepsThePodsOwnSpec) {
  const json pod = TrainingPod("train-42");
  const json injected = Inject(pod);
  const json& spec = injected["spec"];

  // No init container and no host path: one inline CSI volume, which the node plugin fills with
  // the shim and this Pod's own socket.
  EXPECT_EQ(spec["initContainers"], pod["spec"]["initContainers"]);
  ASSERT_EQ(spec["volumes"].size(), pod["spec"]["volumes"].size() + 1);
  EXPECT_EQ(spec["volumes"][0], pod["spec"]["volumes"][0]);
  EXPECT_EQ(Named(spec["volumes"], "repro-shim"),
            json::parse(R"({"name": "repro-shim",
                            "csi": {"driver": "shim.repro.dev", "readOnly": true}})"));

  for (const json& container : spec["containers"]) {
    EXPECT_EQ(Env(container, "REPRO_JOB")["value"], "train-42");
    EXPECT_EQ(Env(container, "REPRO_SHIM_SOCKET")["value"], kSocket);
    EXPECT_EQ(Env(container, "REPRO_MODE")["value"], "record");
    EXPECT_EQ(Env(container, "REPRO_RANK"), nullptr);  // not an Indexed Job
    // The launcher identity each process start journals (downward API).
    EXPECT_EQ(Env(container, "REPRO_POD_UID")["valueFrom"]["fieldRef"]["fieldPath"],
              "metadata.uid");
    EXPECT_EQ(Named(container["volumeMounts"], "repro-shim"),
              json::parse(R"({"name": "repro-shim", "mountPath": "/opt/repro",
                              "readOnly": true})"));
  }
  // Ours first, theirs kept; the sidecar had none.
  EXPECT_EQ(Env(spec["containers"][0], "LD_PRELOAD")["value"],
            std::string(kLib) + ":/usr/lib/libtcmalloc.so.4");
  EXPECT_EQ(Env(spec["containers"][1], "LD_PRELOAD")["value"], kLib);
  EXPECT_EQ(Env(spec["containers"][0], "EPOCHS")["value"], "10");

  EXPECT_EQ(Uninjected(injected), pod);
}

TEST_F(ShimInjectorTest, InjectsIntoAPodWithNoEnvVolumesOrInitContainers) {
  const json pod = json::parse(R"({"apiVersion": "v1", "kind": "Pod",
      "metadata": {"name": "p", "labels": {"repro.dev/job": "j"},
                   "annotations": {"repro.dev/mode": "enforce"}},
      "spec": {"containers": [{"name": "c", "image": "python:3.11"}]}})");
  const json injected = Inject(pod);
  EXPECT_FALSE(injected["spec"].contains("initContainers"));
  EXPECT_EQ(injected["spec"]["volumes"].size(), 1u);
  const json& container = injected["spec"]["containers"][0];
  EXPECT_EQ(container["env"],
            json::parse(R"([{"name": "LD_PRELOAD", "value": "/opt/repro/libreproshim.so"},
                            {"name": "REPRO_JOB", "value": "j"},
                            {"name": "REPRO_SHIM_SOCKET", "value": "/opt/repro/shim.sock"},
                            {"name": "REPRO_MODE", "value": "enforce"},
                            {"name": "REPRO_PINNED",
                             "value": "ctr@v1=/ml/ctr/v1:clicks@c3=/ml/clicks/c3"},
                            {"name": "REPRO_POD_NAME",
                             "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "REPRO_POD_NAMESPACE",
                             "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "REPRO_POD_UID",
                             "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}])"));
  EXPECT_EQ(container["volumeMounts"].size(), 1u);
}

TEST_F(ShimInjectorTest, ReplacesStaleValuesOfItsOwnVariables) {
  json pod = TrainingPod("train-42");
  pod["spec"]["containers"][1]["env"] = json::parse(R"([
      {"name": "REPRO_JOB", "value": "someone-else"}, {"name": "REPRO_MODE", "value": "record"},
      {"name": "LD_PRELOAD", "value": "/opt/repro/libreproshim.so /usr/lib/libjemalloc.so"}])");
  const json injected = Inject(pod);
  const json& sidecar = injected["spec"]["containers"][1];
  EXPECT_EQ(sidecar["env"][0], json::parse(R"({"name": "REPRO_JOB", "value": "train-42"})"));
  EXPECT_EQ(sidecar["env"][1]["value"], "record");
  // Already preloaded (ld.so also separates with blanks): left alone.
  EXPECT_EQ(sidecar["env"][2]["value"], "/opt/repro/libreproshim.so /usr/lib/libjemalloc.so");
  EXPECT_EQ(Env(sidecar, "REPRO_SHIM_SOCKET")["value"], kSocket);
}

TEST_F(ShimInjectorTest, HandsEveryContainerThePinnedVersions) {
  json pod = TrainingPod("train-42");
  pod["spec"]["containers"][1]["env"] =
      json::parse(R"([{"name": "REPRO_PINNED", "value": "ctr@v2=/ml/ctr/v2"}])");
  const json injected = Inject(pod);
  for (const json& container : injected["spec"]["containers"]) {
    EXPECT_EQ(Env(container, "REPRO_PINNED")["value"], "ctr@v1=/ml/ctr/v1:clicks@c3=/ml/clicks/c3");
  }
  // A job without a pin gets an empty value (/validate judges the Pod), never a stale one.
  pinned_ = PinnedData();
  const json unpinned = Inject(pod);
  EXPECT_EQ(Env(unpinned["spec"]["containers"][0], "REPRO_PINNED")["value"], "");
  EXPECT_EQ(Env(unpinned["spec"]["containers"][1], "REPRO_PINNED")["value"], "");
}

TEST_F(ShimInjectorTest, PointsHostPathVolumesThroughAnAliasAtThePinnedVersion) {
  json pod = TrainingPod("train-42");
  json& volumes = pod["spec"]["volumes"];
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/ml/ctr/latest", "/ml/ctr/v1"},
      {"/ml/ctr/current/train/", "/ml/ctr/v1/train"},
      {"/ml/clicks/latest/", "/ml/clicks/c3"},
      {"/ml/ctr", "/ml/ctr"},                    // the root: its aliases are unknown here
      {"/ml/ctr/v2", "/ml/ctr/v2"},              // another registered version: the shim rules
      {"/ml/ctr/v1/train", "/ml/ctr/v1/train"},  // already the pinned one
      {"/ml/ctr/../ctr2/latest", "/ml/ctr/../ctr2/latest"},
      {"/ml/ctrx/latest", "/ml/ctrx/latest"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    volumes.push_back({{"name", absl::StrCat("d", i)}, {"hostPath", {{"path", cases[i].first}}}});
  }
  // d0 mounted at its own (alias) path, d1 elsewhere.
  json& mounts = pod["spec"]["containers"][0]["volumeMounts"];
  mounts.push_back({{"name", "d0"}, {"mountPath", "/ml/ctr/latest/"}});
  mounts.push_back({{"name", "d1"}, {"mountPath", "/data"}});
  const json injected = Inject(pod);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(Named(injected["spec"]["volumes"], absl::StrCat("d", i))["hostPath"]["path"],
              cases[i].second)
        << cases[i].first;
  }
  // The shim rewrites reads of /ml/ctr/latest/x to /ml/ctr/v1/x: that path is there too.
  const json& injected_mounts = injected["spec"]["containers"][0]["volumeMounts"];
  json d0_mounts = json::array();
  for (const json& mount : injected_mounts) {
    if (mount["name"] == "d0") d0_mounts.push_back(mount);
  }
  EXPECT_EQ(d0_mounts, json::parse(R"([{"name": "d0", "mountPath": "/ml/ctr/latest/"},
      {"name": "d0", "mountPath": "/ml/ctr/v1", "readOnly": true}])"));
  EXPECT_EQ(injected_mounts.size(), mounts.size() + 2);  // d0 at v1, the shim volume
}

TEST_F(ShimInjectorTest, KeepsAPreloadThatComesFromAConfigMap) {
  json pod = TrainingPod("train-42");
  pod["spec"]["containers"][0]["env"][1] = json::parse(
      R"({"name": "LD_PRELOAD", "valueFrom": {"configMapKeyRef": {"name": "tuning", "key": "preload"}}})");
  const json injected = Inject(pod);
  const json& env = injected["spec"]["containers"][0]["env"];
  EXPECT_EQ(env[1]["name"], "REPRO_USER_LD_PRELOAD");
  EXPECT_EQ(env[1]["valueFrom"], pod["spec"]["containers"][0]["env"][1]["valueFrom"]);
  // Defined later than the variable it references, as Kubernetes' $(VAR) expansion requires.
  EXPECT_EQ(Env(injected["spec"]["containers"][0], "LD_PRELOAD")["value"],
            std::string(kLib) + ":$(REPRO_USER_LD_PRELOAD)");
}

TEST_F(ShimInjectorTest, GivesPodsOfAnIndexedJobTheirRank) {
  json pod = TrainingPod("train-42");
  pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] = "3";
  pod["spec"]["containers"][1]["env"] = json::parse(R"([{"name": "RANK", "value": "7"}])");
  const json injected = Inject(pod);
  EXPECT_EQ(Env(injected["spec"]["containers"][0], "REPRO_RANK")["valueFrom"],
            json::parse(R"({"fieldRef": {"fieldPath":
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"}})"));
  // A container that sets RANK itself keeps it as the shim's rank.
  EXPECT_EQ(Env(injected["spec"]["containers"][1], "REPRO_RANK"), nullptr);
}

TEST_F(ShimInjectorTest, LeavesAMountAtTheShimPathToTheContainer) {
  json pod = TrainingPod("train-42");
  pod["spec"]["containers"][0]["volumeMounts"].push_back(
      {{"name", "my-tools"}, {"mountPath", "/opt/repro"}});
  const json injected = Inject(pod);
  const json& mounts = injected["spec"]["containers"][0]["volumeMounts"];
  EXPECT_EQ(Named(mounts, "repro-shim"), nullptr);
  EXPECT_NE(Named(mounts, "my-tools"), nullptr);
  EXPECT_NE(Named(injected["spec"]["containers"][1]["volumeMounts"], "repro-shim"), nullptr);
}

TEST_F(ShimInjectorTest, NamesTheConfiguredDriver) {
  absl::StatusOr<ShimInjector> injector = ShimInjector::Create({.csi_driver = "shim.example.org"});
  ASSERT_TRUE(injector.ok()) << injector.status();
  absl::StatusOr<json> patch = injector->Patch(TrainingPod("j"), pinned_);
  ASSERT_TRUE(patch.ok());
  EXPECT_THAT(patch->dump(), HasSubstr(R"({"driver":"shim.example.org","readOnly":true})"));
  EXPECT_THAT(patch->dump(), Not(HasSubstr("hostPath")));
}

TEST_F(ShimInjectorTest, RefusesPodsItCannotInject) {
  EXPECT_THAT(injector_.Patch(TrainingPod(""), pinned_).status().message(),
              HasSubstr("no repro.dev/job label"));
  json bad_mode = TrainingPod("j");
  bad_mode["metadata"]["annotations"]["repro.dev/mode"] = "ENFORCE";
  EXPECT_THAT(injector_.Patch(bad_mode, pinned_).status().message(),
              HasSubstr("must be \"record\" or"));
  json bad_containers = TrainingPod("j");
  bad_containers["spec"]["containers"] = "c";
  EXPECT_THAT(injector_.Patch(bad_containers, pinned_).status().message(),
              HasSubstr("/spec/containers is not a list"));
  json bad_env = TrainingPod("j");
  bad_env["spec"]["containers"][0]["env"] = {{"A", "1"}};
  EXPECT_THAT(injector_.Patch(bad_env, pinned_).status().message(),
              HasSubstr("/spec/containers/0/env is not a list"));
  json bad_volumes = TrainingPod("j");
  bad_volumes["spec"]["volumes"] = 3;
  EXPECT_THAT(injector_.Patch(bad_volumes, pinned_).status().message(),
              HasSubstr("/spec/volumes is not a list"));
}

TEST_F(ShimInjectorTest, RefusesUnusableOptions) {
  for (const char* driver : {"", "shim repro", "-shim.repro.dev", "shim.repro.dev.", "a/b",
                             "Shim_Repro"}) {
    absl::StatusOr<ShimInjector> injector = ShimInjector::Create({.csi_driver = driver});
    EXPECT_EQ(injector.status().code(), absl::StatusCode::kInvalidArgument) << driver;
  }
}

}  // namespace
}  // namespace repro
