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
// background, and items that cannot be written are counted in one place (LostItems). When a
// connection ends without its process's count of reports (killed, or its HELLO unanswered),
// ProcessEnds waits for the process to be gone and JournalUncounted counts what it lost.
//
// Threading: one thread owns the socket (epoll: accept, receive, parse, reject); two small pools of
// workers (urgent, bulk: see below) serve connections, one worker per connection at a time, so a
// connection's messages are handled in order while hundreds of processes are served side by side.
// A slow check (re-hashing a changed file) holds up only its own connection. Malformed datagrams
// are rejected and counted by reason (repro_shim_messages_rejected_total{reason}), logged at most
// once per connection per interval; they never stop the server. A connection whose backlog is full is
// not read until it drains (its shim waits for room up to its timeout, then drops and counts).
//
// Fair sharing: connections ready for a worker wait in a FairQueue, where uids take turns (and a
// uid's jobs take its turns in turn). Urgent work (a HELLO, or an open whose shim waits for a
// verdict) and bulk reports have a lane and workers each: urgent workers run at normal priority,
// bulk workers at `bulk_nice`, so that on a busy node checking and journaling reports, which no
// process waits for, yields the cores to training instead of slowing it down, while no process
// waits longer for its PIN answer or verdict. A connection waiting in the bulk lane moves to the
// urgent one when an urgent request arrives on it. Each uid has its own
// cap on open connections and on queued bytes. A HELLO's executable is hashed on a separate
// bounded pool where uids take turns (BoundedPool), up to max_hash_bytes, unless the hash cache
// knows the file; hashing a large file stops when the connection ends. Meanwhile only that
// connection waits (its PIN answer is already sent).
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
#include <optional>
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
#include "daemon/loaded_code/loaded_recorder.h"
#include "daemon/metrics/metrics.h"
#include "daemon/os/file_system.h"
#include "daemon/quota/quotas.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/registry/version_registry.h"
#include "daemon/shim_socket/bounded_pool.h"
#include "daemon/shim_socket/data_checker.h"
#include "daemon/shim_socket/fair_queue.h"
#include "daemon/shim_socket/process_ends.h"
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
  // Workers serving urgent work (at normal priority) and bulk reports (at nice `bulk_nice`).
  int urgent_workers = 2;
  int workers = 2;
  int bulk_nice = 10;
  size_t max_connections = 4096;
  // Connections one uid may hold open; more are closed at once (and counted), other uids' are not.
  size_t max_connections_per_uid = 256;
  // Requests queued per connection before reprod stops reading it until they are served.
  size_t max_queued = 1024;
  // Bytes of requests queued for all of one uid's connections before reprod stops reading them
  // (each one until its own queue is served).
  size_t max_queued_bytes_per_uid = size_t{64} << 20;
  // Executables larger than this are not hashed (journaled "not hashed: too large"). 0: no limit.
  uint64_t max_hash_bytes = uint64_t{4} << 30;
  // Threads hashing executables, apart from the workers, and HELLOs that may wait for them (in
  // all, and of one uid).
  int hash_threads = 2;
  size_t max_queued_hashes = 1024;
  size_t max_queued_hashes_per_uid = 64;
  // An executable is hashed to the end when its process is gone, up to this many bytes; beyond,
  // the hashing stops when the connection closes.
  uint64_t hash_after_close_bytes = uint64_t{256} << 20;
  // A process whose connection ended without its count of reports is taken as ended this long
  // after it exited (ProcessEnds): time for connections it made just before to be read.
  absl::Duration process_end_settle = absl::Seconds(2);
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
  // May be null: no quota. Items over a quota (journal_entries_per_sec for the peer's uid or the
  // job, max_journal_entries_per_job) are not journaled: counted as lost (a gap entry follows).
  Quotas* quotas = nullptr;
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

  // Stops accepting and serving, closes every connection and removes the sockets. Idempotent.
  void Stop();

  // Serves one more socket at `socket_path` (bound like the main one) whose every connection
  // speaks for `job_identity`: a HELLO on it is authorized as that identity (e.g. the Kubernetes
  // namespace of the Pod the socket was made for, daemon/csi/), not as the connecting uid; files
  // are still hashed only when the process's uid could read them. INVALID_ARGUMENT for an unusable
  // path, FAILED_PRECONDITION when a live process serves it, ALREADY_EXISTS when this server does.
  absl::Status AddListener(const std::string& socket_path, Identity job_identity);
  // Stops accepting on a socket added by AddListener and removes it; connections already made on
  // it keep their identity until they end. A path not served is ignored.
  void RemoveListener(const std::string& socket_path);

  const std::string& socket_path() const { return options_.socket_path; }

 private:
  struct Connection;
  using ConnectionPtr = std::shared_ptr<Connection>;
  // What one uid holds.
  struct UidUsage {
    size_t connections = 0;                // IO thread only
    std::atomic<int64_t> queued_bytes{0};  // requests queued on its connections
  };
  // A request waiting in a connection's queue, and the bytes it arrived in.
  struct Queued {
    ShimRequest request;
    size_t bytes = 0;
  };

  // A listening socket: the main one (no job identity) or one added by AddListener.
  struct Listener {
    std::string path;
    std::optional<Identity> job_identity;
  };

  ShimServer(ShimServerOptions options, ShimServerParts parts);
  void IoLoop();
  // Accepts what waits on the listening socket `fd` (nothing when `fd` is not one, or no longer).
  void Accept(int fd);
  // Reads what `c` sent (events: what epoll reported).
  void Receive(const ConnectionPtr& c, uint32_t events);
  // The usage of the uid of a new connection's `peer` when it may connect; null (and the refusal
  // counted by reason) when its credentials are unknown, or max_connections or the uid's
  // max_connections_per_uid are open.
  std::shared_ptr<UidUsage> Admit(const absl::StatusOr<Identity>& peer);
  void Drop(int fd);
  // IO thread only. Queues requests of `c` for its worker. True when c's queue is now full, or
  // its uid's bytes: then c is paused (out of epoll) until TakeBatch resumes it.
  bool Enqueue(const ConnectionPtr& c, std::vector<Queued> requests);
  // Puts `c` in the ready queue for a worker, in its uid's and job's turn. c->mu must not be held;
  // the caller has just made c scheduled, or holds it as its worker.
  void Schedule(const ConnectionPtr& c, bool urgent);
  // An urgent request arrived for the scheduled `c`: if it waits in the bulk lane, it moves to the
  // urgent one (if a worker holds it, the worker reschedules it by its urgency).
  void Promote(const ConnectionPtr& c);
  // Queues what c's report ring holds; then puts the ring to sleep when it was empty, or looks
  // again kRingAwake later (unless the connection `ended`).
  void ReadRing(const ConnectionPtr& c, bool ended);
  // The timer: reads the rings that are due.
  void ReadDueRings();
  void ArmTimer(absl::Time when);
  // A worker of the urgent or the bulk lane.
  void WorkerLoop(bool urgent);
  // Serves one batch of c's queued requests through its session; reschedules c when more are
  // waiting.
  void Serve(const ConnectionPtr& c);
  // Up to kBatch of c's queued requests; resumes a paused c (back in epoll) once its queue is
  // down to half of max_queued.
  std::vector<ShimRequest> TakeBatch(const ConnectionPtr& c);
  // Sends what `out` holds for the shim and counts its rejections.
  void Answer(Connection& c, const ShimOutput& out);
  void AppendToJournal(Connection& c, std::vector<JournalItem> items);
  // Journals what a process that ended without its count of reports may have lost
  // (ProcessEnds): the reports below its ring's count that never arrived, or, without a ring, a
  // gap saying the count is unknown. On ends_'s thread.
  void JournalUncounted(const ProcessEnds::Gone& gone);
  // Hashes out.exe (from the hash cache at once, else on hash_pool_), then journals out.items and
  // serves c again.
  void HashExecutable(const ConnectionPtr& c, ShimOutput out);
  // The cached hash of the file at `path` when the cache knows its current state.
  std::optional<HashedFile> CachedHash(const std::string& path);
  // After a turn of c: back in the ready queue when requests wait, else unscheduled.
  void Reschedule(const ConnectionPtr& c);
  void Send(Connection& c, const std::string& message);
  // Sends the PIN answer with a new report ring and `index` when not null (SCM_RIGHTS); without
  // a ring if none can be made.
  void SendPin(Connection& c, const std::string& message, const VerdictIndex* index);
  // Counts a rejected datagram and logs it (at most once per connection per log_interval).
  void Reject(Connection& c, ShimReject reason, const std::string& detail);
  // True when c may log now (once per log_interval); `unlogged`: what it did not log meanwhile.
  bool TakeLogTurn(Connection& c, uint64_t* unlogged);

  const ShimServerOptions options_;
  const ShimServerParts parts_;
  Metrics own_metrics_;  // used when parts_.metrics is null
  Metrics* const metrics_;
  Authorizer own_auth_{AuthorizerOptions{}};  // used when parts_.auth is null
  Authorizer* const auth_;
  std::map<ShimReject, Counter*> rejected_;
  Counter* replies_dropped_;
  Counter* connections_total_;
  Counter* refused_total_;    // over max_connections
  Counter* refused_per_uid_;  // over max_connections_per_uid
  Counter* refused_unknown_;  // no peer credentials
  Counter* uid_paused_;
  Counter* exes_not_hashed_;
  Counter* ring_reports_;
  Counter* uncounted_complete_;  // repro_shim_uncounted_ends_total{outcome}
  Counter* uncounted_lost_;
  Counter* uncounted_unknown_;
  Gauge* connections_open_;
  LostItems lost_;
  ShimPins pins_;
  VerdictIndexes indexes_;
  ReportNumbers numbers_{parts_.journal};
  // Before everything that holds connections: their ends are told to it.
  std::unique_ptr<ProcessEnds> ends_;
  std::unique_ptr<LoadedRecorder> loaded_;
  std::unique_ptr<ShimSessionContext> sessions_;
  std::unique_ptr<BoundedPool> hash_pool_;

  // Listening sockets by fd. Accept holds the lock while it uses a listener's fd, so that
  // RemoveListener cannot close it underneath.
  absl::Mutex listeners_mu_;
  absl::flat_hash_map<int, Listener> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd that wakes the IO thread to stop
  int timer_fd_ = -1;  // wakes the IO thread for ring_due_
  std::thread io_thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopped_{false};

  // IO thread only (and Stop, after the IO thread ended).
  absl::flat_hash_map<int, ConnectionPtr> connections_;
  absl::flat_hash_map<uid_t, std::shared_ptr<UidUsage>> uids_;  // uids with open connections
  // Connections whose report ring is read again at the given time, in time order.
  std::deque<std::pair<absl::Time, ConnectionPtr>> ring_due_;

  absl::Mutex ready_mu_;
  absl::CondVar ready_cv_[2];  // signalled when the urgent lane [0] / the bulk lane [1] fills
  FairQueue<ConnectionPtr> ready_ ABSL_GUARDED_BY(ready_mu_);
  bool stopping_ ABSL_GUARDED_BY(ready_mu_) = false;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_SHIM_SERVER_H_
