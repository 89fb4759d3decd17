#include "daemon/shim_socket/shim_message.h"

#include <algorithm>
#include <iterator>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/names.h"

namespace repro {
namespace {

enum class Kind { kU64, kString };

struct Rule {
  uint16_t tag;
  Kind kind;
  bool required;
  size_t max_count;  // 1 unless repeatable
};

constexpr Rule kHelloRules[] = {
    {REPRO_SHIM_F_JOB, Kind::kString, true, 1},
    {REPRO_SHIM_F_RANK, Kind::kU64, true, 1},
    {REPRO_SHIM_F_PID, Kind::kU64, true, 1},
    {REPRO_SHIM_F_PARENT_PID, Kind::kU64, false, 1},
    {REPRO_SHIM_F_NONCE, Kind::kU64, true, 1},
    {REPRO_SHIM_F_MODE, Kind::kU64, true, 1},
    {REPRO_SHIM_F_EXE, Kind::kString, false, 1},
    {REPRO_SHIM_F_ARG, Kind::kString, false, REPRO_SHIM_MAX_ARGS},
    {REPRO_SHIM_F_LAUNCHER_VAR, Kind::kString, false, REPRO_SHIM_MAX_LAUNCHER_VARS},
    {REPRO_SHIM_F_REPORT_SEQ, Kind::kU64, false, 1},
    {REPRO_SHIM_F_LINK, Kind::kU64, false, 1},
};

// Reads LAUNCHER_VAR fields ("NAME=VALUE") into `launcher`. False, with `detail`, for a name
// that is not in REPRO_SHIM_LAUNCHER_VARS, a repeated name or a field without '='.
bool ReadLauncherVars(const std::vector<std::string>& fields,
                      std::map<std::string, std::string>* launcher, std::string* detail) {
  static const absl::string_view kNames[] = {
#define REPRO_LAUNCHER_NAME(name) name,
      REPRO_SHIM_LAUNCHER_VARS(REPRO_LAUNCHER_NAME)
#undef REPRO_LAUNCHER_NAME
  };
  for (const std::string& field : fields) {
    size_t eq = field.find('=');
    std::string name = field.substr(0, eq);
    bool known = std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
    if (eq == std::string::npos || !known || !launcher->emplace(name, field.substr(eq + 1)).second) {
      *detail = absl::StrCat("launcher variable \"", absl::CHexEscape(name.substr(0, 64)),
                             "\" is unknown, repeated or has no value");
      return false;
    }
  }
  return true;
}

constexpr Rule kOpenRules[] = {
    {REPRO_SHIM_F_DATASET_NAME, Kind::kString, true, 1},
    {REPRO_SHIM_F_OPEN_FLAGS, Kind::kU64, true, 1},
    {REPRO_SHIM_F_REQUESTED_PATH, Kind::kString, true, 1},
    {REPRO_SHIM_F_OPENED_PATH, Kind::kString, true, 1},
    {REPRO_SHIM_F_DEVICE, Kind::kU64, false, 1},
    {REPRO_SHIM_F_INODE, Kind::kU64, false, 1},
    {REPRO_SHIM_F_SIZE, Kind::kU64, false, 1},
    {REPRO_SHIM_F_MTIME_NS, Kind::kU64, false, 1},
    {REPRO_SHIM_F_CTIME_NS, Kind::kU64, false, 1},
    {REPRO_SHIM_F_VIEW_USE, Kind::kU64, false, 1},
    {REPRO_SHIM_F_REPORT_SEQ, Kind::kU64, false, 1},
};

constexpr Rule kLoadedRules[] = {
    {REPRO_SHIM_F_LIBRARY, Kind::kString, false, kMaxShimLoadedEntries},
    {REPRO_SHIM_F_LIBC_VERSION, Kind::kString, false, 1},
    {REPRO_SHIM_F_PACKAGE_DIR, Kind::kString, false, kMaxShimLoadedEntries},
    {REPRO_SHIM_F_REPORT_SEQ, Kind::kU64, false, 1},
};

// The fields of one message by tag, checked against its rules.
class Fields {
 public:
  // Reads every field of the message body. Returns kNone or the reason it is not well-formed.
  template <size_t N>
  ShimReject Read(absl::string_view datagram, const Rule (&rules)[N], std::string* detail) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(datagram.data());
    size_t offset = REPRO_SHIM_HEADER_SIZE;
    repro_shim_field field;
    int r;
    while ((r = repro_shim_next_field(bytes, datagram.size(), &offset, &field)) == 1) {
      const Rule* rule = nullptr;
      for (const Rule& candidate : rules) {
        if (candidate.tag == field.tag) rule = &candidate;
      }
      if (rule == nullptr) {
        *detail = absl::StrCat("tag ", field.tag, " does not belong in this message");
        return ShimReject::kUnknownField;
      }
      std::vector<absl::string_view>& values = by_tag_[field.tag];
      if (values.size() >= rule->max_count) {
        *detail = absl::StrCat("tag ", field.tag, " repeated");
        return ShimReject::kDuplicateField;
      }
      bool ok = rule->kind == Kind::kU64 ? field.size == 8 : repro_shim_field_is_str(&field) != 0;
      if (!ok) {
        *detail = absl::StrCat("tag ", field.tag,
                               rule->kind == Kind::kU64 ? " is not an 8-byte integer"
                                                        : " is not a string (NUL byte or too long)");
        return ShimReject::kBadValue;
      }
      values.emplace_back(reinterpret_cast<const char*>(field.value), field.size);
    }
    if (r < 0) {
      *detail = absl::StrCat("field at offset ", offset, " is malformed");
      return ShimReject::kMalformedField;
    }
    for (const Rule& rule : rules) {
      if (rule.required && !Has(rule.tag)) {
        *detail = absl::StrCat("tag ", rule.tag, " is missing");
        return ShimReject::kMissingField;
      }
    }
    return ShimReject::kNone;
  }

