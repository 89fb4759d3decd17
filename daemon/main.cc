// reprod: the repro node daemon. Parses flags, starts the parts, runs until SIGTERM/SIGINT.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "daemon/app/reprod.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, data_dir, "/var/lib/reprod", "Directory of the RocksDB journal and node key");
ABSL_FLAG(std::string, grpc_listen, "unix:/run/reprod/reprod.sock",
          "Comma-separated gRPC endpoints: unix:/path and host:port");
ABSL_FLAG(std::string, shim_socket, "/run/reprod/shim/shim.sock",
          "Unix SOCK_SEQPACKET socket where shims in training processes say HELLO; keep it in a "
          "directory of its own (the only thing the webhook mounts into Pods)");
ABSL_FLAG(std::string, node_name, "", "Name of this node in journals (default: hostname)");
ABSL_FLAG(std::string, etcd_endpoints, "",
          "Comma-separated etcd endpoints (host:port); empty = embedded mode");
ABSL_FLAG(std::string, etcd_tls_ca, "", "PEM CA of the etcd members' certificates (TLS to etcd)");
ABSL_FLAG(std::string, etcd_tls_cert, "", "PEM client certificate for etcd (--client-cert-auth)");
ABSL_FLAG(std::string, etcd_tls_key, "", "PEM private key of --etcd_tls_cert");
ABSL_FLAG(std::string, etcd_user, "",
          "etcd user reprod authenticates as (a role limited to /repro/; needs --etcd_tls_ca)");
ABSL_FLAG(std::string, etcd_password_file, "", "File whose first line is --etcd_user's password");
ABSL_FLAG(std::string, advertise_addr, "",
          "Cluster mode: host:port where other nodes reach this node's gRPC API (default: the "
          "first host:port of --grpc_listen)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate for TCP gRPC listeners");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for TCP gRPC listeners");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA that client certificates must chain to (mTLS)");
ABSL_FLAG(bool, insecure_tcp, false,
          "Serve gRPC on non-loopback TCP addresses without mTLS; such callers have no identity "
          "and may only read public metadata (default: refuse to start)");
ABSL_FLAG(std::string, socket_group, "",
          "Unix group allowed to connect to the gRPC Unix socket (0660); empty: every local user "
          "(0666), authorized per call by their SO_PEERCRED credentials");
ABSL_FLAG(std::string, admin_group, "",
          "Unix group whose members are admins (root always is): may do everything");
ABSL_FLAG(std::string, auditor_group, "",
          "Unix group whose members are auditors: may read every job's journal");
ABSL_FLAG(std::string, admin_identities, "",
          "Client certificate identities (SAN or CN) that are admins: a,b,c or @FILE");
ABSL_FLAG(std::string, auditor_identities, "",
          "Client certificate identities (SAN or CN) that are auditors: a,b,c or @FILE");
ABSL_FLAG(std::string, webhook_listen, "", "host:port of the Kubernetes admission webhook (HTTPS)");
ABSL_FLAG(std::string, webhook_tls_cert, "", "PEM certificate of the admission webhook");
ABSL_FLAG(std::string, webhook_tls_key, "", "PEM private key of the admission webhook");
ABSL_FLAG(std::string, csi_endpoint, "",
          "Unix socket path where reprod serves its CSI node plugin (Kubernetes: one shim socket "
          "per Pod, bound to the Pod's namespace), e.g. "
          "/var/lib/kubelet/plugins/shim.repro.dev/csi.sock; empty: no CSI plugin");
ABSL_FLAG(std::string, csi_driver_name, "shim.repro.dev",
          "Name of the CSIDriver object: served by --csi_endpoint, and the driver of the inline "
          "volume the webhook injects into Pods");
ABSL_FLAG(std::string, csi_kubelet_dir, "/var/lib/kubelet",
          "kubelet's root directory: CSI target paths must lie below it");
ABSL_FLAG(std::string, csi_shim_library, "/usr/lib/repro/libreproshim.so",
          "The shim library copied into every Pod's CSI volume");
ABSL_FLAG(std::string, metrics_listen, "", "host:port serving Prometheus /metrics (plain HTTP)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");
ABSL_FLAG(int, hash_threads, 0, "Threads that hash data files (0: one per core)");
ABSL_FLAG(std::string, node_key, "",
          "PEM Ed25519 private key that signs journal heads, e.g. a read-only Kubernetes Secret; "
          "it must exist (default: DATA_DIR/node_key.pem, created on first start)");
ABSL_FLAG(std::string, previous_node_key, "",
          "After a key rotation: the old PEM key. reprod stores a statement signed by it that "
          "names the new --node_key, so heads signed by the old key still verify");
ABSL_FLAG(uint32_t, shim_max_connections_per_uid, 256,
          "Shim connections one uid may hold open; more are closed at once (counted in "
          "repro_shim_connections_refused_total{reason=\"max_connections_per_uid\"})");
ABSL_FLAG(uint64_t, shim_max_queued_bytes_per_uid, uint64_t{64} << 20,
          "Bytes of shim requests queued for one uid before reprod stops reading its connections "
          "until they are served");
ABSL_FLAG(uint64_t, max_hash_bytes, uint64_t{4} << 30,
          "Executables and libraries of shim processes larger than this are not hashed "
          "(journaled \"not hashed: ... too large\"); 0: no limit");
ABSL_FLAG(int32_t, shim_hash_threads, 2, "Threads hashing the executables of shim HELLOs");
ABSL_FLAG(uint64_t, max_record_bytes, uint64_t{1} << 20,
          "Largest Record request in bytes (RESOURCE_EXHAUSTED above); 0: only gRPC's 4 MiB");
