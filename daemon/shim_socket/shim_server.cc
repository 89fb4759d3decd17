#include "daemon/shim_socket/shim_server.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "daemon/auth/peer_credentials.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/store/gap_recorder.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// Requests served per turn of a connection, so busy connections take turns.
constexpr size_t kBatch = 256;
// Datagrams read from one connection per wake-up of the IO thread.
constexpr int kReadsPerWake = 64;
constexpr int kListenBacklog = 512;
// While reports keep coming, a connection's report ring is read again this much later instead of
// being put to sleep: reports arrive in batches without a DOORBELL each.
constexpr absl::Duration kRingAwake = absl::Microseconds(500);

// The header type of an encoded message.
uint16_t TypeOf(const std::string& message) {
  repro_shim_header h;
  return repro_shim_read_header(reinterpret_cast<const uint8_t*>(message.data()), message.size(),
                                &h) == REPRO_SHIM_HEADER_OK
             ? h.type
             : 0;
}
// Binds and listens on the shim socket `path` (creating its directory, replacing a stale socket
// left by a dead reprod), connectable by every local user. Returns the listening fd.
absl::StatusOr<int> ListenOn(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path[0] != '/' || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a shim socket must be an absolute path shorter than ", sizeof(addr.sun_path),
        " bytes, not \"", path, "\""));
  }
  path.copy(addr.sun_path, path.size());
  std::error_code ignored;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ignored);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("shim socket ", path, " exists and is not a socket"));
    }
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool alive = probe >= 0 &&
                 connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
    if (probe >= 0) close(probe);
    if (alive) {
      return absl::FailedPreconditionError(
          absl::StrCat("another reprod serves the shim socket ", path));
    }
    unlink(path.c_str());  // left behind by a reprod that died
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return PosixError(errno, "shim socket");
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status error = PosixError(errno, absl::StrCat("bind shim socket ", path));
    close(fd);
    return error;
  }
  // Any local user's job may say HELLO: what it may do is decided by its pin, and everything it
  // sends is attributed to it by SO_PEERCRED (or to the Pod its socket was made for).
  chmod(path.c_str(), 0666);
  if (listen(fd, kListenBacklog) != 0) {
    absl::Status error = PosixError(errno, absl::StrCat("listen on shim socket ", path));
    close(fd);
    unlink(path.c_str());
    return error;
  }
  return fd;
}

// A HELLO, or a request whose shim waits for the answer: served before bulk reports.
bool IsUrgent(const ShimRequest& r) { return r.type == REPRO_SHIM_HELLO || r.request_id != 0; }
}  // namespace

struct ShimServer::Connection {
  Connection(int fd, ShimPeer peer, ShimSessionContext* sessions, std::shared_ptr<UidUsage> usage,
             ProcessEnds* ends)
      : fd(fd),
        peer(peer),
        usage(std::move(usage)),
        ends(ends),
        pidfd(ProcessEnds::OpenPidfd(peer.pid)),
        session(sessions, peer) {
    ends->Connected(peer.pid);
  }
  // Runs once nothing holds the connection any more: everything it sent was served.
  ~Connection() {
    ends->Disconnected({.pid = peer.pid,
                        .uid = peer.uid,
                        .job = session.job(),
                        .key = session.numbers_key(),
                        .link = session.link(),
                        .counted = session.counted(),
                        .made = ring != nullptr ? ring->Made() : std::nullopt,
                        .pidfd = pidfd});
    close(fd);
  }

  const int fd;
  const ShimPeer peer;
  const std::shared_ptr<UidUsage> usage;  // of peer.uid
  ProcessEnds* const ends;
  const int pidfd;  // the process, when the kernel gives one (ProcessEnds); handed to ends
  std::atomic<bool> closed{false};        // the IO thread dropped it: stop hashing for it

