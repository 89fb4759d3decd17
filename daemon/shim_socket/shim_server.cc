#include "daemon/shim_socket/shim_server.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/paths.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "daemon/auth/peer_credentials.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/registry/seeds.h"
#include "daemon/shim_socket/journal_text.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// Requests served per turn of a connection, so busy connections take turns.
constexpr size_t kBatch = 256;
// Datagrams read from one connection per wake-up of the IO thread.
constexpr int kReadsPerWake = 64;
constexpr int kListenBacklog = 512;
// Pins kept in memory (they are immutable); the cache is emptied when it grows past this.
constexpr size_t kMaxCachedPins = 4096;

constexpr v1::Verdict kVerdicts[] = {v1::VERDICT_MATCH,           v1::VERDICT_NOT_IN_MANIFEST,
                                     v1::VERDICT_CONTENT_CHANGED, v1::VERDICT_OTHER_VERSION,
                                     v1::VERDICT_UNREADABLE,      v1::VERDICT_WRITE};

// "match", "not_in_manifest", ...
std::string VerdictLabel(v1::Verdict verdict) {
  std::string name = v1::Verdict_Name(verdict);
  return absl::AsciiStrToLower(absl::string_view(name).substr(name.find('_') + 1));
}

// The executable of `pid` as the kernel knows it, or "" when it cannot be read.
std::string ExecutableOf(pid_t pid) {
  char buffer[4096];
  const std::string link = absl::StrCat("/proc/", pid, "/exe");
  ssize_t n = readlink(link.c_str(), buffer, sizeof(buffer));
  if (n <= 0 || n >= static_cast<ssize_t>(sizeof(buffer))) return "";
  std::string exe(buffer, n);
  return absl::EndsWith(exe, " (deleted)") ? "" : exe;
}

// The once-key of a DataOpen: "data/<dataset>/<relpath>" for files of the pinned version, with
// the version spelled out for any other.
std::string DataOnceKey(const ShimOpen& open, const OpenCheck& check,
                        absl::string_view pinned_version) {
  if (check.version == pinned_version && !check.relative_path.empty()) {
    return absl::StrCat("data/", open.dataset, "/", check.relative_path);
  }
  return absl::StrCat("data/", open.dataset, "@", check.version, "/",
                      check.relative_path.empty() ? open.opened_path : check.relative_path);
}

// What a VIEW_USE report says was done with the path.
absl::string_view ViewUseName(uint32_t use) {
  switch (use) {
    case REPRO_SHIM_VIEW_STAT: return "stat-ed";
    case REPRO_SHIM_VIEW_LIST: return "listed";
    case REPRO_SHIM_VIEW_RESOLVE: return "resolved";
    case REPRO_SHIM_VIEW_CHDIR: return "entered (chdir)";
    default: return "executed";
  }
}

std::string PinnedVersionOf(const v1::Pin& pin, absl::string_view dataset) {
  for (const v1::PinnedVersion& v : pin.versions()) {
    if (v.dataset() == dataset) return v.version();
  }
  return "";
}

}  // namespace

struct ShimServer::Connection {
  Connection(int fd, Peer peer) : fd(fd), peer(std::move(peer)) {}
  ~Connection() { close(fd); }

  const int fd;
  const Peer peer;

  absl::Mutex mu;
  std::deque<ShimRequest> queue ABSL_GUARDED_BY(mu);
  bool scheduled ABSL_GUARDED_BY(mu) = false;  // queued for or held by a worker
  bool paused ABSL_GUARDED_BY(mu) = false;     // out of epoll until its queue drains
  absl::Time last_log ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  uint64_t unlogged ABSL_GUARDED_BY(mu) = 0;  // rejections not logged since last_log

  // Owned by the one worker serving the connection (handed over through `scheduled`).
  bool hello_done = false;
  std::string job;
  int64_t rank = 0;
  uint64_t rank_seed = 0;
  ShimMode mode = ShimMode::kRecord;
  std::shared_ptr<const v1::Pin> pin;
};