ABSL_FLAG(double, record_bytes_per_sec, 16.0 * (1 << 20),
          "Record bytes per second per caller and per job (token bucket, 10 s burst); 0: off");
ABSL_FLAG(double, journal_entries_per_sec, 100000,
          "New journal entries per second per caller (uid) and per job, from Record and shims "
          "(token bucket, 10 s burst); 0: off");
ABSL_FLAG(uint64_t, max_journal_entries_per_job, 50'000'000,
          "Journal entries one job may hold on this node; 0: no limit");
ABSL_FLAG(int32_t, max_streams, 64,
          "Following Replay streams (journal --follow) open at once; more are refused with "
          "RESOURCE_EXHAUSTED so unary calls and health checks always find a thread; 0: no cap");
ABSL_FLAG(int32_t, max_register_streams, 8,
          "RegisterVersion calls (version add) running at once; more are refused with "
          "RESOURCE_EXHAUSTED; 0: no cap");

namespace {

std::vector<std::string> SplitList(const std::string& list) {
  return absl::StrSplit(list, ',', absl::SkipWhitespace());
}

repro::ReprodConfig ConfigFromFlags() {
  repro::ReprodConfig config;
  config.data_dir = absl::GetFlag(FLAGS_data_dir);
  config.grpc_listen = SplitList(absl::GetFlag(FLAGS_grpc_listen));
  config.shim_socket = absl::GetFlag(FLAGS_shim_socket);
  config.node_name = absl::GetFlag(FLAGS_node_name);
  config.etcd_endpoints = SplitList(absl::GetFlag(FLAGS_etcd_endpoints));
  config.advertise_addr = absl::GetFlag(FLAGS_advertise_addr);
  config.etcd_security.tls_ca = absl::GetFlag(FLAGS_etcd_tls_ca);
  config.etcd_security.tls_cert = absl::GetFlag(FLAGS_etcd_tls_cert);
  config.etcd_security.tls_key = absl::GetFlag(FLAGS_etcd_tls_key);
  config.etcd_security.user = absl::GetFlag(FLAGS_etcd_user);
  config.etcd_security.password_file = absl::GetFlag(FLAGS_etcd_password_file);
  config.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  config.tls_key = absl::GetFlag(FLAGS_tls_key);
  config.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  config.webhook_listen = absl::GetFlag(FLAGS_webhook_listen);
  config.webhook_tls_cert = absl::GetFlag(FLAGS_webhook_tls_cert);
  config.webhook_tls_key = absl::GetFlag(FLAGS_webhook_tls_key);
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  config.csi_endpoint = absl::GetFlag(FLAGS_csi_endpoint);
  config.csi_driver_name = absl::GetFlag(FLAGS_csi_driver_name);
  config.csi_kubelet_dir = absl::GetFlag(FLAGS_csi_kubelet_dir);
  config.csi_shim_library = absl::GetFlag(FLAGS_csi_shim_library);
  config.hash_threads = absl::GetFlag(FLAGS_hash_threads);
  config.node_key = absl::GetFlag(FLAGS_node_key);
  config.previous_node_key = absl::GetFlag(FLAGS_previous_node_key);
  config.insecure_tcp = absl::GetFlag(FLAGS_insecure_tcp);
  config.socket_group = absl::GetFlag(FLAGS_socket_group);
  config.admin_group = absl::GetFlag(FLAGS_admin_group);
  config.auditor_group = absl::GetFlag(FLAGS_auditor_group);
  config.admin_identities = absl::GetFlag(FLAGS_admin_identities);
  config.auditor_identities = absl::GetFlag(FLAGS_auditor_identities);
  config.limits.shim.max_connections_per_uid = absl::GetFlag(FLAGS_shim_max_connections_per_uid);
  config.limits.shim.max_queued_bytes_per_uid = absl::GetFlag(FLAGS_shim_max_queued_bytes_per_uid);
  config.limits.shim.max_hash_bytes = absl::GetFlag(FLAGS_max_hash_bytes);
  config.limits.shim.hash_threads = absl::GetFlag(FLAGS_shim_hash_threads);
  config.limits.quotas.max_record_bytes = absl::GetFlag(FLAGS_max_record_bytes);
  config.limits.quotas.record_bytes_per_sec = absl::GetFlag(FLAGS_record_bytes_per_sec);
  config.limits.quotas.journal_entries_per_sec = absl::GetFlag(FLAGS_journal_entries_per_sec);
  config.limits.quotas.max_journal_entries_per_job =
      absl::GetFlag(FLAGS_max_journal_entries_per_job);
  config.limits.max_streams = absl::GetFlag(FLAGS_max_streams);
  config.limits.max_register_streams = absl::GetFlag(FLAGS_max_register_streams);
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "repro node daemon: pins jobs to data versions and journals what they use.\n"
      "  reprod --data_dir DIR [--grpc_listen unix:/run/reprod/reprod.sock] [flags]");
  absl::ParseCommandLine(argc, argv);
  // Debian's abseil is built without NDEBUG, so by default every absl::Mutex acquisition (gRPC's
  // included) is checked against a process-wide lock-order graph: a debug check that cost ~5% of
  // reprod's CPU per Record RPC. Tests of the same code, which do not run this main, keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ reprod[%P] %v");

  // Block the termination signals in every thread (threads inherit the mask), then wait for them
  // here so shutdown runs on a normal thread, not in a signal handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<repro::Reprod>> reprod = repro::Reprod::Start(ConfigFromFlags());
  if (!reprod.ok()) {
    spdlog::critical("cannot start: {}", reprod.status().ToString());
    fprintf(stderr, "reprod: %s\n", std::string(reprod.status().message()).c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("{} received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*reprod)->Shutdown();
  reprod->reset();
  spdlog::info("stopped");
  return 0;
}
