// ProvenanceBuilder on synthetic journals holding every entry kind, on one node and several.
#include "client/cli/provenance.h"

#include "absl/strings/str_cat.h"
#include "client/cli/entry_text.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli/journal_fixtures.h"

namespace repro::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

std::string HexOf(char c) { return HexDigest(Digest(c)); }

// "key=value" of each fact, in order.
std::vector<std::string> FactList(const v1::Provenance& p) {
  std::vector<std::string> out;
  for (const v1::Fact& f : p.facts()) out.push_back(f.key() + "=" + f.value());
  return out;
}

TEST(ProvenanceTest, EveryEntryKindIsSummarized) {
  JournalFixture journal("job-1");
  v1::Pin pin = MakePin("job-1", {{"users", "v1"}, {"clicks", "v7"}}, 1234);
  pin.set_seed_derived(true);
  journal.Add("node-a", PinApplied(pin));
  journal.Add("node-a", Registered("users", "v1", 3, '1'));
  journal.Add("node-a", Host("host-a", "NVIDIA H100 80GB HBM3", 2));
  journal.Add("node-a", Process(0, 77, "/usr/bin/python3.11", 'e'));
  journal.Add("node-a", Open("users", "v1", "part-0.csv", 'a'));
  journal.Add("node-a", Open("users", "v1", "part-0.csv", 'a', /*rank=*/1));  // same file again
  journal.Add("node-a", Open("clicks", "v7", "c.bin", 'c'));
  journal.Add("node-a", Violation("/ml/users/v2/a.csv", v1::VERDICT_OTHER_VERSION, false));
  journal.Add("node-a", Violation("/ml/users/v2/a.csv", v1::VERDICT_OTHER_VERSION, false));
  journal.Add("node-a", Libraries({{"/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6", "2.36", 'l'},
                                   {"/opt/venv/libtorch_cuda.so", "", "", 't'}}));
  journal.Add("node-a", Libraries({{"/other/libc.so.6", "libc.so.6", "2.36", 'l'}}, 101));
  journal.Add("node-a", Packages({{"numpy", "1.24.2"}, {"torch", "2.1.0"}}));
  journal.Add("node-a", Packages({{"numpy", "1.24.2"}}));
  journal.Add("node-a", Facts({{"git/commit", "abc"}, {"lr", "0.1"}}));
  journal.Add("node-a", Facts({{"lr", "0.01"}}));
  journal.Add("node-a", v1::JournalEntry());  // a kind newer than this reproctl

  v1::Provenance p = journal.Provenance();  // the pin comes from pin_applied
  EXPECT_EQ(p.format(), "repro.provenance.v1");
  EXPECT_EQ(p.job(), "job-1");
  EXPECT_EQ(p.entries(), 16u);
  EXPECT_EQ(p.first_entry_at().seconds(), 1736330401);
  EXPECT_EQ(p.last_entry_at().seconds(), 1736330416);

  ASSERT_EQ(p.pin().versions_size(), 2);
  EXPECT_EQ(p.pin().versions(1).dataset(), "users");
  EXPECT_EQ(p.pin().versions(1).digest(), HexOf('1'));
  EXPECT_EQ(p.pin().versions(1).path(), "/ml/users/v1");
  EXPECT_EQ(p.pin().versions(1).file_count(), 3u);
  EXPECT_EQ(p.pin().versions(1).total_bytes(), 300u);
  EXPECT_EQ(p.pin().versions(0).file_count(), 0u);  // clicks@v7: no version_registered entry
  EXPECT_EQ(p.pin().seed(), 1234u);
  EXPECT_TRUE(p.pin().seed_derived());

  ASSERT_EQ(p.rank_seeds_size(), 1);
  EXPECT_EQ(p.rank_seeds(0).rank(), 0);
  EXPECT_EQ(p.rank_seeds(0).seed(), 77u);
  ASSERT_EQ(p.programs_size(), 1);
  EXPECT_EQ(p.programs(0).exe(), "/usr/bin/python3.11");
  EXPECT_EQ(p.programs(0).sha256(), HexOf('e'));

  ASSERT_EQ(p.files_size(), 2);  // by dataset: clicks first; the repeated open collapsed
  EXPECT_EQ(p.files(0).dataset(), "clicks");
  EXPECT_EQ(p.files(1).path(), "part-0.csv");
  EXPECT_EQ(p.files(1).version(), "v1");
  EXPECT_EQ(p.files(1).sha256(), HexOf('a'));
  EXPECT_EQ(p.files(1).size(), 4096u);
  EXPECT_EQ(p.files(1).verdict(), "match");
  ASSERT_EQ(p.violations_size(), 1);
  EXPECT_EQ(p.violations(0).verdict(), "other_version");
  EXPECT_FALSE(p.violations(0).refused());

  ASSERT_EQ(p.libraries_size(), 2);
  EXPECT_EQ(p.libraries(0).name(), "libc.so.6");
  EXPECT_EQ(p.libraries(0).version(), "2.36");
  EXPECT_EQ(p.libraries(0).sha256(), HexOf('l'));
  EXPECT_EQ(p.libraries(0).path(), "/lib/x86_64-linux-gnu/libc.so.6");  // where first seen
  EXPECT_EQ(p.libraries(1).name(), "libtorch_cuda.so");                 // no soname: the file name
  ASSERT_EQ(p.python_packages_size(), 2);
  EXPECT_EQ(p.python_packages(0).name(), "numpy");
  EXPECT_EQ(p.python_packages(0).version(), "1.24.2");
  EXPECT_EQ(p.python_packages(1).name(), "torch");

  ASSERT_EQ(p.hosts_size(), 1);
  EXPECT_EQ(p.hosts(0).node(), "node-a");
  EXPECT_EQ(p.hosts(0).gpus_size(), 2);
  EXPECT_THAT(FactList(p), ElementsAre("git/commit=abc", "lr=0.01"));  // the last value

  // Not verified: heads come from the stream, and nothing vouches for them.
  ASSERT_EQ(p.heads_size(), 1);
  EXPECT_EQ(p.heads(0).node(), "node-a");
  EXPECT_EQ(p.heads(0).seq(), 16u);
  EXPECT_EQ(p.heads(0).hash(), HexDigest(JournalFixture::HashOf("node-a", 16)));
  EXPECT_EQ(p.heads(0).signature(), "");
  EXPECT_FALSE(p.journal_intact());
}

