#include "daemon/shim_socket/shim_session.h"

#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/registry/seeds.h"
#include "daemon/store/gap_recorder.h"
#include "daemon/store/journal_text.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr v1::Verdict kVerdicts[] = {v1::VERDICT_MATCH,           v1::VERDICT_NOT_IN_MANIFEST,
                                     v1::VERDICT_CONTENT_CHANGED, v1::VERDICT_OTHER_VERSION,
                                     v1::VERDICT_UNREADABLE,      v1::VERDICT_WRITE};

// "match", "not_in_manifest", ...
std::string VerdictLabel(v1::Verdict verdict) {
  std::string name = v1::Verdict_Name(verdict);
  return absl::AsciiStrToLower(absl::string_view(name).substr(name.find('_') + 1));
}

// The executable of `pid` as the kernel knows it (path and the executed file's identity), with
// an empty path when it cannot be read or was deleted.
ExeToHash ExecutableOf(pid_t pid) {
  ExeToHash exe;
  char buffer[4096];
  const std::string link = absl::StrCat("/proc/", pid, "/exe");
  ssize_t n = readlink(link.c_str(), buffer, sizeof(buffer));
  struct stat st;
  if (n <= 0 || n >= static_cast<ssize_t>(sizeof(buffer)) || stat(link.c_str(), &st) != 0) {
    return exe;
  }
  exe.path.assign(buffer, n);
  if (absl::EndsWith(exe.path, " (deleted)")) exe.path.clear();
  exe.device = st.st_dev;
  exe.inode = st.st_ino;
  return exe;
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

std::string PinnedVersionOf(const v1::Pin& pin, absl::string_view dataset) {
  for (const v1::PinnedVersion& v : pin.versions()) {
    if (v.dataset() == dataset) return v.version();
  }
  return "";
}

JournalItem DataOpenItem(const ShimOpen& open, const OpenCheck& check, int64_t rank, pid_t pid,
                         absl::string_view pinned_version) {
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
  data->set_rank(rank);
  data->set_pid(pid);
  data->set_verdict(check.verdict);
  data->set_redirected(open.redirected());
  data->set_device(open.has_stat ? open.device : check.stat.device);
  data->set_inode(open.has_stat ? open.inode : check.stat.inode);
  item.once_key = DataOnceKey(open, check, pinned_version);
  return item;
}

JournalItem ViolationItem(const ShimOpen& open, const OpenCheck& check, int64_t rank, pid_t pid,
                          absl::string_view pinned_version, bool refused) {
  JournalItem item;
  v1::Violation* violation = item.entry.mutable_violation();
  violation->set_verdict(check.verdict);
  violation->set_path(JournalText(open.opened_path));
  violation->set_requested_path(JournalText(open.requested_path));
  violation->set_dataset(open.dataset);
  violation->set_pinned_version(std::string(pinned_version));
  violation->set_detail(JournalText(check.detail));
  violation->set_rank(rank);
  violation->set_pid(pid);
  violation->set_refused(refused);
  // Once per path and outcome; a use without a read (listed, executed...) is a fact of its own,
  // so an exec of a file is journaled beside another process's read of it, whichever comes first.
  item.once_key = absl::StrCat("violation/", VerdictLabel(check.verdict), "/",
                               refused ? "refused" : "allowed", "/",
                               open.view_use != 0 ? absl::StrCat(ViewUseName(open.view_use), "/")
                                                  : "",
                               open.opened_path);
  return item;
}

}  // namespace

ShimSessionContext::ShimSessionContext(ShimSessionParts parts, Metrics* metrics) : parts_(parts) {
  for (v1::Verdict verdict : kVerdicts) {
    verdicts_[verdict] =
        metrics->GetCounter("repro_shim_verdicts_total", "Dataset opens checked, by verdict.",
                            {{"verdict", VerdictLabel(verdict)}});
  }
  hellos_ = metrics->GetCounter("repro_shim_hellos_total", "HELLOs from shims.");
  hello_errors_ = metrics->GetCounter("repro_shim_hello_errors_total",
                                      "HELLOs refused: job not pinned, store unavailable.");
  opens_ = metrics->GetCounter("repro_shim_opens_total", "Dataset opens reported by shims.");
  local_verdicts_ = metrics->GetCounter(
      "repro_shim_local_verdicts_total",
      "Enforce-mode opens the shim allowed itself from its verdict index (then reported).");
}