ShimServer::ShimServer(ShimServerOptions options, ShimServerParts parts)
    : options_(std::move(options)),
      parts_(parts),
      metrics_(parts.metrics != nullptr ? parts.metrics : &own_metrics_),
      auth_(parts.auth != nullptr ? parts.auth : &own_auth_) {
  for (ShimReject reason : AllShimRejects()) {
    rejected_[reason] = metrics_->GetCounter("repro_shim_messages_rejected_total",
                                             "Datagrams on the shim socket rejected, by reason.",
                                             {{"reason", std::string(ShimRejectName(reason))}});
  }
  for (v1::Verdict verdict : kVerdicts) {
    verdicts_[verdict] = metrics_->GetCounter("repro_shim_verdicts_total",
                                              "Dataset opens checked, by verdict.",
                                              {{"verdict", VerdictLabel(verdict)}});
  }
  hellos_ = metrics_->GetCounter("repro_shim_hellos_total", "HELLOs from shims.");
  hello_errors_ = metrics_->GetCounter("repro_shim_hello_errors_total",
                                       "HELLOs refused: job not pinned, store unavailable.");
  opens_ = metrics_->GetCounter("repro_shim_opens_total", "Dataset opens reported by shims.");
  replies_dropped_ = metrics_->GetCounter("repro_shim_replies_dropped_total",
                                          "Answers not sent: the shim's socket was full.");
  journal_errors_ = metrics_->GetCounter("repro_shim_journal_errors_total",
                                         "Shim reports that could not be journaled.");
  connections_total_ =
      metrics_->GetCounter("repro_shim_connections_total", "Connections accepted on the shim socket.");
  connections_refused_ = metrics_->GetCounter(
      "repro_shim_connections_refused_total", "Connections closed at once: too many were open.");
  connections_open_ = metrics_->GetGauge("repro_shim_connections", "Open shim connections.");
  journal_ = std::make_unique<AsyncJournal>(parts_.journal,
                                            AsyncJournalOptions{.errors = journal_errors_});
  loaded_ = std::make_unique<LoadedRecorder>(
      LoadedRecorderParts{.journal = journal_.get(),
                          .fs = parts_.fs,
                          .hash_cache = parts_.hash_cache,
                          .metrics = metrics_,
                          .auth = auth_},
      LoadedRecorderOptions{.max_queued = options_.max_queued_loaded});
}

absl::StatusOr<std::unique_ptr<ShimServer>> ShimServer::Start(ShimServerOptions options,
                                                              ShimServerParts parts) {
  if (parts.pins == nullptr || parts.versions == nullptr || parts.journal == nullptr ||
      parts.checker == nullptr || parts.fs == nullptr) {
    return absl::InvalidArgumentError("ShimServer needs pins, versions, journal, checker and fs");
  }
  std::unique_ptr<ShimServer> server(new ShimServer(std::move(options), parts));
  RETURN_IF_ERROR(server->Listen());
  server->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  server->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (server->epoll_fd_ < 0 || server->stop_fd_ < 0) return PosixError(errno, "shim socket epoll");
  for (int fd : {server->listen_fd_, server->stop_fd_}) {
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
  for (int i = 0; i < std::max(1, server->options_.workers); ++i) {
    server->workers_.emplace_back([s = server.get()] {
      pthread_setname_np(pthread_self(), "shim-worker");
      s->WorkerLoop();
    });
  }
  spdlog::info("serving shims on {}", server->options_.socket_path);
  return server;
}

ShimServer::~ShimServer() { Stop(); }

absl::Status ShimServer::Listen() {
  const std::string& path = options_.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path[0] != '/' || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shim_socket must be an absolute path shorter than ", sizeof(addr.sun_path),
        " bytes, not \"", path, "\""));
  }
  path.copy(addr.sun_path, path.size());
  std::error_code ignored;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ignored);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--shim_socket ", path, " exists and is not a socket"));
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
  listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return PosixError(errno, "shim socket");
  if (bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return PosixError(errno, absl::StrCat("bind --shim_socket ", path));
  }
  // Any local user's job may say HELLO: what it may do is decided by its pin, and everything it
  // sends is attributed to it by SO_PEERCRED.
  chmod(path.c_str(), 0666);
  if (listen(listen_fd_, kListenBacklog) != 0) {
    return PosixError(errno, absl::StrCat("listen on --shim_socket ", path));
  }
  return absl::OkStatus();
}

