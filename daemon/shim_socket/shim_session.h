// ShimSession: what reprod does with the requests of one shim connection, without the socket.
// HELLO gets the job's pin (and journals the process), each OPEN is checked against the manifest
// (DataChecker) and becomes journal items and, when its shim waits, a verdict; LOADED goes to the
// LoadedRecorder. The transport (ShimServer) hands it parsed requests and sends, journals and
// logs what it returns.
//
//   ShimSessionContext context(parts, &metrics);            // shared by every connection
//   ShimSession session(&context, {.pid = pid, .uid = uid, .gid = gid});  // from SO_PEERCRED
//   ShimOutput out;
//   for (ShimRequest& r : requests) session.Handle(std::move(r), &out);
//   send(out.replies...); journal->AppendAsync(session.job(), std::move(out.items));
//
// Every item is attributed to the peer (SO_PEERCRED), never to what the process claims. What it
// journals for a job: ProcessStart per process (pid, uid, gid; rank and rank seed; exe path and
// SHA-256; argv), DataOpen once per job and file (with SHA-256 and verdict), a Violation when a
// file is not in the manifest, lies in another version, no longer matches, or was opened for
// writing; a Gap when numbered reports of the process never reached reprod (ReportNumbers).
//
// The enforce-mode rule for an incomplete record (issue 13). Verdicts are local (the shim allows
// an open from its sealed verdict index without asking), so reprod cannot hold a verdict until
// the record is complete. What it does instead: a gap it learns of at a HELLO (reports lost while
// reprod was down or unreachable) is journaled durably BEFORE the PIN answer and a fresh verdict
// index go back, so no open allowed after the gap was known is journaled ahead of it; while reprod
// is unreachable the enforce-mode shim has no way to publish its reports and refuses dataset
// opens (fails closed), so nothing is read unrecorded in between. When the gap cannot be
// journaled (a storage fault), an enforce-mode HELLO is refused: the process keeps being refused
// dataset opens until the gap is on disk. A record-mode HELLO goes on (record mode never blocks);
// its gap is journaled with its other items, and counted through LostItems if that fails too.
//
// Not thread-safe: one session per connection, used by one thread at a time. The context is
// thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_SHIM_SESSION_H_
#define REPRO_DAEMON_SHIM_SOCKET_SHIM_SESSION_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/auth/authorizer.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/loaded_code/loaded_recorder.h"
#include "daemon/metrics/metrics.h"
#include "daemon/os/file_system.h"
#include "daemon/shim_socket/data_checker.h"
#include "daemon/shim_socket/process_ends.h"
#include "daemon/shim_socket/report_numbers.h"
#include "daemon/shim_socket/shim_message.h"
#include "daemon/shim_socket/shim_pins.h"
#include "daemon/shim_socket/verdict_index.h"
#include "daemon/store/journal.h"

namespace repro {

// The kind of a gap entry's count of dataset-open reports that never reached the journal.
inline constexpr absl::string_view kLostReportKind = "shim_report";
// The kind of a gap entry's count of processes that ended without saying how many dataset-open
// reports they made, so that how many never reached the journal is unknown (ProcessEnds).
inline constexpr absl::string_view kUncountedProcessKind = "shim_process_uncounted";

// The process at the other end of a connection, as the kernel says (SO_PEERCRED).
struct ShimPeer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS)
  // Set when the connection came through a socket made for one Pod (ShimServer::AddListener):
  // the identity its HELLO speaks for, instead of the uid.
  std::optional<Identity> job_identity;

  // The process's own credentials: what it may read (and so, have hashed).
  Identity identity() const { return Identity::Unix(uid, gid, groups); }
  // Whom its HELLO is authorized as: the Pod's identity on a per-Pod socket, else identity().
  Identity hello_identity() const { return job_identity ? *job_identity : identity(); }
};

// Not owned; each must outlive the context.
struct ShimSessionParts {
  ShimPins* pins = nullptr;
  DataChecker* checker = nullptr;
  FileSystem* fs = nullptr;
  HashCache* hash_cache = nullptr;    // may be null
  LoadedRecorder* loaded = nullptr;   // may be null: LOADED reports are ignored
  VerdictIndexes* indexes = nullptr;  // may be null: enforce-mode shims ask for every verdict
  Authorizer* auth = nullptr;         // whose HELLO a job accepts, which files may be hashed
  // May be null: reports are not checked for gaps. Counts reports that never reached reprod.
  ReportNumbers* numbers = nullptr;
  // May be null: a gap found at HELLO is then journaled like any item, not before the answer.
  Journal* journal = nullptr;
  // May be null: not told which process each accepted HELLO is (see ProcessEnds).
  ProcessEnds* ends = nullptr;
};

