// reprod's CSI node plugin, called exactly as kubelet calls it (real gRPC on its Unix socket,
// target paths under a kubelet directory), with real processes under the real shim using the
// volumes it publishes: a Pod's processes speak for their namespace (k8s:<namespace>), whatever
// uid they run as, so a Pod of namespace B cannot say HELLO for a job pinned for namespace A.
// Needs root (bind mounts), as the DaemonSet's reprod has.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "csi/v1/csi.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;

// Whether `path` is a mount point in this mount namespace (reprod shares it).
bool IsMounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point == path) return true;
  }
  return false;
}

class CsiTest : public ShimJobTest {
 protected:
  std::vector<std::string> ReprodFlags() override {
    kubelet_ = std::filesystem::canonical(dir_.path()).string() + "/kubelet";
    std::filesystem::create_directories(kubelet_);
    csi_socket_ = dir_.Path("plugin/csi.sock");
    std::vector<std::string> flags = MetricsFlags();
    flags.insert(flags.end(), {"--csi_endpoint=" + csi_socket_, "--csi_kubelet_dir=" + kubelet_,
                               "--csi_shim_library=" + LibPath("libreproshim.so")});
    return flags;
  }

  void SetUp() override {
    ShimJobTest::SetUp();
    if (HasFatalFailure()) return;
    // The shim reads files as the process does: the test's directories are reachable by all.
    chmod(dir_.path().c_str(), 0755);
    auto channel = grpc::CreateChannel("unix:" + csi_socket_, grpc::InsecureChannelCredentials());
    node_ = csi::v1::Node::NewStub(channel);
    identity_ = csi::v1::Identity::NewStub(channel);
  }

  void TearDown() override {
    for (const std::string& target : targets_) umount2(target.c_str(), MNT_DETACH);
  }

  // Where kubelet publishes a Pod's inline volume.
  std::string TargetOf(const std::string& pod_uid) {
    return absl::StrCat(kubelet_, "/pods/", pod_uid, "/volumes/kubernetes.io~csi/repro-shim/mount");
  }

  // volume_context as kubelet sends it for an inline volume with podInfoOnMount.
  static std::map<std::string, std::string> PodContext(const std::string& ns,
                                                       const std::string& pod_uid) {
    return {{"csi.storage.k8s.io/ephemeral", "true"},
            {"csi.storage.k8s.io/pod.namespace", ns},
            {"csi.storage.k8s.io/pod.name", "trainer-" + pod_uid},
            {"csi.storage.k8s.io/pod.uid", pod_uid},
            {"csi.storage.k8s.io/serviceAccount.name", "default"}};
  }

