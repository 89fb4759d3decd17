// ShimServer: reprod's end of the shim socket, the transport only: it listens, accepts, learns
// each connection's process from SO_PEERCRED, reads and parses datagrams, and hands the requests
// of a connection to its ShimSession (shim_session.h: the rules), then sends the session's replies,
// appends its journal items with Journal::AppendAsync and counts its rejections.
//
//   ShimServerParts parts{.pins = pins, .versions = versions, .journal = journal,
//                         .checker = checker, .fs = DefaultFileSystem(), .hash_cache = cache,
//                         .metrics = &metrics};
//   ASSIGN_OR_RETURN(std::unique_ptr<ShimServer> server,
//                    ShimServer::Start({.socket_path = "/run/reprod/shim/shim.sock"}, parts));
//   ...
//   server->Stop();
//
// Serving a connection never waits for a disk sync: items join the journal's group commit in the
// background, and items that cannot be written are counted in one place (LostItems).
//
// Threading: one thread owns the socket (epoll: accept, receive, parse, reject); a small pool of
// workers serves connections, one worker per connection at a time, so a connection's messages are
// handled in order while hundreds of processes are served side by side. A slow check (re-hashing
// a changed file) holds up only its own connection. Malformed datagrams are
// rejected and counted by reason (repro_shim_messages_rejected_total{reason}), logged at most once
// per connection per interval; they never stop the server. A connection whose backlog is full is
// not read until it drains (its shim then drops record-mode reports, never blocks).
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_SHIM_SERVER_H_
#define REPRO_DAEMON_SHIM_SOCKET_SHIM_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/auth/authorizer.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/metrics/metrics.h"
#include "daemon/os/file_system.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/registry/version_registry.h"
#include "daemon/loaded_code/loaded_recorder.h"
#include "daemon/shim_socket/data_checker.h"
#include "daemon/shim_socket/report_numbers.h"
#include "daemon/shim_socket/report_ring.h"
#include "daemon/shim_socket/shim_message.h"
#include "daemon/shim_socket/shim_pins.h"
#include "daemon/shim_socket/shim_session.h"
#include "daemon/shim_socket/verdict_index.h"
#include "daemon/store/journal.h"
#include "daemon/store/lost_items.h"

namespace repro {

struct ShimServerOptions {
  std::string socket_path;
  int workers = 4;
  size_t max_connections = 4096;
  // Requests queued per connection before reprod stops reading it until they are served.
  size_t max_queued = 1024;
  // Rejected datagrams are logged at most once per connection per interval.
  absl::Duration log_interval = absl::Seconds(10);
  // LOADED reports waiting to be described and journaled; more are dropped (and counted).
  size_t max_queued_loaded = 256;
};

// Not owned; each must outlive the server.
struct ShimServerParts {
  PinRegistry* pins = nullptr;
  VersionRegistry* versions = nullptr;
  Journal* journal = nullptr;
  DataChecker* checker = nullptr;
  FileSystem* fs = nullptr;          // hashes executables and libraries, reads package metadata
  HashCache* hash_cache = nullptr;   // may be null
  Metrics* metrics = nullptr;        // may be null
  // Decides whose HELLO is accepted for a job and which files may be hashed for a process. May
  // be null: a default Authorizer (root is admin, jobs belong to their pinning uid).
  Authorizer* auth = nullptr;
  LostItems::Hook on_lost;           // may be empty: called for every journal item lost
};

class ShimServer {
 public:
  // Binds options.socket_path (creating its directory, replacing a stale socket left by a dead
  // reprod; FAILED_PRECONDITION when a live one answers there), makes it connectable by every local
  // user (attribution is by SO_PEERCRED), and starts serving.
  static absl::StatusOr<std::unique_ptr<ShimServer>> Start(ShimServerOptions options,
                                                          ShimServerParts parts);
  ~ShimServer();
  ShimServer(const ShimServer&) = delete;
  ShimServer& operator=(const ShimServer&) = delete;

  // Stops accepting and serving, closes every connection and removes the socket. Idempotent.
  void Stop();

  const std::string& socket_path() const { return options_.socket_path; }

 private:
  struct Connection;
  using ConnectionPtr = std::shared_ptr<Connection>;

  ShimServer(ShimServerOptions options, ShimServerParts parts);
  absl::Status Listen();
  void IoLoop();
  void Accept();
  // Reads what `c` sent (events: what epoll reported).
  void Receive(const ConnectionPtr& c, uint32_t events);
  void Drop(int fd);
  // Queues requests of `c` for its worker. True when c's queue is now full.
  bool Enqueue(const ConnectionPtr& c, std::vector<ShimRequest> requests);
  // Queues what c's report ring holds; then puts the ring to sleep when it was empty, or looks
  // again kRingAwake later (unless the connection `ended`).
  void ReadRing(const ConnectionPtr& c, bool ended);
  // The timer: reads the rings that are due.
  void ReadDueRings();
  void ArmTimer(absl::Time when);
  void WorkerLoop();
  // Serves one batch of c's queued requests through its session; reschedules c when more are
  // waiting.
  void Serve(const ConnectionPtr& c);
  void Send(Connection& c, const std::string& message);
  // Sends the PIN answer with a new report ring and `index` when not null (SCM_RIGHTS); without
  // a ring if none can be made.
  void SendPin(Connection& c, const std::string& message, const VerdictIndex* index);
  // Counts a rejected datagram and logs it (at most once per connection per log_interval).
  void Reject(Connection& c, ShimReject reason, const std::string& detail);

  const ShimServerOptions options_;
  const ShimServerParts parts_;
  Metrics own_metrics_;  // used when parts_.metrics is null
  Metrics* const metrics_;
  Authorizer own_auth_{AuthorizerOptions{}};  // used when parts_.auth is null
  Authorizer* const auth_;
  std::map<ShimReject, Counter*> rejected_;
  Counter* replies_dropped_;
  Counter* connections_total_;
  Counter* connections_refused_;
  Counter* ring_reports_;
  Gauge* connections_open_;
  LostItems lost_;
  ShimPins pins_;
  VerdictIndexes indexes_;
  ReportNumbers numbers_{parts_.journal};
  std::unique_ptr<LoadedRecorder> loaded_;
  std::unique_ptr<ShimSessionContext> sessions_;

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd that wakes the IO thread to stop
  int timer_fd_ = -1;  // wakes the IO thread for ring_due_
  std::thread io_thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopped_{false};

  // IO thread only (and Stop, after the IO thread ended).
  absl::flat_hash_map<int, ConnectionPtr> connections_;
  // Connections whose report ring is read again at the given time, in time order.
  std::deque<std::pair<absl::Time, ConnectionPtr>> ring_due_;

  absl::Mutex ready_mu_;
  absl::CondVar ready_cv_;
  std::deque<ConnectionPtr> ready_ ABSL_GUARDED_BY(ready_mu_);
  bool stopping_ ABSL_GUARDED_BY(ready_mu_) = false;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_SHIM_SERVER_H_