TEST(ProvenanceTest, ThePinFromGetPinWins) {
  JournalFixture journal("job-1");
  journal.Add("node-a", PinApplied(MakePin("job-1", {{"users", "v1"}}, 1)));
  v1::Provenance p = journal.Provenance(MakePin("job-1", {{"users", "v2"}}, 2));
  EXPECT_EQ(p.pin().versions(0).version(), "v2");
  EXPECT_EQ(p.pin().seed(), 2u);
}

TEST(ProvenanceTest, SeveralNodesMakeOneProvenance) {
  JournalFixture journal("job-1");
  v1::Pin pin = MakePin("job-1", {{"users", "v1"}}, 9);
  for (const std::string node : {"node-b", "node-a"}) {
    journal.Add(node, PinApplied(pin));
    journal.Add(node, Host("host-" + node, "NVIDIA A100-SXM4-80GB", 8));
  }
  journal.Add("node-a", Process(0, 70, "/usr/bin/python3.11", 'e'));
  journal.Add("node-b", Process(1, 71, "/usr/bin/python3.11", 'e'));
  journal.Add("node-a", Open("users", "v1", "part-0.csv", 'a', 0));
  journal.Add("node-b", Open("users", "v1", "part-0.csv", 'a', 1));
  journal.Add("node-b", Facts({{"epoch", "1"}}));
  journal.Add("node-a", Facts({{"epoch", "2"}}));  // later in time: the last value

  v1::Provenance p = journal.Provenance(pin);
  ASSERT_EQ(p.hosts_size(), 2);
  EXPECT_EQ(p.hosts(0).node(), "node-a");  // by node
  EXPECT_EQ(p.hosts(1).node(), "node-b");
  ASSERT_EQ(p.heads_size(), 2);
  EXPECT_EQ(p.heads(0).seq(), 5u);
  EXPECT_EQ(p.heads(1).seq(), 5u);
  EXPECT_EQ(p.rank_seeds_size(), 2);
  EXPECT_EQ(p.programs_size(), 1);
  EXPECT_EQ(p.files_size(), 1);
  EXPECT_THAT(FactList(p), ElementsAre("epoch=2"));
}

TEST(ProvenanceTest, EachElasticAttemptOfEachRankIsOneLaunch) {
  JournalFixture journal("job-1");
  v1::Pin pin = MakePin("job-1", {{"users", "v1"}}, 9);
  journal.Add("node-a", PinApplied(pin));
  journal.Add("node-a", Process(0, 70, "/usr/bin/python3.11", 'e'));  // no launcher: no launch
  for (const char* restart : {"0", "1"}) {
    for (int rank : {0, 1}) {
      for (int process = 0; process < 2; ++process) {  // e.g. a DataLoader worker forked
        v1::JournalEntry start = Process(rank, 70 + rank, "/usr/bin/python3.11", 'e');
        v1::LauncherIdentity* l = start.mutable_process_start()->mutable_launcher();
        l->set_torchelastic_run_id("elastic-7");
        l->set_torchelastic_restart_count(restart);
        l->set_world_size("2");
        journal.Add(rank == 0 ? "node-a" : "node-b", start);
      }
    }
  }
  v1::Provenance p = journal.Provenance(pin);
  ASSERT_EQ(p.launches_size(), 4);
  std::vector<std::string> launches;
  for (const v1::ProvenanceLaunch& launch : p.launches()) {
    launches.push_back(absl::StrCat(launch.launcher().torchelastic_restart_count(), "/",
                                    launch.rank(), "/", launch.processes(), "/", launch.node()));
  }
  EXPECT_THAT(launches, ElementsAre("0/0/2/node-a", "0/1/2/node-b", "1/0/2/node-a",
                                    "1/1/2/node-b"));
}

