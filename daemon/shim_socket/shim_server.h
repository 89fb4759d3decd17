// ShimServer: reprod's end of the shim socket. Shims in training processes say HELLO and get
// their job's pin; then they report the dataset files they open, and reprod checks each against
// the manifest (DataChecker), journals it, and in enforce mode answers with a verdict.
//
//   ShimServerParts parts{.pins = pins, .versions = versions, .journal = journal,
//                         .checker = checker, .fs = DefaultFileSystem(), .hash_cache = cache,
//                         .metrics = &metrics};
//   ASSIGN_OR_RETURN(std::unique_ptr<ShimServer> server,
//                    ShimServer::Start({.socket_path = "/run/reprod/shim/shim.sock"}, parts));
//   ...
//   server->Stop();
//
// What it journals for a job (in the background, see AsyncJournal: serving a connection never
// waits for a disk sync): ProcessStart per process (pid, uid, gid from SO_PEERCRED; rank and
// rank seed; exe path and SHA-256; argv), DataOpen once per job and file (with SHA-256 and
// verdict), a Violation when a file is not in the manifest, lies in another version, no longer
// matches, or was opened for writing, and LibrariesLoaded / PythonPackages once per job and
// library or distribution that processes report (LOADED, described off the workers by the
// LoadedRecorder). Every message of a connection is attributed to the process that connected,
// whatever the message claims.
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
#include "daemon/shim_socket/async_journal.h"
#include "daemon/shim_socket/data_checker.h"
#include "daemon/shim_socket/loaded_recorder.h"
#include "daemon/shim_socket/shim_message.h"
#include "daemon/store/journal.h"

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
  struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // SO_PEERGROUPS

    Identity identity() const { return Identity::Unix(uid, gid, groups); }
  };
  struct Connection;
  using ConnectionPtr = std::shared_ptr<Connection>;
  // The answer to an OPEN whose shim waits for it (enforce mode).
  struct Verdict {
    uint32_t request_id = 0;
    v1::Verdict verdict = v1::VERDICT_UNSPECIFIED;
    bool allow = false;
    std::string reason;
  };

  ShimServer(ShimServerOptions options, ShimServerParts parts);
  absl::Status Listen();
  void IoLoop();
  void Accept();
  // Reads what `c` sent (events: what epoll reported).
  void Receive(const ConnectionPtr& c, uint32_t events);
  void Drop(int fd);
  void Enqueue(const ConnectionPtr& c, ShimRequest request);
  void WorkerLoop();
  // Serves one batch of c's queued requests; reschedules c when more are waiting.
  void Serve(const ConnectionPtr& c);
  void HandleHello(Connection& c, const ShimRequest& request);
  // Hands a LOADED report to the recorder (it is never answered).
  void HandleLoaded(Connection& c, ShimLoaded loaded);
  // Serves the OPENs of one batch: checks each, answers the shims that wait, then journals them
  // all in one append.
  void HandleOpens(Connection& c, const std::vector<const ShimRequest*>& opens);
  // Checks one OPEN; adds its journal items and, when its shim waits, its verdict.
  void CheckOpen(Connection& c, const ShimRequest& request, std::vector<JournalItem>* items,
                 std::vector<Verdict>* verdicts);
  // The pin of `job`, journaled on this node on first use.
  absl::StatusOr<std::shared_ptr<const v1::Pin>> PinFor(const std::string& job);
  ShimPinReply PinReply(const v1::Pin& pin, const ShimHello& hello);
  v1::ProcessStart ProcessStartOf(const Connection& c, const ShimHello& hello);
  void Send(Connection& c, const std::string& message);
  void Reject(Connection& c, ShimReject reason, const std::string& detail);

  const ShimServerOptions options_;
  const ShimServerParts parts_;
  Metrics own_metrics_;  // used when parts_.metrics is null
  Metrics* const metrics_;
  Authorizer own_auth_{AuthorizerOptions{}};  // used when parts_.auth is null
  Authorizer* const auth_;
  std::map<ShimReject, Counter*> rejected_;
  std::map<v1::Verdict, Counter*> verdicts_;
  Counter* hellos_;
  Counter* hello_errors_;
  Counter* opens_;
  Counter* replies_dropped_;
  Counter* journal_errors_;
  Counter* connections_total_;
  Counter* connections_refused_;
  Gauge* connections_open_;
  std::unique_ptr<AsyncJournal> journal_;  // entries are written off the connections' workers
  std::unique_ptr<LoadedRecorder> loaded_;  // appends to journal_

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd that wakes the IO thread to stop
  std::thread io_thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopped_{false};

  // IO thread only (and Stop, after the IO thread ended).
  absl::flat_hash_map<int, ConnectionPtr> connections_;

  absl::Mutex ready_mu_;
  absl::CondVar ready_cv_;
  std::deque<ConnectionPtr> ready_ ABSL_GUARDED_BY(ready_mu_);
  bool stopping_ ABSL_GUARDED_BY(ready_mu_) = false;

  absl::Mutex pins_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const v1::Pin>> pins_ ABSL_GUARDED_BY(pins_mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_SHIM_SERVER_H_