  absl::Mutex mu;
  std::deque<Queued> queue ABSL_GUARDED_BY(mu);
  size_t urgent ABSL_GUARDED_BY(mu) = 0;       // queued requests for which IsUrgent holds
  bool scheduled ABSL_GUARDED_BY(mu) = false;  // queued for or held by a worker
  // Whether it waits in ready_, and in which lane (guarded by ShimServer::ready_mu_). While it
  // waits, no worker holds it, so its session's job is the one it was queued under.
  bool in_ready = false;
  bool in_urgent_lane = false;
  // Out of epoll until a worker has served its queue down. Paused (EPOLL_CTL_DEL) by Enqueue and
  // resumed (EPOLL_CTL_ADD) by TakeBatch, each under mu, so paused <=> not in epoll; a paused
  // connection's queue is never empty, so a worker's TakeBatch always comes to resume it.
  bool paused ABSL_GUARDED_BY(mu) = false;
  absl::Time last_log ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  uint64_t unlogged ABSL_GUARDED_BY(mu) = 0;  // rejections not logged since last_log

  // Set by the worker that answers the HELLO (before the shim can write to it); read by the IO
  // thread.
  std::unique_ptr<ReportRing> ring ABSL_GUARDED_BY(mu);

  // Owned by the one worker serving the connection (handed over through `scheduled`).
  ShimSession session;

  // IO thread only: a later read of the ring is due (in ring_due_).
  bool ring_due = false;
};

ShimServer::ShimServer(ShimServerOptions options, ShimServerParts parts)
    : options_(std::move(options)),
      parts_(parts),
      metrics_(parts.metrics != nullptr ? parts.metrics : &own_metrics_),
      auth_(parts.auth != nullptr ? parts.auth : &own_auth_),
      lost_(metrics_, parts.on_lost),
      pins_(parts.pins, parts.versions),
      indexes_(parts.versions, parts.fs, parts.hash_cache) {
  for (ShimReject reason : AllShimRejects()) {
    rejected_[reason] = metrics_->GetCounter("repro_shim_messages_rejected_total",
                                             "Datagrams on the shim socket rejected, by reason.",
                                             {{"reason", std::string(ShimRejectName(reason))}});
  }
  replies_dropped_ = metrics_->GetCounter("repro_shim_replies_dropped_total",
                                          "Answers not sent: the shim's socket was full.");
  connections_total_ =
      metrics_->GetCounter("repro_shim_connections_total", "Connections accepted on the shim socket.");
  auto refused = [&](const char* reason) {
    return metrics_->GetCounter("repro_shim_connections_refused_total",
                                "Connections closed at once, by reason.", {{"reason", reason}});
  };
  refused_total_ = refused("max_connections");
  refused_per_uid_ = refused("max_connections_per_uid");
  refused_unknown_ = refused("no_credentials");
  uid_paused_ = metrics_->GetCounter(
      "repro_shim_uid_paused_total",
      "Times a connection was not read because its uid had max_queued_bytes_per_uid queued.");
  exes_not_hashed_ = metrics_->GetCounter(
      "repro_shim_exes_not_hashed_total",
      "Executables of HELLOs not hashed: too large, gone, cancelled or the hashing queue full.");
  ring_reports_ = metrics_->GetCounter("repro_shim_ring_reports_total",
                                       "Reports read from processes' report rings.");
  connections_open_ = metrics_->GetGauge("repro_shim_connections", "Open shim connections.");
  auto uncounted = [&](const char* outcome) {
    return metrics_->GetCounter(
        "repro_shim_uncounted_ends_total",
        "Processes that ended without their count of reports, by what reprod found: every report "
        "arrived (complete), some did not (reports_lost), or no count at all (count_unknown).",
        {{"outcome", outcome}});
  };
  uncounted_complete_ = uncounted("complete");
  uncounted_lost_ = uncounted("reports_lost");
  uncounted_unknown_ = uncounted("count_unknown");
  loaded_ = std::make_unique<LoadedRecorder>(
      LoadedRecorderParts{.journal = parts_.journal,
                          .fs = parts_.fs,
                          .hash_cache = parts_.hash_cache,
                          .metrics = metrics_,
                          .auth = auth_,
                          .lost = &lost_},
      LoadedRecorderOptions{.max_queued = options_.max_queued_loaded,
                            .max_hash_bytes = options_.max_hash_bytes});
  ends_ = std::make_unique<ProcessEnds>(
      ProcessEnds::Options{.settle = options_.process_end_settle},
      [this](const ProcessEnds::Gone& gone) { JournalUncounted(gone); });
  sessions_ = std::make_unique<ShimSessionContext>(
      ShimSessionParts{.pins = &pins_,
                       .checker = parts_.checker,
                       .fs = parts_.fs,
                       .hash_cache = parts_.hash_cache,
                       .loaded = loaded_.get(),
                       .indexes = &indexes_,
                       .auth = auth_,
                       .numbers = &numbers_,
                       .journal = parts_.journal,
                       .ends = ends_.get()},
      metrics_);
  hash_pool_ =
      std::make_unique<BoundedPool>("shim-exe-hash", options_.hash_threads,
                                    options_.max_queued_hashes, options_.max_queued_hashes_per_uid);
}

