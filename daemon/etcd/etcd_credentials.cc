#include "daemon/etcd/etcd_credentials.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/grpc_status.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace repro {
namespace {

constexpr absl::Duration kAuthenticateTimeout = absl::Seconds(5);

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsCredentials(
    const EtcdSecurity& security) {
  if (!security.tls()) {
    if (!security.tls_cert.empty() || !security.tls_key.empty()) {
      return absl::InvalidArgumentError("--etcd_tls_cert and --etcd_tls_key need --etcd_tls_ca");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (security.tls_cert.empty() != security.tls_key.empty()) {
    return absl::InvalidArgumentError("--etcd_tls_cert and --etcd_tls_key go together");
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadFile(security.tls_ca, "etcd_tls_ca");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *ca;
  if (!security.tls_cert.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(security.tls_cert, "etcd_tls_cert");
    absl::StatusOr<std::string> key = ReadFile(security.tls_key, "etcd_tls_key");
    if (!cert.ok()) return cert.status();
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

// Adds the member's token to every call on its channel. gRPC runs it off its event loop
// (IsBlocking), so fetching a token may wait on Auth.Authenticate.
class TokenPlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  TokenPlugin(std::shared_ptr<EtcdTokenSource> tokens, std::string address)
      : tokens_(std::move(tokens)), address_(std::move(address)) {}
  bool IsBlocking() const override { return true; }
  grpc::Status GetMetadata(grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
                           std::multimap<grpc::string, grpc::string>* metadata) override {
    absl::StatusOr<std::string> token = tokens_->Token(address_);
    if (!token.ok()) return ToGrpcStatus(token.status());
    metadata->emplace("token", *token);
    return grpc::Status::OK;
  }

 private:
  const std::shared_ptr<EtcdTokenSource> tokens_;
  const std::string address_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<EtcdTokenSource>> EtcdTokenSource::Create(
    const EtcdSecurity& security) {
  if (security.user.empty()) return nullptr;
  if (!security.tls()) {
    return absl::InvalidArgumentError(
        "--etcd_user needs --etcd_tls_ca: reprod sends etcd passwords over TLS only");
  }
  if (security.password_file.empty()) {
    return absl::InvalidArgumentError("--etcd_user needs --etcd_password_file");
  }
  absl::StatusOr<std::string> password = ReadFile(security.password_file, "etcd_password_file");
  if (!password.ok()) return password.status();
  std::string first_line = password->substr(0, password->find('\n'));
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls = TlsCredentials(security);
  if (!tls.ok()) return tls.status();
  return std::shared_ptr<EtcdTokenSource>(new EtcdTokenSource(
      security, std::string(absl::StripTrailingAsciiWhitespace(first_line)), *std::move(tls)));
}

absl::StatusOr<std::string> EtcdTokenSource::Token(const std::string& address) {
  {
    absl::MutexLock lock(&mu_);
    auto it = tokens_.find(address);
    if (it != tokens_.end()) return it->second;
  }
  auto auth = etcdserverpb::Auth::NewStub(grpc::CreateChannel(address, tls_));
  etcdserverpb::AuthenticateRequest request;
  request.set_name(security_.user);
  request.set_password(password_);
  etcdserverpb::AuthenticateResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kAuthenticateTimeout));
  grpc::Status status = auth->Authenticate(&context, request, &response);
  if (!status.ok()) {
    absl::Status error = FromGrpcStatus(status);
    return absl::Status(error.code(), absl::StrCat("etcd authentication as ", security_.user,
                                                   " at ", address, ": ", error.message()));
  }
  absl::MutexLock lock(&mu_);
  tokens_[address] = response.token();
  return response.token();
}

void EtcdTokenSource::Forget() {
  absl::MutexLock lock(&mu_);
  tokens_.clear();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> EtcdChannelCredentials(
    const EtcdSecurity& security, std::shared_ptr<EtcdTokenSource> tokens,
    const std::string& address) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls = TlsCredentials(security);
  if (!tls.ok() || tokens == nullptr) return tls;
  return grpc::CompositeChannelCredentials(
      *tls, grpc::MetadataCredentialsFromPlugin(
                std::make_unique<TokenPlugin>(std::move(tokens), address)));
}

bool IsEtcdTokenRefused(const grpc::Status& status) {
  return absl::StrContains(status.error_message(), "invalid auth token");
}

}  // namespace repro
