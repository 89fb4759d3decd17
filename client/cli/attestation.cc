#include "client/cli/attestation.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/sha256.h"
#include "google/protobuf/util/time_util.h"

namespace repro::cli {
namespace {

using json = nlohmann::ordered_json;
using google::protobuf::util::TimeUtil;

constexpr char kProducer[] = "https://repro.dev/reproctl";
constexpr char kRunEventSchema[] = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
constexpr char kVersionFacetSchema[] =
    "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
    "#/$defs/DatasetVersionDatasetFacet";
constexpr char kReproFacetSchema[] = "https://repro.dev/spec/facets/ReproDatasetFacet.json";

// RFC 3339 in UTC; null when unset (optional fields are then left out by the callers).
json Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return nullptr;
  return TimeUtil::ToString(t);
}

// Adds `key: value` to `object` unless value is null or an empty string, array or object.
void Put(json& object, const char* key, json value) {
  if (value.is_null() || ((value.is_string() || value.is_array() || value.is_object()) &&
                          value.empty())) {
    return;
  }
  object[key] = std::move(value);
}

json Sha256Digest(const std::string& hex) { return json{{"sha256", hex}}; }

// The files the user named; without any, the statement is about the job's journal: one subject
// per node head (a statement must have at least one subject).
json Subjects(const v1::Provenance& p, const StatementOptions& options) {
  json out = json::array();
  for (const Subject& s : options.subjects) {
    out.push_back({{"name", s.name}, {"digest", Sha256Digest(HexDigest(s.sha256))}});
  }
  if (!out.empty()) return out;
  for (const v1::ProvenanceHead& head : p.heads()) {
    out.push_back({{"name", absl::StrCat("repro-journal/", head.node(), "/", p.job())},
                   {"digest", Sha256Digest(head.hash())}});
  }
  return out;
}

// The URI of the node that journaled (and, when signed, attests to) the run.
std::string NodeUri(absl::string_view node) { return absl::StrCat("https://repro.dev/node/", node); }

std::string RunStart(const v1::Provenance& p) {
  json t = Time(p.first_entry_at());
  return t.is_null() ? TimeUtil::ToString(p.exported_at()) : t.get<std::string>();
}

std::string RunEnd(const v1::Provenance& p) {
  json t = Time(p.last_entry_at());
  return t.is_null() ? TimeUtil::ToString(p.exported_at()) : t.get<std::string>();
}

json LaunchJson(const v1::ProvenanceLaunch& launch) {
  const v1::LauncherIdentity& l = launch.launcher();
  json out = {{"rank", launch.rank()}, {"processes", launch.processes()}, {"node", launch.node()}};
  Put(out, "torchelasticRunId", l.torchelastic_run_id());
  Put(out, "torchelasticRestartCount", l.torchelastic_restart_count());
  Put(out, "localRank", l.local_rank());
  Put(out, "worldSize", l.world_size());
  Put(out, "groupRank", l.group_rank());
  Put(out, "slurmJobId", l.slurm_job_id());
  Put(out, "slurmStepId", l.slurm_step_id());
  Put(out, "podName", l.pod_name());
  Put(out, "podNamespace", l.pod_namespace());
  Put(out, "podUid", l.pod_uid());
  return out;
}

json ExternalParameters(const v1::Provenance& p) {
  json versions = json::array();
  for (const v1::ProvenanceVersion& v : p.pin().versions()) {
    versions.push_back({{"dataset", v.dataset()}, {"version", v.version()},
                        {"digest", Sha256Digest(v.digest())}});
  }
  json out = {{"job", p.job()}, {"pinnedVersions", versions},
              {"seed", absl::StrCat(p.pin().seed())}, {"seedDerived", p.pin().seed_derived()}};
  Put(out, "likeJob", p.pin().like_job());
  return out;
}

json InternalParameters(const v1::Provenance& p) {
  json ranks = json::array();
  for (const v1::ProvenanceRankSeed& s : p.rank_seeds()) {
    ranks.push_back({{"rank", s.rank()}, {"seed", absl::StrCat(s.seed())}});
  }
  json hosts = json::array();
  for (const v1::HostFacts& h : p.hosts()) {
    json gpus = json::array();
    for (const v1::Gpu& g : h.gpus()) {
      gpus.push_back({{"index", g.index()}, {"name", g.name()}, {"uuid", g.uuid()}});
    }
    json host = {{"node", h.node()}, {"gpus", gpus}};
    Put(host, "driverVersion", h.driver_version());
    Put(host, "cudaDriverVersion", h.cuda_driver_version());
    Put(host, "kernelRelease", h.kernel_release());
    Put(host, "glibcVersion", h.glibc_version());
    hosts.push_back(std::move(host));
  }
  json launches = json::array();
  for (const v1::ProvenanceLaunch& launch : p.launches()) launches.push_back(LaunchJson(launch));
  json facts = json::object();
  for (const v1::Fact& f : p.facts()) facts[f.key()] = f.value();
  json out = {{"ranks", ranks}, {"hosts", hosts}};
  Put(out, "launches", launches);
  Put(out, "facts", facts);
  return out;
}

// Each pinned version (by manifest digest), program, library and Python package.
json ResolvedDependencies(const v1::Provenance& p) {
  json out = json::array();
  for (const v1::ProvenanceVersion& v : p.pin().versions()) {
    json d = {{"uri", absl::StrCat("repro:", v.dataset(), "@", v.version())},
              {"digest", Sha256Digest(v.digest())},
              {"name", absl::StrCat(v.dataset(), "@", v.version())},
              {"annotations", {{"kind", "data-version-manifest"}, {"path", v.path()},
                               {"fileCount", v.file_count()}, {"totalBytes", v.total_bytes()}}}};
    out.push_back(std::move(d));
  }
  for (const v1::ProvenanceProgram& program : p.programs()) {
    json d = {{"uri", absl::StrCat("file://", program.exe())}};
    if (!program.sha256().empty()) d["digest"] = Sha256Digest(program.sha256());
    d["annotations"] = {{"kind", "program"}};
    out.push_back(std::move(d));
  }
  for (const v1::ProvenanceLibrary& library : p.libraries()) {
    json d = {{"uri", absl::StrCat("file://", library.path())}};
    if (!library.sha256().empty()) d["digest"] = Sha256Digest(library.sha256());
    d["name"] = library.name();
    d["annotations"] = {{"kind", "shared-library"}, {"version", library.version()}};
    out.push_back(std::move(d));
  }
  for (const v1::PythonPackage& package : p.python_packages()) {
    // The journal holds a package's name, version and location, not a hash of its files.
    json d = {{"uri", absl::StrCat("pkg:pypi/", package.name(), "@", package.version())},
              {"name", package.name()},
              {"annotations", {{"kind", "python-package"}, {"version", package.version()},
                               {"location", package.location()}}}};
    out.push_back(std::move(d));
  }
  return out;
}

// Each node's signed tree head of its head log (when the export embedded one), with the journal
// head's place in it: {"name": "repro-tree-head/<node>", "digest": {"sha256": root},
// "annotations": {size, time, signature, publicKey, leafIndex, inclusion}}. `reproctl verify
// --against` checks the same evidence in the repro document.
json TreeHeadByproducts(const v1::Provenance& p) {
  json out = json::array();
  for (const v1::ProvenanceHead& head : p.heads()) {
    if (!head.has_tree_head()) continue;
    const v1::ProvenanceTreeHead& tree = head.tree_head();
    json annotations = {{"node", head.node()},
                        {"size", tree.size()},
                        {"timeUnixNanos", tree.time_unix_nanos()},
                        {"leafIndex", head.leaf_index()},
                        {"inclusion", json(std::vector<std::string>(head.inclusion().begin(),
                                                                    head.inclusion().end()))}};
    Put(annotations, "signature", tree.signature());
    Put(annotations, "publicKey", tree.public_key());
    out.push_back({{"name", absl::StrCat("repro-tree-head/", head.node())},
                   {"digest", Sha256Digest(tree.root())},
                   {"annotations", std::move(annotations)}});
  }
  return out;
}

json SubjectCheckByproduct(const StatementOptions& options) {
  return {{"name", "repro-subjects-check"},
          {"uri", NodeUri(options.subjects_checked_on)},
          {"annotations",
           {{"checkedBy", options.subjects_checked_on},
            {"checkedAt", options.subjects_checked_at},
            {"meaning",
             "the node re-hashed every subject file when it signed; that the job wrote them is "
             "the exporter's claim (the journal records reads, not writes)"}}}};
}

}  // namespace