absl::StatusOr<std::unique_ptr<ShimServer>> ShimServer::Start(ShimServerOptions options,
                                                              ShimServerParts parts) {
  if (parts.pins == nullptr || parts.versions == nullptr || parts.journal == nullptr ||
      parts.checker == nullptr || parts.fs == nullptr) {
    return absl::InvalidArgumentError("ShimServer needs pins, versions, journal, checker and fs");
  }
  std::unique_ptr<ShimServer> server(new ShimServer(std::move(options), parts));
  ASSIGN_OR_RETURN(int listen_fd, ListenOn(server->options_.socket_path));
  {
    absl::MutexLock lock(&server->listeners_mu_);
    server->listeners_[listen_fd] = Listener{server->options_.socket_path, std::nullopt};
  }
  server->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  server->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  server->timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (server->epoll_fd_ < 0 || server->stop_fd_ < 0 || server->timer_fd_ < 0) {
    return PosixError(errno, "shim socket epoll");
  }
  for (int fd : {listen_fd, server->stop_fd_, server->timer_fd_}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (epoll_ctl(server->epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      return PosixError(errno, "shim socket epoll_ctl");
    }
  }
  server->io_thread_ = std::thread([s = server.get()] {
    pthread_setname_np(pthread_self(), "shim-io");
    s->IoLoop();
  });
  for (bool urgent : {true, false}) {
    const int n = urgent ? server->options_.urgent_workers : server->options_.workers;
    for (int i = 0; i < std::max(1, n); ++i) {
      server->workers_.emplace_back([s = server.get(), urgent] {
        pthread_setname_np(pthread_self(), urgent ? "shim-urgent" : "shim-worker");
        if (!urgent && s->options_.bulk_nice != 0) {
          setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), s->options_.bulk_nice);
        }
        s->WorkerLoop(urgent);
      });
    }
  }
  spdlog::info("serving shims on {}", server->options_.socket_path);
  return server;
}

ShimServer::~ShimServer() { Stop(); }

absl::Status ShimServer::AddListener(const std::string& socket_path, Identity job_identity) {
  {
    absl::MutexLock lock(&listeners_mu_);
    for (const auto& [fd, listener] : listeners_) {
      if (listener.path == socket_path) {
        return absl::AlreadyExistsError(absl::StrCat("shim socket ", socket_path, " is served"));
      }
    }
  }
  ASSIGN_OR_RETURN(int fd, ListenOn(socket_path));
  absl::MutexLock lock(&listeners_mu_);
  listeners_[fd] = Listener{socket_path, std::move(job_identity)};
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    absl::Status error = PosixError(errno, "shim socket epoll_ctl");
    listeners_.erase(fd);
    close(fd);
    unlink(socket_path.c_str());
    return error;
  }
  return absl::OkStatus();
}

void ShimServer::RemoveListener(const std::string& socket_path) {
  absl::MutexLock lock(&listeners_mu_);
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (it->second.path != socket_path || !it->second.job_identity) continue;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
    close(it->first);
    unlink(socket_path.c_str());
    listeners_.erase(it);
    return;
  }
}