// What every session shares: the parts and the counters. Thread-safe.
class ShimSessionContext {
 public:
  // `metrics` is not owned and must outlive the context.
  ShimSessionContext(ShimSessionParts parts, Metrics* metrics);

  const ShimSessionParts& parts() const { return parts_; }
  void CountVerdict(v1::Verdict verdict);
  Counter* hellos() const { return hellos_; }
  Counter* hello_errors() const { return hello_errors_; }
  Counter* opens() const { return opens_; }
  Counter* local_verdicts() const { return local_verdicts_; }

 private:
  const ShimSessionParts parts_;
  std::map<v1::Verdict, Counter*> verdicts_;
  Counter* hellos_;
  Counter* hello_errors_;
  Counter* opens_;
  Counter* local_verdicts_;
};

// An executable to hash before a ProcessStart item is journaled: the file the kernel names as the
// process's executable (/proc/<pid>/exe), never a path the process claims.
struct ExeToHash {
  std::string path;  // empty: the kernel names none (deleted, or the process is gone)
  dev_t device = 0;  // the executed file, as stat("/proc/<pid>/exe") saw it
  ino_t inode = 0;
  size_t item = 0;      // index of the ProcessStart item in ShimOutput::items
  std::string refused;  // set when the process may not learn its hash: why
};

// What serving requests produced, in request order.
struct ShimOutput {
  std::vector<std::string> replies;                            // to send to the shim
  std::vector<JournalItem> items;                              // for the journal of session.job()
  std::vector<std::pair<ShimReject, std::string>> rejections;  // reason, detail: to count and log
  // Set with an enforce-mode PIN reply: the verdict index to pass along with it.
  std::shared_ptr<const VerdictIndex> index;
  // Set by an accepted HELLO: the ProcessStart item's executable is still to be hashed (off the
  // worker; see FinishExeHash). The caller serves no further request of the connection until then.
  std::optional<ExeToHash> exe;
};

// The gap item for `missing` dataset-open reports of process `numbers_key` (ReportNumbers::Key,
// pid `pid`) lost `how`; every report numbered below `through` is then accounted for (the item
// carries the process's mark, so a restarted reprod does not count them again).
JournalItem LostReportsItem(pid_t pid, const std::string& numbers_key, uint64_t missing,
                            uint64_t through, absl::string_view how);

// Completes the ProcessStart item that `exe` points at in `items` with the outcome of hashing
// its executable: the SHA-256, or exe_not_hashed saying why not.
void FinishExeHash(const ExeToHash& exe, const absl::StatusOr<HashedFile>& hashed,
                   std::vector<JournalItem>* items);

class ShimSession {
 public:
  // `context` is not owned and must outlive the session.
  ShimSession(ShimSessionContext* context, ShimPeer peer)
      : context_(context), peer_(std::move(peer)) {}

  // Serves one parsed request (ParseShimRequest), appending to `out`.
  void Handle(ShimRequest request, ShimOutput* out);

  // The job of the accepted HELLO; empty before.
  const std::string& job() const { return job_; }
  const ShimPeer& peer() const { return peer_; }
  // The process (ReportNumbers::Key) and connection number (LINK) of the accepted HELLO.
  const std::string& numbers_key() const { return numbers_key_; }
  uint64_t link() const { return link_; }
  // The process said how many dataset-open reports it made, and reported none since.
  bool counted() const { return counted_; }

 private:
  void HandleHello(const ShimRequest& request, ShimOutput* out);
  void HandleOpen(const ShimRequest& request, ShimOutput* out);
  void HandleLoaded(ShimRequest& request, ShimOutput* out);
  // `exe`: the executable as the kernel names it ("" when it names none).
  v1::ProcessStart ProcessStartOf(const ShimHello& hello, const std::string& exe) const;
  // What FinishExeHash needs to hash this peer's executable (the item index is left 0).
  ExeToHash ExecutableToHash() const;
  // Journals the gap of `missing` reports a HELLO revealed, durably before its answer when a
  // journal is at hand. False when an enforce-mode HELLO must be refused (see the class comment).
  bool JournalHelloGap(const ShimHello& hello, uint64_t missing, ShimOutput* out);
  // LostReportsItem for this process.
  JournalItem ReportGap(uint64_t missing, uint64_t through, absl::string_view how) const;

  ShimSessionContext* const context_;
  const ShimPeer peer_;
  // Set by the accepted HELLO.
  std::string job_;
  int64_t rank_ = 0;
  uint64_t rank_seed_ = 0;
  ShimMode mode_ = ShimMode::kRecord;
  std::shared_ptr<const v1::Pin> pin_;
  std::string numbers_key_;  // ReportNumbers::Key of this process
  uint64_t link_ = 0;
  bool counted_ = false;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_SHIM_SESSION_H_
