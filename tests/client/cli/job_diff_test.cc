// DiffJobs on pairs of synthetic runs that differ in exactly one thing, its manifest details, and
// the text of the report.
#include "client/cli/job_diff.h"

#include <functional>

#include "absl/strings/str_cat.h"
#include "client/cli/diff_text.h"
#include "common/names.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli/journal_fixtures.h"

namespace repro::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

std::string HexOf(char c) { return HexDigest(Digest(c)); }

// What a run is made of, so that a test changes one thing.
struct RunSpec {
  std::string job = "job";
  std::map<std::string, std::string> versions = {{"users", "v1"}};
  uint64_t seed = 42;
  std::vector<std::string> nodes = {"node-a"};
  std::string gpu = "NVIDIA H100 80GB HBM3";
  std::function<void(v1::JournalEntry&)> edit_host = [](v1::JournalEntry&) {};
  char part0 = 'a';
  std::string exe = "/usr/bin/python3.11";
  LibrarySpec libc = {"/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6", "2.36", 'l'};
  std::vector<std::pair<std::string, std::string>> packages = {{"numpy", "1.24.2"}};
  std::map<std::string, std::string> facts = {{"git/commit", "abc"}, {"lr", "0.01"}};
  bool violation = false;

  v1::Provenance Provenance() const {
    JournalFixture journal(job);
    v1::Pin pin = MakePin(job, versions, seed);
    int rank = 0;
    for (const std::string& node : nodes) {
      journal.Add(node, PinApplied(pin));
      v1::JournalEntry& host = journal.Add(node, Host("host-" + node, gpu, 8));
      edit_host(host);
      journal.Add(node, Process(rank, 1000 + seed + rank, exe, 'e'));
      journal.Add(node, Libraries({libc}));
      journal.Add(node, Packages(packages));
      journal.Add(node, Open("users", versions.at("users"), "part-0.csv", part0, rank));
      journal.Add(node, Open("users", versions.at("users"), "part-1.csv", 'b', rank));
      ++rank;
    }
    if (violation) {
      journal.Add(nodes[0], Violation("/ml/users/v9/x.csv", v1::VERDICT_OTHER_VERSION, true));
    }
    journal.Add(nodes[0], Facts(facts));
    return journal.Provenance(pin);
  }
};

// "group: change key" for every difference.
std::vector<std::string> Changes(const v1::JobDiff& diff) {
  std::vector<std::string> out;
  for (const v1::DiffGroup& group : diff.groups()) {
    for (const v1::Difference& d : group.differences()) {
      out.push_back(absl::StrCat(group.name(), ": ", d.change(), " ", d.key()));
    }
  }
  return out;
}

const v1::Difference& Only(const v1::JobDiff& diff) {
  for (const v1::DiffGroup& group : diff.groups()) {
    if (!group.differences().empty()) return group.differences(0);
  }
  ADD_FAILURE() << "no difference";
  static const v1::Difference kNone;
  return kNone;
}

TEST(JobDiffTest, IdenticalRunsMatchInEveryGroup) {
  RunSpec a, b;
  b.job = "job-rerun";
  v1::JobDiff diff = DiffJobs(a.Provenance(), b.Provenance());
  EXPECT_TRUE(diff.same());
  EXPECT_EQ(diff.job_a(), "job");
  EXPECT_EQ(diff.job_b(), "job-rerun");
  std::vector<std::string> names;
  for (const v1::DiffGroup& group : diff.groups()) names.push_back(group.name());
  EXPECT_THAT(names, ElementsAre("data", "files", "seeds", "programs", "libraries",
                                 "python_packages", "gpu", "host", "facts", "launches"));
  EXPECT_EQ(names, DiffGroupNames());
  EXPECT_THAT(Changes(diff), IsEmpty());
}

