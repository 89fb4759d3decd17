#include "daemon/service/grpc_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/strings/strip.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "daemon/auth/peer_credentials.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TcpCredentials(
    const GrpcServerOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key must be given together");
  }
  if (options.tls_cert.empty()) {
    if (!options.tls_client_ca.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(options.tls_cert, "--tls_cert"));
  ASSIGN_OR_RETURN(pair.private_key, ReadPem(options.tls_key, "--tls_key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.tls_client_ca, "--tls_client_ca"));
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> PeerCredentials(
    const GrpcServerOptions& options) {
  if (options.tls_cert.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem(options.tls_cert, "--tls_cert"));
  ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem(options.tls_key, "--tls_key"));
  if (!options.tls_client_ca.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.tls_client_ca, "--tls_client_ca"));
  }
  return grpc::SslCredentials(ssl);
}

namespace {

// True when a process accepts connections on the Unix socket at `path`.
bool UnixSocketIsServed(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool served = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return served;
}

// Prepares the directory of a Unix socket and refuses to take over a live one.
absl::Status PrepareUnixSocket(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path \"", path,
                                                   "\" is empty or too long"));
  }
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return PosixError(ec.value(), absl::StrCat("create directory ", parent.string()));
  if (UnixSocketIsServed(path)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is already served by another process (another reprod?)"));
  }
  unlink(path.c_str());  // a stale socket from a killed daemon
  return absl::OkStatus();
}

// Plain TCP is for loopback only: elsewhere a listener must verify client certificates, because
// they are the only identity a remote caller can prove.
absl::Status CheckTcpEndpoint(const GrpcServerOptions& options, const std::string& endpoint) {
  if (IsLoopbackAddress(endpoint)) {
    if (options.tls_cert.empty()) {
      spdlog::info("gRPC on {} is plain TCP on loopback: callers are identified by the uid "
                   "owning their socket", endpoint);
    }
    return absl::OkStatus();
  }
  if (!options.tls_client_ca.empty()) return absl::OkStatus();
  if (options.insecure_tcp) {
    spdlog::warn("gRPC on {} accepts callers without client certificates (--insecure_tcp): "
                 "they have no identity and may only read public metadata", endpoint);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--grpc_listen ", endpoint, " is not a loopback address: it needs mTLS (--tls_cert, "
      "--tls_key and --tls_client_ca), or --insecure_tcp to serve it without identities"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& options, const std::vector<grpc::Service*>& services) {
  if (options.listen.empty()) return absl::InvalidArgumentError("--grpc_listen is empty");
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("reprod");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  // A sync server thread that finishes a call keeps polling only while fewer than MAX_POLLERS
  // threads poll; gRPC's default (2) makes every other thread exit, so under N concurrent calls
  // nearly each call paid for a thread's creation and exit (a third of reprod's CPU per Record
  // at 64 clients). Idle pollers beyond MIN_POLLERS still exit after CQ_TIMEOUT_MSEC.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              options.max_threads);
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> tcp, TcpCredentials(options));
  std::vector<std::unique_ptr<int>> ports;  // selected ports of TCP listeners
  std::vector<std::string> tcp_addrs;
  std::vector<std::string> unix_paths;
  for (const std::string& endpoint : options.listen) {
    if (absl::StartsWith(endpoint, "unix:")) {
      std::string path(absl::StripPrefix(endpoint, "unix:"));
      if (absl::StartsWith(path, "//")) path = path.substr(2);  // unix:///abs/path
      if (options.identities == nullptr) {
        return absl::InvalidArgumentError("serving a unix: endpoint needs CallerIdentities");
      }
      RETURN_IF_ERROR(PrepareUnixSocket(path));
      unix_paths.push_back(path);
    } else if (endpoint.find(':') != std::string::npos) {
      RETURN_IF_ERROR(CheckTcpEndpoint(options, endpoint));
      ports.push_back(std::make_unique<int>(0));
      builder.AddListeningPort(endpoint, tcp, ports.back().get());
      tcp_addrs.push_back(endpoint);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--grpc_listen entry \"", endpoint, "\" is neither unix:/path nor host:port"));
    }
  }
  for (grpc::Service* service : services) builder.RegisterService(service);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve gRPC on ", absl::StrJoin(options.listen, ","),
        " (address in use, or no permission?)"));
  }
  for (const std::string& path : unix_paths) {
    absl::StatusOr<std::unique_ptr<UnixAcceptor>> acceptor = UnixAcceptor::Start(
        {.path = path, .socket_group = options.socket_group}, server->server_.get(),
        options.identities);
    if (!acceptor.ok()) {
      server->Shutdown(absl::ZeroDuration());
      return acceptor.status();
    }
    server->acceptors_.push_back(*std::move(acceptor));
    server->endpoints_.push_back(absl::StrCat("unix:", path));
  }
  for (size_t i = 0; i < tcp_addrs.size(); ++i) {
    if (*ports[i] == 0) {
      server->Shutdown(absl::ZeroDuration());
      return absl::UnavailableError(absl::StrCat("cannot listen on ", tcp_addrs[i]));
    }
    std::string host = tcp_addrs[i].substr(0, tcp_addrs[i].rfind(':'));
    server->endpoints_.push_back(absl::StrCat(host, ":", *ports[i]));
    server->tcp_endpoints_.push_back(server->endpoints_.back());
  }
  if (options.identities != nullptr) {
    server->identities_ = options.identities;
    server->identities_->OnTcpListening(server->tcp_endpoints_);
  }
  return server;
}

void GrpcServer::SetServing(bool serving) {
  if (server_ == nullptr || server_->GetHealthCheckService() == nullptr) return;
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

void GrpcServer::Shutdown(absl::Duration grace) {
  for (std::unique_ptr<UnixAcceptor>& acceptor : acceptors_) acceptor->Stop();
  acceptors_.clear();
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
    server_.reset();
  }
  if (identities_ != nullptr) {  // no call of ours is left to ask who made it
    identities_->OnTcpStopped(tcp_endpoints_);
    identities_ = nullptr;
  }
}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace repro