void ShimServer::Stop() {
  if (stopped_.exchange(true)) return;
  ends_->Stop();  // reprod stops, the processes it served may not: none is taken as ended
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof(one));
  }
  if (io_thread_.joinable()) io_thread_.join();
  {
    absl::MutexLock lock(&ready_mu_);
    stopping_ = true;
    for (absl::CondVar& cv : ready_cv_) cv.SignalAll();
  }
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  for (auto& [fd, c] : connections_) c->closed = true;  // cancels hashing still running
  hash_pool_->Stop();
  loaded_->Stop();                 // what was reported gets described, into the journal
  parts_.journal->FlushAsync();    // what was accepted gets written
  {
    absl::MutexLock lock(&ready_mu_);
    ready_.Clear();
  }
  connections_.clear();
  uids_.clear();
  ring_due_.clear();
  {
    absl::MutexLock lock(&listeners_mu_);
    for (const auto& [fd, listener] : listeners_) {
      close(fd);
      unlink(listener.path.c_str());
    }
    listeners_.clear();
  }
  for (int* fd : {&epoll_fd_, &stop_fd_, &timer_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void ShimServer::IoLoop() {
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("shim socket: epoll_wait failed: {}", PosixError(errno, "").ToString());
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd_) return;
      if (fd == timer_fd_) {
        ReadDueRings();
        continue;
      }
      auto it = connections_.find(fd);
      if (it == connections_.end()) {
        Accept(fd);
        continue;
      }
      ConnectionPtr c = it->second;  // Receive may drop it from the map
      Receive(c, events[i].events);
    }
  }
}

void ShimServer::Accept(int listen_fd) {
  absl::MutexLock lock(&listeners_mu_);
  auto listener = listeners_.find(listen_fd);
  if (listener == listeners_.end()) return;  // removed since epoll reported it
  for (;;) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        spdlog::warn("shim socket {}: accept failed: {}", listener->second.path,
                     PosixError(errno, "").ToString());
      }
      return;
    }
    pid_t pid = 0;
    absl::StatusOr<Identity> peer = UnixPeerIdentity(fd, &pid);
    std::shared_ptr<UidUsage> usage = Admit(peer);
    if (usage == nullptr) {
      close(fd);
      continue;
    }
    auto c = std::make_shared<Connection>(
        fd,
        ShimPeer{pid, peer->uid, peer->gid, std::move(peer->groups), listener->second.job_identity},
        sessions_.get(), std::move(usage), ends_.get());
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) continue;  // c closes fd
    ++c->usage->connections;
    connections_[fd] = std::move(c);
    connections_total_->Increment();
    connections_open_->Add(1);
  }
}

std::shared_ptr<ShimServer::UidUsage> ShimServer::Admit(const absl::StatusOr<Identity>& peer) {
  Counter* refused = nullptr;
  if (!peer.ok()) {
    refused = refused_unknown_;
  } else if (connections_.size() >= options_.max_connections) {
    refused = refused_total_;
  } else {
    std::shared_ptr<UidUsage>& usage = uids_[peer->uid];
    if (usage == nullptr) usage = std::make_shared<UidUsage>();
    if (usage->connections < options_.max_connections_per_uid) return usage;
    refused = refused_per_uid_;
  }
  refused->Increment();
  return nullptr;
}

void ShimServer::Drop(int fd) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  const ConnectionPtr c = std::move(it->second);
  connections_.erase(it);
  connections_open_->Add(-1);
  {
    absl::MutexLock lock(&c->mu);  // closed before the DEL: TakeBatch adds it back no more
    c->closed = true;
  }
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  if (--c->usage->connections == 0) uids_.erase(c->peer.uid);  // c keeps its usage alive
}

