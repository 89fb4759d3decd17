// ProcessEnds: notices a shimmed process that is gone without having told reprod how many
// dataset-open reports it made (LOADED REPORT_SEQ, issue 13), so that what it may have lost is
// still counted: a process killed or crashed, or one whose HELLO got no answer in time (its shim
// gave the connection up) and that ended before reaching reprod again.
//
//   ProcessEnds ends({}, [&](const ProcessEnds::Gone& gone) { ...count and journal the gap... });
//   accept:          ends.Connected(pid);
//   accepted HELLO:  ends.Started(pid, job, key, hello.link);  // key: ReportNumbers::Key
//   end of a connection, once everything it sent was served:
//                    ends.Disconnected({.pid = pid, .job = job, .key = key, .link = link,
//                                       .counted = saw_count, .made = ring->Made(),
//                                       .pidfd = pidfd});
//
// A connection that ends without the count is the process's last word only when no later
// connection of the process (a higher LINK: connections are served side by side, in any order)
// said HELLO. Then the process is watched until it is gone: its pidfd (opened when the connection
// was accepted, so a reused pid is never taken for it) says it exited, or, without a pidfd, the
// connection's end is taken as its end. `settle` later, once no connection of its pid is open
// (one it made just before exiting may still be waiting to be read), it is handed to `on_gone`,
// on this class's thread. A HELLO of the process meanwhile (it reconnected) cancels the watch: its
// HELLO accounts for what it holds.
//
// A process that exec'd keeps its pid: it is handed over when that pid exits (the shim says its
// count before exec, so this is for the exec calls it does not see). Nothing is kept on disk: a
// reprod restarted while a process is watched does not learn that it ended.
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_PROCESS_ENDS_H_
#define REPRO_DAEMON_SHIM_SOCKET_PROCESS_ENDS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace repro {

class ProcessEnds {
 public:
  struct Options {
    absl::Duration settle = absl::Seconds(2);
    // Processes watched with a pidfd at once, in all and of one uid (a process that closes and
    // reopens connections under new nonces must not exhaust reprod's descriptors or memory).
    // Beyond, a process is handed over as soon as its connection ends: erring towards an
    // incomplete record of its own job, never towards a complete one.
    size_t max_watched = 4096;
    size_t max_watched_per_uid = 1024;
  };

  // A process gone without its count.
  struct Gone {
    std::string job;
    std::string key;  // ReportNumbers::Key
    pid_t pid = 0;
    // The count of reports its report ring holds (ReportRing::Made); nullopt: unknown (no ring
    // reached the process).
    std::optional<uint64_t> made;
  };
  using OnGone = std::function<void(const Gone&)>;

  // The end of one connection (every Connected is matched by one).
  struct End {
    pid_t pid = 0;     // SO_PEERCRED; 0 when unknown
    uid_t uid = 0;
    std::string job;   // empty: no HELLO was accepted on it
    std::string key;   // ReportNumbers::Key
    uint64_t link = 0;
    bool counted = false;  // its last dataset-open report was followed by the process's count
    std::optional<uint64_t> made;
    int pidfd = -1;  // the process, from when the connection was accepted (OpenPidfd); -1: none.
                     // Disconnected takes it over and closes it.
  };

  ProcessEnds(Options options, OnGone on_gone);
  // Stop().
  ~ProcessEnds();
  ProcessEnds(const ProcessEnds&) = delete;
  ProcessEnds& operator=(const ProcessEnds&) = delete;

  // Stops the thread; what is watched is dropped (reprod stops: those processes may live on), and
  // later calls change nothing. Idempotent.
  void Stop();

  // A connection of `pid` was accepted.
  void Connected(pid_t pid);
  // A HELLO for `job` was accepted on a connection of `pid`: the process `key` is on its
  // connection number `link`.
  void Started(pid_t pid, absl::string_view job, absl::string_view key, uint64_t link);
  // The connection ended and what it sent was served.
  void Disconnected(End end);

  // Processes watched now.
  size_t watched() const;

  // A pidfd for `pid` (pidfd_open, close-on-exec), -1 when it cannot be had (pid 0, no such
  // process, an old kernel).
  static int OpenPidfd(pid_t pid);

 private:
  struct Watched {
    Gone gone;
    uid_t uid = 0;
    uint64_t link = 0;
    int pidfd = -1;                     // owned; in epoll (as `token`) until gone_at is set
    uint64_t token = 0;
    std::optional<absl::Time> gone_at;  // its pidfd said it exited (or it has none)
  };
  // What is known of one pid's connections.
  struct Pid {
    size_t open = 0;
    // Per process of the pid ("<job>\0<key>"): the highest LINK whose HELLO was accepted.
    absl::flat_hash_map<std::string, uint64_t> latest_link;
  };

  void Loop();
  // Takes the processes that are due out of watched_; sets *next to when to look again.
  std::vector<Gone> TakeDue(absl::Time now, absl::Time* next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts watching the process `id` that `end` was the last connection of; takes end.pidfd
  // (leaving -1) when it watches it.
  void Watch(const std::string& id, End& end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops watching `id` (closing its pidfd); nothing when it is not watched.
  void Unwatch(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Wake();

  const Options options_;
  const OnGone on_gone_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: something changed, or Stop
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<pid_t, Pid> pids_ ABSL_GUARDED_BY(mu_);  // pids with open connections
  absl::flat_hash_map<std::string, Watched> watched_ ABSL_GUARDED_BY(mu_);  // by process
  size_t pidfds_ ABSL_GUARDED_BY(mu_) = 0;                                   // of watched_
  absl::flat_hash_map<uid_t, size_t> pidfds_per_uid_ ABSL_GUARDED_BY(mu_);
  uint64_t over_cap_ ABSL_GUARDED_BY(mu_) = 0;  // processes taken as ended for want of room
  absl::flat_hash_map<uint64_t, std::string> by_token_ ABSL_GUARDED_BY(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_PROCESS_ENDS_H_
