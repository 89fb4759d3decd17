// A tiny blocking HTTP/1.1 client for tests, over plain TCP or TLS (OpenSSL, verifying the server
// certificate). One connection per client; send whole requests or raw bytes, read responses framed
// by Content-Length (or by the server closing).
//
//   HttpClientOptions options{.port = server->port(), .ca_file = dir.Path("cert.pem")};
//   absl::StatusOr<std::unique_ptr<HttpTestClient>> client = HttpTestClient::Connect(options);
//   ASSERT_TRUE(client.ok()) << client.status();
//   absl::StatusOr<HttpTestResponse> response = (*client)->Request("POST", "/mutate", body);
//   EXPECT_EQ(response->status, 200);
//
// Connect() makes the test process ignore SIGPIPE, so that writing to a connection the server
// closed is an error, not the end of the test binary.
#ifndef REPRO_TESTS_TESTUTIL_HTTP_CLIENT_H_
#define REPRO_TESTS_TESTUTIL_HTTP_CLIENT_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "openssl/ssl.h"

namespace repro::testing {

struct HttpClientOptions {
  std::string host = "127.0.0.1";  // numeric IPv4 or IPv6 address
  int port = 0;
  // Non-empty: speak TLS and verify the server's certificate chain against this PEM file, and
  // its name against `server_name` (also sent as SNI).
  std::string ca_file;
  std::string server_name = "localhost";
  // Bounds each read and write.
  absl::Duration timeout = absl::Seconds(10);
};

struct HttpTestResponse {
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first value of field `name` (case-insensitive), "" when absent.
  std::string Header(absl::string_view name) const;
};

// Not thread-safe: one test thread uses a client.
class HttpTestClient {
 public:
  // Connects (and completes the TLS handshake when options.ca_file is set). Fails with
  // UNAVAILABLE when the connection or the handshake fails, including certificate verification.
  static absl::StatusOr<std::unique_ptr<HttpTestClient>> Connect(const HttpClientOptions& options);
  ~HttpTestClient();

  HttpTestClient(const HttpTestClient&) = delete;
  HttpTestClient& operator=(const HttpTestClient&) = delete;

  // Sends `bytes` as they are.
  absl::Status Send(absl::string_view bytes);

  // Reads one response, interim ones (100 Continue) included. The body is Content-Length bytes,
  // none for 1xx/204/304 or when `head_only` (the answer to HEAD), else everything up to EOF.
  // Fails with UNAVAILABLE when the connection ends first, DEADLINE_EXCEEDED after the timeout.
  absl::StatusOr<HttpTestResponse> ReadResponse(bool head_only = false);

  // Sends `method target HTTP/1.1` with Host, `headers`, and Content-Length when there is a body
  // or the method is POST or PUT, then reads the response.
  absl::StatusOr<HttpTestResponse> Request(
      absl::string_view method, absl::string_view target, absl::string_view body = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {});

  // True when the server closes the connection (EOF or reset) within `timeout`; bytes that
  // arrive before are dropped.
  bool WaitForClose(absl::Duration timeout);

  // ALPN protocol the server chose ("" when none); TLS only.
  std::string AlpnProtocol() const;

 private:
  HttpTestClient(int fd, SSL_CTX* ctx, SSL* ssl, absl::Duration timeout);
  // Appends what arrives to buffer_; 0 at EOF.
  absl::StatusOr<size_t> ReadMore();
  absl::Status ReadUntil(size_t size);

  const int fd_;
  SSL_CTX* const ctx_;  // null for plain TCP
  SSL* const ssl_;
  const absl::Duration timeout_;
  std::string buffer_;  // received, not yet consumed
};

// Connects, sends one request with "Connection: close" and returns the response.
absl::StatusOr<HttpTestResponse> HttpFetch(const HttpClientOptions& options,
                                           absl::string_view method, absl::string_view target,
                                           absl::string_view body = "");

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_HTTP_CLIENT_H_