void ShimServer::Receive(const ConnectionPtr& c, uint32_t events) {
  static thread_local std::vector<char> buffer(REPRO_SHIM_MAX_MESSAGE + 1);
  for (int i = 0; i < kReadsPerWake; ++i) {
    // MSG_TRUNC: the real size of a datagram too large for the buffer.
    ssize_t n = recv(c->fd, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      // The process closed its end with an answer of ours unread (its PIN, say): the kernel
      // reports that once, BEFORE the datagrams the process sent last, which are still queued.
      // Read on to the end of the connection.
      if (errno == ECONNRESET) continue;
      ReadRing(c, /*ended=*/true);
      Drop(c->fd);
      return;
    }
    if (n == 0) {  // the end of the connection, or an empty datagram
      pollfd p{c->fd, POLLRDHUP, 0};
      if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 || poll(&p, 1, 0) != 0) {
        ReadRing(c, /*ended=*/true);  // what the process published before it exited or exec'd
        Drop(c->fd);
        return;
      }
      Reject(*c, ShimReject::kTruncated, "empty datagram");
      continue;
    }
    if (static_cast<size_t>(n) > REPRO_SHIM_MAX_MESSAGE) {
      Reject(*c, ShimReject::kOversized, absl::StrCat(n, " bytes"));
      continue;
    }
    ParsedShimRequest parsed = ParseShimRequest(absl::string_view(buffer.data(), n));
    if (parsed.reject != ShimReject::kNone) {
      Reject(*c, parsed.reject, parsed.detail);
      continue;
    }
    if (parsed.request.type == REPRO_SHIM_DOORBELL) {
      ReadRing(c, /*ended=*/false);
      continue;
    }
    if (parsed.request.reports_made.has_value()) {
      ReadRing(c, /*ended=*/false);  // reports published before the count go first
    }
    std::vector<Queued> one;
    one.push_back({std::move(parsed.request), static_cast<size_t>(n)});
    if (Enqueue(c, std::move(one))) return;  // paused: read no more until a worker catches up
  }
}

bool ShimServer::Enqueue(const ConnectionPtr& c, std::vector<Queued> requests) {
  if (requests.empty()) return false;
  bool full = false;
  bool schedule = false;
  bool urgent = false;
  bool promote = false;  // scheduled already: perhaps waiting in the bulk lane
  {
    absl::MutexLock lock(&c->mu);
    int64_t bytes = 0;
    for (Queued& q : requests) {
      bytes += q.bytes;
      if (IsUrgent(q.request)) ++c->urgent;
      c->queue.push_back(std::move(q));
    }
    const int64_t uid_bytes = c->usage->queued_bytes.fetch_add(bytes) + bytes;
    schedule = !c->scheduled;
    c->scheduled = true;
    urgent = c->urgent > 0;
    promote = !schedule && urgent;
    // Over its uid's bytes, a connection waits until a worker served its own queue (which is not
    // empty now), so each of the uid's connections is paused at most until its next turn.
    const bool uid_full = uid_bytes >= static_cast<int64_t>(options_.max_queued_bytes_per_uid);
    if (uid_full) uid_paused_->Increment();
    full = c->queue.size() >= options_.max_queued || uid_full;
    if (full && !c->paused) {
      c->paused = true;
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
    }
  }
  if (schedule) Schedule(c, urgent);
  if (promote) Promote(c);
  return full;
}

void ShimServer::Schedule(const ConnectionPtr& c, bool urgent) {
  // No worker uses c's session meanwhile (c is not in the ready queue yet), so its job is stable.
  absl::MutexLock lock(&ready_mu_);
  ready_.Push(c->peer.uid, c->session.job(), urgent, c);
  c->in_ready = true;
  c->in_urgent_lane = urgent;
  ready_cv_[urgent ? 0 : 1].Signal();
}

void ShimServer::Promote(const ConnectionPtr& c) {
  absl::MutexLock lock(&ready_mu_);
  if (!c->in_ready || c->in_urgent_lane) return;  // held by a worker: it reschedules it as urgent
  if (!ready_.Remove(c->peer.uid, c->session.job(), /*urgent=*/false, c)) return;
  ready_.Push(c->peer.uid, c->session.job(), /*urgent=*/true, c);
  c->in_urgent_lane = true;
  ready_cv_[0].Signal();
}

