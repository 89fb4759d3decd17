// Reprod: the node daemon assembled from its parts. main.cc parses flags into a ReprodConfig and
// runs it; tests can start one in-process the same way.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Reprod> reprod, Reprod::Start(config));
//   WaitForTerminationSignal();
//   reprod->Shutdown();
#ifndef REPRO_DAEMON_APP_REPROD_H_
#define REPRO_DAEMON_APP_REPROD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/admission/admission_webhook.h"
#include "daemon/auth/authorizer.h"
#include "daemon/cluster/cluster_journals.h"
#include "daemon/cluster/head_publisher.h"
#include "daemon/cluster/node_presence.h"
#include "daemon/csi/csi_service.h"
#include "daemon/csi/pod_volumes.h"
#include "daemon/etcd/etcd_client.h"
#include "daemon/etcd/etcd_mirror.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/hashing/tree_hasher.h"
#include "daemon/host_probe/host_probe.h"
#include "daemon/http/http_server.h"
#include "daemon/metrics/metrics.h"
#include "daemon/pin_store/pin_store.h"
#include "daemon/quota/quotas.h"
#include "daemon/registry/auditor.h"
#include "daemon/registry/fact_recorder.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/registry/version_registry.h"
#include "daemon/service/grpc_server.h"
#include "daemon/service/repro_service.h"
#include "daemon/shim_socket/data_checker.h"
#include "daemon/shim_socket/shim_server.h"
#include "daemon/store/journal.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
#include "daemon/store/store_watch.h"
#include "daemon/cluster/tree_head_watch.h"

namespace repro {

// What one user or job may take of the node (flags of the same names; see README).
struct ReprodLimits {
  ShimServerOptions shim;  // its socket_path is ignored (ReprodConfig::shim_socket)
  QuotaOptions quotas;
  int max_streams = 64;
  int max_register_streams = 8;
};

// What the flags of reprod say (see DESIGN.md "Interfaces").
struct ReprodConfig {
  std::string data_dir;
  std::vector<std::string> grpc_listen;
  std::string shim_socket;
  std::string node_name;  // empty: the hostname
  std::vector<std::string> etcd_endpoints;  // empty: embedded mode
  EtcdSecurity etcd_security;               // TLS and user for etcd
  // Cluster mode: host:port where other nodes reach this node's gRPC API; empty: the first TCP
  // endpoint of grpc_listen.
  std::string advertise_addr;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string webhook_listen;
  std::string webhook_tls_cert;
  std::string webhook_tls_key;
  std::string metrics_listen;
  // The CSI node plugin (daemon/csi/): its Unix socket (empty: none), the CSIDriver's name (also
  // the driver of the volume the webhook injects), kubelet's root directory and the shim library
  // copied into Pods' volumes.
  std::string csi_endpoint;
  std::string csi_driver_name = "shim.repro.dev";
  std::string csi_kubelet_dir = "/var/lib/kubelet";
  std::string csi_shim_library = "/usr/lib/repro/libreproshim.so";
  // Authorization (daemon/auth/authorizer.h): Unix group names or numbers ("" = none), and
  // certificate identities ("a,b" or "@FILE").
  std::string admin_group;
  std::string auditor_group;
  std::string admin_identities;
  std::string auditor_identities;
  std::string socket_group;   // "" : the API socket is 0666
  bool insecure_tcp = false;  // plain TCP allowed on non-loopback addresses
  int hash_threads = 0;  // 0: one per core
  // The key that signs heads; empty: <data_dir>/node_key.pem, created when missing.
  std::string node_key;
  // The key this node signed with before (rotation); empty: none.
  std::string previous_node_key;
  // Fair sharing and limits (README "Limits and fair sharing").
  ReprodLimits limits;
};

// Owns every part of the daemon. Thread-safe.
class Reprod {
 public:
  // Opens the data dir and starts serving. Errors name the flag or file at fault.
  static absl::StatusOr<std::unique_ptr<Reprod>> Start(const ReprodConfig& config);
  ~Reprod();

