#include "daemon/csi/csi_service.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"

namespace repro {

CsiNodePlugin::CsiNodePlugin(CsiNodePluginOptions options, PodVolumes* volumes,
                             CallerIdentities* identities, Authorizer* auth)
    : options_(std::move(options)), volumes_(volumes), identities_(identities), auth_(auth) {}

absl::Status CsiNodePlugin::CheckAdmin(absl::string_view action,
                                       const grpc::ServerContext& context) {
  return auth_->CheckAdmin(action, identities_->Of(context));
}

grpc::Status CsiNodePlugin::IdentityService::GetPluginInfo(
    grpc::ServerContext*, const csi::v1::GetPluginInfoRequest*,
    csi::v1::GetPluginInfoResponse* response) {
  response->set_name(options_->driver_name);
  response->set_vendor_version(options_->version);
  return grpc::Status::OK;
}

grpc::Status CsiNodePlugin::IdentityService::GetPluginCapabilities(
    grpc::ServerContext*, const csi::v1::GetPluginCapabilitiesRequest*,
    csi::v1::GetPluginCapabilitiesResponse*) {
  return grpc::Status::OK;  // a node plugin only: no controller service, no topology
}

grpc::Status CsiNodePlugin::IdentityService::Probe(grpc::ServerContext*,
                                                   const csi::v1::ProbeRequest*,
                                                   csi::v1::ProbeResponse* response) {
  response->mutable_ready()->set_value(true);
  return grpc::Status::OK;
}

grpc::Status CsiNodePlugin::NodeService::NodePublishVolume(
    grpc::ServerContext* context, const csi::v1::NodePublishVolumeRequest* request,
    csi::v1::NodePublishVolumeResponse*) {
  if (absl::Status s = plugin_->CheckAdmin("NodePublishVolume", *context); !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (request->volume_capability().has_block()) {
    return ToGrpcStatus(absl::InvalidArgumentError("the shim volume is a mount, not a block device"));
  }
  const std::map<std::string, std::string> volume_context(request->volume_context().begin(),
                                                          request->volume_context().end());
  absl::StatusOr<PodInfo> pod = PodInfoFromVolumeContext(volume_context);
  if (!pod.ok()) return ToGrpcStatus(pod.status());
  return ToGrpcStatus(plugin_->volumes_->Publish(
      {.volume_id = request->volume_id(), .target_path = request->target_path(), .pod = *pod}));
}

grpc::Status CsiNodePlugin::NodeService::NodeUnpublishVolume(
    grpc::ServerContext* context, const csi::v1::NodeUnpublishVolumeRequest* request,
    csi::v1::NodeUnpublishVolumeResponse*) {
  if (absl::Status s = plugin_->CheckAdmin("NodeUnpublishVolume", *context); !s.ok()) {
    return ToGrpcStatus(s);
  }
  return ToGrpcStatus(plugin_->volumes_->Unpublish(request->volume_id(), request->target_path()));
}

grpc::Status CsiNodePlugin::NodeService::NodeGetCapabilities(
    grpc::ServerContext*, const csi::v1::NodeGetCapabilitiesRequest*,
    csi::v1::NodeGetCapabilitiesResponse*) {
  return grpc::Status::OK;  // no staging, no volume stats
}

grpc::Status CsiNodePlugin::NodeService::NodeGetInfo(grpc::ServerContext*,
                                                     const csi::v1::NodeGetInfoRequest*,
                                                     csi::v1::NodeGetInfoResponse* response) {
  response->set_node_id(plugin_->options_.node_id);
  return grpc::Status::OK;
}

}  // namespace repro
