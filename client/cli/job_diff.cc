#include "client/cli/job_diff.h"

#include <initializer_list>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace repro::cli {
namespace {

// What a group compares: KEY -> VALUE text.
using Values = std::map<std::string, std::string>;

constexpr absl::string_view kChanged = "changed";
constexpr absl::string_view kAdded = "added";
constexpr absl::string_view kRemoved = "removed";

// KEY -> each distinct value seen -> how many times.
class Tally {
 public:
  void Add(const std::string& key, std::string value) { ++seen_[key][std::move(value)]; }

  // Each key's distinct values, sorted and joined with ", "; with `unit` (say "node"), each is
  // followed by how often it was seen when there is more than one: "6.1.0 (2 nodes), 6.2.0 (1
  // node)".
  Values Render(absl::string_view unit = "") const {
    Values out;
    for (const auto& [key, values] : seen_) {
      std::vector<std::string> parts;
      for (const auto& [value, count] : values) {
        if (values.size() == 1 || unit.empty()) {
          parts.push_back(value);
        } else {
          parts.push_back(absl::StrCat(value, " (", count, " ", unit, count == 1 ? "" : "s", ")"));
        }
      }
      out[key] = absl::StrJoin(parts, ", ");
    }
    return out;
  }

 private:
  std::map<std::string, std::map<std::string, int>> seen_;
};

std::string OrDash(absl::string_view s) { return s.empty() ? "-" : std::string(s); }

// "a b" of the parts that are not empty; "-" when all are.
std::string Joined(std::initializer_list<absl::string_view> parts) {
  std::vector<absl::string_view> set;
  for (absl::string_view part : parts) {
    if (!part.empty()) set.push_back(part);
  }
  return set.empty() ? "-" : absl::StrJoin(set, " ");
}

Values Merge(Values a, const Values& b) {
  a.insert(b.begin(), b.end());
  return a;
}

Values DataValues(const v1::Provenance& p) {
  Values out;
  for (const v1::ProvenanceVersion& v : p.pin().versions()) {
    out[v.dataset()] = Joined({v.version(), v.digest()});
  }
  return out;
}

Values FileValues(const v1::Provenance& p) {
  Tally tally;
  for (const v1::ProvenanceFile& f : p.files()) {
    tally.Add(absl::StrCat(f.dataset(), "/", f.path()), OrDash(f.sha256()));
  }
  for (const v1::ProvenanceViolation& v : p.violations()) {
    tally.Add(absl::StrCat(v.path(), " (", v.verdict(), ")"), v.refused() ? "refused" : "allowed");
  }
  return tally.Render();
}

Values SeedValues(const v1::Provenance& p) {
  Values out;
  if (p.has_pin()) out["seed"] = absl::StrCat(p.pin().seed());
  Tally ranks;
  for (const v1::ProvenanceRankSeed& s : p.rank_seeds()) {
    ranks.Add(absl::StrCat("rank ", s.rank()), absl::StrCat(s.seed()));
  }
  return Merge(std::move(out), ranks.Render());
}

Values ProgramValues(const v1::Provenance& p) {
  Tally tally;
  for (const v1::ProvenanceProgram& program : p.programs()) {
    tally.Add(program.exe(), OrDash(program.sha256()));
  }
  return tally.Render();
}

Values LibraryValues(const v1::Provenance& p) {
  Tally tally;
  for (const v1::ProvenanceLibrary& library : p.libraries()) {
    tally.Add(library.name(), Joined({library.version(), library.sha256()}));
  }
  return tally.Render();
}

Values PackageValues(const v1::Provenance& p) {
  Tally tally;
  for (const v1::PythonPackage& package : p.python_packages()) {
    tally.Add(NormalizePackageName(package.name()), OrDash(package.version()));
  }
  return tally.Render();
}

Values GpuValues(const v1::Provenance& p) {
  if (p.hosts().empty()) return {};
  std::map<std::string, int> models;
  Tally tally;
  for (const v1::HostFacts& host : p.hosts()) {
    for (const v1::Gpu& gpu : host.gpus()) ++models[OrDash(gpu.name())];
    if (!host.driver_version().empty()) tally.Add("driver", host.driver_version());
    if (!host.cuda_driver_version().empty()) tally.Add("cuda", host.cuda_driver_version());
  }
  std::vector<std::string> gpus;
  for (const auto& [model, count] : models) gpus.push_back(absl::StrCat(count, "x ", model));
  Values out = tally.Render("node");
  out["gpus"] = gpus.empty() ? "none" : absl::StrJoin(gpus, ", ");
  return out;
}

Values HostValues(const v1::Provenance& p) {
  if (p.hosts().empty()) return {};
  Tally tally;
  for (const v1::HostFacts& host : p.hosts()) {
    tally.Add("cpu_model", OrDash(host.cpu_model()));
    tally.Add("cpu_count", absl::StrCat(host.cpu_count()));
    tally.Add("kernel", OrDash(host.kernel_release()));
    tally.Add("os", OrDash(host.os_release()));
    tally.Add("glibc", OrDash(host.glibc_version()));
  }
  Values out = tally.Render("node");
  out["nodes"] = absl::StrCat(p.hosts_size());
  return out;
}

Values FactValues(const v1::Provenance& p) {
  Values out;
  for (const v1::Fact& fact : p.facts()) out[fact.key()] = fact.value();
  return out;
}

// Per rank, each attempt its processes were launched as: torchrun's run id and restart count,
// the world size, the Slurm job.step, the Pod. An elastic restart adds an attempt.
Values LaunchValues(const v1::Provenance& p) {
  Tally tally;
  for (const v1::ProvenanceLaunch& launch : p.launches()) {
    const v1::LauncherIdentity& l = launch.launcher();
    std::string restart =
        l.torchelastic_restart_count().empty() ? "" : "restart=" + l.torchelastic_restart_count();
    std::string run = l.torchelastic_run_id().empty() ? "" : "run=" + l.torchelastic_run_id();
    std::string world = l.world_size().empty() ? "" : "world=" + l.world_size();
    std::string slurm = l.slurm_job_id().empty()
                            ? ""
                            : absl::StrCat("slurm=", l.slurm_job_id(), ".", OrDash(l.slurm_step_id()));
    std::string pod = l.pod_name().empty() ? "" : absl::StrCat("pod=", l.pod_namespace(), "/", l.pod_name());
    tally.Add(absl::StrCat("rank ", launch.rank()), Joined({run, restart, world, slurm, pod}));
  }
  return tally.Render();
}

struct Group {
  absl::string_view name;
  Values (*values)(const v1::Provenance&);
};

constexpr Group kGroups[] = {
    {"data", DataValues},        {"files", FileValues},        {"seeds", SeedValues},
    {"programs", ProgramValues}, {"libraries", LibraryValues}, {"python_packages", PackageValues},
    {"gpu", GpuValues},          {"host", HostValues},         {"facts", FactValues},
    {"launches", LaunchValues},
};

v1::Difference MakeDifference(const std::string& key, absl::string_view change,
                              const std::string& a, const std::string& b) {
  v1::Difference d;
  d.set_key(key);
  d.set_change(std::string(change));
  d.set_a(a);
  d.set_b(b);
  return d;
}

// The differences between two KEY -> VALUE maps, by key.
std::vector<v1::Difference> DiffValues(const Values& a, const Values& b) {
  std::vector<v1::Difference> out;
  auto i = a.begin();
  auto j = b.begin();
  while (i != a.end() || j != b.end()) {
    if (j == b.end() || (i != a.end() && i->first < j->first)) {
      out.push_back(MakeDifference(i->first, kRemoved, i->second, ""));
      ++i;
    } else if (i == a.end() || j->first < i->first) {
      out.push_back(MakeDifference(j->first, kAdded, "", j->second));
      ++j;
    } else {
      if (i->second != j->second) {
        out.push_back(MakeDifference(i->first, kChanged, i->second, j->second));
      }
      ++i;
      ++j;
    }
  }
  return out;
}

Values ManifestValues(const v1::Manifest& manifest) {
  Values out;
  for (const v1::FileEntry& file : manifest.files()) out[file.path()] = HexDigest(file.sha256());
  return out;
}

const v1::ProvenanceVersion* PinnedVersion(const v1::Provenance& p, absl::string_view dataset) {
  for (const v1::ProvenanceVersion& v : p.pin().versions()) {
    if (v.dataset() == dataset) return &v;
  }
  return nullptr;
}

// The manifest of `v`, or nullopt when it is no longer registered.
absl::StatusOr<std::optional<v1::Manifest>> FetchManifest(ManifestFetcher fetch,
                                                          const v1::ProvenanceVersion& v) {
  absl::StatusOr<v1::Manifest> manifest = fetch(v.dataset(), v.version());
  if (absl::IsNotFound(manifest.status())) return std::nullopt;
  RETURN_IF_ERROR(manifest.status());
  return std::optional<v1::Manifest>(*std::move(manifest));
}

}  // namespace

