#include "daemon/app/reprod.h"

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "daemon/os/clock.h"
#include "daemon/os/file_system.h"
#include "daemon/pin_store/etcd_pin_store.h"
#include "daemon/pin_store/rocks_pin_store.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// How long start-up waits for the first etcd listing before serving anyway (fail closed).
constexpr absl::Duration kEtcdStartWait = absl::Seconds(3);
// How long the tree head watch waits for another node's consistency proof (then: ask again).
constexpr absl::Duration kTreeProofTimeout = absl::Seconds(10);
// How long shutdown waits for queued journal heads to reach etcd.
constexpr absl::Duration kHeadFlushWait = absl::Seconds(2);

std::string Hostname() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

Reprod::Reprod(ReprodConfig config) : config_(std::move(config)) {}

Reprod::~Reprod() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<Reprod>> Reprod::Start(const ReprodConfig& config) {
  std::unique_ptr<Reprod> reprod(new Reprod(config));
  RETURN_IF_ERROR(reprod->Init());
  return reprod;
}

absl::Status Reprod::InitAuthorizer() {
  AuthorizerOptions options;
  ASSIGN_OR_RETURN(options.admin_group, ParseGroupFlag("admin_group", config_.admin_group));
  ASSIGN_OR_RETURN(options.auditor_group, ParseGroupFlag("auditor_group", config_.auditor_group));
  ASSIGN_OR_RETURN(options.admin_identities,
                   ParseIdentitiesFlag("admin_identities", config_.admin_identities));
  ASSIGN_OR_RETURN(options.auditor_identities,
                   ParseIdentitiesFlag("auditor_identities", config_.auditor_identities));
  options.metrics = &metrics_;
  auth_ = std::make_unique<Authorizer>(std::move(options));
  return absl::OkStatus();
}

