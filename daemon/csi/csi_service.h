// CsiNodePlugin: reprod's CSI node plugin (proto/csi/v1/csi.proto), the gRPC glue over
// PodVolumes: the Identity service (GetPluginInfo, GetPluginCapabilities, Probe) and the Node
// calls of an inline ephemeral volume (NodePublishVolume, NodeUnpublishVolume,
// NodeGetCapabilities, NodeGetInfo). kubelet and the node-driver-registrar call it on the Unix
// socket --csi_endpoint.
//
//   CsiNodePlugin plugin({.driver_name = "shim.repro.dev", .node_id = "node-1"}, &volumes,
//                        &identities, &authorizer);
//   GrpcServer::Start({.listen = {"unix:/var/lib/kubelet/plugins/shim.repro.dev/csi.sock"},
//                      .identities = &identities},
//                     {plugin.identity_service(), plugin.node_service()});
//
// Only admins (root: kubelet runs as root) may publish or unpublish: the identity a published
// socket grants is whatever volume_context says, so whoever may call NodePublishVolume could make
// a socket for any namespace. Every caller may ask the Identity service and the capabilities.
//
// Thread-safe.
#ifndef REPRO_DAEMON_CSI_CSI_SERVICE_H_
#define REPRO_DAEMON_CSI_CSI_SERVICE_H_

#include <string>

#include "csi/v1/csi.grpc.pb.h"
#include "daemon/auth/authorizer.h"
#include "daemon/csi/pod_volumes.h"
#include "daemon/service/caller_identity.h"

namespace repro {

struct CsiNodePluginOptions {
  std::string driver_name = "shim.repro.dev";  // the CSIDriver object's name
  std::string version;                          // vendor_version
  std::string node_id;                          // NodeGetInfo: the node's name
};

class CsiNodePlugin {
 public:
  // None of the pointers is owned; each must outlive the plugin.
  CsiNodePlugin(CsiNodePluginOptions options, PodVolumes* volumes, CallerIdentities* identities,
                Authorizer* auth);

  grpc::Service* identity_service() { return &identity_; }
  grpc::Service* node_service() { return &node_; }

 private:
  class IdentityService : public csi::v1::Identity::Service {
   public:
    explicit IdentityService(const CsiNodePluginOptions* options) : options_(options) {}
    grpc::Status GetPluginInfo(grpc::ServerContext*, const csi::v1::GetPluginInfoRequest*,
                               csi::v1::GetPluginInfoResponse* response) override;
    grpc::Status GetPluginCapabilities(grpc::ServerContext*,
                                       const csi::v1::GetPluginCapabilitiesRequest*,
                                       csi::v1::GetPluginCapabilitiesResponse* response) override;
    grpc::Status Probe(grpc::ServerContext*, const csi::v1::ProbeRequest*,
                       csi::v1::ProbeResponse* response) override;

   private:
    const CsiNodePluginOptions* const options_;
  };

  class NodeService : public csi::v1::Node::Service {
   public:
    explicit NodeService(CsiNodePlugin* plugin) : plugin_(plugin) {}
    grpc::Status NodePublishVolume(grpc::ServerContext* context,
                                   const csi::v1::NodePublishVolumeRequest* request,
                                   csi::v1::NodePublishVolumeResponse*) override;
    grpc::Status NodeUnpublishVolume(grpc::ServerContext* context,
                                     const csi::v1::NodeUnpublishVolumeRequest* request,
                                     csi::v1::NodeUnpublishVolumeResponse*) override;
    grpc::Status NodeGetCapabilities(grpc::ServerContext*,
                                     const csi::v1::NodeGetCapabilitiesRequest*,
                                     csi::v1::NodeGetCapabilitiesResponse*) override;
    grpc::Status NodeGetInfo(grpc::ServerContext*, const csi::v1::NodeGetInfoRequest*,
                             csi::v1::NodeGetInfoResponse* response) override;

   private:
    CsiNodePlugin* const plugin_;
  };

  // PERMISSION_DENIED (and counted) unless the caller of `action` is an admin.
  absl::Status CheckAdmin(absl::string_view action, const grpc::ServerContext& context);

  const CsiNodePluginOptions options_;
  PodVolumes* const volumes_;
  CallerIdentities* const identities_;
  Authorizer* const auth_;
  IdentityService identity_{&options_};
  NodeService node_{this};
};

}  // namespace repro

#endif  // REPRO_DAEMON_CSI_CSI_SERVICE_H_
