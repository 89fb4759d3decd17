// Synthetic journal entries for reproctl's provenance and diff tests: one maker per entry kind,
// stamped with node, seq and time, so a test writes a job's journal in a few lines.
//
//   JournalFixture journal("job-1");
//   journal.Add("node-a", Host("node-a", "NVIDIA H100"));
//   journal.Add("node-a", Open("users", "v1", "a.csv", "aa"));
//   v1::Provenance p = journal.Provenance();
#ifndef REPRO_TESTS_CLIENT_CLI_JOURNAL_FIXTURES_H_
#define REPRO_TESTS_CLIENT_CLI_JOURNAL_FIXTURES_H_

#include <map>
#include <string>
#include <vector>

#include "client/cli/provenance.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/provenance.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro::cli {

// A 32-byte digest made of `c` repeated ("aa" in hex is 0xaa...).
std::string Digest(char c);

v1::Pin MakePin(const std::string& job, const std::map<std::string, std::string>& versions,
                uint64_t seed);
v1::JournalEntry PinApplied(const v1::Pin& pin);
v1::JournalEntry Registered(const std::string& dataset, const std::string& version, uint64_t files,
                            char digest);
v1::JournalEntry Facts(const std::map<std::string, std::string>& facts);
v1::JournalEntry Process(int64_t rank, uint64_t rank_seed, const std::string& exe, char sha);
v1::JournalEntry Open(const std::string& dataset, const std::string& version,
                      const std::string& path, char sha, int64_t rank = 0);
v1::JournalEntry Violation(const std::string& path, v1::Verdict verdict, bool refused);
// Libraries as {path, soname, version, sha char}; an empty soname leaves it unset.
struct LibrarySpec {
  std::string path;
  std::string soname;
  std::string version;
  char sha;
};
v1::JournalEntry Libraries(const std::vector<LibrarySpec>& libraries, int32_t pid = 100);
v1::JournalEntry Packages(const std::vector<std::pair<std::string, std::string>>& packages,
                          const std::string& location = "/usr/lib/python3/dist-packages");
// Host facts of a Debian 12 machine with `gpus` GPUs named `gpu` (none when empty).
v1::JournalEntry Host(const std::string& hostname, const std::string& gpu, int gpus = 1);

// A job's journal on any number of nodes, in the order entries are added.
class JournalFixture {
 public:
  explicit JournalFixture(std::string job) : job_(std::move(job)) {}

  // Appends `entry` to `node`'s journal (next seq, a time one second after the previous entry
  // of the job) and returns it as stored (valid until the next Add).
  v1::JournalEntry& Add(const std::string& node, v1::JournalEntry entry);
  const std::vector<v1::JournalEntry>& entries() const { return entries_; }

  // The chain hash the fixture gives entry `seq` of `node`.
  static std::string HashOf(const std::string& node, uint64_t seq);

  // Every entry fed to a ProvenanceBuilder with `pin` set (when it has a job).
  v1::Provenance Provenance(const v1::Pin& pin = v1::Pin()) const;

 private:
  std::string job_;
  std::map<std::string, uint64_t> seqs_;
  int64_t clock_ = 1736330400;  // 2025-01-08T10:00:00Z
  std::vector<v1::JournalEntry> entries_;
};

}  // namespace repro::cli

#endif  // REPRO_TESTS_CLIENT_CLI_JOURNAL_FIXTURES_H_