TEST(JobDiffTest, EachDifferenceIsNamedAloneInItsGroup) {
  struct Case {
    std::string name;
    std::function<void(RunSpec&)> change;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"data version",
       [](RunSpec& r) { r.versions["users"] = "v2"; },
       // A file with the same content in another version is the same file.
       {"data: changed users"}},
      {"a dataset more", [](RunSpec& r) { r.versions["clicks"] = "v7"; }, {"data: added clicks"}},
      {"file content", [](RunSpec& r) { r.part0 = 'z'; }, {"files: changed users/part-0.csv"}},
      {"violation",
       [](RunSpec& r) { r.violation = true; },
       {"files: added /ml/users/v9/x.csv (other_version)"}},
      {"seed",
       [](RunSpec& r) { r.seed = 43; },
       // The rank seeds follow the job seed, as in reprod.
       {"seeds: changed rank 0", "seeds: changed seed"}},
      {"program",
       [](RunSpec& r) { r.exe = "/usr/bin/python3.12"; },
       {"programs: removed /usr/bin/python3.11", "programs: added /usr/bin/python3.12"}},
      {"library version",
       [](RunSpec& r) {
         r.libc = {"/lib/libc.so.6", "libc.so.6", "2.37", 'm'};
       },
       {"libraries: changed libc.so.6"}},
      {"package version",
       [](RunSpec& r) {
         r.packages = {{"numpy", "1.26.0"}};
       },
       {"python_packages: changed numpy"}},
      {"package imported",
       [](RunSpec& r) {
         r.packages.push_back({"pandas", "1.5.3"});
       },
       {"python_packages: added pandas"}},
      {"gpu model", [](RunSpec& r) { r.gpu = "NVIDIA A100-SXM4-80GB"; }, {"gpu: changed gpus"}},
      {"driver",
       [](RunSpec& r) {
         r.edit_host = [](v1::JournalEntry& e) { e.mutable_host()->set_driver_version("550.54"); };
       },
       {"gpu: changed driver"}},
      {"kernel",
       [](RunSpec& r) {
         r.edit_host = [](v1::JournalEntry& e) { e.mutable_host()->set_kernel_release("6.5"); };
       },
       {"host: changed kernel"}},
      {"fact", [](RunSpec& r) { r.facts["lr"] = "0.02"; }, {"facts: changed lr"}},
      {"fact added", [](RunSpec& r) { r.facts["batch"] = "64"; }, {"facts: added batch"}},
  };
  for (const Case& c : cases) {
    RunSpec a, b;
    c.change(b);
    EXPECT_THAT(Changes(DiffJobs(a.Provenance(), b.Provenance())), ElementsAreArray(c.expected))
        << c.name;
  }
}

TEST(JobDiffTest, ValuesAreReadable) {
  RunSpec a, b;
  b.versions["users"] = "v2";
  b.facts.erase("lr");
  v1::JobDiff diff = DiffJobs(a.Provenance(), b.Provenance());
  EXPECT_FALSE(diff.same());
  const v1::Difference& data = Only(diff);
  EXPECT_EQ(data.a(), "v1 " + HexOf('1'));
  EXPECT_EQ(data.b(), "v2 " + HexOf('2'));
  const v1::Difference& fact = diff.groups(8).differences(0);
  EXPECT_EQ(fact.change(), "removed");
  EXPECT_EQ(fact.key(), "lr");
  EXPECT_EQ(fact.a(), "0.01");
  EXPECT_EQ(fact.b(), "");
}

TEST(JobDiffTest, VolatileFactsAreNotCompared) {
  RunSpec a, b;
  b.nodes = {"node-z"};  // another node, hostname, GPU UUIDs; also other pids and times
  b.edit_host = [](v1::JournalEntry& e) {
    e.mutable_host()->set_memory_bytes(12345);
    e.mutable_host()->set_gpu_source("procfs");
    for (v1::Gpu& gpu : *e.mutable_host()->mutable_gpus()) gpu.set_pci_bus_id("0000:99:00.0");
  };
  b.libc.path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  b.packages = {{"NumPy", "1.24.2"}};  // the same distribution, spelled differently
  EXPECT_THAT(Changes(DiffJobs(a.Provenance(), b.Provenance())), IsEmpty());
}