void ShimSessionContext::CountVerdict(v1::Verdict verdict) {
  auto counter = verdicts_.find(verdict);
  if (counter != verdicts_.end()) counter->second->Increment();
}

void ShimSession::Handle(ShimRequest request, ShimOutput* out) {
  switch (request.type) {
    case REPRO_SHIM_HELLO:
      HandleHello(request, out);
      break;
    case REPRO_SHIM_OPEN:
      HandleOpen(request, out);
      break;
    case REPRO_SHIM_LOADED:
      HandleLoaded(request, out);
      break;
    default:
      out->rejections.emplace_back(ShimReject::kUnknownType, "not a request");
  }
}

void ShimSession::HandleHello(const ShimRequest& request, ShimOutput* out) {
  context_->hellos()->Increment();
  const ShimHello& hello = request.hello;
  if (!job_.empty()) {
    out->rejections.emplace_back(ShimReject::kUnexpected, "a second HELLO on one connection");
    return;
  }
  // The one place where the peer's credentials (peer_, from SO_PEERCRED) meet the job it claims.
  absl::StatusOr<std::shared_ptr<const v1::Pin>> pin = context_->parts().pins->Get(hello.job);
  if (pin.ok() && context_->parts().auth != nullptr) {  // the job's owner or an admin only
    absl::Status allowed = context_->parts().auth->CheckJobWrite("ShimHello", peer_.hello_identity(),
                                                                 hello.job, (*pin)->owner());
    if (!allowed.ok()) pin = allowed;
  }
  if (!pin.ok()) {
    context_->hello_errors()->Increment();
    spdlog::info("shim socket: refused HELLO of pid {} (uid {}) for job {}: {}", peer_.pid,
                 peer_.uid, hello.job, pin.status().ToString());
    out->replies.push_back(EncodeShimError(request.request_id, pin.status().message()));
    return;
  }
  numbers_key_ = ReportNumbers::Key(peer_.pid, hello.nonce);
  if (hello.report_seq.has_value() && context_->parts().numbers != nullptr) {
    absl::StatusOr<uint64_t> missing =
        context_->parts().numbers->Missing(hello.job, numbers_key_, *hello.report_seq);
    // Without the count (the store cannot be read) record mode goes on; enforce mode may not.
    if (missing.ok() ? !JournalHelloGap(hello, *missing, out) : hello.mode == ShimMode::kEnforce) {
      context_->hello_errors()->Increment();
      std::string why = missing.ok() ? "its lost reports cannot be journaled now"
                                     : std::string(missing.status().message());
      spdlog::warn("shim socket: refused enforce-mode HELLO of pid {} for job {}: {}", peer_.pid,
                   hello.job, why);
      out->replies.push_back(EncodeShimError(
          request.request_id,
          absl::StrCat("the record of this process is incomplete and ", why,
                       "; enforce mode refuses dataset opens until it is")));
      return;
    }
    if (missing.ok()) {
      context_->parts().numbers->Accept(hello.job, numbers_key_, *hello.report_seq);
    }
  }
  size_t omitted = 0;
  std::string reply =
      EncodeShimPin(request.request_id, context_->parts().pins->Reply(**pin, hello), &omitted);
  if (omitted > 0) {
    spdlog::warn(
        "shim socket: job {} pins datasets with too many versions for one message; {} "
        "version directories left out (the shim treats them as aliases)",
        hello.job, omitted);
  }
  if (reply.empty()) {
    out->replies.push_back(
        EncodeShimError(request.request_id, "the pin does not fit in a shim message"));
    return;
  }
  job_ = hello.job;
  link_ = hello.link;
  if (context_->parts().ends != nullptr) {
    context_->parts().ends->Started(peer_.pid, job_, numbers_key_, link_);
  }
  rank_ = hello.rank;
  mode_ = hello.mode;
  pin_ = *pin;
  rank_seed_ = DeriveRankSeed(pin_->seed(), static_cast<uint64_t>(hello.rank));
  out->replies.push_back(std::move(reply));
  if (mode_ == ShimMode::kEnforce && context_->parts().indexes != nullptr) {
    absl::StatusOr<std::shared_ptr<const VerdictIndex>> index =
        context_->parts().indexes->ForPin(*pin_);
    if (index.ok()) {
      out->index = *std::move(index);
    } else {  // the shim then asks for every verdict
      spdlog::warn("shim socket: no verdict index for job {}: {}", job_, index.status().ToString());
    }
  }

  JournalItem item;
  out->exe = ExecutableToHash();
  out->exe->item = out->items.size();
  *item.entry.mutable_process_start() = ProcessStartOf(hello, out->exe->path);
  item.once_key = absl::StrCat("process/", peer_.pid, "/", hello.nonce);
  out->items.push_back(std::move(item));
  spdlog::debug("shim socket: pid {} (uid {}) runs job {} rank {} in {} mode", peer_.pid, peer_.uid,
                job_, rank_, std::string(ShimModeName(mode_)));
}