void ShimServer::Stop() {
  if (stopped_.exchange(true)) return;
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof(one));
  }
  if (io_thread_.joinable()) io_thread_.join();
  {
    absl::MutexLock lock(&ready_mu_);
    stopping_ = true;
    ready_cv_.SignalAll();
  }
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  loaded_->Stop();   // what was reported gets described, into journal_
  journal_->Stop();  // what was accepted gets written
  {
    absl::MutexLock lock(&ready_mu_);
    ready_.clear();
  }
  connections_.clear();
  for (int* fd : {&listen_fd_, &epoll_fd_, &stop_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  unlink(options_.socket_path.c_str());
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
      if (fd == listen_fd_) {
        Accept();
        continue;
      }
      auto it = connections_.find(fd);
      if (it == connections_.end()) continue;
      ConnectionPtr c = it->second;  // Receive may drop it from the map
      Receive(c, events[i].events);
    }
  }
}

void ShimServer::Accept() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        spdlog::warn("shim socket: accept failed: {}", PosixError(errno, "").ToString());
      }
      return;
    }
    pid_t pid = 0;
    absl::StatusOr<Identity> peer = UnixPeerIdentity(fd, &pid);
    if (connections_.size() >= options_.max_connections || !peer.ok()) {
      connections_refused_->Increment();
      close(fd);
      continue;
    }
    auto c = std::make_shared<Connection>(
        fd, Peer{pid, peer->uid, peer->gid, std::move(peer->groups)});
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) continue;  // c closes fd
    connections_[fd] = std::move(c);
    connections_total_->Increment();
    connections_open_->Add(1);
  }
}

void ShimServer::Drop(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  if (connections_.erase(fd) > 0) connections_open_->Add(-1);
}

void ShimServer::Receive(const ConnectionPtr& c, uint32_t events) {
  static thread_local std::vector<char> buffer(REPRO_SHIM_MAX_MESSAGE + 1);
  for (int i = 0; i < kReadsPerWake; ++i) {
    // MSG_TRUNC: the real size of a datagram too large for the buffer.
    ssize_t n = recv(c->fd, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      Drop(c->fd);
      return;
    }
    if (n == 0) {  // the end of the connection, or an empty datagram
      pollfd p{c->fd, POLLRDHUP, 0};
      if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 || poll(&p, 1, 0) != 0) {
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
    bool full = false;
    bool schedule = false;
    {
      absl::MutexLock lock(&c->mu);
      c->queue.push_back(std::move(parsed.request));
      schedule = !c->scheduled;
      c->scheduled = true;
      full = c->queue.size() >= options_.max_queued;
      if (full) c->paused = true;
    }
    if (schedule) {
      absl::MutexLock lock(&ready_mu_);
      ready_.push_back(c);
      ready_cv_.Signal();
    }
    if (full) {  // read no more until a worker catches up (it puts the socket back)
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
      return;
    }
  }
}

void ShimServer::Reject(Connection& c, ShimReject reason, const std::string& detail) {
  rejected_[reason]->Increment();
  const absl::Time now = absl::Now();
  uint64_t unlogged = 0;
  {
    absl::MutexLock lock(&c.mu);
    if (now - c.last_log < options_.log_interval) {
      ++c.unlogged;
      return;
    }
    c.last_log = now;
    unlogged = c.unlogged;
    c.unlogged = 0;
  }
  spdlog::warn("shim socket: rejected a datagram from pid {} (uid {}): {}: {}{}", c.peer.pid,
               c.peer.uid, std::string(ShimRejectName(reason)), detail,
               unlogged > 0 ? absl::StrCat(" (", unlogged, " more not logged)") : "");
}

void ShimServer::WorkerLoop() {
  for (;;) {
    ConnectionPtr c;
    {
      absl::MutexLock lock(&ready_mu_);
      while (ready_.empty() && !stopping_) ready_cv_.Wait(&ready_mu_);
      if (stopping_) return;
      c = std::move(ready_.front());
      ready_.pop_front();
    }
    Serve(c);
  }
}

void ShimServer::Serve(const ConnectionPtr& c) {
  std::vector<ShimRequest> batch;
  bool resume = false;
  {
    absl::MutexLock lock(&c->mu);
    size_t n = std::min(c->queue.size(), kBatch);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(c->queue.front()));
      c->queue.pop_front();
    }
    if (c->paused && c->queue.size() <= options_.max_queued / 2) {
      c->paused = false;
      resume = true;
    }
  }
  if (resume && !stopped_) {
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.fd = c->fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd, &event);
  }
  // In order: runs of OPENs journaled together, anything else on its own.
  std::vector<const ShimRequest*> opens;
  for (ShimRequest& request : batch) {
    if (request.type == REPRO_SHIM_OPEN) {
      opens.push_back(&request);
      continue;
    }
    if (!opens.empty()) HandleOpens(*c, opens);
    opens.clear();
    if (request.type == REPRO_SHIM_HELLO) {
      HandleHello(*c, request);
    } else if (request.type == REPRO_SHIM_LOADED) {
      HandleLoaded(*c, std::move(request.loaded));
    }
  }
  if (!opens.empty()) HandleOpens(*c, opens);
  {
    absl::MutexLock lock(&c->mu);
    if (c->queue.empty()) {
      c->scheduled = false;
      return;
    }
  }
  absl::MutexLock lock(&ready_mu_);
  ready_.push_back(c);
  ready_cv_.Signal();
}