absl::StatusOr<ExportFormat> ParseExportFormat(absl::string_view text) {
  if (text == "repro") return ExportFormat::kRepro;
  if (text == "in-toto") return ExportFormat::kInToto;
  if (text == "runtime-trace") return ExportFormat::kRuntimeTrace;
  if (text == "openlineage") return ExportFormat::kOpenLineage;
  return absl::InvalidArgumentError(absl::StrCat(
      "--format must be repro, in-toto, runtime-trace or openlineage, not \"", text, "\""));
}

bool IsStatement(ExportFormat format) {
  return format == ExportFormat::kInToto || format == ExportFormat::kRuntimeTrace;
}

json JournalByproducts(const v1::Provenance& p) {
  json out = json::array();
  for (const v1::ProvenanceHead& head : p.heads()) {
    json annotations = {{"node", head.node()}, {"seq", head.seq()}, {"intact", head.intact()}};
    Put(annotations, "signature", head.signature());
    Put(annotations, "publicKey", head.public_key());
    out.push_back({{"name", absl::StrCat("repro-journal-head/", head.node())},
                   {"digest", Sha256Digest(head.hash())},
                   {"annotations", std::move(annotations)}});
  }
  for (json& tree_head : TreeHeadByproducts(p)) out.push_back(std::move(tree_head));
  return out;
}

