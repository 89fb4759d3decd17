#include "daemon/http/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "daemon/http/http_wire.h"
#include "daemon/http/socket_stream.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// Bytes asked of the socket per read.
constexpr size_t kReadChunk = 16 << 10;
// How long a closing connection waits for the peer to stop sending (SocketStream::Finish).
constexpr absl::Duration kLinger = absl::Seconds(1);

// Starts `fn` on a new thread. Unlike std::thread, running out of threads is a status, not an
// exception.
absl::StatusOr<pthread_t> SpawnThread(std::function<void()> fn) {
  auto* arg = new std::function<void()>(std::move(fn));
  pthread_t thread;
  int err = pthread_create(
      &thread, nullptr,
      [](void* p) -> void* {
        std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(p));
        (*body)();
        return nullptr;
      },
      arg);
  if (err != 0) {
    delete arg;
    return PosixError(err, "pthread_create");
  }
  return thread;
}

// Splits "host:port", "[v6]:port" or ":port".
absl::Status SplitHostPort(const std::string& listen, std::string* host, std::string* port) {
  size_t colon;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen address '", listen, "': expected [v6-address]:port"));
    }
    *host = listen.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = listen.rfind(':');
    if (colon == std::string::npos || listen.find(':') != colon) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address '", listen, "': expected host:port, [v6-address]:port or :port"));
    }
    *host = listen.substr(0, colon);
  }
  *port = listen.substr(colon + 1);
  int number = 0;
  if (port->empty() || !std::all_of(port->begin(), port->end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(*port, &number) || number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", listen, "': port must be 0..65535"));
  }
  return absl::OkStatus();
}

// A non-blocking listening socket bound to `listen`.
absl::StatusOr<int> ListenOn(const std::string& listen) {
  std::string host, port;
  RETURN_IF_ERROR(SplitHostPort(listen, &host, &port));
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &addresses);
  if (gai != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", listen, "': ", gai_strerror(gai)));
  }
  int err = EADDRNOTAVAIL;
  int fd = -1;
  for (addrinfo* ai = addresses; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      err = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(addresses);
  if (fd < 0) return PosixError(err, absl::StrCat("listen on ", listen));
  return fd;
}

absl::StatusOr<int> BoundPort(int fd) {
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return PosixError(errno, "getsockname");
  }
  return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

// "127.0.0.1:41234" or "[::1]:41234".
std::string PeerName(const sockaddr_storage& addr, socklen_t len) {
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof(host), service,
                  sizeof(service), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "unknown";
  }
  return addr.ss_family == AF_INET6 ? absl::StrCat("[", host, "]:", service)
                                    : absl::StrCat(host, ":", service);
}

absl::Status ValidateOptions(const HttpServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("tls_cert_file and tls_key_file go together");
  }
  if (options.max_body_bytes == 0 || options.max_header_bytes == 0 || options.max_connections < 1 ||
      options.read_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "max_body_bytes, max_header_bytes, max_connections and read_timeout must be positive");
  }
  return absl::OkStatus();
}

bool IsHead(const HttpRequest& request) { return request.method == "HEAD"; }

}  // namespace

struct HttpServer::Connection {
  int fd;  // closed by the connection's thread, under mu_, as it ends
  std::string peer;
  bool refuse;                           // beyond max_connections: answer 503 and close
  pthread_t thread;                      // set under mu_ by Admit()
  bool finished = false;                 // guarded by mu_
  std::unique_ptr<SocketStream> stream;  // used by the connection's thread only
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              std::vector<HttpRoute> routes) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RouteTable table;
  for (HttpRoute& route : routes) {
    if (route.path.empty() || route.path[0] != '/' || !IsHttpToken(route.method) ||
        !route.handler) {
      return absl::InvalidArgumentError(absl::StrCat("bad route '", route.method, " ", route.path,
                                                     "': need a method, a /path and a handler"));
    }
    if (!table[route.path].emplace(route.method, std::move(route.handler)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two routes for ", route.method, " ", route.path));
    }
  }
  SslCtxPtr ssl_ctx;
  if (!options.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(ssl_ctx, NewTlsServerContext(options.tls_cert_file, options.tls_key_file));
  }
  ASSIGN_OR_RETURN(int listen_fd, ListenOn(options.listen));
  absl::StatusOr<int> port = BoundPort(listen_fd);
  int stop_fd = port.ok() ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
  if (stop_fd < 0) {
    absl::Status status = port.ok() ? PosixError(errno, "eventfd") : port.status();
    close(listen_fd);
    return status;
  }
  auto server = absl::WrapUnique(
      new HttpServer(options, std::move(table), listen_fd, *port, std::move(ssl_ctx), stop_fd));
  ASSIGN_OR_RETURN(pthread_t accept_thread, SpawnThread([s = server.get()] { s->AcceptLoop(); }));
  server->accept_thread_ = accept_thread;
  spdlog::info("{}: serving {} on {} (port {})", options.name, server->ssl_ctx_ ? "HTTPS" : "HTTP",
               options.listen, server->port_);
  return server;
}