void ShimServer::Send(Connection& c, const std::string& message) {
  if (message.empty()) return;
  if (send(c.fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
      errno == EAGAIN) {
    replies_dropped_->Increment();
  }
}

absl::StatusOr<std::shared_ptr<const v1::Pin>> ShimServer::PinFor(const std::string& job) {
  {
    absl::MutexLock lock(&pins_mu_);
    auto it = pins_.find(job);
    if (it != pins_.end()) return it->second;
  }
  absl::StatusOr<v1::Pin> pin = parts_.pins->Get(job);
  if (absl::IsNotFound(pin.status())) {
    return absl::NotFoundError(absl::StrCat("job ", job, " has no pinned data version; run `reproctl pin ",
                                            job, " dataset@version`"));
  }
  RETURN_IF_ERROR(pin.status());
  if (absl::Status s = parts_.pins->JournalPin(*pin); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot journal the pin of job ", job, ": ",
                                               s.message()));
  }
  auto shared = std::make_shared<const v1::Pin>(*std::move(pin));
  absl::MutexLock lock(&pins_mu_);
  if (pins_.size() >= kMaxCachedPins) pins_.clear();
  pins_.emplace(job, shared);
  return shared;
}

ShimPinReply ShimServer::PinReply(const v1::Pin& pin, const ShimHello& hello) {
  ShimPinReply reply;
  reply.seed = pin.seed();
  reply.rank_seed = DeriveRankSeed(pin.seed(), static_cast<uint64_t>(hello.rank));
  reply.mode = hello.mode;
  for (const v1::PinnedVersion& v : pin.versions()) {
    ShimPinDataset d;
    d.name = v.dataset();
    d.version = v.version();
    d.root = v.root();
    d.pinned_dir = std::string(Basename(v.path()));
    absl::StatusOr<std::vector<v1::VersionInfo>> all = parts_.versions->List(v.dataset());
    if (all.ok()) {
      for (const v1::VersionInfo& other : *all) {
        if (other.version() != v.version()) d.other_dirs.emplace_back(Basename(other.path()));
      }
    } else {
      spdlog::warn("shim socket: cannot list the versions of {}: {}", v.dataset(),
                   all.status().ToString());
    }
    reply.datasets.push_back(std::move(d));
  }
  return reply;
}

namespace {

// The launcher identity from a HELLO's launcher variables (validated by the parser).
v1::LauncherIdentity LauncherIdentityOf(const std::map<std::string, std::string>& vars) {
  v1::LauncherIdentity out;
  const std::pair<const char*, void (v1::LauncherIdentity::*)(const std::string&)> kFields[] = {
      {"TORCHELASTIC_RUN_ID", &v1::LauncherIdentity::set_torchelastic_run_id},
      {"TORCHELASTIC_RESTART_COUNT", &v1::LauncherIdentity::set_torchelastic_restart_count},
      {"LOCAL_RANK", &v1::LauncherIdentity::set_local_rank},
      {"WORLD_SIZE", &v1::LauncherIdentity::set_world_size},
      {"GROUP_RANK", &v1::LauncherIdentity::set_group_rank},
      {"SLURM_JOB_ID", &v1::LauncherIdentity::set_slurm_job_id},
      {"SLURM_STEP_ID", &v1::LauncherIdentity::set_slurm_step_id},
      {"REPRO_POD_NAME", &v1::LauncherIdentity::set_pod_name},
      {"REPRO_POD_NAMESPACE", &v1::LauncherIdentity::set_pod_namespace},
      {"REPRO_POD_UID", &v1::LauncherIdentity::set_pod_uid},
  };
  for (const auto& [name, setter] : kFields) {
    auto it = vars.find(name);
    if (it != vars.end()) (out.*setter)(JournalText(it->second));
  }
  return out;
}

}  // namespace