JournalItem LostReportsItem(pid_t pid, const std::string& numbers_key, uint64_t missing,
                            uint64_t through, absl::string_view how) {
  JournalItem item =
      GapItem({{std::string(kLostReportKind), missing}},
              absl::StrCat(missing, " dataset-open report(s) of pid ", pid, " ", how));
  item.mark_key = numbers_key;
  item.mark_value = through;
  return item;
}

JournalItem ShimSession::ReportGap(uint64_t missing, uint64_t through,
                                   absl::string_view how) const {
  return LostReportsItem(peer_.pid, numbers_key_, missing, through, how);
}

bool ShimSession::JournalHelloGap(const ShimHello& hello, uint64_t missing, ShimOutput* out) {
  if (missing == 0) return true;
  JournalItem gap = ReportGap(missing, *hello.report_seq,
                              "never reached the journal: reprod stopped before journaling them, "
                              "or the process could not deliver them");
  Journal* journal = context_->parts().journal;
  if (hello.mode != ShimMode::kEnforce || journal == nullptr) {
    out->items.push_back(std::move(gap));  // ahead of everything else this process reports
    return true;
  }
  std::vector<JournalItem> items;
  items.push_back(std::move(gap));
  absl::Status appended = journal->Append(hello.job, std::move(items)).status();
  if (!appended.ok()) {
    spdlog::warn("shim socket: cannot journal the gap of pid {} in job {}: {}", peer_.pid,
                 hello.job, appended.ToString());
  }
  return appended.ok();
}

v1::ProcessStart ShimSession::ProcessStartOf(const ShimHello& hello, const std::string& exe) const {
  v1::ProcessStart start;
  start.set_pid(peer_.pid);
  start.set_uid(peer_.uid);
  start.set_gid(peer_.gid);
  start.set_rank(rank_);
  start.set_rank_seed(rank_seed_);
  start.set_mode(std::string(ShimModeName(mode_)));
  start.set_parent_pid(static_cast<int32_t>(hello.parent_pid));
  if (!hello.launcher.empty()) *start.mutable_launcher() = LauncherIdentityOf(hello.launcher);
  // The kernel's word over the process's: a claim is journaled as text only when the kernel
  // names no file (deleted), and it is never hashed (FinishExeHash).
  start.set_exe(JournalText(exe.empty() ? hello.exe : exe));
  for (const std::string& arg : hello.argv) start.add_argv(JournalText(arg));
  return start;
}

ExeToHash ShimSession::ExecutableToHash() const {
  ExeToHash exe = ExecutableOf(peer_.pid);
  Authorizer* auth = context_->parts().auth;
  if (!exe.path.empty() &&
      (exe.path[0] != '/' ||
       (auth != nullptr && !auth->MayHash("ShimHello", peer_.identity(), exe.path)))) {
    exe.refused = "the process may not read its executable";
  }
  return exe;
}