void ShimServer::ReadRing(const ConnectionPtr& c, bool ended) {
  std::vector<Queued> requests;
  std::vector<ParsedShimRequest> rejected;
  int drained = 0;
  bool asleep = false;
  {
    absl::MutexLock lock(&c->mu);
    if (c->ring == nullptr) return;
    drained = c->ring->Drain([&](absl::string_view message) {
      ParsedShimRequest parsed = ParseShimRequest(message);
      if (parsed.reject == ShimReject::kNone && parsed.request.type != REPRO_SHIM_OPEN) {
        parsed.reject = ShimReject::kUnexpected;
        parsed.detail = "only OPEN reports belong in a report ring";
      }
      if (parsed.reject != ShimReject::kNone) {
        rejected.push_back(std::move(parsed));
      } else {
        requests.push_back({std::move(parsed.request), message.size()});
      }
    });
    if (drained == 0 && !ended) asleep = c->ring->Sleep();
    if (drained < 0) c->ring.reset();
  }
  for (const ParsedShimRequest& r : rejected) Reject(*c, r.reject, r.detail);
  ring_reports_->Increment(requests.size());
  Enqueue(c, std::move(requests));
  if (drained < 0) {
    Reject(*c, ShimReject::kMalformedField, "its report ring is damaged; it is no longer read");
    return;
  }
  if (ended || asleep || c->ring_due) return;
  c->ring_due = true;  // reports keep coming: look again soon instead of waiting for a DOORBELL
  ring_due_.push_back({absl::Now() + kRingAwake, c});
  if (ring_due_.size() == 1) ArmTimer(ring_due_.front().first);
}

void ShimServer::ReadDueRings() {
  uint64_t expirations;
  [[maybe_unused]] ssize_t n = read(timer_fd_, &expirations, sizeof(expirations));
  const absl::Time now = absl::Now();
  std::deque<std::pair<absl::Time, ConnectionPtr>> due;
  while (!ring_due_.empty() && ring_due_.front().first <= now) {
    due.push_back(std::move(ring_due_.front()));
    ring_due_.pop_front();
  }
  for (auto& [when, c] : due) {
    c->ring_due = false;
    if (connections_.contains(c->fd) && connections_[c->fd] == c) ReadRing(c, /*ended=*/false);
  }
  if (!ring_due_.empty()) ArmTimer(ring_due_.front().first);
}

void ShimServer::ArmTimer(absl::Time when) {
  const int64_t ns = std::max<int64_t>(absl::ToInt64Nanoseconds(when - absl::Now()), 1000);
  itimerspec spec{};
  spec.it_value.tv_sec = ns / 1000000000;
  spec.it_value.tv_nsec = ns % 1000000000;
  timerfd_settime(timer_fd_, 0, &spec, nullptr);
}

bool ShimServer::TakeLogTurn(Connection& c, uint64_t* unlogged) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&c.mu);
  if (now - c.last_log < options_.log_interval) {
    ++c.unlogged;
    return false;
  }
  c.last_log = now;
  *unlogged = c.unlogged;
  c.unlogged = 0;
  return true;
}

void ShimServer::Reject(Connection& c, ShimReject reason, const std::string& detail) {
  rejected_[reason]->Increment();
  uint64_t unlogged = 0;
  if (!TakeLogTurn(c, &unlogged)) return;
  spdlog::warn("shim socket: rejected a datagram from pid {} (uid {}): {}: {}{}", c.peer.pid,
               c.peer.uid, std::string(ShimRejectName(reason)), detail,
               unlogged > 0 ? absl::StrCat(" (", unlogged, " more not logged)") : "");
}

void ShimServer::WorkerLoop(bool urgent) {
  for (;;) {
    ConnectionPtr c;
    {
      absl::MutexLock lock(&ready_mu_);
      while (ready_.LaneEmpty(urgent) && !stopping_) ready_cv_[urgent ? 0 : 1].Wait(&ready_mu_);
      if (stopping_) return;
      c = ready_.PopLane(urgent);
      c->in_ready = false;
    }
    Serve(c);
  }
}

void ShimServer::Serve(const ConnectionPtr& c) {
  std::vector<ShimRequest> batch = TakeBatch(c);
  ShimOutput out;
  size_t served = 0;
  // A HELLO's executable is hashed before the connection's next request is served (its
  // ProcessStart comes first in the journal); the rest of the batch waits in the queue.
  while (served < batch.size() && !out.exe.has_value()) {
    c->session.Handle(std::move(batch[served++]), &out);
  }
  if (served < batch.size()) {
    absl::MutexLock lock(&c->mu);
    for (size_t i = batch.size(); i-- > served;) {
      if (IsUrgent(batch[i])) ++c->urgent;
      c->queue.push_front({std::move(batch[i]), 0});  // its bytes were counted out already
    }
  }
  Answer(*c, out);
  if (out.exe.has_value()) {
    HashExecutable(c, std::move(out));
    return;
  }
  AppendToJournal(*c, std::move(out.items));
  Reschedule(c);
}