HttpServer::HttpServer(const HttpServerOptions& options, RouteTable routes, int listen_fd, int port,
                       SslCtxPtr ssl_ctx, int stop_fd)
    : options_(options),
      routes_(std::move(routes)),
      listen_fd_(listen_fd),
      port_(port),
      ssl_ctx_(std::move(ssl_ctx)),
      stop_fd_(stop_fd),
      metrics_(options.metrics != nullptr ? options.metrics : &private_metrics_),
      open_connections_(metrics_->GetGauge(
          "repro_http_open_connections", "HTTP connections open now.", {{"server", options.name}})),
      handler_seconds_(metrics_->GetHistogram(
          "repro_http_handler_seconds", "Time spent in HTTP request handlers.",
          Histogram::DefaultBuckets(), {{"server", options.name}})) {
  for (absl::string_view reason : {"tls_handshake", "overload", "io"}) {
    ConnectionErrorCounter(reason);  // export zeros from the start
  }
}

HttpServer::~HttpServer() {
  Stop();
  close(stop_fd_);
}

Counter* HttpServer::RequestCounter(int status) {
  if (status < 0 || status >= static_cast<int>(request_counters_.size())) status = 500;
  std::atomic<Counter*>& slot = request_counters_[status];
  Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter = metrics_->GetCounter("repro_http_requests_total",
                                   "HTTP responses sent, by status code (refusals included).",
                                   {{"server", options_.name}, {"code", absl::StrCat(status)}});
    slot.store(counter, std::memory_order_release);
  }
  return counter;
}

Counter* HttpServer::ConnectionErrorCounter(absl::string_view reason) {
  // Rare events: the registry look-up is cheap enough here.
  return metrics_->GetCounter(
      "repro_http_connection_errors_total",
      "HTTP connections ended without a response: TLS handshake failed, closed because too many "
      "were open, or broken mid-request.",
      {{"server", options_.name}, {"reason", std::string(reason)}});
}

void HttpServer::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      spdlog::error("{}: poll on listening socket: {}", options_.name, strerror(errno));
      poll(&fds[1], 1, 100);
      continue;
    }
    if (fds[1].revents & POLLIN) return;
    Reap();
    sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The connection stays in the backlog; back off instead of spinning on it.
        spdlog::warn("{}: accept: {}", options_.name, strerror(errno));
        ConnectionErrorCounter("overload")->Increment();
        poll(&fds[1], 1, 100);
      }
      continue;  // EAGAIN, ECONNABORTED, EINTR, ...
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Admit(fd, PeerName(addr, len));
  }
}

void HttpServer::Admit(int fd, std::string peer) {
  absl::MutexLock lock(&mu_);
  const bool refuse = serving_ >= options_.max_connections;
  if (stopping_ || (refuse && refusing_ >= kMaxRefusingConnections)) {
    close(fd);
    spdlog::info("{}: closed connection from {}: {} connections open", options_.name, peer,
                 serving_ + refusing_);
    ConnectionErrorCounter("overload")->Increment();
    return;
  }
  auto connection = std::make_unique<Connection>();
  connection->fd = fd;
  connection->peer = std::move(peer);
  connection->refuse = refuse;
  Connection* raw = connection.get();
  absl::StatusOr<pthread_t> thread = SpawnThread([this, raw] { Serve(raw); });
  if (!thread.ok()) {
    close(fd);
    spdlog::warn("{}: closed connection from {}: {}", options_.name, raw->peer,
                 thread.status().ToString());
    ConnectionErrorCounter("overload")->Increment();
    return;
  }
  raw->thread = *thread;
  connections_.push_back(std::move(connection));
  ++(refuse ? refusing_ : serving_);
  open_connections_->Add(1);
}

