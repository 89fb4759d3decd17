#include "client/cli/entry_text.h"

#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "client/cli/format.h"

namespace repro::cli {
namespace {

// Lists at most this many items of a long list (libraries, packages) before "+N more".
constexpr int kListedItems = 5;
// Longer argv summaries are cut to this many characters.
constexpr size_t kMaxArgvChars = 160;
// Width of the kind column: the longest kind name, "version_registered".
constexpr int kKindWidth = 18;

// Builds "key=value key=value ..." with values quoted where needed.
class Summary {
 public:
  // Appends a bare word ("refused", "user_ctr@v1").
  Summary& Word(absl::string_view word) {
    if (!word.empty()) parts_.push_back(QuoteIfNeeded(word));
    return *this;
  }
  Summary& Raw(std::string text) {
    parts_.push_back(std::move(text));
    return *this;
  }
  template <typename T>
  Summary& Field(absl::string_view key, const T& value) {
    parts_.push_back(absl::StrCat(key, "=", value));
    return *this;
  }
  Summary& Text(absl::string_view key, absl::string_view value) {
    parts_.push_back(absl::StrCat(key, "=", QuoteIfNeeded(value)));
    return *this;
  }
  // Adds `key=value` only when `value` is not empty.
  Summary& TextIfSet(absl::string_view key, absl::string_view value) {
    return value.empty() ? *this : Text(key, value);
  }
  std::string str() const { return absl::StrJoin(parts_, " "); }