  bool Has(uint16_t tag) const { return by_tag_.count(tag) > 0; }
  std::string String(uint16_t tag) const { return Has(tag) ? std::string(by_tag_.at(tag)[0]) : ""; }
  uint64_t U64(uint16_t tag) const {
    return Has(tag) ? repro_shim_load_u64(reinterpret_cast<const uint8_t*>(by_tag_.at(tag)[0].data()))
                    : 0;
  }
  std::vector<std::string> Strings(uint16_t tag) const {
    std::vector<std::string> out;
    if (Has(tag)) {
      for (absl::string_view v : by_tag_.at(tag)) out.emplace_back(v);
    }
    return out;
  }

 private:
  std::map<uint16_t, std::vector<absl::string_view>> by_tag_;
};

ShimReject Reject(ParsedShimRequest* parsed, ShimReject reject, std::string detail) {
  parsed->reject = reject;
  parsed->detail = std::move(detail);
  return reject;
}

void ParseHello(absl::string_view datagram, ParsedShimRequest* parsed) {
  Fields f;
  ShimReject r = f.Read(datagram, kHelloRules, &parsed->detail);
  if (r != ShimReject::kNone) {
    parsed->reject = r;
    return;
  }
  ShimHello& hello = parsed->request.hello;
  hello.job = f.String(REPRO_SHIM_F_JOB);
  if (absl::Status s = ValidateJobId(hello.job); !s.ok()) {
    Reject(parsed, ShimReject::kBadValue, std::string(s.message()));
    return;
  }
  hello.rank = static_cast<int64_t>(f.U64(REPRO_SHIM_F_RANK));
  hello.claimed_pid = static_cast<int64_t>(f.U64(REPRO_SHIM_F_PID));
  hello.parent_pid = static_cast<int64_t>(f.U64(REPRO_SHIM_F_PARENT_PID));
  if (hello.rank < 0 || hello.claimed_pid <= 0 || hello.parent_pid < 0 ||
      hello.claimed_pid > INT32_MAX || hello.parent_pid > INT32_MAX) {
    Reject(parsed, ShimReject::kBadValue, "rank or pid out of range");
    return;
  }
  hello.nonce = f.U64(REPRO_SHIM_F_NONCE);
  uint64_t mode = f.U64(REPRO_SHIM_F_MODE);
  if (mode != REPRO_SHIM_MODE_RECORD && mode != REPRO_SHIM_MODE_ENFORCE) {
    Reject(parsed, ShimReject::kBadValue, absl::StrCat("mode ", mode));
    return;
  }
  hello.mode = mode == REPRO_SHIM_MODE_ENFORCE ? ShimMode::kEnforce : ShimMode::kRecord;
  hello.exe = f.String(REPRO_SHIM_F_EXE);
  if (f.Has(REPRO_SHIM_F_REPORT_SEQ)) hello.report_seq = f.U64(REPRO_SHIM_F_REPORT_SEQ);
  hello.link = f.U64(REPRO_SHIM_F_LINK);
  hello.argv = f.Strings(REPRO_SHIM_F_ARG);
  if (!ReadLauncherVars(f.Strings(REPRO_SHIM_F_LAUNCHER_VAR), &hello.launcher, &parsed->detail)) {
    parsed->reject = ShimReject::kBadValue;
  }
}

void ParseOpen(absl::string_view datagram, ParsedShimRequest* parsed) {
  Fields f;
  ShimReject r = f.Read(datagram, kOpenRules, &parsed->detail);
  if (r != ShimReject::kNone) {
    parsed->reject = r;
    return;
  }
  ShimOpen& open = parsed->request.open;
  open.dataset = f.String(REPRO_SHIM_F_DATASET_NAME);
  if (absl::Status s = ValidateDatasetName(open.dataset); !s.ok()) {
    Reject(parsed, ShimReject::kBadValue, std::string(s.message()));
    return;
  }
  uint64_t flags = f.U64(REPRO_SHIM_F_OPEN_FLAGS);
  if ((flags & ~uint64_t{REPRO_SHIM_OPEN_ALL_FLAGS}) != 0) {
    Reject(parsed, ShimReject::kBadValue, absl::StrCat("unknown open flags ", flags));
    return;
  }
  open.flags = static_cast<uint32_t>(flags);
  open.requested_path = f.String(REPRO_SHIM_F_REQUESTED_PATH);
  open.opened_path = f.String(REPRO_SHIM_F_OPENED_PATH);
  if (open.requested_path.empty() || open.opened_path.empty() || open.opened_path[0] != '/') {
    Reject(parsed, ShimReject::kBadValue, "paths must be non-empty and the opened one absolute");
    return;
  }
  constexpr uint16_t kStatTags[] = {REPRO_SHIM_F_DEVICE, REPRO_SHIM_F_INODE, REPRO_SHIM_F_SIZE,
                                    REPRO_SHIM_F_MTIME_NS, REPRO_SHIM_F_CTIME_NS};
  size_t present = std::count_if(std::begin(kStatTags), std::end(kStatTags),
                                 [&](uint16_t tag) { return f.Has(tag); });
  if (present != 0 && present != std::size(kStatTags)) {
    Reject(parsed, ShimReject::kMissingField, "stat fields come all together or not at all");
    return;
  }
  open.has_stat = present != 0;
  open.device = f.U64(REPRO_SHIM_F_DEVICE);
  open.inode = f.U64(REPRO_SHIM_F_INODE);
  open.size = f.U64(REPRO_SHIM_F_SIZE);
  open.mtime_ns = static_cast<int64_t>(f.U64(REPRO_SHIM_F_MTIME_NS));
  open.ctime_ns = static_cast<int64_t>(f.U64(REPRO_SHIM_F_CTIME_NS));
  uint64_t view_use = f.U64(REPRO_SHIM_F_VIEW_USE);
  if (view_use > REPRO_SHIM_VIEW_LAST) {
    Reject(parsed, ShimReject::kBadValue, absl::StrCat("unknown view use ", view_use));
    return;
  }
  open.view_use = static_cast<uint32_t>(view_use);
  if (f.Has(REPRO_SHIM_F_REPORT_SEQ)) open.report_seq = f.U64(REPRO_SHIM_F_REPORT_SEQ);
}

bool IsAbsolutePath(absl::string_view path) { return !path.empty() && path[0] == '/'; }

bool IsLibcVersion(absl::string_view version) {
  return !version.empty() && version.size() <= kMaxShimLibcVersion &&
         std::all_of(version.begin(), version.end(), [](char c) {
           return absl::ascii_isalnum(c) || c == '.' || c == '+' || c == '~' || c == '_' ||
                  c == '-';
         });
}

void ParseLoaded(absl::string_view datagram, ParsedShimRequest* parsed) {
  Fields f;
  ShimReject r = f.Read(datagram, kLoadedRules, &parsed->detail);
  if (r != ShimReject::kNone) {
    parsed->reject = r;
    return;
  }
  ShimLoaded& loaded = parsed->request.loaded;
  if (f.Has(REPRO_SHIM_F_REPORT_SEQ)) parsed->request.reports_made = f.U64(REPRO_SHIM_F_REPORT_SEQ);
  loaded.libraries = f.Strings(REPRO_SHIM_F_LIBRARY);
  loaded.package_dirs = f.Strings(REPRO_SHIM_F_PACKAGE_DIR);
  for (const std::vector<std::string>* paths : {&loaded.libraries, &loaded.package_dirs}) {
    if (!std::all_of(paths->begin(), paths->end(), IsAbsolutePath)) {
      Reject(parsed, ShimReject::kBadValue, "library and package paths must be absolute");
      return;
    }
  }
  if (f.Has(REPRO_SHIM_F_LIBC_VERSION)) {
    loaded.libc_version = f.String(REPRO_SHIM_F_LIBC_VERSION);
    if (!IsLibcVersion(loaded.libc_version)) {
      Reject(parsed, ShimReject::kBadValue, "libc version is not a short version string");
      return;
    }
  }
}

// Builds one message in a std::string of REPRO_SHIM_MAX_MESSAGE bytes.
class Writer {
 public:
  Writer(uint16_t type, uint32_t request_id) : buffer_(REPRO_SHIM_MAX_MESSAGE, '\0') {
    repro_shim_writer_init(&w_, reinterpret_cast<uint8_t*>(buffer_.data()), buffer_.size(), type,
                           request_id);
  }
  void Str(uint16_t tag, absl::string_view s) { repro_shim_put_str(&w_, tag, s.data(), s.size()); }
  void U64(uint16_t tag, uint64_t v) { repro_shim_put_u64(&w_, tag, v); }
  uint32_t BeginNested(uint16_t tag) { return repro_shim_begin_nested(&w_, tag); }
  void EndNested(uint32_t at) { repro_shim_end_nested(&w_, at); }
  // Bytes left for more fields.
  size_t room() const { return w_.overflow ? 0 : w_.cap - w_.len; }
  bool overflow() const { return w_.overflow != 0; }
  // The message, or empty when something did not fit.
  std::string Finish() {
    uint32_t n = repro_shim_finish(&w_);
    buffer_.resize(n);
    return std::move(buffer_);
  }