void HttpServer::Serve(Connection* connection) {
  // OpenSSL writes with write(2): a peer that went away must cost an EPIPE, not the process.
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);

  absl::StatusOr<std::unique_ptr<SocketStream>> stream =
      ssl_ctx_ ? NewTlsStream(connection->fd, stop_fd_, ssl_ctx_.get())
               : NewPlainStream(connection->fd, stop_fd_);
  absl::Status handshake =
      stream.ok() ? (*stream)->Handshake(absl::Now() + options_.read_timeout) : stream.status();
  if (handshake.ok()) {
    connection->stream = *std::move(stream);
    std::string buffer;
    while (ServeRequest(connection, &buffer)) {
    }
    connection->stream.reset();
  } else if (!absl::IsCancelled(handshake)) {
    spdlog::debug("{}: TLS handshake with {} failed: {}", options_.name, connection->peer,
                  std::string(handshake.message()));
    ConnectionErrorCounter("tls_handshake")->Increment();
  }

  absl::MutexLock lock(&mu_);
  close(connection->fd);
  connection->fd = -1;
  connection->finished = true;
  --(connection->refuse ? refusing_ : serving_);
  open_connections_->Add(-1);
}

bool HttpServer::ServeRequest(Connection* connection, std::string* buffer) {
  SocketStream& stream = *connection->stream;
  const absl::Time deadline = absl::Now() + options_.read_timeout;
  // Reads more of the request into *buffer; false when the connection is over (after answering a
  // request that timed out half-way with 408). Nothing is said when no byte of the request had
  // arrived (an idle keep-alive connection) or the server is stopping.
  auto read_more = [&](size_t max, bool request_started) {
    char chunk[kReadChunk];
    absl::StatusOr<size_t> n = stream.Read(chunk, std::min(max, sizeof(chunk)), deadline);
    if (n.ok() && *n > 0) {
      buffer->append(chunk, *n);
      return true;
    }
    if (!request_started || absl::IsCancelled(n.status())) return false;
    if (absl::IsDeadlineExceeded(n.status())) {
      Refuse(connection, HttpError(408, "request not received in time"), /*keep_alive=*/false,
             nullptr);
    } else {
      spdlog::debug("{}: connection from {} ended mid-request: {}", options_.name, connection->peer,
                    n.ok() ? "closed by peer" : std::string(n.status().message()));
      ConnectionErrorCounter("io")->Increment();
    }
    return false;
  };

  // The head. Empty lines before a request line are skipped (RFC 9112 section 2.2).
  size_t scanned = 0;
  size_t head_size = 0;
  while (head_size == 0) {
    if (scanned == 0) buffer->erase(0, buffer->find_first_not_of("\r\n"));
    absl::StatusOr<size_t> found = FindRequestHead(*buffer, options_.max_header_bytes, &scanned);
    if (!found.ok()) {
      Refuse(connection, found.status(), /*keep_alive=*/false, nullptr);
      return false;
    }
    head_size = *found;
    if (head_size == 0 && !read_more(kReadChunk, !buffer->empty())) return false;
  }
  HttpRequest request;
  request.peer = connection->peer;
  absl::StatusOr<HttpRequestFraming> framing = ParseRequestHead(
      absl::string_view(*buffer).substr(0, head_size), options_.max_body_bytes, &request);
  if (!framing.ok()) {
    Refuse(connection, framing.status(), /*keep_alive=*/false, &request);
    return false;
  }
  buffer->erase(0, head_size);  // what follows is the body, then maybe the next request
  if (connection->refuse) {
    spdlog::info("{}: refusing {} {} from {}: {} connections already served", options_.name,
                 request.method, request.path, connection->peer, options_.max_connections);
    Refuse(connection, HttpError(503, "too many connections, retry later"),
           /*keep_alive=*/false, &request);
    return false;
  }

  // The route. Without a body to skip, the connection survives a 404 or 405.
  const HttpHandler* handler = nullptr;
  absl::Status no_route;
  if (auto methods = routes_.find(request.path); methods == routes_.end()) {
    no_route = HttpError(404, absl::StrCat("no resource at ", request.path));
  } else if (auto method = methods->second.find(request.method); method == methods->second.end()) {
    no_route = HttpError(405, absl::StrCat(request.method, " not allowed on ", request.path));
  } else {
    handler = &method->second;
  }
  if (handler == nullptr) {
    const bool keep_alive = framing->keep_alive && framing->content_length == 0;
    return Refuse(connection, no_route, keep_alive, &request) && keep_alive;
  }

  // The body.
  const size_t body_size = framing->content_length;
  if (framing->expect_continue && buffer->size() < body_size &&
      !stream.Write("HTTP/1.1 100 Continue\r\n\r\n", deadline).ok()) {
    return false;
  }
  buffer->reserve(body_size);
  while (buffer->size() < body_size) {
    if (!read_more(body_size - buffer->size(), /*request_started=*/true)) return false;
  }
  request.body = buffer->substr(0, body_size);
  buffer->erase(0, body_size);

  const absl::Time start = absl::Now();
  HttpResponse response = (*handler)(request);
  handler_seconds_->Observe(absl::ToDoubleSeconds(absl::Now() - start));
  if (response.status < 200 || response.status > 599) {
    spdlog::error("{}: handler for {} {} returned status {}; answering 500", options_.name,
                  request.method, request.path, response.status);
    response = HttpResponse{500, "text/plain; charset=utf-8", "500 Internal Server Error\n"};
  }
  bool keep_alive = framing->keep_alive;
  {
    absl::MutexLock lock(&mu_);
    keep_alive &= !stopping_;
  }
  return Respond(connection, response, keep_alive, IsHead(request)) && keep_alive;
}