 private:
  std::vector<std::string> parts_;
};

std::string Ref(absl::string_view dataset, absl::string_view version) {
  return QuoteIfNeeded(absl::StrCat(dataset, "@", version));
}

// Appends the first kListedItems of `items` (already quoted where needed) and "+N more".
void AddList(Summary& summary, const std::vector<std::string>& items) {
  for (size_t i = 0; i < items.size() && i < kListedItems; ++i) summary.Raw(items[i]);
  if (items.size() > kListedItems)
    summary.Raw(absl::StrCat("+", items.size() - kListedItems, " more"));
}

std::string SummarizePin(const v1::Pin& pin) {
  Summary s;
  for (const v1::PinnedVersion& v : pin.versions()) s.Raw(Ref(v.dataset(), v.version()));
  s.Field("seed", pin.seed());
  if (pin.seed_derived()) s.Raw("derived");
  s.TextIfSet("like", pin.like_job());
  return s.str();
}

std::string SummarizeProcess(const v1::ProcessStart& p) {
  Summary s;
  s.Field("pid", p.pid()).Field("rank", p.rank()).Field("rank_seed", p.rank_seed());
  s.TextIfSet("mode", p.mode());
  if (p.parent_pid() != 0) s.Field("parent_pid", p.parent_pid());
  const v1::LauncherIdentity& l = p.launcher();
  s.TextIfSet("torchelastic_run_id", l.torchelastic_run_id());
  s.TextIfSet("restart", l.torchelastic_restart_count());
  s.TextIfSet("local_rank", l.local_rank());
  s.TextIfSet("world_size", l.world_size());
  s.TextIfSet("group_rank", l.group_rank());
  s.TextIfSet("slurm_job", l.slurm_job_id());
  s.TextIfSet("slurm_step", l.slurm_step_id());
  s.TextIfSet("pod", l.pod_name().empty() ? "" : absl::StrCat(l.pod_namespace(), "/", l.pod_name()));
  s.TextIfSet("pod_uid", l.pod_uid());
  s.TextIfSet("exe", p.exe());
  std::string argv = absl::StrJoin(p.argv(), " ");
  if (argv.size() > kMaxArgvChars) argv = absl::StrCat(argv.substr(0, kMaxArgvChars), "...");
  s.TextIfSet("argv", argv);
  return s.str();
}

std::string SummarizeOpen(const v1::DataOpen& o) {
  Summary s;
  s.Word(VerdictName(o.verdict())).Raw(Ref(o.dataset(), o.version()));
  s.Word(o.relative_path().empty() ? o.opened_path() : o.relative_path());
  s.Field("rank", o.rank()).Field("pid", o.pid()).Field("size", FormatBytes(o.size(), ""));
  if (!o.sha256().empty()) s.Field("sha256", ShortDigest(o.sha256()));
  if (o.redirected()) s.Text("from", o.requested_path());
  return s.str();
}

std::string SummarizeViolation(const v1::Violation& v) {
  Summary s;
  s.Word(VerdictName(v.verdict())).Word(v.refused() ? "refused" : "allowed");
  s.Text("path", v.path())
      .TextIfSet("dataset", v.dataset())
      .TextIfSet("pinned", v.pinned_version());
  s.Field("rank", v.rank()).Field("pid", v.pid()).TextIfSet("detail", v.detail());
  return s.str();
}

std::string SummarizeLibraries(const v1::LibrariesLoaded& l) {
  Summary s;
  s.Field("pid", l.pid()).Field("rank", l.rank()).Field("count", l.libraries_size());
  std::vector<std::string> names;
  for (const v1::Library& lib : l.libraries()) {
    std::string name = LibraryName(lib);
    names.push_back(lib.version().empty()
                        ? QuoteIfNeeded(name)
                        : absl::StrCat(QuoteIfNeeded(name), "@", QuoteIfNeeded(lib.version())));
  }
  AddList(s, names);
  return s.str();
}

std::string SummarizePackages(const v1::PythonPackages& p) {
  Summary s;
  s.Field("pid", p.pid()).Field("rank", p.rank()).Field("count", p.packages_size());
  std::vector<std::string> names;
  for (const v1::PythonPackage& package : p.packages()) {
    names.push_back(
        absl::StrCat(QuoteIfNeeded(package.name()), "==", QuoteIfNeeded(package.version())));
  }
  AddList(s, names);
  return s.str();
}

}  // namespace

std::string VerdictName(v1::Verdict verdict) {
  absl::string_view name = v1::Verdict_Name(verdict);
  if (name.empty()) return absl::StrCat("verdict_", static_cast<int>(verdict));
  absl::ConsumePrefix(&name, "VERDICT_");
  return absl::AsciiStrToLower(name);
}

std::string LibraryName(const v1::Library& library) {
  if (!library.soname().empty()) return library.soname();
  absl::string_view path = library.path();
  return std::string(path.substr(path.rfind('/') + 1));  // npos + 1 == 0
}

std::string SummarizeHost(const v1::HostFacts& h) {
  Summary s;
  s.TextIfSet("hostname", h.hostname());
  // Most nodes have N of one GPU model: "8x NVIDIA H100 80GB HBM3".
  std::map<std::string, int> models;
  for (const v1::Gpu& gpu : h.gpus()) ++models[gpu.name()];
  std::vector<std::string> gpus;
  for (const auto& [name, count] : models) gpus.push_back(absl::StrCat(count, "x ", name));
  s.Text("gpus", gpus.empty() ? "none" : absl::StrJoin(gpus, ", "));
  s.TextIfSet("driver", h.driver_version()).TextIfSet("cuda", h.cuda_driver_version());
  s.TextIfSet("kernel", h.kernel_release()).TextIfSet("glibc", h.glibc_version());
  if (h.cpu_count() != 0) s.Field("cpus", h.cpu_count());
  if (h.memory_bytes() != 0) s.Field("memory", FormatBytes(h.memory_bytes(), ""));
  return s.str();
}

std::string EntryKindName(const v1::JournalEntry& entry) {
  const google::protobuf::OneofDescriptor* kind =
      v1::JournalEntry::descriptor()->FindOneofByName("kind");
  const google::protobuf::FieldDescriptor* field =
      kind == nullptr ? nullptr : entry.GetReflection()->GetOneofFieldDescriptor(entry, kind);
  return field == nullptr ? "unknown" : field->name();
}

std::string SummarizeEntry(const v1::JournalEntry& entry) {
  switch (entry.kind_case()) {
    case v1::JournalEntry::kPinApplied:
      return SummarizePin(entry.pin_applied().pin());
    case v1::JournalEntry::kVersionRegistered: {
      const v1::VersionInfo& v = entry.version_registered().version();
      return Summary()
          .Raw(Ref(v.dataset(), v.version()))
          .Field("digest", ShortDigest(v.digest()))
          .Field("files", v.file_count())
          .Field("size", FormatBytes(v.total_bytes(), ""))
          .str();
    }
    case v1::JournalEntry::kRecord: {
      Summary s;
      for (const v1::Fact& fact : entry.record().facts()) {
        s.Raw(absl::StrCat(QuoteIfNeeded(fact.key()), "=", QuoteIfNeeded(fact.value())));
      }
      return s.str();
    }
    case v1::JournalEntry::kProcessStart:
      return SummarizeProcess(entry.process_start());
    case v1::JournalEntry::kDataOpen:
      return SummarizeOpen(entry.data_open());
    case v1::JournalEntry::kViolation:
      return SummarizeViolation(entry.violation());
    case v1::JournalEntry::kLibraries:
      return SummarizeLibraries(entry.libraries());
    case v1::JournalEntry::kHost:
      return SummarizeHost(entry.host());
    case v1::JournalEntry::kPythonPackages:
      return SummarizePackages(entry.python_packages());
    case v1::JournalEntry::kGap: {
      Summary s;
      for (const v1::GapCount& lost : entry.gap().lost()) s.Field(lost.kind(), lost.count());
      return s.Field("reason", entry.gap().reason()).str();
    }
    case v1::JournalEntry::KIND_NOT_SET:
      break;
  }
  return "(an entry kind this reproctl does not know; see --output json)";
}

std::string FormatJournalLine(const v1::JournalEntry& entry) {
  std::string line =
      absl::StrFormat("%6d  %-24s  %-*s  %s", entry.seq(), FormatTime(entry.time(), true),
                      kKindWidth, EntryKindName(entry), SummarizeEntry(entry));
  line.erase(line.find_last_not_of(' ') + 1);
  return line;
}

}  // namespace repro::cli