v1::ProcessStart ShimServer::ProcessStartOf(const Connection& c, const ShimHello& hello) {
  v1::ProcessStart start;
  start.set_pid(c.peer.pid);
  start.set_uid(c.peer.uid);
  start.set_gid(c.peer.gid);
  start.set_rank(c.rank);
  start.set_rank_seed(c.rank_seed);
  start.set_mode(std::string(ShimModeName(c.mode)));
  start.set_parent_pid(static_cast<int32_t>(hello.parent_pid));
  if (!hello.launcher.empty()) *start.mutable_launcher() = LauncherIdentityOf(hello.launcher);
  std::string exe = ExecutableOf(c.peer.pid);  // the kernel's word over the process's
  if (exe.empty()) exe = hello.exe;
  start.set_exe(JournalText(exe));
  if (!exe.empty() && exe[0] == '/' && auth_->MayHash("ShimHello", c.peer.identity(), exe)) {
    absl::StatusOr<HashedFile> hashed = HashFile(parts_.fs, exe, parts_.hash_cache);
    if (hashed.ok()) start.set_exe_sha256(hashed->sha256);
  }
  for (const std::string& arg : hello.argv) start.add_argv(JournalText(arg));
  return start;
}

void ShimServer::HandleHello(Connection& c, const ShimRequest& request) {
  hellos_->Increment();
  const ShimHello& hello = request.hello;
  if (c.hello_done) {
    Reject(c, ShimReject::kUnexpected, "a second HELLO on one connection");
    return;
  }
  absl::StatusOr<std::shared_ptr<const v1::Pin>> pin = PinFor(hello.job);
  if (pin.ok()) {  // the job's owner or an admin only (Authorizer::CheckJobWrite)
    absl::Status allowed =
        auth_->CheckJobWrite("ShimHello", c.peer.identity(), hello.job, (*pin)->owner());
    if (!allowed.ok()) pin = allowed;
  }
  if (!pin.ok()) {
    hello_errors_->Increment();
    spdlog::info("shim socket: refused HELLO of pid {} (uid {}) for job {}: {}", c.peer.pid,
                 c.peer.uid, hello.job, pin.status().ToString());
    Send(c, EncodeShimError(request.request_id, pin.status().message()));
    return;
  }
  c.job = hello.job;
  c.rank = hello.rank;
  c.mode = hello.mode;
  c.pin = *pin;
  c.rank_seed = DeriveRankSeed(c.pin->seed(), static_cast<uint64_t>(hello.rank));
  c.hello_done = true;
  size_t omitted = 0;
  std::string reply = EncodeShimPin(request.request_id, PinReply(*c.pin, hello), &omitted);
  if (omitted > 0) {
    spdlog::warn("shim socket: job {} pins datasets with too many versions for one message; {} "
                 "version directories left out (the shim treats them as aliases)",
                 c.job, omitted);
  }
  if (reply.empty()) {
    Send(c, EncodeShimError(request.request_id, "the pin does not fit in a shim message"));
    c.hello_done = false;
    return;
  }
  Send(c, reply);

  std::vector<JournalItem> items(1);
  *items[0].entry.mutable_process_start() = ProcessStartOf(c, hello);
  items[0].once_key = absl::StrCat("process/", c.peer.pid, "/", hello.nonce);
  journal_->Append(c.job, std::move(items));
  spdlog::debug("shim socket: pid {} (uid {}) runs job {} rank {} in {} mode", c.peer.pid,
                c.peer.uid, c.job, c.rank, std::string(ShimModeName(c.mode)));
}

void ShimServer::HandleLoaded(Connection& c, ShimLoaded loaded) {
  if (!c.hello_done) {
    Reject(c, ShimReject::kNoHello, "LOADED before an accepted HELLO");
    return;
  }
  loaded_->Record({.job = c.job, .pid = c.peer.pid, .uid = c.peer.uid, .gid = c.peer.gid,
                   .groups = c.peer.groups, .rank = c.rank},
                  std::move(loaded));
}