  // Stops serving: streams end, running calls get `grace` to finish. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

  const std::vector<std::string>& grpc_endpoints() const { return grpc_->endpoints(); }
  const std::string& node() const { return node_; }

 private:
  explicit Reprod(ReprodConfig config);
  absl::Status Init();
  // Loads key_ (--node_key, else the data dir's), opens head_log_, and stores the rotation
  // statement from --previous_node_key when it is new.
  absl::Status LoadNodeKey();
  // Builds auth_ from the role flags.
  absl::Status InitAuthorizer();
  absl::StatusOr<v1::NodeInfo> NodeInfo();
  absl::Status StartMetricsEndpoint();
  // Serves the Kubernetes admission webhook over HTTPS (with --webhook_listen).
  absl::Status StartWebhook();
  // Serves the shims of training processes on config_.shim_socket (when set).
  absl::Status StartShimSocket();
  // Serves the CSI node plugin on config_.csi_endpoint (when set) and the shim sockets of the
  // Pods published before a restart.
  absl::Status StartCsiPlugin();
  // Cluster mode, after the gRPC server is up: registers the node, publishes journal heads.
  absl::Status StartCluster();
  // Where other nodes reach this node (see ReprodConfig::advertise_addr).
  absl::StatusOr<std::string> AdvertiseAddress() const;

  const ReprodConfig config_;
  std::string node_;
  absl::Time started_at_;
  v1::HostFacts host_;  // probed once at start: GPUs and drivers do not change while we run

  // Parts, in construction order (destroyed in reverse). etcd_, mirror_, heads_, cluster_ and
  // presence_ exist in cluster mode only.
  Metrics metrics_;
  std::unique_ptr<Authorizer> auth_;
  CallerIdentities identities_;
  std::unique_ptr<EtcdClient> etcd_;
  std::unique_ptr<EtcdMirror> mirror_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<NodeKey> key_;
  std::unique_ptr<HeadLog> head_log_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<HeadPublisher> heads_;
  std::unique_ptr<TreeHeadWatch> tree_heads_;  // cluster mode: publishes and checks tree heads
  std::unique_ptr<HashCache> hash_cache_;
  std::unique_ptr<TreeHasher> hasher_;
  std::unique_ptr<TreeHasher> rehasher_;
  std::unique_ptr<PinStore> pin_store_;
  std::unique_ptr<VersionRegistry> versions_;
  std::unique_ptr<PinRegistry> pins_;
  std::unique_ptr<GapRecorder> gaps_;  // what could not be journaled, until it can be
  std::unique_ptr<FactRecorder> facts_;
  std::unique_ptr<Quotas> quotas_;
  std::unique_ptr<Auditor> auditor_;
  std::unique_ptr<ClusterJournals> cluster_;
  std::unique_ptr<ReproService> service_;
  std::unique_ptr<GrpcServer> grpc_;
  // Set by StartCluster once gRPC serves (it may name gRPC's port), while NodeInfo answers.
  absl::Mutex advertise_mu_;
  std::string advertise_addr_ ABSL_GUARDED_BY(advertise_mu_);
  std::unique_ptr<NodePresence> presence_;
  std::unique_ptr<HttpServer> metrics_http_;  // only with --metrics_listen
  std::unique_ptr<AdmissionWebhook> webhook_;   // only with --webhook_listen
  std::unique_ptr<HttpServer> webhook_http_;
  std::unique_ptr<DataChecker> data_checker_;
  std::unique_ptr<ShimServer> shim_;  // only with --shim_socket
  std::unique_ptr<PodVolumes> pod_volumes_;     // only with --csi_endpoint
  std::unique_ptr<CsiNodePlugin> csi_plugin_;
  std::unique_ptr<GrpcServer> csi_grpc_;
  std::unique_ptr<StoreWatch> store_watch_;  // storage faults -> health NOT_SERVING
};

}  // namespace repro

#endif  // REPRO_DAEMON_APP_REPROD_H_