void FinishExeHash(const ExeToHash& exe, const absl::StatusOr<HashedFile>& hashed,
                   std::vector<JournalItem>* items) {
  if (exe.item >= items->size() || !(*items)[exe.item].entry.has_process_start()) return;
  v1::ProcessStart* start = (*items)[exe.item].entry.mutable_process_start();
  std::string why;
  if (exe.path.empty()) {
    why = "the kernel names no executable file (deleted, or the process is gone)";
  } else if (!exe.refused.empty()) {
    why = exe.refused;
  } else if (!hashed.ok()) {
    // e.g. "/x is too large to hash (N bytes; the limit is M)"
    why = std::string(hashed.status().message());
  } else if (hashed->stat.device != exe.device || hashed->stat.inode != exe.inode) {
    why = "the file at its path is no longer the one the process executed";
  } else {
    start->set_exe_sha256(hashed->sha256);
    return;
  }
  start->set_exe_not_hashed(JournalText(absl::StrCat("not hashed: ", why)));
}

void ShimSession::HandleOpen(const ShimRequest& request, ShimOutput* out) {
  context_->opens()->Increment();
  if (job_.empty()) {
    out->rejections.emplace_back(ShimReject::kNoHello, "OPEN before an accepted HELLO");
    if (request.request_id != 0) {
      out->replies.push_back(
          EncodeShimError(request.request_id, "no accepted HELLO on this connection"));
    }
    return;
  }
  const ShimOpen& open = request.open;
  counted_ = false;
  ReportNumbers::Seen seen;
  if (open.report_seq.has_value() && context_->parts().numbers != nullptr) {
    seen = context_->parts().numbers->Report(job_, numbers_key_, *open.report_seq);
  }
  const size_t first_item = out->items.size();
  if (mode_ == ShimMode::kEnforce && request.request_id == 0 && !open.refused_by_shim() &&
      !open.write()) {
    context_->local_verdicts()->Increment();
  }
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
                     PinnedVersionOf(*pin_, open.dataset));
  } else {
    check = context_->parts().checker->Check(*pin_, open.dataset, open.opened_path);
  }
  const bool refused =
      open.refused_by_shim() || (mode_ == ShimMode::kEnforce && check.verdict != v1::VERDICT_MATCH);
  context_->CountVerdict(check.verdict);
  const std::string pinned_version = PinnedVersionOf(*pin_, open.dataset);
  // A waiting shim does not also wait for the journal's commit: its verdict goes out first.
  if (request.request_id != 0) {
    out->replies.push_back(EncodeShimVerdict(request.request_id, check.verdict, !refused,
                                             refused ? check.detail : ""));
  }
  if (!refused && !open.write() && open.view_use == 0) {  // the process reads this file
    out->items.push_back(DataOpenItem(open, check, rank_, peer_.pid, pinned_version));
  }
  if (check.verdict != v1::VERDICT_MATCH) {
    out->items.push_back(ViolationItem(open, check, rank_, peer_.pid, pinned_version, refused));
  }
  if (open.report_seq.has_value() && seen.fresh && out->items.size() > first_item) {
    JournalItem& last = out->items.back();  // durable with the report's entries, or not at all
    last.mark_key = numbers_key_;
    last.mark_value = seen.below;
  }
}

void ShimSession::HandleLoaded(ShimRequest& request, ShimOutput* out) {
  if (job_.empty()) {
    out->rejections.emplace_back(ShimReject::kNoHello, "LOADED before an accepted HELLO");
    return;
  }
  ReportNumbers* numbers = context_->parts().numbers;
  if (request.reports_made.has_value() && numbers != nullptr) {
    absl::StatusOr<uint64_t> missing = numbers->Missing(job_, numbers_key_, *request.reports_made);
    if (missing.ok() && *missing > 0) {
      out->items.push_back(ReportGap(*missing, *request.reports_made,
                                     "never arrived: the process dropped them (its backlog was "
                                     "full while reprod was away) or its connection lost them"));
    }
    if (missing.ok()) {
      numbers->Accept(job_, numbers_key_, *request.reports_made);
      counted_ = true;
    }
  }
  const ShimLoaded& loaded = request.loaded;
  if (loaded.libraries.empty() && loaded.package_dirs.empty() && loaded.libc_version.empty()) {
    return;  // only the count of reports
  }
  if (context_->parts().loaded == nullptr) return;
  context_->parts().loaded->Record(
      {.job = job_, .pid = peer_.pid, .uid = peer_.uid, .gid = peer_.gid, .groups = peer_.groups,
       .rank = rank_},
      std::move(request.loaded));
}

}  // namespace repro
