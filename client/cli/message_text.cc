#include "client/cli/message_text.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/entry_text.h"
#include "client/cli/format.h"

namespace repro::cli {
namespace {

std::string Ref(absl::string_view dataset, absl::string_view version) {
  return absl::StrCat(dataset, "@", version);
}

std::string Plural(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// "2025-01-08T10:00:00Z on node-a", or just the time / node when one is missing.
std::string WhenWhere(const google::protobuf::Timestamp& time, absl::string_view node) {
  std::string when = FormatTime(time);
  if (node.empty()) return when;
  return absl::StrCat(when, " on ", node);
}

std::string OrDash(absl::string_view s) { return s.empty() ? "-" : std::string(s); }

}  // namespace

std::string FormatRegisterResult(const v1::RegisterResult& result) {
  const v1::VersionInfo& v = result.version();
  KeyValueBlock block;
  block.Add("version", Ref(v.dataset(), v.version()));
  block.Add("status", result.created() ? "created" : "already registered (same content)");
  block.Add("digest", FullDigest(v.digest()));
  block.Add("path", OrDash(v.path()));
  block.Add("files", absl::StrCat(v.file_count(), " (", FormatBytes(v.total_bytes()), ")"));
  block.Add("hashed", absl::StrCat(Plural(result.files_hashed(), "file", "files"), ", ",
                                   FormatBytes(result.bytes_hashed()), " in ",
                                   FormatSeconds(result.seconds()), "; ", result.files_cached(),
                                   " from cache"));
  return block.Render();
}

std::string FormatVersion(const v1::VersionInfo& v) {
  KeyValueBlock block;
  block.Add("version", Ref(v.dataset(), v.version()));
  block.Add("digest", FullDigest(v.digest()));
  block.Add("path", OrDash(v.path()));
  block.Add("root", OrDash(v.root()));
  block.Add("files", absl::StrCat(v.file_count()));
  block.Add("size", absl::StrCat(FormatBytes(v.total_bytes()), " (", v.total_bytes(), " bytes)"));
  block.Add("registered", WhenWhere(v.registered_at(), v.registered_on()));
  return block.Render();
}

std::string FormatManifest(const v1::Manifest& manifest) {
  Table table({"SHA256", "SIZE", "PATH"});
  table.AlignRight(1);
  for (const v1::FileEntry& file : manifest.files()) {
    table.AddRow({FullDigest(file.sha256()), FormatBytes(file.size()), file.path()});
  }
  return table.Render();
}

std::string FormatVersionList(const v1::ListVersionsResponse& response) {
  if (response.versions().empty()) return "no versions registered\n";
  Table table({"DATASET", "VERSION", "DIGEST", "FILES", "SIZE", "REGISTERED"});
  table.AlignRight(3);
  table.AlignRight(4);
  for (const v1::VersionInfo& v : response.versions()) {
    table.AddRow({v.dataset(), v.version(), ShortDigest(v.digest()), absl::StrCat(v.file_count()),
                  FormatBytes(v.total_bytes()), FormatTime(v.registered_at())});
  }
  return table.Render();
}

std::string FormatPin(const v1::Pin& pin) {
  KeyValueBlock block;
  block.Add("job", pin.job());
  block.Add("seed", absl::StrCat(pin.seed(), pin.seed_derived() ? " (derived)" : ""));
  if (!pin.like_job().empty()) block.Add("like", pin.like_job());
  block.Add("created", WhenWhere(pin.created_at(), pin.created_on()));
  std::string out = block.Render();
  if (pin.versions().empty()) return absl::StrCat(out, "\nno data versions\n");
  Table table({"DATASET", "VERSION", "DIGEST", "PATH"});
  for (const v1::PinnedVersion& v : pin.versions()) {
    table.AddRow({v.dataset(), v.version(), FullDigest(v.digest()), OrDash(v.path())});
  }
  return absl::StrCat(out, "\n", table.Render());
}

std::string FormatPinResponse(const v1::PinResponse& response) {
  return absl::StrCat(response.created() ? "pinned" : "already pinned (same pin, nothing changed)",
                      "\n", FormatPin(response.pin()));
}

std::string FormatPinList(const v1::ListPinsResponse& response) {
  if (response.pins().empty()) return "no pins\n";
  Table table({"JOB", "SEED", "VERSIONS", "CREATED"});
  table.AlignRight(1);
  for (const v1::Pin& pin : response.pins()) {
    std::vector<std::string> refs;
    for (const v1::PinnedVersion& v : pin.versions()) refs.push_back(Ref(v.dataset(), v.version()));
    table.AddRow({pin.job(), absl::StrCat(pin.seed()), OrDash(absl::StrJoin(refs, ",")),
                  FormatTime(pin.created_at())});
  }
  return table.Render();
}

std::string FormatAdmit(absl::string_view job, const v1::AdmitResponse& response) {
  return absl::StrCat(response.admitted() ? "admitted " : "refused ", job, "\n");
}

std::string AdmitRefusal(absl::string_view job, const v1::AdmitResponse& response) {
  return absl::StrCat(
      "job ", job, " would not be admitted: ",
      response.reason().empty() ? "reprod gave no reason" : OneLine(response.reason()));
}

std::string FormatRecord(absl::string_view job, int facts, const v1::RecordResponse& response) {
  return absl::StrCat("recorded ", Plural(facts, "fact", "facts"), " for ", job, " at seq ",
                      response.seq(), "\n");
}

bool VerifyPassed(const v1::VerifyJournalResponse& response) {
  if (!response.intact() || !response.drift().empty()) return false;
  for (const v1::NodeJournalCheck& node : response.nodes()) {
    if (!node.intact()) return false;
  }
  return true;
}

std::string FormatVerify(absl::string_view job, const v1::VerifyJournalResponse& response) {
  bool intact = response.intact();
  for (const v1::NodeJournalCheck& node : response.nodes()) intact = intact && node.intact();
  std::vector<std::string> verdict;
  if (!intact) verdict.push_back("TAMPERED");
  if (!response.drift().empty()) verdict.push_back("DRIFTED");
  KeyValueBlock block;
  block.Add("job", std::string(job));
  block.Add("result", verdict.empty() ? "ok" : absl::StrJoin(verdict, ", "));
  block.Add("journal", intact ? "intact" : "broken");
  if (response.checked_by_client()) {
    std::string trust = response.nodes().empty() ? "" : response.nodes(0).key_trust();
    block.Add("checked", absl::StrCat("by reproctl: chains recomputed, signatures checked against ",
                                      trust.empty() ? "the node keys" : "the keys " + trust));
  }
  if (response.incomplete()) {
    std::vector<std::string> lost;
    for (const v1::NodeJournalCheck& node : response.nodes()) {
      for (const v1::GapCount& g : node.lost()) {
        lost.push_back(absl::StrCat(node.node(), ": ", g.count(), " ", g.kind()));
      }
    }
    block.Add("record", absl::StrCat("INCOMPLETE (gap entries: ", absl::StrJoin(lost, ", "),
                                     " could not be journaled)"));
  }
  if (response.rehashed()) {
    block.Add(
        "data",
        absl::StrCat(Plural(response.files_rehashed(), "file", "files"), " re-hashed, ",
                     response.drift().empty() ? "no drift"
                                              : Plural(response.drift_size(), "drift", "drifts")));
  } else {
    block.Add("data", "not re-hashed (use --rehash)");
  }
  std::string out = block.Render();

  Table nodes({"NODE", "INTACT", "ENTRIES", "HEAD", "PROBLEM"});
  nodes.AlignRight(2);
  for (const v1::NodeJournalCheck& node : response.nodes()) {
    std::string problem = OneLine(node.problem());
    if (node.first_broken_seq() != 0) {
      problem =
          absl::StrCat("at seq ", node.first_broken_seq(), problem.empty() ? "" : ": ", problem);
    }
    std::string head = node.has_head()
                           ? absl::StrCat(node.head().seq(), " ", ShortDigest(node.head().hash()))
                           : "-";
    nodes.AddRow({OrDash(node.node()), node.intact() ? "yes" : "no", absl::StrCat(node.entries()),
                  head, OrDash(problem)});
  }
  if (nodes.rows() > 0) absl::StrAppend(&out, "\n", nodes.Render());

  if (!response.drift().empty()) {
    Table drift({"DATASET", "VERSION", "PATH", "PROBLEM"});
    for (const v1::Drift& d : response.drift()) {
      drift.AddRow({d.dataset(), d.version(), QuoteIfNeeded(d.path()), OneLine(d.problem())});
    }
    absl::StrAppend(&out, "\n", drift.Render());
  }
  return out;
}

std::string FormatNodeInfo(const v1::NodeInfo& node) {
  KeyValueBlock block;
  block.Add("node", OrDash(node.node()));
  block.Add("mode", OrDash(node.mode()));
  if (!node.etcd_endpoints().empty()) block.Add("etcd", absl::StrJoin(node.etcd_endpoints(), ","));
  if (!node.cluster_status().empty()) block.Add("cluster", node.cluster_status());
  block.Add("version", OrDash(node.version()));
  block.Add("data_dir", OrDash(node.data_dir()));
  block.Add("public_key", FullDigest(node.public_key()));
  block.Add("started", FormatTime(node.started_at()));
  block.Add("versions", absl::StrCat(node.versions()));
  block.Add("pins", absl::StrCat(node.pins()));
  if (node.has_host()) {
    const v1::HostFacts& h = node.host();
    block.Add("host", OrDash(h.hostname()));
    block.Add("os", OrDash(h.os_release()));
    block.Add("kernel", OrDash(h.kernel_release()));
    block.Add("cpu", absl::StrCat(OrDash(h.cpu_model()), " (", h.cpu_count(), " cpus)"));
    block.Add("memory", FormatBytes(h.memory_bytes()));
    block.Add("glibc", OrDash(h.glibc_version()));
    if (h.gpus().empty()) block.Add("gpus", "none");
    for (const v1::Gpu& gpu : h.gpus()) {
      block.Add(absl::StrCat("gpu", gpu.index()),
                absl::StrCat(OrDash(gpu.name()), " ", FormatBytes(gpu.memory_bytes()), " ",
                             OrDash(gpu.uuid())));
    }
    if (!h.driver_version().empty()) {
      block.Add("driver",
                absl::StrCat(h.driver_version(), " (CUDA ", OrDash(h.cuda_driver_version()),
                             ", from ", OrDash(h.gpu_source()), ")"));
    }
  }
  return block.Render();
}

}  // namespace repro::cli