bool HttpServer::Respond(Connection* connection, const HttpResponse& response, bool keep_alive,
                         bool head_only) {
  RequestCounter(response.status)->Increment();
  absl::Status written = connection->stream->Write(
      SerializeResponse(response, keep_alive, head_only), absl::Now() + options_.read_timeout);
  if (!written.ok()) {
    spdlog::debug("{}: writing the response to {} failed: {}", options_.name, connection->peer,
                  std::string(written.message()));
    ConnectionErrorCounter("io")->Increment();
    return false;
  }
  if (!keep_alive) {
    connection->stream->Finish(absl::Now() + std::min(kLinger, options_.read_timeout));
  }
  return true;
}

bool HttpServer::Refuse(Connection* connection, const absl::Status& error, bool keep_alive,
                        const HttpRequest* request) {
  const int status = HttpErrorStatus(error);
  if (status != 503) {  // 503s were logged with their context
    spdlog::debug("{}: {} {} to {}: {}", options_.name, status,
                  std::string(HttpReasonPhrase(status)), connection->peer,
                  std::string(error.message()));
  }
  HttpResponse response{
      status, "text/plain; charset=utf-8",
      absl::StrCat(status, " ", HttpReasonPhrase(status), ": ", error.message(), "\n")};
  if (status == 405 && request != nullptr) {
    std::vector<absl::string_view> allowed;
    for (const auto& [method, handler] : routes_.find(request->path)->second) {
      allowed.push_back(method);
    }
    response.headers.Add("Allow", absl::StrJoin(allowed, ", "));
  }
  return Respond(connection, response, keep_alive, request != nullptr && IsHead(*request));
}

void HttpServer::Reap() {
  std::vector<std::unique_ptr<Connection>> ended;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->finished) {
        ended.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& connection : ended) pthread_join(connection->thread, nullptr);
}

void HttpServer::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) {
    spdlog::error("{}: cannot signal stop: {}", options_.name, strerror(errno));
  }
  if (accept_thread_) pthread_join(*accept_thread_, nullptr);
  close(listen_fd_);

  std::list<std::unique_ptr<Connection>> remaining;
  {
    absl::MutexLock lock(&mu_);
    auto all_ended = [this]() {
      mu_.AssertReaderHeld();
      return serving_ + refusing_ == 0;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&all_ended), kStopGrace)) {
      for (const auto& connection : connections_) {
        if (!connection->finished) shutdown(connection->fd, SHUT_RDWR);
      }
    }
    remaining.swap(connections_);
  }
  for (const auto& connection : remaining) pthread_join(connection->thread, nullptr);
  spdlog::info("{}: stopped", options_.name);
}

}  // namespace repro
