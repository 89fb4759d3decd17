#include "client/cli/provenance.h"

#include "client/cli/entry_text.h"
#include "common/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace repro::cli {
namespace {

bool Before(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return std::make_pair(a.seconds(), a.nanos()) < std::make_pair(b.seconds(), b.nanos());
}

}  // namespace

bool ProvenanceBuilder::Position::LaterThan(const Position& other) const {
  if (node == other.node) return seq > other.seq;
  if (Before(other.time, time)) return true;
  if (Before(time, other.time)) return false;
  return node > other.node;
}

ProvenanceBuilder::ProvenanceBuilder(std::string job) : job_(std::move(job)) {}

void ProvenanceBuilder::SetPin(const v1::Pin& pin) { pin_ = pin; }

void ProvenanceBuilder::SetVerified(const v1::VerifyJournalResponse& verified) {
  verified_ = true;
  intact_ = verified.intact();
  for (const v1::NodeJournalCheck& node : verified.nodes()) {
    intact_ = intact_ && node.intact();
    if (!node.has_head()) continue;
    v1::ProvenanceHead& head = heads_[node.node()];
    head.set_node(node.node());
    head.set_seq(node.head().seq());
    head.set_hash(HexDigest(node.head().hash()));
    head.set_signature(HexDigest(node.head().signature()));
    head.set_public_key(HexDigest(node.head().public_key()));
    head.set_intact(node.intact());
  }
}

void ProvenanceBuilder::Add(const v1::JournalEntry& entry, absl::string_view hash) {
  auto head = heads_.find(entry.node());
  bool signed_head = head != heads_.end() && !head->second.signature().empty();
  if (signed_head && entry.seq() > head->second.seq()) return;  // after the verified head
  if (!signed_head) {
    v1::ProvenanceHead& h = heads_[entry.node()];
    if (h.node().empty() || entry.seq() > h.seq()) {
      h.set_node(entry.node());
      h.set_seq(entry.seq());
      h.set_hash(HexDigest(hash));
    }
  }

  ++entries_;
  if (!first_time_ || Before(entry.time(), *first_time_)) first_time_ = entry.time();
  if (!last_time_ || Before(*last_time_, entry.time())) last_time_ = entry.time();
  const Position position{entry.time(), entry.node(), entry.seq()};

  switch (entry.kind_case()) {
    case v1::JournalEntry::kPinApplied:
      if (!pin_.has_value()) pin_ = entry.pin_applied().pin();
      break;
    case v1::JournalEntry::kVersionRegistered: {
      const v1::VersionInfo& v = entry.version_registered().version();
      versions_[{v.dataset(), v.version()}] = v;
      break;
    }
    case v1::JournalEntry::kRecord:
      for (const v1::Fact& fact : entry.record().facts()) {
        auto it = facts_.find(fact.key());
        if (it == facts_.end() || position.LaterThan(it->second.position)) {
          facts_[fact.key()] = {position, fact.value()};
        }
      }
      break;
    case v1::JournalEntry::kProcessStart:
      AddProcess(entry.process_start(), entry.node());
      break;
    case v1::JournalEntry::kDataOpen:
      AddOpen(entry.data_open());
      break;
    case v1::JournalEntry::kViolation:
      AddViolation(entry.violation());
      break;
    case v1::JournalEntry::kLibraries:
      AddLibraries(entry.libraries());
      break;
    case v1::JournalEntry::kHost: {
      auto it = hosts_.find(entry.node());
      if (it == hosts_.end() || position.LaterThan(it->second.position)) {
        Latest<v1::HostFacts>& host = hosts_[entry.node()] = {position, entry.host()};
        if (host.value.node().empty()) host.value.set_node(entry.node());
      }
      break;
    }
    case v1::JournalEntry::kPythonPackages:
      for (const v1::PythonPackage& p : entry.python_packages().packages()) {
        packages_.emplace(p.name(), p.version(), p.location());
      }
      break;
    case v1::JournalEntry::kGap:
      for (const v1::GapCount& lost : entry.gap().lost()) {
        gaps_[{entry.node(), lost.kind()}] += lost.count();
      }
      break;
    case v1::JournalEntry::KIND_NOT_SET:  // newer than this reproctl: counted only
      break;
  }
}

void ProvenanceBuilder::AddProcess(const v1::ProcessStart& process, const std::string& node) {
  rank_seeds_.emplace(process.rank(), process.rank_seed());
  if (!process.exe().empty()) programs_.emplace(process.exe(), HexDigest(process.exe_sha256()));
  if (process.launcher().ByteSizeLong() == 0) return;  // not started by a known launcher
  std::string identity;
  google::protobuf::io::StringOutputStream stream(&identity);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  process.launcher().SerializeToCodedStream(&coded);
  coded.Trim();
  auto [it, added] = launches_.try_emplace({identity, process.rank()});
  v1::ProvenanceLaunch& launch = it->second;
  if (added) {
    *launch.mutable_launcher() = process.launcher();
    launch.set_rank(process.rank());
    launch.set_node(node);
  }
  launch.set_processes(launch.processes() + 1);
}