const std::vector<std::string>& DiffGroupNames() {
  static const std::vector<std::string>* const kNames = [] {
    auto* names = new std::vector<std::string>;
    for (const Group& group : kGroups) names->emplace_back(group.name);
    return names;
  }();
  return *kNames;
}

v1::JobDiff DiffJobs(const v1::Provenance& a, const v1::Provenance& b) {
  v1::JobDiff diff;
  diff.set_job_a(a.job());
  diff.set_job_b(b.job());
  bool same = true;
  for (const Group& group : kGroups) {
    v1::DiffGroup* out = diff.add_groups();
    out->set_name(std::string(group.name));
    for (v1::Difference& d : DiffValues(group.values(a), group.values(b))) {
      *out->add_differences() = std::move(d);
    }
    same = same && out->differences().empty();
  }
  diff.set_same(same);
  return diff;
}

std::vector<v1::Difference> DiffManifests(const v1::Manifest& a, const v1::Manifest& b) {
  return DiffValues(ManifestValues(a), ManifestValues(b));
}

absl::Status AddDataDetails(const v1::Provenance& a, const v1::Provenance& b, ManifestFetcher fetch,
                            v1::JobDiff* diff) {
  for (v1::DiffGroup& group : *diff->mutable_groups()) {
    if (group.name() != "data") continue;
    for (v1::Difference& d : *group.mutable_differences()) {
      if (d.change() != kChanged) continue;
      const v1::ProvenanceVersion* va = PinnedVersion(a, d.key());
      const v1::ProvenanceVersion* vb = PinnedVersion(b, d.key());
      if (va == nullptr || vb == nullptr || va->digest() == vb->digest()) continue;
      ASSIGN_OR_RETURN(std::optional<v1::Manifest> ma, FetchManifest(fetch, *va));
      ASSIGN_OR_RETURN(std::optional<v1::Manifest> mb, FetchManifest(fetch, *vb));
      if (!ma.has_value() || !mb.has_value()) continue;
      std::vector<v1::Difference> files = DiffManifests(*ma, *mb);
      for (size_t i = 0; i < files.size() && i < kMaxDetails; ++i) {
        *d.add_details() = std::move(files[i]);
      }
      d.set_more_details(files.size() > kMaxDetails ? files.size() - kMaxDetails : 0);
    }
  }
  return absl::OkStatus();
}

}  // namespace repro::cli
