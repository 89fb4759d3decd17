#include "client/cli/repro_client.h"

#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "client/cli/exit_code.h"
#include "client/cli/format.h"
#include "common/grpc_status.h"
#include "common/posix_error.h"
#include "common/status_macros.h"

namespace repro::cli {
namespace {

// Reads a whole (small) PEM file named by `flag`.
absl::StatusOr<std::string> ReadPem(absl::string_view flag, const std::string& path) {
  std::string context = absl::StrCat("cannot read --", flag, " ", path);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, context);
  std::string contents;
  char buffer[16384];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return PosixError(err, context);
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return contents;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const Address& address, const ConnectOptions& options) {
  bool any_tls = !options.tls_ca.empty() || !options.tls_cert.empty() || !options.tls_key.empty();
  if (address.kind == Address::Kind::kUnix) {
    if (any_tls) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls_ca, --tls_cert and --tls_key apply to TCP addresses, not ", address.text));
    }
    return grpc::InsecureChannelCredentials();
  }
  if (!any_tls) return grpc::InsecureChannelCredentials();
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together (mTLS)");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem("tls_ca", options.tls_ca));
  }
  if (!options.tls_cert.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem("tls_cert", options.tls_cert));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem("tls_key", options.tls_key));
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReproClient>> ReproClient::Connect(const ConnectOptions& options) {
  ASSIGN_OR_RETURN(Address address, ParseAddress(options.address));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   MakeCredentials(address, options));
  grpc::ChannelArguments args;
  // Fail fast and clearly when nothing listens: no retries of the connection inside one call.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetMaxReceiveMessageSize(-1);  // manifests of big versions are big
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(address.target, credentials, args);
  return std::unique_ptr<ReproClient>(new ReproClient(std::move(address), options, channel));
}

ReproClient::ReproClient(Address address, const ConnectOptions& options,
                         std::shared_ptr<grpc::Channel> channel)
    : address_(std::move(address)),
      options_(options),
      channel_(std::move(channel)),
      stub_(v1::Repro::NewStub(channel_)) {}

void ReproClient::SetDeadline(grpc::ClientContext* context, CallLength length) const {
  if (length == CallLength::kLong && !options_.timeout_given) return;
  if (options_.timeout == absl::InfiniteDuration()) return;
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
}

absl::Status ReproClient::Failure(absl::string_view rpc, const grpc::Status& status) const {
  absl::Status failure = FromGrpcStatus(status);
  std::string message = OneLine(failure.message());
  bool transport = failure.code() == absl::StatusCode::kUnavailable ||
                   failure.code() == absl::StatusCode::kDeadlineExceeded;
  // A connected channel means reprod itself answered UNAVAILABLE (say, etcd is down) or was slow.
  if (transport && channel_->GetState(false) != GRPC_CHANNEL_READY) {
    return TagRpc(absl::UnavailableError(
                      absl::StrCat("cannot reach reprod at ", address_.text, ": ", message)),
                  rpc);
  }
  if (failure.code() == absl::StatusCode::kDeadlineExceeded) {
    message = absl::StrCat(
        rpc, " took longer than --timeout=", absl::FormatDuration(options_.timeout), ": ", message);
  } else if (message.empty()) {
    message = absl::StrCat(rpc, " failed: ", absl::StatusCodeToString(failure.code()));
  }
  return TagRpc(absl::Status(failure.code(), message), rpc);
}

}  // namespace repro::cli
