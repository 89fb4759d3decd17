#include "daemon/app/reprod.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "daemon/os/clock.h"
#include "daemon/os/file_system.h"
#include "daemon/pin_store/rocks_pin_store.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

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

absl::Status Reprod::Init() {
  node_ = config_.node_name.empty() ? Hostname() : config_.node_name;
  started_at_ = absl::Now();
  if (!config_.etcd_endpoints.empty()) {
    return absl::UnimplementedError("cluster mode (--etcd_endpoints) is not built in yet");
  }

  ASSIGN_OR_RETURN(store_, RocksStore::Open({.data_dir = config_.data_dir}));
  ASSIGN_OR_RETURN(key_, NodeKey::LoadOrCreate(absl::StrCat(config_.data_dir, "/node_key.pem")));
  journal_ = std::make_unique<Journal>(
      store_.get(), JournalOptions{.node = node_, .key = key_.get(), .metrics = &metrics_});
  hash_cache_ = std::make_unique<HashCache>(store_.get());
  hasher_ = std::make_unique<TreeHasher>(DefaultFileSystem(), hash_cache_.get(), config_.hash_threads);
  rehasher_ = std::make_unique<TreeHasher>(DefaultFileSystem(), nullptr, config_.hash_threads);
  pin_store_ = std::make_unique<RocksPinStore>(store_.get());
  versions_ = std::make_unique<VersionRegistry>(pin_store_.get(), hasher_.get(),
                                                DefaultFileSystem(), DefaultClock(), node_);
  pins_ = std::make_unique<PinRegistry>(pin_store_.get(), journal_.get(), DefaultFileSystem(),
                                        DefaultClock(), node_);
  facts_ = std::make_unique<FactRecorder>(pins_.get(), journal_.get());
  auditor_ = std::make_unique<Auditor>(pin_store_.get(), journal_.get(), rehasher_.get());

  ReproServiceParts parts;
  parts.versions = versions_.get();
  parts.pins = pins_.get();
  parts.facts = facts_.get();
  parts.auditor = auditor_.get();
  parts.journal = journal_.get();
  parts.node_info = [this] { return NodeInfo(); };
  service_ = std::make_unique<ReproService>(std::move(parts));

  GrpcServerOptions grpc_options;
  grpc_options.listen = config_.grpc_listen;
  grpc_options.tls_cert = config_.tls_cert;
  grpc_options.tls_key = config_.tls_key;
  grpc_options.tls_client_ca = config_.tls_client_ca;
  ASSIGN_OR_RETURN(grpc_, GrpcServer::Start(grpc_options, {service_.get()}));
  RETURN_IF_ERROR(StartMetricsEndpoint());
  spdlog::info("reprod {} node {} ({} mode) serving gRPC on {}; data in {}", REPRO_VERSION, node_,
               pin_store_->mode(), absl::StrJoin(grpc_->endpoints(), ","), config_.data_dir);
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
  ASSIGN_OR_RETURN(std::vector<v1::VersionInfo> versions, pin_store_->ListVersions(""));
  ASSIGN_OR_RETURN(std::vector<v1::Pin> pins, pin_store_->ListPins());
  info.set_versions(versions.size());
  info.set_pins(pins.size());
  return info;
}

void Reprod::Shutdown(absl::Duration grace) {
  if (service_ != nullptr) service_->BeginShutdown();
  if (grpc_ != nullptr) grpc_->Shutdown(grace);
  if (metrics_http_ != nullptr) metrics_http_->Stop();
}

}  // namespace repro
