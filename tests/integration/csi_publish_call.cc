// csi_publish_call: calls NodePublishVolume of a CSI node plugin once, as kubelet would for an
// inline volume of a Pod in NAMESPACE, so that csi_test can make the call as another uid.
//
//   csi_publish_call SOCKET VOLUME_ID TARGET_PATH NAMESPACE
//
// Prints the gRPC status code's number and message on one line; exits 0 when the call succeeded,
// 2 when it was answered with an error, 1 on a usage error.
#include <cstdio>
#include <string>

#include <grpcpp/grpcpp.h>

#include "csi/v1/csi.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: csi_publish_call SOCKET VOLUME_ID TARGET_PATH NAMESPACE\n");
    return 1;
  }
  auto node = csi::v1::Node::NewStub(
      grpc::CreateChannel(std::string("unix:") + argv[1], grpc::InsecureChannelCredentials()));
  csi::v1::NodePublishVolumeRequest request;
  request.set_volume_id(argv[2]);
  request.set_target_path(argv[3]);
  request.set_readonly(true);
  request.mutable_volume_capability()->mutable_mount();
  auto& context = *request.mutable_volume_context();
  context["csi.storage.k8s.io/ephemeral"] = "true";
  context["csi.storage.k8s.io/pod.namespace"] = argv[4];
  context["csi.storage.k8s.io/pod.name"] = "forged";
  context["csi.storage.k8s.io/pod.uid"] = "0000-forged";
  grpc::ClientContext call;
  call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  csi::v1::NodePublishVolumeResponse response;
  grpc::Status status = node->NodePublishVolume(&call, request, &response);
  printf("%d %s\n", static_cast<int>(status.error_code()), status.error_message().c_str());
  return status.ok() ? 0 : 2;
}