absl::Status Reprod::Init() {
  node_ = config_.node_name.empty() ? Hostname() : config_.node_name;
  started_at_ = absl::Now();
  RETURN_IF_ERROR(InitAuthorizer());
  if (!config_.etcd_endpoints.empty()) {
    ASSIGN_OR_RETURN(etcd_, EtcdClient::Create({.endpoints = config_.etcd_endpoints,
                                                .security = config_.etcd_security}));
    RETURN_IF_ERROR(etcd_->CheckLogin());
    std::vector<MirroredPrefix> mirrored = EtcdPinStore::MirroredPrefixes();
    for (MirroredPrefix& prefix : ClusterJournals::MirroredPrefixes()) {
      mirrored.push_back(std::move(prefix));
    }
    mirror_ = std::make_unique<EtcdMirror>(etcd_.get(), std::move(mirrored));
    mirror_->Start();
  }

  ASSIGN_OR_RETURN(store_, RocksStore::Open({.data_dir = config_.data_dir}));
  RETURN_IF_ERROR(LoadNodeKey());
  JournalOptions journal_options{
      .node = node_, .key = key_.get(), .metrics = &metrics_, .head_log = head_log_.get()};
  if (mirror_ != nullptr) {
    // heads_ is set below, before anything can append.
    journal_options.on_commit = [this](std::vector<v1::JournalHead> heads) {
      heads_->Publish(std::move(heads));
    };
  }
  journal_ = std::make_unique<Journal>(store_.get(), std::move(journal_options));
  if (mirror_ != nullptr) {
    heads_ = std::make_unique<HeadPublisher>(etcd_.get(), node_);
    // cluster_ is built below, before StartCluster starts the watch.
    tree_heads_ = std::make_unique<TreeHeadWatch>(
        etcd_.get(), node_, head_log_.get(),
        [this](const std::string& node, uint64_t old_size, uint64_t new_size) {
          return cluster_->ProveTreeGrowth(node, old_size, new_size, kTreeProofTimeout);
        },
        &metrics_);
  }
  hash_cache_ = std::make_unique<HashCache>(store_.get());
  hasher_ = std::make_unique<TreeHasher>(DefaultFileSystem(), hash_cache_.get(), config_.hash_threads);
  rehasher_ = std::make_unique<TreeHasher>(DefaultFileSystem(), nullptr, config_.hash_threads);
  if (mirror_ != nullptr) {
    pin_store_ = std::make_unique<EtcdPinStore>(etcd_.get(), mirror_.get());
  } else {
    pin_store_ = std::make_unique<RocksPinStore>(store_.get());
  }
  versions_ = std::make_unique<VersionRegistry>(pin_store_.get(), hasher_.get(),
                                                DefaultFileSystem(), DefaultClock(), node_);
  host_ = HostProbe({.node = node_}).Probe();
  spdlog::info("host {}: {} GPU(s) from {}, driver {}, CUDA {}", host_.hostname(),
               host_.gpus_size(), host_.gpu_source(), host_.driver_version(),
               host_.cuda_driver_version());
  pins_ = std::make_unique<PinRegistry>(pin_store_.get(), journal_.get(), DefaultFileSystem(),
                                        DefaultClock(), node_, &host_);
  gaps_ = std::make_unique<GapRecorder>(journal_.get());
  facts_ = std::make_unique<FactRecorder>(pins_.get(), journal_.get(), gaps_.get());
  auditor_ = std::make_unique<Auditor>(pin_store_.get(), journal_.get(), rehasher_.get(),
                                       head_log_.get());

  GrpcServerOptions grpc_options;
  grpc_options.listen = config_.grpc_listen;
  grpc_options.tls_cert = config_.tls_cert;
  grpc_options.tls_key = config_.tls_key;
  grpc_options.tls_client_ca = config_.tls_client_ca;
  grpc_options.insecure_tcp = config_.insecure_tcp;
  grpc_options.identities = &identities_;
  ASSIGN_OR_RETURN(grpc_options.socket_group, ParseGroupFlag("socket_group", config_.socket_group));
  if (mirror_ != nullptr) {
    ClusterJournalsOptions cluster_options;
    cluster_options.node = node_;
    cluster_options.fork_of = [watch = tree_heads_.get()](const std::string& node) {
      return watch->ForkOf(node);
    };
    ASSIGN_OR_RETURN(cluster_options.peer_credentials, PeerCredentials(grpc_options));
    cluster_ = std::make_unique<ClusterJournals>(etcd_.get(), mirror_.get(), auditor_.get(),
                                                 journal_.get(), std::move(cluster_options));
  }

  ReproServiceParts parts;
  parts.versions = versions_.get();
  parts.pins = pins_.get();
  parts.facts = facts_.get();
  parts.auditor = auditor_.get();
  parts.journal = journal_.get();
  parts.cluster = cluster_.get();
  parts.node_info = [this] { return NodeInfo(); };
  parts.node_key = key_.get();
  parts.fs = DefaultFileSystem();
  parts.auth = auth_.get();
  parts.identities = &identities_;
  quotas_ = std::make_unique<Quotas>(config_.limits.quotas, &metrics_);
  parts.quotas = quotas_.get();
  parts.metrics = &metrics_;
  parts.max_streams = config_.limits.max_streams;
  parts.max_register_streams = config_.limits.max_register_streams;
  service_ = std::make_unique<ReproService>(std::move(parts));

  if (mirror_ != nullptr && !mirror_->WaitUntilCurrent(kEtcdStartWait)) {
    spdlog::warn("etcd ({}) is not reachable yet: pins cannot be made and Admit refuses until it "
                 "is; journaling works",
                 etcd_->Describe());
  }
  // The shim socket is up before gRPC answers, so a caller that sees reprod ready (health check,
  // reproctl) can start training processes at once.
  RETURN_IF_ERROR(StartShimSocket());
  RETURN_IF_ERROR(StartCsiPlugin());
  ASSIGN_OR_RETURN(grpc_, GrpcServer::Start(grpc_options, {service_.get()}));
  store_watch_ = std::make_unique<StoreWatch>(
      store_.get(), &metrics_,
      [this](const absl::Status& writable) { grpc_->SetServing(writable.ok()); },
      absl::Seconds(1), [gaps = gaps_.get()] { gaps->FlushPending(); });
  RETURN_IF_ERROR(StartCluster());
  RETURN_IF_ERROR(StartMetricsEndpoint());
  RETURN_IF_ERROR(StartWebhook());
  spdlog::info("reprod {} node {} ({} mode) serving gRPC on {}; data in {}", REPRO_VERSION, node_,
               pin_store_->mode(), absl::StrJoin(grpc_->endpoints(), ","), config_.data_dir);
  return absl::OkStatus();
}