json InTotoStatement(const v1::Provenance& p, const StatementOptions& options) {
  json build_definition = {{"buildType", kBuildType},
                           {"externalParameters", ExternalParameters(p)},
                           {"internalParameters", InternalParameters(p)},
                           {"resolvedDependencies", ResolvedDependencies(p)}};
  json byproducts = JournalByproducts(p);
  if (!options.subjects_checked_on.empty()) byproducts.push_back(SubjectCheckByproduct(options));
  std::string builder = p.heads().empty() ? "https://repro.dev/reprod" : NodeUri(p.heads(0).node());
  json run_details = {
      {"builder", {{"id", builder}}},
      {"metadata",
       {{"invocationId", p.job()}, {"startedOn", RunStart(p)}, {"finishedOn", RunEnd(p)}}},
      {"byproducts", byproducts}};
  return {{"_type", kStatementType},
          {"subject", Subjects(p, options)},
          {"predicateType", kSlsaProvenanceType},
          {"predicate", {{"buildDefinition", build_definition}, {"runDetails", run_details}}}};
}

json RuntimeTraceStatement(const v1::Provenance& p, const StatementOptions& options) {
  json files = json::array();
  for (const v1::ProvenanceFile& f : p.files()) {
    json d = {{"uri", absl::StrCat("repro:", f.dataset(), "@", f.version(), "/", f.path())}};
    if (!f.sha256().empty()) d["digest"] = Sha256Digest(f.sha256());
    d["name"] = f.path();
    d["annotations"] = {{"dataset", f.dataset()}, {"version", f.version()},
                        {"size", f.size()}, {"verdict", f.verdict()}};
    files.push_back(std::move(d));
  }
  json processes = json::array();
  for (const v1::ProvenanceProgram& program : p.programs()) {
    processes.push_back({{"processBinary", program.exe()}, {"sha256", program.sha256()}});
  }
  for (const v1::ProvenanceLaunch& launch : p.launches()) processes.push_back(LaunchJson(launch));
  json monitor_log = {{"fileAccess", files}};
  Put(monitor_log, "process", processes);
  std::string host = p.heads().empty() ? "https://repro.dev/reprod" : NodeUri(p.heads(0).node());
  json predicate = {
      {"monitor", {{"type", "https://repro.dev/libreproshim/v1"}}},
      {"monitoredProcess", {{"hostID", host}, {"type", kBuildType}, {"event", p.job()}}},
      {"monitorLog", monitor_log},
      {"metadata", {{"buildStartedOn", RunStart(p)}, {"buildFinishedOn", RunEnd(p)}}}};
  return {{"_type", kStatementType},
          {"subject", Subjects(p, options)},
          {"predicateType", kRuntimeTraceType},
          {"predicate", std::move(predicate)}};
}

std::vector<json> OpenLineageEvents(const v1::Provenance& p) {
  // A stable run id per job: a version-8 (custom) UUID from SHA-256 of the job name.
  std::string h = Sha256Of(std::string("repro.openlineage.run") + '\0' + p.job());
  h[6] = static_cast<char>((h[6] & 0x0f) | 0x80);
  h[8] = static_cast<char>((h[8] & 0x3f) | 0x80);
  std::string hex = HexDigest(h.substr(0, 16));
  std::string run_id = absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-",
                                    hex.substr(12, 4), "-", hex.substr(16, 4), "-", hex.substr(20));
  json inputs = json::array();
  for (const v1::ProvenanceVersion& v : p.pin().versions()) {
    json version_facet = {{"_producer", kProducer}, {"_schemaURL", kVersionFacetSchema},
                          {"datasetVersion", v.version()}};
    json repro_facet = {{"_producer", kProducer}, {"_schemaURL", kReproFacetSchema},
                        {"digest", absl::StrCat("sha256:", v.digest())}, {"path", v.path()},
                        {"fileCount", v.file_count()}};
    inputs.push_back({{"namespace", "repro"},
                      {"name", v.dataset()},
                      {"facets", {{"version", version_facet}, {"repro", repro_facet}}}});
  }
  std::vector<json> events;
  for (const auto& [type, time] : {std::pair<const char*, std::string>{"START", RunStart(p)},
                                   {"COMPLETE", RunEnd(p)}}) {
    events.push_back({{"eventType", type},
                      {"eventTime", time},
                      {"run", {{"runId", run_id}, {"facets", json::object()}}},
                      {"job", {{"namespace", "repro"}, {"name", p.job()}, {"facets", json::object()}}},
                      {"inputs", inputs},
                      {"outputs", json::array()},
                      {"producer", kProducer},
                      {"schemaURL", kRunEventSchema}});
  }
  return events;
}

}  // namespace repro::cli