TEST(ProvenanceTest, LastFactIsBySeqOnOneNodeEvenWhenItsClockWentBack) {
  JournalFixture journal("job-1");
  journal.Add("node-a", Facts({{"lr", "0.1"}}));
  journal.Add("node-a", Facts({{"lr", "0.2"}})).mutable_time()->set_seconds(1);
  EXPECT_THAT(FactList(journal.Provenance()), ElementsAre("lr=0.2"));
}

v1::NodeJournalCheck Check(const std::string& node, uint64_t seq, bool intact) {
  v1::NodeJournalCheck check;
  check.set_node(node);
  check.set_intact(intact);
  check.set_entries(seq);
  v1::JournalHead* head = check.mutable_head();
  head->set_node(node);
  head->set_seq(seq);
  head->set_hash(JournalFixture::HashOf(node, seq));
  head->set_signature(std::string(64, 's'));
  head->set_public_key(std::string(32, 'k'));
  return check;
}

TEST(ProvenanceTest, VerifiedHeadsBoundTheEntriesAndVouchForThem) {
  JournalFixture journal("job-1");
  journal.Add("node-a", PinApplied(MakePin("job-1", {{"users", "v1"}}, 1)));
  journal.Add("node-a", Facts({{"lr", "0.1"}}));
  journal.Add("node-a", Facts({{"lr", "0.2"}}));  // appended after VerifyJournal answered

  v1::VerifyJournalResponse verified;
  verified.set_intact(true);
  *verified.add_nodes() = Check("node-a", 2, true);
  ProvenanceBuilder builder("job-1");
  builder.SetVerified(verified);
  for (const v1::JournalEntry& e : journal.entries()) {
    builder.Add(e, JournalFixture::HashOf(e.node(), e.seq()));
  }
  v1::Provenance p = builder.Build();
  EXPECT_TRUE(p.journal_intact());
  EXPECT_EQ(p.entries(), 2u);
  EXPECT_THAT(FactList(p), ElementsAre("lr=0.1"));
  ASSERT_EQ(p.heads_size(), 1);
  EXPECT_EQ(p.heads(0).seq(), 2u);
  EXPECT_EQ(p.heads(0).hash(), HexDigest(JournalFixture::HashOf("node-a", 2)));
  EXPECT_EQ(p.heads(0).signature(), HexDigest(std::string(64, 's')));
  EXPECT_EQ(p.heads(0).public_key(), HexDigest(std::string(32, 'k')));
  EXPECT_TRUE(p.heads(0).intact());
}

TEST(ProvenanceTest, BrokenOrUnverifiedNodesAreNotIntact) {
  JournalFixture journal("job-1");
  journal.Add("node-a", Facts({{"a", "1"}}));
  journal.Add("node-b", Facts({{"b", "1"}}));
  for (bool a_intact : {true, false}) {
    v1::VerifyJournalResponse verified;
    verified.set_intact(a_intact);
    *verified.add_nodes() = Check("node-a", 1, a_intact);
    ProvenanceBuilder builder("job-1");
    builder.SetVerified(verified);
    for (const v1::JournalEntry& e : journal.entries()) builder.Add(e, "h");
    v1::Provenance p = builder.Build();
    // node-b has no signed head: its entries are in, but nothing vouches for them.
    EXPECT_FALSE(p.journal_intact());
    EXPECT_EQ(p.entries(), 2u);
    EXPECT_THAT(p.heads(), SizeIs(2));
  }
}

TEST(ProvenanceTest, LibraryName) {
  v1::Library library;
  library.set_path("/usr/lib/x86_64-linux-gnu/libcudnn.so.8.9.2");
  EXPECT_EQ(LibraryName(library), "libcudnn.so.8.9.2");
  library.set_soname("libcudnn.so.8");
  EXPECT_EQ(LibraryName(library), "libcudnn.so.8");
  library.clear_soname();
  library.set_path("relative.so");
  EXPECT_EQ(LibraryName(library), "relative.so");
}

}  // namespace
}  // namespace repro::cli