  grpc::Status Publish(const std::string& volume_id, const std::string& target,
                       const std::map<std::string, std::string>& context) {
    csi::v1::NodePublishVolumeRequest request;
    request.set_volume_id(volume_id);
    request.set_target_path(target);
    request.set_readonly(true);
    request.mutable_volume_capability()->mutable_mount();
    request.mutable_volume_capability()->mutable_access_mode()->set_mode(
        csi::v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    for (const auto& [key, value] : context) (*request.mutable_volume_context())[key] = value;
    grpc::ClientContext call;
    call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    csi::v1::NodePublishVolumeResponse response;
    grpc::Status status = node_->NodePublishVolume(&call, request, &response);
    if (status.ok()) targets_.push_back(target);
    return status;
  }

  // Publishes the shim volume of Pod `pod_uid` in namespace `ns`; returns its target path.
  std::string PublishPod(const std::string& ns, const std::string& pod_uid) {
    const std::string target = TargetOf(pod_uid);
    grpc::Status status = Publish("csi-" + pod_uid, target, PodContext(ns, pod_uid));
    EXPECT_TRUE(status.ok()) << status.error_message();
    return target;
  }

  grpc::Status Unpublish(const std::string& volume_id, const std::string& target) {
    csi::v1::NodeUnpublishVolumeRequest request;
    request.set_volume_id(volume_id);
    request.set_target_path(target);
    grpc::ClientContext call;
    csi::v1::NodeUnpublishVolumeResponse response;
    return node_->NodeUnpublishVolume(&call, request, &response);
  }

  // Runs `cat a.csv` under the shim of the volume at `target` as a process of `job` (as root:
  // a container running as root gets nothing more through its Pod's socket).
  RunResult RunInPod(const std::string& target, const std::string& job) {
    return RunAs(job, "record", {"/bin/cat", Root() + "/latest/a.csv"},
                 {{"LD_PRELOAD", target + "/libreproshim.so"},
                  {"REPRO_SHIM_SOCKET", target + "/shim.sock"}});
  }

  // HELLO for `job` on `socket`: 0 accepted, 3 refused, 1 unreachable.
  static int Hello(const std::string& socket, const std::string& job) {
    return RunCommand({BinPath("shim_loaded_sender"), socket, job}).exit_code;
  }
  // HELLO for `job` through the socket in the volume published at `target`.
  static int HelloInPod(const std::string& target, const std::string& job) {
    return Hello(target + "/shim.sock", job);
  }

  std::string kubelet_;
  std::string csi_socket_;
  std::unique_ptr<csi::v1::Node::Stub> node_;
  std::unique_ptr<csi::v1::Identity::Stub> identity_;
  std::vector<std::string> targets_;  // unmounted at the end, whatever happened
};

TEST_F(CsiTest, AnswersTheIdentityAndNodeInfoCallsOfKubeletAndTheRegistrar) {
  grpc::ClientContext c1, c2, c3, c4;
  csi::v1::GetPluginInfoResponse info;
  ASSERT_TRUE(identity_->GetPluginInfo(&c1, {}, &info).ok());
  EXPECT_EQ(info.name(), "shim.repro.dev");
  EXPECT_FALSE(info.vendor_version().empty());
  csi::v1::ProbeResponse probe;
  ASSERT_TRUE(identity_->Probe(&c2, {}, &probe).ok());
  EXPECT_TRUE(probe.ready().value());
  csi::v1::NodeGetInfoResponse node;
  ASSERT_TRUE(node_->NodeGetInfo(&c3, {}, &node).ok());
  EXPECT_EQ(node.node_id(), "test-node");
  csi::v1::NodeGetCapabilitiesResponse capabilities;
  ASSERT_TRUE(node_->NodeGetCapabilities(&c4, {}, &capabilities).ok());
  EXPECT_EQ(capabilities.capabilities_size(), 0);  // no staging: publish is all there is
}

TEST_F(CsiTest, APodSpeaksForItsNamespaceOnly) {
  RunResult pin = reprod_->Ctl({"pin", "job-a", "ds@v1", "--seed", "7", "--owner", "k8s:team-a"});
  ASSERT_EQ(pin.exit_code, 0) << pin.stderr_text;
  const std::string pod_a = PublishPod("team-a", "0a1b-aaaa");
  const std::string pod_b = PublishPod("team-b", "0a1b-bbbb");
  ASSERT_FALSE(HasFailure());

  // What a Pod sees: the shim library and its own socket, read-only.
  for (const std::string& target : {pod_a, pod_b}) {
    EXPECT_TRUE(IsMounted(target)) << target;
    struct stat st;
    EXPECT_EQ(stat((target + "/libreproshim.so").c_str(), &st), 0) << target;
    ASSERT_EQ(stat((target + "/shim.sock").c_str(), &st), 0) << target;
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_NE(access((target + "/forged").c_str(), F_OK), 0);
    std::ofstream(target + "/forged") << "x";
    EXPECT_NE(access((target + "/forged").c_str(), F_OK), 0) << "the volume is writable";
  }
  const std::vector<v1::JournalEntry> before = Journal("job-a");

  // Namespace B's Pod, even as root, is refused as job-a's owner is k8s:team-a.
  RunResult b = RunInPod(pod_b, "job-a");
  EXPECT_EQ(b.exit_code, 0) << b.stderr_text;  // record mode: the process runs on
  EXPECT_EQ(b.stdout_text, Content("v2", "a.csv"));  // not redirected: no pin for it
  WaitForMetric("repro_denied_total{reason=\"not_owner\",rpc=\"ShimHello\"} 1");
  EXPECT_EQ(HelloInPod(pod_b, "job-a"), 3);
  EXPECT_EQ(Journal("job-a").size(), before.size());

  // Namespace A's Pod is the job's owner: the pin holds and the process is journaled.
  RunResult a = RunInPod(pod_a, "job-a");
  EXPECT_EQ(a.exit_code, 0) << a.stderr_text;
  EXPECT_EQ(a.stdout_text, Content("v1", "a.csv"));  // latest/ shows the pinned version
  std::map<std::string, v1::DataOpen> opens = WaitForOpens("job-a", 1);
  EXPECT_EQ(opens.count("a.csv"), 1u);
  EXPECT_EQ(HelloInPod(pod_a, "job-a"), 0);

  // The uid-based main socket is unchanged: a root process there is an admin.
  EXPECT_EQ(Hello(reprod_->shim_socket(), "job-a"), 0);
}

TEST_F(CsiTest, UnpublishRemovesTheMountTheSocketAndTheDirectory) {
  RunResult pin = reprod_->Ctl({"pin", "job-a", "ds@v1", "--owner", "k8s:team-a"});
  ASSERT_EQ(pin.exit_code, 0) << pin.stderr_text;
  const std::string target = PublishPod("team-a", "0a1b-cccc");
  ASSERT_EQ(HelloInPod(target, "job-a"), 0);
  // kubelet retries: publishing the same volume at the same target again is fine.
  EXPECT_TRUE(Publish("csi-0a1b-cccc", target, PodContext("team-a", "0a1b-cccc")).ok());
  // Another target for the same volume is not.
  grpc::Status twice =
      Publish("csi-0a1b-cccc", TargetOf("0a1b-dddd"), PodContext("team-a", "0a1b-cccc"));
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::ALREADY_EXISTS) << twice.error_message();