void ShimServer::CheckOpen(Connection& c, const ShimRequest& request,
                           std::vector<JournalItem>* items, std::vector<Verdict>* verdicts) {
  const ShimOpen& open = request.open;
  OpenCheck check;
  if (open.write()) {
    check.verdict = v1::VERDICT_WRITE;
    check.detail = "opened for writing, and data versions are read-only";
  } else if (open.view_use != 0) {
    // Listed, stat-ed, resolved, entered or executed in another version: nothing was read, so
    // nothing is hashed; the shim reports only such uses of other versions.
    check.verdict = v1::VERDICT_OTHER_VERSION;
    check.detail =
        absl::StrCat("it was ", ViewUseName(open.view_use),
                     ", and it belongs to another version than the pinned ", open.dataset, "@",
                     PinnedVersionOf(*c.pin, open.dataset));
  } else {
    check = parts_.checker->Check(*c.pin, open.dataset, open.opened_path);
  }
  const bool refused =
      open.refused_by_shim() || (c.mode == ShimMode::kEnforce && check.verdict != v1::VERDICT_MATCH);
  auto counter = verdicts_.find(check.verdict);
  if (counter != verdicts_.end()) counter->second->Increment();
  const std::string pinned_version = PinnedVersionOf(*c.pin, open.dataset);

  if (!refused && !open.write() && open.view_use == 0) {  // the process reads this file
    JournalItem item;
    v1::DataOpen* data = item.entry.mutable_data_open();
    data->set_dataset(open.dataset);
    data->set_version(check.version);
    data->set_requested_path(JournalText(open.requested_path));
    data->set_opened_path(JournalText(open.opened_path));
    data->set_relative_path(JournalText(check.relative_path));
    data->set_size(open.has_stat ? open.size : check.stat.size);
    data->set_mtime_ns(open.has_stat ? open.mtime_ns : check.stat.mtime_ns);
    data->set_sha256(check.sha256);
    data->set_rank(c.rank);
    data->set_pid(c.peer.pid);
    data->set_verdict(check.verdict);
    data->set_redirected(open.redirected());
    data->set_device(open.has_stat ? open.device : check.stat.device);
    data->set_inode(open.has_stat ? open.inode : check.stat.inode);
    item.once_key = DataOnceKey(open, check, pinned_version);
    items->push_back(std::move(item));
  }
  if (check.verdict != v1::VERDICT_MATCH) {
    JournalItem item;
    v1::Violation* violation = item.entry.mutable_violation();
    violation->set_verdict(check.verdict);
    violation->set_path(JournalText(open.opened_path));
    violation->set_requested_path(JournalText(open.requested_path));
    violation->set_dataset(open.dataset);
    violation->set_pinned_version(pinned_version);
    violation->set_detail(JournalText(check.detail));
    violation->set_rank(c.rank);
    violation->set_pid(c.peer.pid);
    violation->set_refused(refused);
    item.once_key = absl::StrCat("violation/", VerdictLabel(check.verdict), "/",
                                 refused ? "refused" : "allowed", "/", open.opened_path);
    items->push_back(std::move(item));
  }
  if (request.request_id != 0) {
    verdicts->push_back({request.request_id, check.verdict, !refused, refused ? check.detail : ""});
  }
}

void ShimServer::HandleOpens(Connection& c, const std::vector<const ShimRequest*>& opens) {
  std::vector<JournalItem> items;
  std::vector<Verdict> verdicts;
  for (const ShimRequest* request : opens) {
    opens_->Increment();
    if (!c.hello_done) {
      Reject(c, ShimReject::kNoHello, "OPEN before an accepted HELLO");
      if (request->request_id != 0) {
        Send(c, EncodeShimError(request->request_id, "no accepted HELLO on this connection"));
      }
      continue;
    }
    CheckOpen(c, *request, &items, &verdicts);
  }
  // A waiting open does not also wait for the journal's disk sync: the entries are written in
  // the background (only a reprod crash in between could lose them).
  for (const Verdict& v : verdicts) {
    Send(c, EncodeShimVerdict(v.request_id, v.verdict, v.allow, v.reason));
  }
  journal_->Append(c.job, std::move(items));
}

}  // namespace repro