std::vector<ShimRequest> ShimServer::TakeBatch(const ConnectionPtr& c) {
  std::vector<ShimRequest> batch;
  {
    absl::MutexLock lock(&c->mu);
    size_t n = std::min(c->queue.size(), kBatch);
    int64_t bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      Queued& q = c->queue.front();
      bytes += q.bytes;
      if (IsUrgent(q.request)) --c->urgent;
      batch.push_back(std::move(q.request));
      c->queue.pop_front();
    }
    c->usage->queued_bytes.fetch_sub(bytes);
    if (c->paused && c->queue.size() <= options_.max_queued / 2) {
      c->paused = false;
      if (!c->closed && !stopped_) {  // not for a connection the IO thread dropped meanwhile
        epoll_event event{};
        event.events = EPOLLIN | EPOLLRDHUP;
        event.data.fd = c->fd;
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd, &event);
      }
    }
  }
  return batch;
}

void ShimServer::Answer(Connection& c, const ShimOutput& out) {
  for (const std::string& reply : out.replies) {
    if (TypeOf(reply) == REPRO_SHIM_PIN) {
      SendPin(c, reply, out.index.get());
    } else {
      Send(c, reply);
    }
  }
  for (const auto& [reason, detail] : out.rejections) Reject(c, reason, detail);
}

void ShimServer::AppendToJournal(Connection& c, std::vector<JournalItem> items) {
  if (items.empty()) return;
  if (parts_.quotas != nullptr) {
    absl::StatusOr<v1::JournalHead> head = parts_.journal->Head(c.session.job());
    absl::Status admitted =
        parts_.quotas->AdmitEntries(Identity::Unix(c.peer.uid, c.peer.gid, {}).Owner(),
                                    c.session.job(), items.size(), head.ok() ? head->seq() : 0);
    if (!admitted.ok()) {  // counted by the quota, logged here at most once per log_interval
      lost_.Watch(c.session.job(), items, /*quiet=*/true)(admitted);
      uint64_t unlogged = 0;
      if (TakeLogTurn(c, &unlogged)) {
        spdlog::warn("shim socket: {} item(s) of job {} from pid {} not journaled: {}{}",
                     items.size(), c.session.job(), c.peer.pid, std::string(admitted.message()),
                     unlogged > 0 ? absl::StrCat(" (", unlogged, " more not logged)") : "");
      }
      return;
    }
  }
  JournalDone done = lost_.Watch(c.session.job(), items);
  parts_.journal->AppendAsync(c.session.job(), std::move(items), std::move(done));
}

void ShimServer::JournalUncounted(const ProcessEnds::Gone& gone) {
  // A gap saying how many reports the process lost is unknown (`why`).
  auto uncounted = [&](absl::string_view why) {
    uncounted_unknown_->Increment();
    return GapItem({{std::string(kUncountedProcessKind), 1}},
                   absl::StrCat("pid ", gone.pid,
                                " ended without telling reprod how many dataset-open reports it "
                                "made (",
                                why, "), so some of them may never have reached the journal"));
  };
  std::vector<JournalItem> items;
  if (!gone.made) {
    items.push_back(uncounted("its report ring never reached it"));
  } else if (absl::StatusOr<uint64_t> missing = numbers_.Missing(gone.job, gone.key, *gone.made);
             !missing.ok()) {
    items.push_back(uncounted(missing.status().message()));
  } else {
    numbers_.Accept(gone.job, gone.key, *gone.made);
    if (*missing == 0) {
      uncounted_complete_->Increment();
      return;
    }
    uncounted_lost_->Increment();
    items.push_back(LostReportsItem(gone.pid, gone.key, *missing, *gone.made,
                                    "never reached the journal: the process ended (killed, or "
                                    "its connection lost) without delivering them"));
  }
  spdlog::warn("shim socket: pid {} of job {} ended with its record incomplete: {}", gone.pid,
               gone.job, items.front().entry.gap().reason());
  JournalDone done = lost_.Watch(gone.job, items);
  parts_.journal->AppendAsync(gone.job, std::move(items), std::move(done));
}