TEST(JobDiffTest, JobsOnSeveralNodesAreComparedAsAWhole) {
  RunSpec a, b;
  a.nodes = {"node-a", "node-b"};
  b.nodes = {"node-c", "node-d"};
  EXPECT_THAT(Changes(DiffJobs(a.Provenance(), b.Provenance())), IsEmpty());

  // One node of B runs another kernel.
  b.edit_host = [](v1::JournalEntry& e) {
    if (e.node() == "node-d") e.mutable_host()->set_kernel_release("6.5.0");
  };
  v1::JobDiff diff = DiffJobs(a.Provenance(), b.Provenance());
  EXPECT_THAT(Changes(diff), ElementsAre("host: changed kernel"));
  EXPECT_EQ(Only(diff).a(), "6.1.0-18-amd64");
  EXPECT_EQ(Only(diff).b(), "6.1.0-18-amd64 (1 node), 6.5.0 (1 node)");

  // Three nodes instead of two: more GPUs and ranks, too.
  RunSpec c = a;
  c.nodes.push_back("node-e");
  EXPECT_THAT(Changes(DiffJobs(a.Provenance(), c.Provenance())),
              ElementsAre("seeds: added rank 2", "gpu: changed gpus", "host: changed nodes"));
  EXPECT_EQ(DiffJobs(a.Provenance(), c.Provenance()).groups(6).differences(0).b(),
            "24x NVIDIA H100 80GB HBM3");
}

v1::Manifest ManifestOf(const std::map<std::string, char>& files) {
  v1::Manifest m;
  for (const auto& [path, sha] : files) {
    v1::FileEntry* f = m.add_files();
    f->set_path(path);
    f->set_sha256(Digest(sha));
  }
  return m;
}

TEST(JobDiffTest, DataDetailsNameTheFilesThatDiffer) {
  RunSpec a, b;
  b.versions["users"] = "v2";
  v1::Provenance pa = a.Provenance(), pb = b.Provenance();
  v1::JobDiff diff = DiffJobs(pa, pb);
  std::map<std::string, v1::Manifest> manifests = {
      {"v1", ManifestOf({{"part-0.csv", 'a'}, {"part-1.csv", 'b'}, {"old.csv", 'o'}})},
      {"v2", ManifestOf({{"part-0.csv", 'a'}, {"part-1.csv", 'c'}, {"new.csv", 'n'}})},
  };
  std::vector<std::string> fetched;
  auto fetch = [&](const std::string& dataset,
                   const std::string& version) -> absl::StatusOr<v1::Manifest> {
    fetched.push_back(dataset + "@" + version);
    return manifests.at(version);
  };
  ASSERT_TRUE(AddDataDetails(pa, pb, fetch, &diff).ok());
  EXPECT_THAT(fetched, ElementsAre("users@v1", "users@v2"));
  const v1::Difference& users = Only(diff);
  std::vector<std::string> details;
  for (const v1::Difference& d : users.details()) details.push_back(d.change() + " " + d.key());
  EXPECT_THAT(details, ElementsAre("added new.csv", "removed old.csv", "changed part-1.csv"));
  EXPECT_EQ(users.details(2).a(), HexOf('b'));
  EXPECT_EQ(users.details(2).b(), HexOf('c'));
  EXPECT_EQ(users.more_details(), 0u);
}

TEST(JobDiffTest, DataDetailsAreCappedAndSkipUnregisteredVersions) {
  RunSpec a, b;
  b.versions["users"] = "v2";
  v1::Provenance pa = a.Provenance(), pb = b.Provenance();
  std::map<std::string, char> many;
  for (int i = 0; i < 25; ++i) many[absl::StrCat("f", 10 + i)] = 'x';
  v1::JobDiff diff = DiffJobs(pa, pb);
  auto fetch = [&](const std::string&, const std::string& v) -> absl::StatusOr<v1::Manifest> {
    return v == "v1" ? v1::Manifest() : ManifestOf(many);
  };
  ASSERT_TRUE(AddDataDetails(pa, pb, fetch, &diff).ok());
  EXPECT_EQ(Only(diff).details_size(), static_cast<int>(kMaxDetails));
  EXPECT_EQ(Only(diff).more_details(), 25 - kMaxDetails);

  diff = DiffJobs(pa, pb);
  auto gone = [](const std::string&, const std::string&) -> absl::StatusOr<v1::Manifest> {
    return absl::NotFoundError("no such version");
  };
  ASSERT_TRUE(AddDataDetails(pa, pb, gone, &diff).ok());
  EXPECT_EQ(Only(diff).details_size(), 0);
  auto down = [](const std::string&, const std::string&) -> absl::StatusOr<v1::Manifest> {
    return absl::UnavailableError("reprod went away");
  };
  EXPECT_EQ(AddDataDetails(pa, pb, down, &diff).code(), absl::StatusCode::kUnavailable);
}