 private:
  std::string buffer_;
  repro_shim_writer w_;
};

uint64_t WireMode(ShimMode mode) {
  return mode == ShimMode::kEnforce ? REPRO_SHIM_MODE_ENFORCE : REPRO_SHIM_MODE_RECORD;
}

}  // namespace

absl::string_view ShimRejectName(ShimReject reject) {
  switch (reject) {
    case ShimReject::kNone: return "none";
    case ShimReject::kTruncated: return "truncated";
    case ShimReject::kOversized: return "oversized";
    case ShimReject::kBadMagic: return "bad_magic";
    case ShimReject::kBadVersion: return "bad_version";
    case ShimReject::kBadLength: return "bad_length";
    case ShimReject::kUnknownType: return "unknown_type";
    case ShimReject::kMalformedField: return "malformed_field";
    case ShimReject::kUnknownField: return "unknown_field";
    case ShimReject::kDuplicateField: return "duplicate_field";
    case ShimReject::kMissingField: return "missing_field";
    case ShimReject::kBadValue: return "bad_value";
    case ShimReject::kNoHello: return "no_hello";
    case ShimReject::kUnexpected: return "unexpected";
  }
  return "unknown";
}

const std::vector<ShimReject>& AllShimRejects() {
  static const std::vector<ShimReject>* const kAll = new std::vector<ShimReject>{
      ShimReject::kTruncated,      ShimReject::kOversized,     ShimReject::kBadMagic,
      ShimReject::kBadVersion,     ShimReject::kBadLength,     ShimReject::kUnknownType,
      ShimReject::kMalformedField, ShimReject::kUnknownField,  ShimReject::kDuplicateField,
      ShimReject::kMissingField,   ShimReject::kBadValue,      ShimReject::kNoHello,
      ShimReject::kUnexpected};
  return *kAll;
}

