#include "tests/testutil/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "openssl/err.h"

namespace repro::testing {
namespace {

void SetTimeout(int fd, int option, absl::Duration timeout) {
  timeval tv = absl::ToTimeval(std::max(timeout, absl::Milliseconds(1)));
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

// The first error in OpenSSL's queue for this thread (the queue is cleared).
std::string FirstSslError() {
  unsigned long err = ERR_get_error();
  ERR_clear_error();
  if (err == 0) return "no OpenSSL error";
  char buf[256];
  ERR_error_string_n(err, buf, sizeof(buf));
  return buf;
}

absl::StatusOr<int> ConnectTcp(const HttpClientOptions& options) {
  sockaddr_storage addr = {};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, options.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(options.port);
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, options.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(options.port);
    len = sizeof(*v6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("not a numeric address: ", options.host));
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  SetTimeout(fd, SO_RCVTIMEO, options.timeout);
  SetTimeout(fd, SO_SNDTIMEO, options.timeout);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect to ", options.host, ":", options.port, ": ", strerror(err)));
  }
  return fd;
}

}  // namespace

std::string HttpTestResponse::Header(absl::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (absl::EqualsIgnoreCase(field, name)) return value;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<HttpTestClient>> HttpTestClient::Connect(
    const HttpClientOptions& options) {
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { signal(SIGPIPE, SIG_IGN); });

  absl::StatusOr<int> fd = ConnectTcp(options);
  if (!fd.ok()) return fd.status();
  if (options.ca_file.empty()) {
    return std::unique_ptr<HttpTestClient>(
        new HttpTestClient(*fd, nullptr, nullptr, options.timeout));
  }

  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = ctx == nullptr ? nullptr : SSL_new(ctx);
  // Owns fd, ctx and ssl from here on, so every early return below releases them.
  std::unique_ptr<HttpTestClient> client(new HttpTestClient(*fd, ctx, ssl, options.timeout));
  if (ssl == nullptr) return absl::InternalError(absl::StrCat("SSL_new: ", FirstSslError()));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load CA file ", options.ca_file, ": ", FirstSslError()));
  }
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  SSL_set_fd(ssl, *fd);
  SSL_set_tlsext_host_name(ssl, options.server_name.c_str());
  SSL_set1_host(ssl, options.server_name.c_str());
  static constexpr unsigned char kAlpn[] = "\x02h2\x08http/1.1";
  SSL_set_alpn_protos(ssl, kAlpn, sizeof(kAlpn) - 1);
  if (SSL_connect(ssl) != 1) {
    long verify = SSL_get_verify_result(ssl);
    return absl::UnavailableError(absl::StrCat(
        "TLS handshake with ", options.host, ":", options.port, " failed: ", FirstSslError(),
        verify == X509_V_OK ? "" : absl::StrCat(" (", X509_verify_cert_error_string(verify), ")")));
  }
  return client;
}

HttpTestClient::HttpTestClient(int fd, SSL_CTX* ctx, SSL* ssl, absl::Duration timeout)
    : fd_(fd), ctx_(ctx), ssl_(ssl), timeout_(timeout) {}

HttpTestClient::~HttpTestClient() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  close(fd_);
}

absl::Status HttpTestClient::Send(absl::string_view bytes) {
  while (!bytes.empty()) {
    size_t n = 0;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      if (SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) != 1) {
        return absl::UnavailableError(absl::StrCat("TLS write: ", FirstSslError()));
      }
    } else {
      ssize_t sent = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
      }
      n = static_cast<size_t>(sent);
    }
    bytes.remove_prefix(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> HttpTestClient::ReadMore() {
  char buf[16 << 10];
  while (true) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      size_t n = 0;
      int ret = SSL_read_ex(ssl_, buf, sizeof(buf), &n);
      if (ret == 1) {
        buffer_.append(buf, n);
        return n;
      }
      int err = SSL_get_error(ssl_, ret);
      if (err == SSL_ERROR_ZERO_RETURN) return 0;
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return absl::DeadlineExceededError("TLS read timed out");
      }
      return absl::UnavailableError(
          absl::StrCat("TLS read: ", errno != 0 ? strerror(errno) : FirstSslError()));
    }
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n >= 0) {
      buffer_.append(buf, n);
      return static_cast<size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return absl::DeadlineExceededError("recv timed out");
    return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
  }
}

