// A small HTTP/1.1 server for reprod's Prometheus endpoint (plain TCP) and Kubernetes admission
// webhook (HTTPS with OpenSSL). Handlers are registered by method and exact path; everything a
// client can get wrong is answered with a status code, logged once and counted, never a crash.
//
//   Metrics metrics;
//   HttpServerOptions options;
//   options.name = "metrics";
//   options.listen = "0.0.0.0:9464";  // "[::1]:9464"; port 0 picks a free port
//   options.metrics = &metrics;
//   ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> server,
//                    HttpServer::Start(options, {{"GET", "/metrics", [&](const HttpRequest&) {
//                      return HttpResponse{200, kPrometheusContentType,
//                                          metrics.RenderPrometheus()};
//                    }}}));
//   ... server->port() ...
//   server->Stop();  // or let the destructor do it
//
// Protocol: HTTP/1.0 and 1.1 with keep-alive and pipelining; request bodies need Content-Length
// (chunked bodies get 411, see http_wire.h); "Expect: 100-continue" is honoured; HEAD is served
// only where a route says HEAD. Answers of its own (all but 404/405 close the connection):
//   400 malformed request                        404 no route for the path
//   405 path known, method not (Allow: lists)    408 request not complete within read_timeout
//   411 Transfer-Encoding body                   413 body above max_body_bytes
//   414/431 request line / head above max_header_bytes
//   417 an Expect other than 100-continue        505 not HTTP/1.x
//   503 max_connections connections already being served
// Each refusal is logged once (debug level; 503s at info) and counted in
// repro_http_requests_total{server, code}, as are handler answers. Connections that end without
// an answer are counted in repro_http_connection_errors_total{server, reason}: "tls_handshake",
// "overload" (closed at once: even the 503 answerers were busy), "io" (broken mid-request or
// mid-response). Idle keep-alive connections are closed at read_timeout without a word. Also
// exported: repro_http_open_connections{server}, repro_http_handler_seconds{server}.
//
// Why not Debian's cpp-httplib (libcpp-httplib-dev 0.11.4, checked against its source at tag
// v0.11.4; issue 11 asked for a well-kept library unless a missing feature says otherwise). Of
// the limits above it has only the body limit for Content-Length bodies:
//   - No connection cap and no 503: the accept loop enqueues every socket into the TaskQueue
//     (default ThreadPool of max(8, cores - 1) threads and an unbounded job list), and
//     TaskQueue::enqueue returns void with the socket inside the closure, so a custom
//     `new_task_queue` can only serve a connection or leak its descriptor, never refuse it
//     (a refusing enqueue arrived in 0.15).
//   - set_read_timeout is SO_RCVTIMEO plus a select() before each read: an idle limit per read,
//     not a deadline for the request. A client sending a byte per few seconds holds a pool thread
//     for as long as it likes; eight of them stop the webhook (Kubernetes then fails admission).
//   - set_payload_max_length applies to Content-Length only. read_content_chunked has no limit
//     (the body grows in memory until the client stops) and reads chunk-size lines into a
//     growable buffer of no maximum. Chunked bodies can be refused from set_pre_routing_handler,
//     which runs before the body is read, but the connection cannot be closed from a handler
//     (only the request's Connection header closes it), so the unread body is then parsed as the
//     next request.
//   - A Content-Length above the limit is read and discarded in full (skip_content_with_length)
//     before the 413 goes out; we answer at once and close.
//   - No limit on the request head: each header line is capped at CPPHTTPLIB_HEADER_MAX_LENGTH
//     (8192, fixed when Debian built the library), but the number of lines is not, and a line
//     ending in a bare LF is skipped before that check. We answer 431 above max_header_bytes.
// What it would give us: less parsing code of our own (http_wire.cc, fuzzed by http_request).
// Revisit with a release that has a refusing task queue and a request deadline.
#ifndef REPRO_DAEMON_HTTP_HTTP_SERVER_H_
#define REPRO_DAEMON_HTTP_HTTP_SERVER_H_

#include <pthread.h>

#include <array>
#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/http/http_message.h"
#include "daemon/http/tls_context.h"
#include "daemon/metrics/metrics.h"