void ProvenanceBuilder::AddOpen(const v1::DataOpen& open) {
  const std::string& path =
      open.relative_path().empty() ? open.opened_path() : open.relative_path();
  std::string sha256 = HexDigest(open.sha256());
  auto [it, added] = files_.try_emplace({open.dataset(), path, open.version(), sha256});
  if (!added) return;
  v1::ProvenanceFile& file = it->second;
  file.set_dataset(open.dataset());
  file.set_version(open.version());
  file.set_path(path);
  file.set_sha256(std::move(sha256));
  file.set_size(open.size());
  file.set_verdict(VerdictName(open.verdict()));
}

void ProvenanceBuilder::AddViolation(const v1::Violation& violation) {
  std::string verdict = VerdictName(violation.verdict());
  auto [it, added] = violations_.try_emplace({violation.path(), verdict, violation.dataset(),
                                              violation.pinned_version(), violation.refused()});
  if (!added) return;
  v1::ProvenanceViolation& v = it->second;
  v.set_verdict(std::move(verdict));
  v.set_path(violation.path());
  v.set_dataset(violation.dataset());
  v.set_pinned_version(violation.pinned_version());
  v.set_detail(violation.detail());
  v.set_refused(violation.refused());
}

void ProvenanceBuilder::AddLibraries(const v1::LibrariesLoaded& loaded) {
  for (const v1::Library& library : loaded.libraries()) {
    libraries_.try_emplace({LibraryName(library), library.version(), HexDigest(library.sha256())},
                           library.path());
  }
}

v1::Provenance ProvenanceBuilder::Build() const {
  v1::Provenance out;
  out.set_format(kProvenanceFormat);
  out.set_job(job_);
  bool every_head_signed = true;
  for (const auto& [node, head] : heads_) {
    every_head_signed = every_head_signed && !head.signature().empty();
    *out.add_heads() = head;
  }
  out.set_journal_intact(verified_ && intact_ && every_head_signed);
  for (const auto& [where, count] : gaps_) {
    v1::ProvenanceGap* gap = out.add_gaps();
    gap->set_node(where.first);
    gap->set_kind(where.second);
    gap->set_count(count);
    out.set_incomplete(true);
  }
  out.set_entries(entries_);
  if (first_time_) *out.mutable_first_entry_at() = *first_time_;
  if (last_time_) *out.mutable_last_entry_at() = *last_time_;

  if (pin_.has_value()) {
    v1::ProvenancePin* pin = out.mutable_pin();
    for (const v1::PinnedVersion& v : pin_->versions()) {
      v1::ProvenanceVersion* version = pin->add_versions();
      version->set_dataset(v.dataset());
      version->set_version(v.version());
      version->set_digest(HexDigest(v.digest()));
      version->set_path(v.path());
      auto info = versions_.find({v.dataset(), v.version()});
      if (info != versions_.end()) {
        version->set_file_count(info->second.file_count());
        version->set_total_bytes(info->second.total_bytes());
      }
    }
    pin->set_seed(pin_->seed());
    pin->set_seed_derived(pin_->seed_derived());
    pin->set_like_job(pin_->like_job());
    *pin->mutable_created_at() = pin_->created_at();
    pin->set_created_on(pin_->created_on());
  }
  for (const auto& [rank, seed] : rank_seeds_) {
    v1::ProvenanceRankSeed* s = out.add_rank_seeds();
    s->set_rank(rank);
    s->set_seed(seed);
  }
  for (const auto& [key, file] : files_) *out.add_files() = file;
  for (const auto& [key, violation] : violations_) *out.add_violations() = violation;
  for (const auto& [exe, sha256] : programs_) {
    v1::ProvenanceProgram* program = out.add_programs();
    program->set_exe(exe);
    program->set_sha256(sha256);
  }
  for (const auto& [key, path] : libraries_) {
    v1::ProvenanceLibrary* library = out.add_libraries();
    library->set_name(std::get<0>(key));
    library->set_version(std::get<1>(key));
    library->set_sha256(std::get<2>(key));
    library->set_path(path);
  }
  for (const auto& [name, version, location] : packages_) {
    v1::PythonPackage* package = out.add_python_packages();
    package->set_name(name);
    package->set_version(version);
    package->set_location(location);
  }
  for (const auto& [node, host] : hosts_) *out.add_hosts() = host.value;
  for (const auto& [key, launch] : launches_) *out.add_launches() = launch;
  for (const auto& [key, fact] : facts_) {
    v1::Fact* f = out.add_facts();
    f->set_key(key);
    f->set_value(fact.value);
  }
  return out;
}

}  // namespace repro::cli