absl::string_view ShimModeName(ShimMode mode) {
  return mode == ShimMode::kEnforce ? "enforce" : "record";
}

ParsedShimRequest ParseShimRequest(absl::string_view datagram) {
  ParsedShimRequest parsed;
  if (datagram.size() > REPRO_SHIM_MAX_MESSAGE) {
    Reject(&parsed, ShimReject::kOversized, absl::StrCat(datagram.size(), " bytes"));
    return parsed;
  }
  repro_shim_header header;
  switch (repro_shim_read_header(reinterpret_cast<const uint8_t*>(datagram.data()),
                                 datagram.size(), &header)) {
    case REPRO_SHIM_HEADER_OK:
      break;
    case REPRO_SHIM_HEADER_TRUNCATED:
      Reject(&parsed, ShimReject::kTruncated, absl::StrCat(datagram.size(), " bytes"));
      return parsed;
    case REPRO_SHIM_HEADER_BAD_MAGIC:
      Reject(&parsed, ShimReject::kBadMagic, absl::StrCat("magic ", header.magic));
      return parsed;
    case REPRO_SHIM_HEADER_BAD_VERSION:
      Reject(&parsed, ShimReject::kBadVersion, absl::StrCat("version ", header.version));
      return parsed;
    default:
      Reject(&parsed, ShimReject::kBadLength,
             absl::StrCat("header says ", header.length, " bytes, datagram has ", datagram.size()));
      return parsed;
  }
  parsed.request.type = header.type;
  parsed.request.request_id = header.request_id;
  if (header.type == REPRO_SHIM_HELLO) {
    ParseHello(datagram, &parsed);
  } else if (header.type == REPRO_SHIM_OPEN) {
    ParseOpen(datagram, &parsed);
  } else if (header.type == REPRO_SHIM_LOADED) {
    ParseLoaded(datagram, &parsed);
  } else if (header.type == REPRO_SHIM_DOORBELL) {
    if (datagram.size() != REPRO_SHIM_HEADER_SIZE) {
      Reject(&parsed, ShimReject::kUnknownField, "a DOORBELL has no fields");
    }
  } else {
    Reject(&parsed, ShimReject::kUnknownType, absl::StrCat("type ", header.type));
  }
  return parsed;
}