namespace repro {

struct HttpServerOptions {
  // Names the server in logs and in the `server` label of its metrics ("metrics", "webhook").
  std::string name = "http";
  // "host:port", "[::1]:port" or ":port" (all interfaces); port 0 picks a free one (see port()).
  std::string listen;
  // PEM files; both set: HTTPS (TLS 1.2+), both empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  size_t max_body_bytes = 1 << 20;
  // Request line plus header fields.
  size_t max_header_bytes = 16 << 10;
  // Time allowed for each request to arrive in full, counted from when the server starts waiting
  // for it (so it is also the keep-alive idle timeout and bounds the TLS handshake); also bounds
  // writing each response to a client that does not read.
  absl::Duration read_timeout = absl::Seconds(10);
  // Connections served at once; beyond them, a few more are answered 503 and the rest closed.
  int max_connections = 64;
  // Where to count requests and refusals; null: not exported (counted privately).
  Metrics* metrics = nullptr;
};

// Must return: the server cannot interrupt a handler, and Stop() waits for running ones. Runs on
// the connection's thread, so handlers for different connections run concurrently.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpRoute {
  std::string method;  // "GET", "POST", ...
  std::string path;    // exact match against HttpRequest::path, e.g. "/validate"
  HttpHandler handler;
};

// Thread-safe. An accept thread plus one thread per connection (at most max_connections serving,
// plus a few that only answer 503). A TLS handshake runs on the connection's thread.
class HttpServer {
 public:
  // Binds, listens and starts serving. Fails with INVALID_ARGUMENT for bad options or routes (two
  // routes for one method and path, a path not starting with '/') and for TLS files that are
  // missing, unreadable, not PEM or whose key does not match the certificate; with the errno's
  // code when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           std::vector<HttpRoute> routes);
  // Stop()s.
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the chosen one when the options said port 0).
  int port() const { return port_; }

  // Stops accepting and closes idle connections and requests still arriving at once; requests
  // being handled finish and their responses are written (a client that does not read them is
  // cut off after kStopGrace). Returns when every connection thread has ended. Idempotent; must
  // not be called from a handler.
  void Stop();

  // How long Stop() lets responses in flight drain before it closes their sockets.
  static constexpr absl::Duration kStopGrace = absl::Seconds(2);
  // Connections beyond max_connections that are still answered 503 (the rest are just closed).
  static constexpr int kMaxRefusingConnections = 8;

 private:
  struct Connection;
  // method -> handler, by path.
  using RouteTable = std::map<std::string, std::map<std::string, HttpHandler>, std::less<>>;

  HttpServer(const HttpServerOptions& options, RouteTable routes, int listen_fd, int port,
             SslCtxPtr ssl_ctx, int stop_fd);

  void AcceptLoop();
  // Hands a freshly accepted socket to a new connection thread (or closes it when overloaded).
  void Admit(int fd, std::string peer);
  // Body of a connection thread.
  void Serve(Connection* connection);
  // Reads, answers and returns whether the connection stays open for another request.
  bool ServeRequest(Connection* connection, std::string* buffer);
  // Writes `response`; returns whether the write succeeded (and counts its status).
  bool Respond(Connection* connection, const HttpResponse& response, bool keep_alive,
               bool head_only);
  // Answers the refusal carried by `error` (an HttpError) and logs it once; `request` (nullable:
  // not parsed yet) gives 405's Allow field and HEAD handling. Returns whether the write succeeded.
  bool Refuse(Connection* connection, const absl::Status& error, bool keep_alive,
              const HttpRequest* request);
  // Joins connection threads that have ended.
  void Reap();

  // repro_http_requests_total{server, code=status}.
  Counter* RequestCounter(int status);
  // repro_http_connection_errors_total{server, reason}.
  Counter* ConnectionErrorCounter(absl::string_view reason);

  const HttpServerOptions options_;
  const RouteTable routes_;
  const int listen_fd_;
  const int port_;
  const SslCtxPtr ssl_ctx_;  // null: plain HTTP
  // An eventfd written once by Stop(); every wait in the server also watches it.
  const int stop_fd_;

  Metrics private_metrics_;  // used when options_.metrics is null
  Metrics* const metrics_;
  // repro_http_requests_total per status code, looked up once per code.
  std::array<std::atomic<Counter*>, 600> request_counters_{};
  Gauge* const open_connections_;
  Histogram* const handler_seconds_;

  std::optional<pthread_t> accept_thread_;  // set once Start() has started it
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::list<std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  int serving_ ABSL_GUARDED_BY(mu_) = 0;
  int refusing_ ABSL_GUARDED_BY(mu_) = 0;
  // Serializes Stop() callers so that the second returns only when the first has finished.
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

}  // namespace repro

#endif  // REPRO_DAEMON_HTTP_HTTP_SERVER_H_