void ShimServer::HashExecutable(const ConnectionPtr& c, ShimOutput out) {
  auto shared = std::make_shared<ShimOutput>(std::move(out));
  auto finish = [this, c, shared](const absl::StatusOr<HashedFile>& hashed) {
    const ExeToHash& exe = *shared->exe;
    FinishExeHash(exe, hashed, &shared->items);
    if (!shared->items[exe.item].entry.process_start().exe_not_hashed().empty()) {
      exes_not_hashed_->Increment();
    }
    AppendToJournal(*c, std::move(shared->items));
    Reschedule(c);
  };
  const ExeToHash& exe = *shared->exe;
  if (exe.path.empty() || !exe.refused.empty()) {  // nothing to hash
    finish(absl::FailedPreconditionError("not hashed"));
    return;
  }
  if (std::optional<HashedFile> known = CachedHash(exe.path)) {  // the usual case: no waiting
    finish(*std::move(known));
    return;
  }
  auto hash = [this, c, finish, path = exe.path] {
    uint64_t read = 0;
    absl::StatusOr<HashedFile> hashed =
        FileHasher(parts_.fs, parts_.hash_cache)
            .Hash(path,
                  {.cancelled =
                       [&] { return c->closed.load() && read >= options_.hash_after_close_bytes; },
                   .on_read = [&read](uint64_t n) { read += n; },
                   .max_bytes = options_.max_hash_bytes});
    if (absl::IsCancelled(hashed.status())) {
      hashed = absl::CancelledError("the process closed its connection before it was hashed");
    }
    finish(hashed);
  };
  if (!hash_pool_->Submit(c->peer.uid, hash)) {
    finish(absl::ResourceExhaustedError("the hashing queue is full"));
  }
}

std::optional<HashedFile> ShimServer::CachedHash(const std::string& path) {
  if (parts_.hash_cache == nullptr) return std::nullopt;
  absl::StatusOr<FileStat> stat = parts_.fs->Stat(path);
  if (!stat.ok() || stat->type != FileType::kRegular) return std::nullopt;
  std::optional<std::string> sha256 = parts_.hash_cache->Lookup(*stat);
  if (!sha256.has_value()) return std::nullopt;
  return HashedFile{*stat, *std::move(sha256), /*from_cache=*/true};
}

void ShimServer::Reschedule(const ConnectionPtr& c) {
  bool urgent = false;
  {
    absl::MutexLock lock(&c->mu);
    if (c->queue.empty()) {
      c->scheduled = false;
      return;
    }
    urgent = c->urgent > 0;
  }
  Schedule(c, urgent);
}

void ShimServer::SendPin(Connection& c, const std::string& message, const VerdictIndex* index) {
  std::vector<int> fds;
  absl::StatusOr<std::unique_ptr<ReportRing>> ring = ReportRing::Create();
  if (ring.ok()) {
    fds.push_back((*ring)->fd());
  } else {  // the shim then sends its reports as datagrams
    spdlog::warn("shim socket: no report ring for pid {}: {}", c.peer.pid,
                 ring.status().ToString());
  }
  if (index != nullptr) fds.push_back(index->fd());
  iovec iov{const_cast<char*>(message.data()), message.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), fds.data(), fds.size() * sizeof(int));
  }
  absl::MutexLock lock(&c.mu);  // the ring is in place before the shim can write to it
  if (ring.ok()) c.ring = *std::move(ring);
  if (sendmsg(c.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
    if (errno == EAGAIN) replies_dropped_->Increment();
    c.ring.reset();
    return;
  }
  if (c.ring != nullptr) c.ring->CloseFd();
}

void ShimServer::Send(Connection& c, const std::string& message) {
  if (message.empty()) return;
  if (send(c.fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
      errno == EAGAIN) {
    replies_dropped_->Increment();
  }
}

}  // namespace repro