absl::Status Reprod::LoadNodeKey() {
  if (config_.node_key.empty()) {
    ASSIGN_OR_RETURN(key_, NodeKey::LoadOrCreate(absl::StrCat(config_.data_dir, "/node_key.pem")));
  } else {
    ASSIGN_OR_RETURN(key_, NodeKey::Load(config_.node_key));
  }
  ASSIGN_OR_RETURN(head_log_, HeadLog::Open(store_.get(), node_, key_.get()));
  spdlog::info("node key {} (public {}); head log of {} heads",
               config_.node_key.empty() ? "in the data dir" : config_.node_key,
               HexDigest(key_->public_key()), head_log_->size());
  if (config_.previous_node_key.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::unique_ptr<NodeKey> old_key, NodeKey::Load(config_.previous_node_key));
  if (old_key->public_key() == key_->public_key()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<v1::KeyRotation> rotations, head_log_->Rotations());
  for (const v1::KeyRotation& r : rotations) {
    if (r.old_public_key() == old_key->public_key() &&
        r.new_public_key() == key_->public_key()) {
      return absl::OkStatus();  // stated at an earlier start
    }
  }
  RETURN_IF_ERROR(head_log_->AddRotation(*old_key).status());
  spdlog::info("key rotation stored: {} -> {}", HexDigest(old_key->public_key()),
               HexDigest(key_->public_key()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Reprod::AdvertiseAddress() const {
  if (!config_.advertise_addr.empty()) return config_.advertise_addr;
  for (const std::string& endpoint : grpc_->endpoints()) {
    if (absl::StartsWith(endpoint, "unix:")) continue;
    for (absl::string_view wildcard : {"0.0.0.0:", "[::]:"}) {
      if (absl::StartsWith(endpoint, wildcard)) {  // not an address anyone can dial
        return absl::StrCat(Hostname(), ":", endpoint.substr(wildcard.size()));
      }
    }
    return endpoint;
  }
  return absl::InvalidArgumentError(
      "cluster mode needs an address where other nodes reach this node: add a host:port to "
      "--grpc_listen or give --advertise_addr");
}

absl::Status Reprod::StartCluster() {
  if (mirror_ == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::string advertise_addr, AdvertiseAddress());
  {
    absl::MutexLock lock(&advertise_mu_);
    advertise_addr_ = advertise_addr;
  }
  v1::NodeInfo record;
  record.set_node(node_);
  record.set_mode(pin_store_->mode());
  record.set_public_key(key_->public_key());
  record.set_version(REPRO_VERSION);
  *record.mutable_started_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(started_at_));
  record.set_advertise_addr(advertise_addr);
  presence_ = std::make_unique<NodePresence>(etcd_.get(), std::move(record));
  absl::Status registered = presence_->Register();
  if (absl::IsFailedPrecondition(registered)) return registered;
  if (!registered.ok()) {
    spdlog::warn("cannot register node {} in etcd yet (will retry): {}", node_,
                 std::string(registered.message()));
  }
  presence_->Start();
  heads_->Start(journal_.get());
  tree_heads_->Start();
  spdlog::info("cluster mode: etcd {}; other nodes reach this one at {}", etcd_->Describe(),
               advertise_addr);
  return absl::OkStatus();
}

absl::Status Reprod::StartShimSocket() {
  if (config_.shim_socket.empty()) return absl::OkStatus();
  data_checker_ = std::make_unique<DataChecker>(versions_.get(), DefaultFileSystem(),
                                                hash_cache_.get());
  ShimServerParts parts;
  parts.pins = pins_.get();
  parts.versions = versions_.get();
  parts.journal = journal_.get();
  parts.checker = data_checker_.get();
  parts.fs = DefaultFileSystem();
  parts.hash_cache = hash_cache_.get();
  parts.metrics = &metrics_;
  parts.auth = auth_.get();
  parts.quotas = quotas_.get();
  // What the shim path accepted but could not journal becomes a gap entry of the job, journaled
  // as soon as the store watch finds writing works again (or before the job's next Record, or at
  // shutdown). The hook only counts: it may run on the journal's own thread, which must not wait
  // for another append.
  parts.on_lost = [gaps = gaps_.get()](absl::string_view job, absl::string_view kind,
                                       size_t count) {
    gaps->Lost(job, kind, count, "the shim path could not journal it");
  };
  ShimServerOptions options = config_.limits.shim;
  options.socket_path = config_.shim_socket;
  ASSIGN_OR_RETURN(shim_, ShimServer::Start(std::move(options), parts));
  return absl::OkStatus();
}

absl::Status Reprod::StartCsiPlugin() {
  if (config_.csi_endpoint.empty()) return absl::OkStatus();
  if (shim_ == nullptr) {
    return absl::InvalidArgumentError("--csi_endpoint needs --shim_socket: Pods' sockets are "
                                      "served by the shim socket's server");
  }
  pod_volumes_ = std::make_unique<PodVolumes>(
      PodVolumesOptions{.state_dir = absl::StrCat(config_.data_dir, "/csi"),
                        .kubelet_dir = config_.csi_kubelet_dir,
                        .shim_library = config_.csi_shim_library},
      shim_.get());
  RETURN_IF_ERROR(pod_volumes_->Restore());
  csi_plugin_ = std::make_unique<CsiNodePlugin>(
      CsiNodePluginOptions{
          .driver_name = config_.csi_driver_name, .version = REPRO_VERSION, .node_id = node_},
      pod_volumes_.get(), &identities_, auth_.get());
  GrpcServerOptions options;
  options.listen = {absl::StrCat("unix:", config_.csi_endpoint)};
  options.identities = &identities_;
  ASSIGN_OR_RETURN(csi_grpc_, GrpcServer::Start(options, {csi_plugin_->identity_service(),
                                                          csi_plugin_->node_service()}));
  spdlog::info("serving the CSI node plugin {} on {}", config_.csi_driver_name,
               config_.csi_endpoint);
  return absl::OkStatus();
}

absl::Status Reprod::StartMetricsEndpoint() {
  if (config_.metrics_listen.empty()) return absl::OkStatus();
  HttpServerOptions options;
  options.name = "metrics";
  options.listen = config_.metrics_listen;
  options.metrics = &metrics_;
  HttpRoute route{"GET", "/metrics", [this](const HttpRequest&) {
                    return HttpResponse(200, kPrometheusContentType, metrics_.RenderPrometheus());
                  }};
  ASSIGN_OR_RETURN(metrics_http_, HttpServer::Start(options, {std::move(route)}));
  spdlog::info("serving Prometheus metrics on http://{}/metrics", config_.metrics_listen);
  return absl::OkStatus();
}

absl::Status Reprod::StartWebhook() {
  if (config_.webhook_listen.empty()) return absl::OkStatus();
  if (config_.webhook_tls_cert.empty() || config_.webhook_tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--webhook_listen needs --webhook_tls_cert and --webhook_tls_key: Kubernetes calls "
        "admission webhooks over HTTPS only");
  }
  AdmissionWebhookOptions webhook;
  webhook.admit = [this](absl::string_view job) { return pins_->Admit(job); };
  webhook.pinned = [this](absl::string_view job) -> absl::StatusOr<PinnedData> {
    PinnedData data;
    ASSIGN_OR_RETURN(data.pin, pins_->Get(job));
    for (const v1::PinnedVersion& v : data.pin.versions()) {
      ASSIGN_OR_RETURN(std::vector<v1::VersionInfo> versions,
                       pin_store_->ListVersions(v.dataset()));
      data.registered.insert(data.registered.end(), versions.begin(), versions.end());
    }
    return data;
  };
  webhook.csi_driver = config_.csi_driver_name;
  webhook.metrics = &metrics_;
  ASSIGN_OR_RETURN(webhook_, AdmissionWebhook::Create(std::move(webhook)));
  HttpServerOptions options;
  options.name = "webhook";
  options.listen = config_.webhook_listen;
  options.tls_cert_file = config_.webhook_tls_cert;
  options.tls_key_file = config_.webhook_tls_key;
  options.max_body_bytes = AdmissionWebhook::kMaxReviewBytes;
  options.metrics = &metrics_;
  ASSIGN_OR_RETURN(webhook_http_, HttpServer::Start(options, webhook_->Routes()));
  return absl::OkStatus();
}

absl::StatusOr<v1::NodeInfo> Reprod::NodeInfo() {
  v1::NodeInfo info;
  info.set_node(node_);
  info.set_mode(pin_store_->mode());
  info.set_public_key(key_->public_key());
  info.set_version(REPRO_VERSION);
  info.set_data_dir(config_.data_dir);
  for (const std::string& e : config_.etcd_endpoints) info.add_etcd_endpoints(e);
  *info.mutable_started_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(started_at_));
  if (mirror_ != nullptr) {
    {
      absl::MutexLock lock(&advertise_mu_);
      info.set_advertise_addr(advertise_addr_);
    }
    std::string status = mirror_->StatusText();
    if (tree_heads_ != nullptr) {  // a node showing two histories is the news that matters most
      for (const std::string& fork : tree_heads_->Forks()) {
        absl::StrAppend(&status, "; FORK ", fork);
      }
    }
    info.set_cluster_status(status);
  }
  // While the cluster store is unreachable the counts are left out; cluster_status says why.
  absl::StatusOr<std::vector<v1::VersionInfo>> versions = pin_store_->ListVersions("");
  absl::StatusOr<std::vector<v1::Pin>> pins = pin_store_->ListPins();
  for (const absl::Status& status : {versions.status(), pins.status()}) {
    if (!status.ok() && !absl::IsUnavailable(status)) return status;
  }
  if (versions.ok()) info.set_versions(versions->size());
  if (pins.ok()) info.set_pins(pins->size());
  *info.mutable_host() = host_;
  info.set_shim_socket(config_.shim_socket);
  return info;
}

void Reprod::Shutdown(absl::Duration grace) {
  store_watch_.reset();
  if (service_ != nullptr) service_->BeginShutdown();
  if (grpc_ != nullptr) grpc_->Shutdown(grace);
  if (csi_grpc_ != nullptr) csi_grpc_->Shutdown(grace);
  if (metrics_http_ != nullptr) metrics_http_->Stop();
  if (webhook_http_ != nullptr) webhook_http_->Stop();
  if (shim_ != nullptr) shim_->Stop();
  if (gaps_ != nullptr) {
    absl::Status flushed = gaps_->FlushAll();  // losses the shim path counted since
    if (!flushed.ok()) spdlog::error("could not journal gap entries: {}", flushed.ToString());
  }
  if (heads_ != nullptr) {
    heads_->WaitUntilPublished(std::min(grace, kHeadFlushWait));
    heads_->Stop();
  }
  if (tree_heads_ != nullptr) tree_heads_->Stop();
  if (presence_ != nullptr) presence_->Stop();  // the node leaves /repro/nodes/ now
  if (mirror_ != nullptr) mirror_->Stop();
}

}  // namespace repro
