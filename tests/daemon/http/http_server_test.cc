#include "daemon/http/http_server.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "daemon/metrics/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/http_client.h"

namespace repro {
namespace {

using ::repro::testing::HttpClientOptions;
using ::repro::testing::HttpFetch;
using ::repro::testing::HttpTestClient;
using ::repro::testing::HttpTestResponse;
using ::testing::HasSubstr;

// The response's status, or -1 when there was no response.
int StatusOf(const absl::StatusOr<HttpTestResponse>& response) {
  return response.ok() ? response->status : -1;
}

class HttpServerTest : public ::testing::Test {
 protected:
  // Starts a server on 127.0.0.1:0 with GET /hello, POST /echo, GET /status (answers the status
  // named in the query) and GET /inject (a handler that tries to split the response).
  void StartServer(HttpServerOptions options = {}) {
    options.name = "test";
    options.listen = "127.0.0.1:0";
    options.metrics = &metrics_;
    std::vector<HttpRoute> routes = {
        {"GET", "/hello",
         [](const HttpRequest&) {
           return HttpResponse{200, "text/plain", "hello\n"};
         }},
        {"POST", "/echo",
         [](const HttpRequest& request) {
           HttpResponse response{200, "application/octet-stream", request.body};
           response.headers.Add("X-Peer", request.peer);
           response.headers.Add("X-Query", request.query);
           return response;
         }},
        {"GET", "/status",
         [](const HttpRequest& request) {
           int status = 0;
           (void)absl::SimpleAtoi(request.query, &status);
           return HttpResponse{status, "text/plain", "custom\n"};
         }},
        {"GET", "/inject",
         [](const HttpRequest&) {
           HttpResponse response{200, "text/plain", "ok\n"};
           response.headers.Add("X-Evil", "a\r\nSet-Cookie: stolen=1");
           return response;
         }},
    };
    absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(options, routes);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  HttpClientOptions ClientOptions() const {
    HttpClientOptions options;
    options.port = server_->port();
    return options;
  }

  std::unique_ptr<HttpTestClient> Connect() {
    absl::StatusOr<std::unique_ptr<HttpTestClient>> client =
        HttpTestClient::Connect(ClientOptions());
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // The value of repro_http_requests_total for `code`, 0 when never counted.
  uint64_t Count(int code) {
    return metrics_
        .GetCounter("repro_http_requests_total", "",
                    {{"server", "test"}, {"code", absl::StrCat(code)}})
        ->value();
  }

  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, GetReturnsBody) {
  StartServer();
  absl::StatusOr<HttpTestResponse> response = HttpFetch(ClientOptions(), "GET", "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello\n");
  EXPECT_EQ(response->Header("content-type"), "text/plain");
  EXPECT_EQ(response->Header("connection"), "close");
  EXPECT_EQ(Count(200), 1u);
}

TEST_F(HttpServerTest, PostEchoesBody) {
  StartServer();
  std::string body(100000, 'x');
  for (size_t i = 0; i < body.size(); i += 7) body[i] = static_cast<char>(i);
  std::unique_ptr<HttpTestClient> client = Connect();
  absl::StatusOr<HttpTestResponse> response = client->Request("POST", "/echo?a=b", body);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, body);
  EXPECT_EQ(response->Header("x-query"), "a=b");
  EXPECT_THAT(response->Header("x-peer"), ::testing::StartsWith("127.0.0.1:"));
}

TEST_F(HttpServerTest, UnknownPathIs404AndConnectionSurvives) {
  StartServer();
  std::unique_ptr<HttpTestClient> client = Connect();
  absl::StatusOr<HttpTestResponse> response = client->Request("GET", "/nope");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->Header("connection"), "keep-alive");
  response = client->Request("GET", "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(Count(404), 1u);

  // With a body the server would have to skip, it closes instead.
  response = client->Request("POST", "/nope", "unread body");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->Header("connection"), "close");
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(5)));
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllow) {
  StartServer();
  absl::StatusOr<HttpTestResponse> response = HttpFetch(ClientOptions(), "DELETE", "/echo");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 405);
  EXPECT_EQ(response->Header("allow"), "POST");
  EXPECT_EQ(Count(405), 1u);
}

TEST_F(HttpServerTest, MalformedRequestIs400AndClosed) {
  StartServer();
  std::unique_ptr<HttpTestClient> client = Connect();
  ASSERT_TRUE(client->Send("GET / HTTP/1.1\r\nNo colon here\r\n\r\n").ok());
  absl::StatusOr<HttpTestResponse> response = client->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400);
  EXPECT_THAT(response->body, HasSubstr("colon"));
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(5)));

  client = Connect();
  ASSERT_TRUE(
      client->Send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)).ok());
  response = client->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(Count(400), 2u);
}

TEST_F(HttpServerTest, OversizedBodyIs413) {
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  StartServer(options);
  std::unique_ptr<HttpTestClient> client = Connect();
  absl::StatusOr<HttpTestResponse> response =
      client->Request("POST", "/echo", std::string(2048, 'b'));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->Header("connection"), "close");
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(5)));

  // Announced but never sent: refused from the head alone.
  client = Connect();
  ASSERT_TRUE(client->Send("POST /echo HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n").ok());
  response = client->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);

  response = HttpFetch(ClientOptions(), "POST", "/echo", std::string(1024, 'b'));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(Count(413), 2u);
}

