// The provenance of a job — what it used: data versions with digests, seeds, files with hashes,
// programs, libraries, Python packages, hosts and GPUs, custom facts — summarized from its pin and
// its journal entries on every node. `reproctl export` prints it; `reproctl diff` compares two
// (job_diff.h). The format is documented in proto/repro/v1/provenance.proto and README.md.
//
//   ProvenanceBuilder builder("train-42");
//   builder.SetPin(get_pin_response.pin());
//   for (const v1::ReplayResponse& r : replayed) builder.Add(r.entry(), r.hash());
//   v1::Provenance provenance = builder.Build();
//
// Every journal entry kind is summarized; entries of a kind newer than this reproctl are counted
// and otherwise ignored. Repeated observations (the same file, library or package reported by
// many processes and nodes) collapse into one item per distinct content.
#ifndef REPRO_CLIENT_CLI_PROVENANCE_H_
#define REPRO_CLIENT_CLI_PROVENANCE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/string_view.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/provenance.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro::cli {

inline constexpr char kProvenanceFormat[] = "repro.provenance.v1";

// Not thread-safe.
class ProvenanceBuilder {
 public:
  explicit ProvenanceBuilder(std::string job);

  // The job's pin (GetPin). Without it, the pin of the first pin_applied entry is used.
  void SetPin(const v1::Pin& pin);

  // The signed heads of every node (VerifyJournal). Call before Add: entries beyond a node's
  // verified head, and entries of nodes without one, are then left out, so the provenance covers
  // exactly what the heads sign even while the job keeps appending.
  void SetVerified(const v1::VerifyJournalResponse& verified);

  // Adds one journal entry and the chain hash stored with it. Nodes' entries may interleave.
  void Add(const v1::JournalEntry& entry, absl::string_view hash);

  // The provenance of everything added, items sorted as provenance.proto says. exported_at is
  // left for the caller.
  v1::Provenance Build() const;

 private:
  // Where an entry stands in the job's history: seq orders one node's entries, time orders
  // entries of different nodes.
  struct Position {
    google::protobuf::Timestamp time;
    std::string node;
    uint64_t seq = 0;
    bool LaterThan(const Position& other) const;
  };
  template <typename T>
  struct Latest {
    Position position;
    T value;
  };

  void AddPin(const v1::Pin& pin);
  void AddOpen(const v1::DataOpen& open);
  void AddViolation(const v1::Violation& violation);
  void AddLibraries(const v1::LibrariesLoaded& loaded);
  void AddProcess(const v1::ProcessStart& process, const std::string& node);

  const std::string job_;
  std::optional<v1::Pin> pin_;
  bool verified_ = false;
  bool intact_ = true;
  std::map<std::string, v1::ProvenanceHead> heads_;  // by node
  uint64_t entries_ = 0;
  std::optional<google::protobuf::Timestamp> first_time_;
  std::optional<google::protobuf::Timestamp> last_time_;
  std::map<std::pair<std::string, std::string>, v1::VersionInfo> versions_;  // dataset, version
  std::set<std::pair<int64_t, uint64_t>> rank_seeds_;
  std::set<std::pair<std::string, std::string>> programs_;  // exe, sha256
  // dataset, path, version, sha256 -> the first open of that content.
  std::map<std::tuple<std::string, std::string, std::string, std::string>, v1::ProvenanceFile>
      files_;
  // path, verdict, dataset, pinned version, refused -> the first such violation.
  std::map<std::tuple<std::string, std::string, std::string, std::string, bool>,
           v1::ProvenanceViolation>
      violations_;
  // name, version, sha256 -> the first path it was loaded from.
  std::map<std::tuple<std::string, std::string, std::string>, std::string> libraries_;
  std::set<std::tuple<std::string, std::string, std::string>> packages_;  // name, version, location
  std::map<std::string, Latest<v1::HostFacts>> hosts_;                    // by node
  std::map<std::string, Latest<std::string>> facts_;                      // by key
  // launcher identity (deterministic bytes), rank -> that attempt of that rank.
  std::map<std::pair<std::string, int64_t>, v1::ProvenanceLaunch> launches_;
  std::map<std::pair<std::string, std::string>, uint64_t> gaps_;          // node, kind -> lost
};

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_PROVENANCE_H_