  grpc::Status status = Unpublish("csi-0a1b-cccc", target);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(IsMounted(target));
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_TRUE(std::filesystem::is_empty(reprod_->data_dir() + "/csi/pods"));
  // Unpublishing again (kubelet retries) is not an error.
  status = Unpublish("csi-0a1b-cccc", target);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(CsiTest, MalformedRequestsAndTargetsOutsideKubeletAreRefused) {
  const std::string target = TargetOf("0a1b-eeee");
  auto without = [](std::map<std::string, std::string> context, const std::string& key) {
    context.erase(key);
    return context;
  };
  auto with = [](std::map<std::string, std::string> context, const std::string& key,
                 const std::string& value) {
    context[key] = value;
    return context;
  };
  const std::map<std::string, std::string> good = PodContext("team-a", "0a1b-eeee");
  const std::map<std::string, std::map<std::string, std::string>> bad_contexts = {
      {"no namespace", without(good, "csi.storage.k8s.io/pod.namespace")},
      {"no pod uid", without(good, "csi.storage.k8s.io/pod.uid")},
      {"not ephemeral", without(good, "csi.storage.k8s.io/ephemeral")},
      {"empty context", {}},
      {"bad namespace", with(good, "csi.storage.k8s.io/pod.namespace", "Team_A")},
      {"namespace with a slash", with(good, "csi.storage.k8s.io/pod.namespace", "a/b")},
  };
  for (const auto& [what, context] : bad_contexts) {
    grpc::Status status = Publish("csi-0a1b-eeee", target, context);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << what << ": " << status.error_message();
  }
  grpc::Status no_id = Publish("", target, good);
  EXPECT_EQ(no_id.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << no_id.error_message();

  const std::string outside = dir_.Path("elsewhere/mount");
  std::filesystem::create_directories(dir_.Path("elsewhere"));
  std::filesystem::create_directory_symlink(dir_.Path("elsewhere"), kubelet_ + "/escape");
  for (const std::string& path :
       {outside, kubelet_ + "/../elsewhere/mount", kubelet_ + "/escape/mount",
        std::string("relative/mount"), kubelet_}) {
    grpc::Status status = Publish("csi-0a1b-eeee", path, good);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << path << ": " << status.error_message();
    EXPECT_FALSE(IsMounted(path)) << path;
  }
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_FALSE(std::filesystem::exists(outside));
  grpc::Status unpublish = Unpublish("csi-0a1b-eeee", outside);
  EXPECT_EQ(unpublish.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Publishing grants a namespace's identity to a socket: only kubelet (root) may ask. The CSI
// socket is reachable by every local user, like the API socket, and authorized per call.
TEST_F(CsiTest, OnlyAnAdminMayPublishAVolume) {
  const std::string target = TargetOf("0a1b-9999");
  chmod(kubelet_.c_str(), 0755);
  RunResult nobody = RunCommand({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                 BinPath("csi_publish_call"), csi_socket_, "csi-0a1b-9999",
                                 target, "team-a"});
  EXPECT_EQ(nobody.exit_code, 2) << nobody.stdout_text << nobody.stderr_text;
  EXPECT_THAT(nobody.stdout_text, HasSubstr("7 NodePublishVolume refused"));  // PERMISSION_DENIED
  EXPECT_FALSE(IsMounted(target));
  EXPECT_FALSE(std::filesystem::exists(target));
  WaitForMetric("repro_denied_total{reason=\"not_admin\",rpc=\"NodePublishVolume\"} 1");

  RunResult root = RunCommand(
      {BinPath("csi_publish_call"), csi_socket_, "csi-0a1b-9999", target, "team-a"});
  EXPECT_EQ(root.exit_code, 0) << root.stdout_text << root.stderr_text;
  targets_.push_back(target);
  EXPECT_TRUE(IsMounted(target));
  EXPECT_TRUE(Unpublish("csi-0a1b-9999", target).ok());
}

TEST_F(CsiTest, APodsSocketSurvivesARestartOfReprod) {
  RunResult pin = reprod_->Ctl({"pin", "job-a", "ds@v1", "--owner", "k8s:team-a"});
  ASSERT_EQ(pin.exit_code, 0) << pin.stderr_text;
  const std::string target = PublishPod("team-a", "0a1b-ffff");
  ASSERT_EQ(HelloInPod(target, "job-a"), 0);

  EXPECT_EQ(reprod_->Kill(SIGKILL), 128 + SIGKILL);
  EXPECT_EQ(HelloInPod(target, "job-a"), 1);  // nobody serves it
  ASSERT_TRUE(reprod_->Start().ok()) << reprod_->log();
  // The Pod keeps its mount; the socket in it is served again, with the Pod's identity.
  EXPECT_TRUE(IsMounted(target));
  EXPECT_EQ(HelloInPod(target, "job-a"), 0);
  EXPECT_EQ(HelloInPod(target, "job-b"), 3);  // not pinned: refused as before
  grpc::Status status = Unpublish("csi-0a1b-ffff", target);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

}  // namespace
}  // namespace repro::testing