TEST_F(HttpServerTest, OversizedHeadersAre431) {
  StartServer();  // 16 KiB of head
  std::unique_ptr<HttpTestClient> client = Connect();
  absl::StatusOr<HttpTestResponse> response =
      client->Request("GET", "/hello", "", {{"X-Big", std::string(20 << 10, 'h')}});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 431);
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(5)));

  response = HttpFetch(ClientOptions(), "GET", "/hello?" + std::string(20 << 10, 'q'));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 414);
  EXPECT_EQ(Count(431), 1u);
}

TEST_F(HttpServerTest, ChunkedBodyIs411) {
  StartServer();
  absl::StatusOr<HttpTestResponse> response = [&] {
    std::unique_ptr<HttpTestClient> client = Connect();
    EXPECT_TRUE(client
                    ->Send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5\r\nhello\r\n0\r\n\r\n")
                    .ok());
    return client->ReadResponse();
  }();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 411);
}

TEST_F(HttpServerTest, KeepAliveAndPipelining) {
  StartServer();
  std::unique_ptr<HttpTestClient> client = Connect();
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<HttpTestResponse> response =
        client->Request("POST", "/echo", absl::StrCat("r", i));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, absl::StrCat("r", i));
    EXPECT_EQ(response->Header("connection"), "keep-alive");
  }
  // Two requests in one write, with a stray CRLF between them (tolerated).
  ASSERT_TRUE(client
                  ->Send("POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\none\r\n"
                         "GET /hello HTTP/1.1\r\n\r\n")
                  .ok());
  absl::StatusOr<HttpTestResponse> first = client->ReadResponse();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->body, "one");
  absl::StatusOr<HttpTestResponse> second = client->ReadResponse();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body, "hello\n");

  // HTTP/1.0 without keep-alive: answered and closed.
  ASSERT_TRUE(client->Send("GET /hello HTTP/1.0\r\n\r\n").ok());
  absl::StatusOr<HttpTestResponse> last = client->ReadResponse();
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->Header("connection"), "close");
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(5)));
}

TEST_F(HttpServerTest, ExpectContinue) {
  StartServer();
  std::unique_ptr<HttpTestClient> client = Connect();
  ASSERT_TRUE(client
                  ->Send("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                         "Content-Length: 4\r\n\r\n")
                  .ok());
  absl::StatusOr<HttpTestResponse> interim = client->ReadResponse();
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client->Send("body").ok());
  absl::StatusOr<HttpTestResponse> response = client->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "body");
}

TEST_F(HttpServerTest, BadHandlerOutputIsContained) {
  StartServer();
  absl::StatusOr<HttpTestResponse> response = HttpFetch(ClientOptions(), "GET", "/status?0");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 500);
  response = HttpFetch(ClientOptions(), "GET", "/status?418");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 418);
  response = HttpFetch(ClientOptions(), "GET", "/inject");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("set-cookie"), "");
  EXPECT_EQ(response->Header("x-evil"), "");
}

TEST_F(HttpServerTest, SlowlorisIsCutOffAtTheDeadline) {
  HttpServerOptions options;
  options.read_timeout = absl::Milliseconds(500);
  StartServer(options);

  // Half a request, then silence: 408 and closed.
  std::unique_ptr<HttpTestClient> half = Connect();
  ASSERT_TRUE(half->Send("GET /hello HTTP/1.1\r\nHost: x\r\n").ok());
  absl::StatusOr<HttpTestResponse> response = half->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 408);
  EXPECT_TRUE(half->WaitForClose(absl::Seconds(5)));

  // A complete head and half the body: the same.
  std::unique_ptr<HttpTestClient> half_body = Connect();
  ASSERT_TRUE(half_body->Send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").ok());
  response = half_body->ReadResponse();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 408);

  // A byte every 50 ms never completes a request in time, however steadily it trickles.
  std::unique_ptr<HttpTestClient> trickle = Connect();
  const std::string request = "GET /hello HTTP/1.1\r\nX-Padding: " + std::string(100, 'p');
  bool cut_off = false;
  for (char c : request) {
    if (!trickle->Send(std::string(1, c)).ok()) {
      cut_off = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(cut_off || trickle->WaitForClose(absl::Seconds(5)));

  // Idle keep-alive connections are closed without a word.
  std::unique_ptr<HttpTestClient> idle = Connect();
  ASSERT_TRUE(idle->Request("GET", "/hello").ok());
  EXPECT_TRUE(idle->WaitForClose(absl::Seconds(5)));
  EXPECT_EQ(Count(408), 3u);
}

TEST_F(HttpServerTest, ManyConcurrentClients) {
  StartServer();
  constexpr int kClients = 32;
  constexpr int kRequests = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      absl::StatusOr<std::unique_ptr<HttpTestClient>> client =
          HttpTestClient::Connect(ClientOptions());
      if (!client.ok()) return;
      for (int r = 0; r < kRequests; ++r) {
        std::string body = absl::StrCat("client ", c, " request ", r);
        absl::StatusOr<HttpTestResponse> response = (*client)->Request("POST", "/echo", body);
        if (response.ok() && response->status == 200 && response->body == body) ++ok;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
  EXPECT_EQ(Count(200), uint64_t{kClients * kRequests});
  EXPECT_THAT(metrics_.RenderPrometheus(),
              HasSubstr(absl::StrCat("repro_http_handler_seconds_count{server=\"test\"} ",
                                     kClients * kRequests, "\n")));
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitGet503) {
  HttpServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  std::unique_ptr<HttpTestClient> first = Connect();
  std::unique_ptr<HttpTestClient> second = Connect();
  ASSERT_EQ(StatusOf(first->Request("GET", "/hello")), 200);
  ASSERT_EQ(StatusOf(second->Request("GET", "/hello")), 200);

  std::unique_ptr<HttpTestClient> third = Connect();
  absl::StatusOr<HttpTestResponse> response = third->Request("GET", "/hello");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503);
  EXPECT_TRUE(third->WaitForClose(absl::Seconds(5)));

  // Once a slot frees up, new clients are served again.
  first.reset();
  int status = 0;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10);
       status != 200 && absl::Now() < deadline;) {
    status = StatusOf(HttpFetch(ClientOptions(), "GET", "/hello"));
    if (status != 200) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(status, 200);
  EXPECT_GE(Count(503), 1u);
}