absl::Status HttpTestClient::ReadUntil(size_t size) {
  while (buffer_.size() < size) {
    absl::StatusOr<size_t> n = ReadMore();
    if (!n.ok()) return n.status();
    if (*n == 0) return absl::UnavailableError("connection closed in the middle of a response");
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpTestResponse> HttpTestClient::ReadResponse(bool head_only) {
  size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    absl::StatusOr<size_t> n = ReadMore();
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return absl::UnavailableError(buffer_.empty() ? "connection closed, no response"
                                                    : "connection closed in a response head");
    }
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(buffer_).substr(0, head_end), "\r\n");
  std::vector<absl::string_view> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  HttpTestResponse response;
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
      !absl::SimpleAtoi(status_line[1], &response.status)) {
    return absl::DataLossError(absl::StrCat("bad status line: ", lines[0]));
  }
  if (status_line.size() == 3) response.reason = std::string(status_line[2]);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<absl::string_view> field = absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
    if (field.size() != 2) return absl::DataLossError(absl::StrCat("bad field: ", lines[i]));
    response.headers.emplace_back(std::string(field[0]),
                                  std::string(absl::StripAsciiWhitespace(field[1])));
  }

  const size_t body_start = head_end + 4;
  size_t body_end = body_start;
  size_t length = 0;
  const bool no_body =
      head_only || response.status < 200 || response.status == 204 || response.status == 304;
  if (!no_body && absl::SimpleAtoi(response.Header("content-length"), &length)) {
    body_end = body_start + length;
    if (absl::Status s = ReadUntil(body_end); !s.ok()) return s;
  } else if (!no_body) {
    while (true) {  // delimited by the end of the connection
      absl::StatusOr<size_t> n = ReadMore();
      if (!n.ok()) return n.status();
      if (*n == 0) break;
    }
    body_end = buffer_.size();
  }
  response.body = buffer_.substr(body_start, body_end - body_start);
  buffer_.erase(0, body_end);
  return response;
}

absl::StatusOr<HttpTestResponse> HttpTestClient::Request(
    absl::string_view method, absl::string_view target, absl::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string request = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: localhost\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&request, name, ": ", value, "\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&request, "\r\n", body);
  if (absl::Status s = Send(request); !s.ok()) return s;
  return ReadResponse(method == "HEAD");
}

bool HttpTestClient::WaitForClose(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  bool closed = false;
  while (!closed && absl::Now() < deadline) {
    SetTimeout(fd_, SO_RCVTIMEO, deadline - absl::Now());
    absl::StatusOr<size_t> n = ReadMore();
    buffer_.clear();
    closed = (n.ok() && *n == 0) || absl::IsUnavailable(n.status());
    if (absl::IsDeadlineExceeded(n.status())) break;
  }
  SetTimeout(fd_, SO_RCVTIMEO, timeout_);
  return closed;
}

std::string HttpTestClient::AlpnProtocol() const {
  if (ssl_ == nullptr) return "";
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return data == nullptr ? "" : std::string(reinterpret_cast<const char*>(data), len);
}

absl::StatusOr<HttpTestResponse> HttpFetch(const HttpClientOptions& options,
                                           absl::string_view method, absl::string_view target,
                                           absl::string_view body) {
  absl::StatusOr<std::unique_ptr<HttpTestClient>> client = HttpTestClient::Connect(options);
  if (!client.ok()) return client.status();
  return (*client)->Request(method, target, body, {{"Connection", "close"}});
}

}  // namespace repro::testing