std::string EncodeShimPin(uint32_t request_id, const ShimPinReply& pin, size_t* omitted) {
  // What the other-version lists may use: the room left once every pinned version is in.
  size_t fixed = 0;
  for (const ShimPinDataset& d : pin.datasets) {
    fixed += 5 * REPRO_SHIM_FIELD_HEADER_SIZE + d.name.size() + d.version.size() + d.root.size() +
             d.pinned_dir.size();
  }
  Writer w(REPRO_SHIM_PIN, request_id);
  w.U64(REPRO_SHIM_F_SEED, pin.seed);
  w.U64(REPRO_SHIM_F_RANK_SEED, pin.rank_seed);
  w.U64(REPRO_SHIM_F_MODE, WireMode(pin.mode));
  size_t budget = w.room() > fixed ? w.room() - fixed : 0;
  size_t left_out = 0;
  for (const ShimPinDataset& d : pin.datasets) {
    uint32_t at = w.BeginNested(REPRO_SHIM_F_DATASET);
    w.Str(REPRO_SHIM_F_NAME, d.name);
    w.Str(REPRO_SHIM_F_VERSION, d.version);
    w.Str(REPRO_SHIM_F_ROOT, d.root);
    w.Str(REPRO_SHIM_F_PINNED_DIR, d.pinned_dir);
    for (const std::string& other : d.other_dirs) {
      size_t need = REPRO_SHIM_FIELD_HEADER_SIZE + other.size();
      if (need > budget) {
        ++left_out;
        continue;
      }
      budget -= need;
      w.Str(REPRO_SHIM_F_OTHER_DIR, other);
    }
    w.EndNested(at);
  }
  if (omitted != nullptr) *omitted = left_out;
  return w.Finish();
}