TEST(JobDiffTest, SameVersionNameAndDigestNeedsNoDetails) {
  RunSpec a, b;
  b.seed = 7;
  v1::Provenance pa = a.Provenance(), pb = b.Provenance();
  v1::JobDiff diff = DiffJobs(pa, pb);
  auto fetch = [](const std::string&, const std::string&) -> absl::StatusOr<v1::Manifest> {
    ADD_FAILURE() << "no manifest is needed";
    return v1::Manifest();
  };
  EXPECT_TRUE(AddDataDetails(pa, pb, fetch, &diff).ok());
}

TEST(JobDiffTest, NormalizePackageName) {
  EXPECT_EQ(NormalizePackageName("Foo_Bar"), "foo-bar");
  EXPECT_EQ(NormalizePackageName("zope.interface"), "zope-interface");
  EXPECT_EQ(NormalizePackageName("a-_.b"), "a-b");
  EXPECT_EQ(NormalizePackageName("numpy"), "numpy");
}

TEST(DiffTextTest, ReportGroupsTheDifferences) {
  RunSpec a, b;
  a.job = "job-1";
  b.job = "job-2";
  b.versions["users"] = "v2";
  b.facts["lr"] = "0.02";
  b.facts["batch"] = "64";
  b.facts.erase("git/commit");
  v1::Provenance pa = a.Provenance(), pb = b.Provenance();
  v1::JobDiff diff = DiffJobs(pa, pb);
  auto fetch = [](const std::string&, const std::string& v) -> absl::StatusOr<v1::Manifest> {
    return ManifestOf({{"part-0.csv", v == "v1" ? 'a' : 'c'}});
  };
  ASSERT_TRUE(AddDataDetails(pa, pb, fetch, &diff).ok());
  EXPECT_EQ(FormatJobDiff(diff),
            "job-1 and job-2 differ (- only in job-1, + only in job-2, ~ job-1 -> job-2)\n"
            "\n"
            "data versions\n"
            "  ~ users: v1 313131313131 -> v2 323232323232\n"
            "      ~ part-0.csv: 616161616161 -> 636363636363\n"
            "\n"
            "custom facts\n"
            "  + batch: 64\n"
            "  - git/commit: abc\n"
            "  ~ lr: 0.01 -> 0.02\n");
}

TEST(DiffTextTest, MatchSaysWhatWasCompared) {
  RunSpec a;
  EXPECT_EQ(FormatJobDiff(DiffJobs(a.Provenance(), a.Provenance())),
            "job and job match (compared: data versions, files read, seeds, programs, libraries, "
            "python packages, gpu, host, custom facts, launches)\n");
}

TEST(DiffTextTest, ShortenDigests) {
  std::string hex(64, 'a');
  EXPECT_EQ(ShortenDigests("v1 " + hex), "v1 aaaaaaaaaaaa");
  EXPECT_EQ(ShortenDigests(hex + "," + hex), "aaaaaaaaaaaa,aaaaaaaaaaaa");
  EXPECT_EQ(ShortenDigests("x" + hex), "x" + hex);  // part of a longer word
  EXPECT_EQ(ShortenDigests(std::string(65, 'b')), std::string(65, 'b'));
  EXPECT_EQ(ShortenDigests("abc 0.01"), "abc 0.01");
}

}  // namespace
}  // namespace repro::cli
