// The shim wire protocol (proto/shim/shim_protocol.h) on reprod's side: strict parsing of what
// shims send, with a named reason for every rejection, and encoding of reprod's answers.
//
//   ParsedShimRequest parsed = ParseShimRequest(datagram);
//   if (parsed.reject != ShimReject::kNone) {
//     rejected[parsed.reject]->Increment();          // metrics label: ShimRejectName(...)
//   } else if (parsed.request.type == REPRO_SHIM_HELLO) {
//     std::string reply = EncodeShimPin(parsed.request.request_id, pin_reply);
//   }
//
// Every datagram is untrusted: sizes, tags, duplicates, value sizes, names and paths are checked
// before anything reaches the journal. The encoders of HELLO, OPEN and LOADED exist for tests and
// tools that play the shim's part.
#ifndef REPRO_DAEMON_SHIM_SOCKET_SHIM_MESSAGE_H_
#define REPRO_DAEMON_SHIM_SOCKET_SHIM_MESSAGE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "daemon/loaded_code/loaded_report.h"
#include "proto/shim/shim_protocol.h"
#include "repro/v1/journal.pb.h"

namespace repro {

// Why a datagram was rejected. Names (ShimRejectName) are metrics labels.
enum class ShimReject {
  kNone,
  kTruncated,       // shorter than a header
  kOversized,       // longer than REPRO_SHIM_MAX_MESSAGE
  kBadMagic,
  kBadVersion,
  kBadLength,       // header length differs from the datagram size
  kUnknownType,     // not a type a shim sends
  kMalformedField,  // a field header or value runs past the end, or reserved bits are set
  kUnknownField,    // a tag the message type does not have
  kDuplicateField,  // a non-repeatable tag twice (or too many repeats)
  kMissingField,    // a required tag is absent
  kBadValue,        // wrong integer size, invalid name, relative path, NUL in a string...
  kNoHello,         // OPEN or LOADED before a HELLO was accepted on the connection
  kUnexpected,      // a second HELLO on one connection
};

// "truncated", "oversized", "bad_magic", ... ("none" for kNone).
absl::string_view ShimRejectName(ShimReject reject);
// Every reason except kNone, for registering metrics up front.
const std::vector<ShimReject>& AllShimRejects();

enum class ShimMode { kRecord, kEnforce };

// "record" or "enforce".
absl::string_view ShimModeName(ShimMode mode);

struct ShimHello {
  std::string job;
  int64_t rank = 0;
  int64_t claimed_pid = 0;  // what the process says; reprod uses SO_PEERCRED
  int64_t parent_pid = 0;
  uint64_t nonce = 0;
  ShimMode mode = ShimMode::kRecord;
  std::string exe;
  std::vector<std::string> argv;
  // Launcher variables (REPRO_SHIM_LAUNCHER_VARS) as NAME -> VALUE; each known name at most once.
  std::map<std::string, std::string> launcher;
  // REPORT_SEQ: the oldest report the process still holds (or its next one); absent from shims
  // that do not number their reports.
  std::optional<uint64_t> report_seq;
  // LINK: the number of this connection in the process (0 for its first, and when absent).
  uint64_t link = 0;
};

struct ShimOpen {
  std::string dataset;
  uint32_t flags = 0;  // REPRO_SHIM_OPEN_*
  std::string requested_path;
  std::string opened_path;  // absolute
  bool has_stat = false;    // the five fields below are all present, or none
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  // REPRO_SHIM_VIEW_*: the path was listed, stat-ed, resolved, entered or executed, not opened
  // for its data (0: an open).
  uint32_t view_use = 0;
  // REPORT_SEQ: this report's number in its process; absent from shims that do not number them.
  std::optional<uint64_t> report_seq;

  bool redirected() const { return (flags & REPRO_SHIM_OPEN_REDIRECTED) != 0; }
  bool write() const { return (flags & REPRO_SHIM_OPEN_WRITE) != 0; }
  bool refused_by_shim() const { return (flags & REPRO_SHIM_OPEN_REFUSED) != 0; }
};

// A LOADED report may carry at most this many LIBRARY and as many PACKAGE_DIR fields.
inline constexpr size_t kMaxShimLoadedEntries = 4096;
// Longest LIBC_VERSION accepted.
inline constexpr size_t kMaxShimLibcVersion = 64;

// What a process runs with (LOADED); described by daemon/loaded_code.
using ShimLoaded = LoadedReport;

struct ShimRequest {
  uint16_t type = 0;  // REPRO_SHIM_HELLO, _OPEN, _LOADED or _DOORBELL (no body)
  uint32_t request_id = 0;
  ShimHello hello;    // when type is HELLO
  ShimOpen open;      // when type is OPEN
  ShimLoaded loaded;  // when type is LOADED
  // LOADED's REPORT_SEQ: how many dataset-open reports the process has numbered (sent or
  // dropped) by now; sent at exit, so reports dropped last are counted too.
  std::optional<uint64_t> reports_made;
};

struct ParsedShimRequest {
  ShimReject reject = ShimReject::kNone;
  std::string detail;  // what exactly was wrong, for the log
  ShimRequest request;
};

// Parses one datagram a shim sent. Never fails on input: a bad datagram is a rejection with a
// reason. Names must be valid (common/names.h); paths must be non-empty, opened paths and LOADED
// paths absolute; LIBC_VERSION is 1..kMaxShimLibcVersion characters of [A-Za-z0-9.+~_-].
ParsedShimRequest ParseShimRequest(absl::string_view datagram);

// The PIN answer to a HELLO.
struct ShimPinDataset {
  std::string name;
  std::string version;
  std::string root;
  std::string pinned_dir;
  std::vector<std::string> other_dirs;
};

struct ShimPinReply {
  uint64_t seed = 0;
  uint64_t rank_seed = 0;
  ShimMode mode = ShimMode::kRecord;
  std::vector<ShimPinDataset> datasets;
};

// Encodes a PIN answer. When the other versions' directories do not all fit in one message, the
// last ones are left out (the shim then treats those names as aliases and rewrites them to the
// pinned version, the safe direction); *omitted counts them when not null. Empty when even the
// pinned versions do not fit.
std::string EncodeShimPin(uint32_t request_id, const ShimPinReply& pin, size_t* omitted = nullptr);
std::string EncodeShimVerdict(uint32_t request_id, v1::Verdict verdict, bool allow,
                              absl::string_view reason);
std::string EncodeShimError(uint32_t request_id, absl::string_view reason);

// For tests and tools that play a shim.
std::string EncodeShimHello(uint32_t request_id, const ShimHello& hello);
std::string EncodeShimOpen(uint32_t request_id, const ShimOpen& open);
// Empty when `loaded` does not fit in one message.
std::string EncodeShimLoaded(uint32_t request_id, const ShimLoaded& loaded);

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_SHIM_MESSAGE_H_
