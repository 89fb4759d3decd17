// HttpServer over TLS, with certificates made by the openssl command line for each test run.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/http/http_server.h"
#include "daemon/metrics/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/http_client.h"
#include "tests/testutil/subprocess.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::repro::testing::HttpClientOptions;
using ::repro::testing::HttpFetch;
using ::repro::testing::HttpTestClient;
using ::repro::testing::HttpTestResponse;
using ::repro::testing::RunCommand;
using ::repro::testing::RunResult;
using ::repro::testing::TempDir;
using ::testing::HasSubstr;

// Writes a self-signed P-256 certificate for localhost/127.0.0.1 and its key.
void MakeSelfSignedCert(const std::string& cert, const std::string& key) {
  RunResult result = RunCommand({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                 "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
                                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days",
                                 "1", "-keyout", key, "-out", cert});
  ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
}

class HttpsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    MakeSelfSignedCert(dir_->Path("c.pem"), dir_->Path("k.pem"));
    MakeSelfSignedCert(dir_->Path("other_c.pem"), dir_->Path("other_k.pem"));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // Starts an HTTPS server with GET /hello on 127.0.0.1:0.
  void StartServer() {
    HttpServerOptions options;
    options.name = "webhook";
    options.listen = "127.0.0.1:0";
    options.tls_cert_file = dir_->Path("c.pem");
    options.tls_key_file = dir_->Path("k.pem");
    options.read_timeout = absl::Seconds(5);
    options.metrics = &metrics_;
    absl::StatusOr<std::unique_ptr<HttpServer>> server =
        HttpServer::Start(options, {{"GET", "/hello", [](const HttpRequest&) {
                                       return HttpResponse{200, "text/plain", "hello over TLS\n"};
                                     }}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  HttpClientOptions ClientOptions(const std::string& ca = "c.pem") const {
    HttpClientOptions options;
    options.port = server_->port();
    options.ca_file = dir_->Path(ca);
    return options;
  }

  uint64_t TlsHandshakeErrors() {
    return metrics_
        .GetCounter("repro_http_connection_errors_total", "",
                    {{"server", "webhook"}, {"reason", "tls_handshake"}})
        ->value();
  }

  static absl::Status StartError(const std::string& cert, const std::string& key) {
    HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.tls_cert_file = cert;
    options.tls_key_file = key;
    return HttpServer::Start(options, {}).status();
  }

  static TempDir* dir_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
};

TempDir* HttpsServerTest::dir_ = nullptr;

TEST_F(HttpsServerTest, ServesVerifiedClientsWithKeepAlive) {
  StartServer();
  absl::StatusOr<std::unique_ptr<HttpTestClient>> client = HttpTestClient::Connect(ClientOptions());
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->AlpnProtocol(), "http/1.1");
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<HttpTestResponse> response = (*client)->Request("GET", "/hello");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "hello over TLS\n");
  }
  absl::StatusOr<HttpTestResponse> missing = (*client)->Request("GET", "/missing");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->status, 404);
}

TEST_F(HttpsServerTest, ClientRefusesAnUntrustedCertificate) {
  StartServer();
  absl::StatusOr<std::unique_ptr<HttpTestClient>> client =
      HttpTestClient::Connect(ClientOptions("other_c.pem"));
  EXPECT_FALSE(client.ok());
  EXPECT_THAT(client.status().message(), HasSubstr("certificate"));
  // The server shrugs it off.
  absl::StatusOr<HttpTestResponse> response = HttpFetch(ClientOptions(), "GET", "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpsServerTest, PlainHttpOnTheTlsPortIsDroppedHarmlessly) {
  StartServer();
  HttpClientOptions plain = ClientOptions();
  plain.ca_file.clear();
  absl::StatusOr<std::unique_ptr<HttpTestClient>> client = HttpTestClient::Connect(plain);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Send("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n").ok());
  EXPECT_TRUE((*client)->WaitForClose(absl::Seconds(5)));
  EXPECT_EQ(TlsHandshakeErrors(), 1u);

  absl::StatusOr<HttpTestResponse> response = HttpFetch(ClientOptions(), "GET", "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpsServerTest, StalledHandshakeDoesNotBlockOthers) {
  StartServer();
  HttpClientOptions plain = ClientOptions();
  plain.ca_file.clear();
  // Connects and says nothing: its handshake waits on its own thread.
  absl::StatusOr<std::unique_ptr<HttpTestClient>> silent = HttpTestClient::Connect(plain);
  ASSERT_TRUE(silent.ok()) << silent.status();
  absl::StatusOr<HttpTestResponse> response = HttpFetch(ClientOptions(), "GET", "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpsServerTest, StartRefusesBadCertificateFiles) {
  const std::string cert = dir_->Path("c.pem");
  const std::string key = dir_->Path("k.pem");
  const std::string garbage = dir_->Path("garbage.pem");
  testing::WriteFileOrDie(garbage, "this is not a certificate\n");

  absl::Status missing = StartError(dir_->Path("missing.pem"), key);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(), HasSubstr("missing.pem"));
  EXPECT_THAT(missing.message(), HasSubstr("No such file"));

  absl::Status bad_cert = StartError(garbage, key);
  EXPECT_EQ(bad_cert.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_cert.message(), HasSubstr("tls_cert_file " + garbage));

  absl::Status bad_key = StartError(cert, garbage);
  EXPECT_EQ(bad_key.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_key.message(), HasSubstr("tls_key_file " + garbage));

  absl::Status mismatch = StartError(cert, dir_->Path("other_k.pem"));
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.message(), HasSubstr("does not match"));

  absl::Status directory = StartError(dir_->path(), key);
  EXPECT_EQ(directory.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(directory.message(), HasSubstr("not a regular file"));
}

TEST_F(HttpsServerTest, StartRefusesAnEncryptedKeyWithoutPrompting) {
  const std::string encrypted = dir_->Path("encrypted_k.pem");
  RunResult result = RunCommand({"openssl", "pkey", "-in", dir_->Path("k.pem"), "-aes256",
                                 "-passout", "pass:secret", "-out", encrypted});
  ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
  absl::Status status = StartError(dir_->Path("c.pem"), encrypted);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("encrypted"));
}

}  // namespace
}  // namespace repro