TEST_F(HttpServerTest, StopWithClientsConnectedReturnsPromptly) {
  HttpServerOptions options;
  options.read_timeout = absl::Seconds(60);  // Stop() must not wait for it
  StartServer(options);
  std::vector<std::unique_ptr<HttpTestClient>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(Connect());  // idle, no request yet
  ASSERT_TRUE(clients[0]->Request("GET", "/hello").ok());    // idle keep-alive
  ASSERT_TRUE(clients[1]->Send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").ok());
  ASSERT_TRUE(clients[2]->Send("GET /hel").ok());

  const absl::Time start = absl::Now();
  server_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  for (auto& client : clients) EXPECT_TRUE(client->WaitForClose(absl::Seconds(5)));
  EXPECT_FALSE(HttpTestClient::Connect(ClientOptions()).ok() &&
               HttpFetch(ClientOptions(), "GET", "/hello").ok());
  server_->Stop();  // idempotent
}

TEST_F(HttpServerTest, StopLetsARunningHandlerAnswer) {
  absl::Notification entered;
  absl::Notification release;
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(options, {{"GET", "/wait", [&](const HttpRequest&) {
                                     entered.Notify();
                                     release.WaitForNotification();
                                     return HttpResponse{200, "text/plain", "done"};
                                   }}});
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClientOptions client_options;
  client_options.port = (*server)->port();
  absl::StatusOr<HttpTestResponse> response;
  std::thread request([&] { response = HttpFetch(client_options, "GET", "/wait"); });
  entered.WaitForNotification();
  std::thread stop([&] { (*server)->Stop(); });
  absl::SleepFor(absl::Milliseconds(100));
  release.Notify();
  stop.join();
  request.join();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "done");
}

TEST(HttpServerStartTest, RefusesBadOptionsAndRoutes) {
  HttpHandler ok = [](const HttpRequest&) { return HttpResponse{}; };
  HttpServerOptions options;
  for (const char* listen :
       {"", "nonsense", "1.2.3.4", "::1:80", "[::1]80", "host:99999", "127.0.0.1:-1"}) {
    options.listen = listen;
    absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(options, {});
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << listen;
  }
  options.listen = "127.0.0.1:0";
  EXPECT_EQ(HttpServer::Start(options, {{"GET", "/a", ok}, {"GET", "/a", ok}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpServer::Start(options, {{"GET", "no-slash", ok}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpServer::Start(options, {{"GET", "/a", nullptr}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.tls_cert_file = "/only/the/cert.pem";
  EXPECT_EQ(HttpServer::Start(options, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpServerStartTest, PortInUseIsAnError) {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<HttpServer>> first = HttpServer::Start(options, {});
  ASSERT_TRUE(first.ok()) << first.status();
  options.listen = absl::StrCat("127.0.0.1:", (*first)->port());
  absl::StatusOr<std::unique_ptr<HttpServer>> second = HttpServer::Start(options, {});
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr(options.listen));
}

TEST(HttpServerStartTest, ServesIpv6Loopback) {
  HttpServerOptions options;
  options.listen = "[::1]:0";
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(options, {{"GET", "/", [](const HttpRequest& r) {
                                     return HttpResponse{200, "", r.peer};
                                   }}});
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << server.status();
  HttpClientOptions client;
  client.host = "::1";
  client.port = (*server)->port();
  absl::StatusOr<HttpTestResponse> response = HttpFetch(client, "GET", "/");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(response->body, ::testing::StartsWith("[::1]:"));
}

}  // namespace
}  // namespace repro