std::string EncodeShimVerdict(uint32_t request_id, v1::Verdict verdict, bool allow,
                              absl::string_view reason) {
  Writer w(REPRO_SHIM_VERDICT, request_id);
  w.U64(REPRO_SHIM_F_VERDICT, static_cast<uint64_t>(verdict));
  w.U64(REPRO_SHIM_F_ALLOW, allow ? 1 : 0);
  if (!reason.empty()) w.Str(REPRO_SHIM_F_REASON, reason.substr(0, 1024));
  return w.Finish();
}

std::string EncodeShimError(uint32_t request_id, absl::string_view reason) {
  Writer w(REPRO_SHIM_ERROR, request_id);
  w.Str(REPRO_SHIM_F_REASON, reason.substr(0, 1024));
  return w.Finish();
}

std::string EncodeShimHello(uint32_t request_id, const ShimHello& hello) {
  Writer w(REPRO_SHIM_HELLO, request_id);
  w.Str(REPRO_SHIM_F_JOB, hello.job);
  w.U64(REPRO_SHIM_F_RANK, static_cast<uint64_t>(hello.rank));
  w.U64(REPRO_SHIM_F_PID, static_cast<uint64_t>(hello.claimed_pid));
  w.U64(REPRO_SHIM_F_PARENT_PID, static_cast<uint64_t>(hello.parent_pid));
  w.U64(REPRO_SHIM_F_NONCE, hello.nonce);
  w.U64(REPRO_SHIM_F_MODE, WireMode(hello.mode));
  if (!hello.exe.empty()) w.Str(REPRO_SHIM_F_EXE, hello.exe);
  for (const std::string& arg : hello.argv) w.Str(REPRO_SHIM_F_ARG, arg);
  for (const auto& [name, value] : hello.launcher) {
    w.Str(REPRO_SHIM_F_LAUNCHER_VAR, absl::StrCat(name, "=", value));
  }
  if (hello.report_seq) w.U64(REPRO_SHIM_F_REPORT_SEQ, *hello.report_seq);
  if (hello.link != 0) w.U64(REPRO_SHIM_F_LINK, hello.link);
  return w.Finish();
}

std::string EncodeShimOpen(uint32_t request_id, const ShimOpen& open) {
  Writer w(REPRO_SHIM_OPEN, request_id);
  w.Str(REPRO_SHIM_F_DATASET_NAME, open.dataset);
  w.U64(REPRO_SHIM_F_OPEN_FLAGS, open.flags);
  w.Str(REPRO_SHIM_F_REQUESTED_PATH, open.requested_path);
  w.Str(REPRO_SHIM_F_OPENED_PATH, open.opened_path);
  if (open.has_stat) {
    w.U64(REPRO_SHIM_F_DEVICE, open.device);
    w.U64(REPRO_SHIM_F_INODE, open.inode);
    w.U64(REPRO_SHIM_F_SIZE, open.size);
    w.U64(REPRO_SHIM_F_MTIME_NS, static_cast<uint64_t>(open.mtime_ns));
    w.U64(REPRO_SHIM_F_CTIME_NS, static_cast<uint64_t>(open.ctime_ns));
  }
  if (open.view_use != 0) w.U64(REPRO_SHIM_F_VIEW_USE, open.view_use);
  if (open.report_seq) w.U64(REPRO_SHIM_F_REPORT_SEQ, *open.report_seq);
  return w.Finish();
}

std::string EncodeShimLoaded(uint32_t request_id, const ShimLoaded& loaded) {
  Writer w(REPRO_SHIM_LOADED, request_id);
  for (const std::string& library : loaded.libraries) w.Str(REPRO_SHIM_F_LIBRARY, library);
  if (!loaded.libc_version.empty()) w.Str(REPRO_SHIM_F_LIBC_VERSION, loaded.libc_version);
  for (const std::string& dir : loaded.package_dirs) w.Str(REPRO_SHIM_F_PACKAGE_DIR, dir);
  return w.Finish();
}

}  // namespace repro
