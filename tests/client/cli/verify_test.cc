// `reproctl verify` against a lying reprod: the fake serves a real signed journal, then alters
// it the way a compromised daemon or node admin would, and always claims "intact". reproctl
// recomputes the chain and checks the signature itself, so every lie exits 4.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli/cli.h"
#include "client/cli/provenance.h"
#include "common/merkle.h"
#include "common/sha256.h"
#include "common/signed_statements.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli/fake_repro_service.h"
#include "tests/client/cli/signed_journal.h"
#include "tests/testutil/temp_dir.h"

namespace repro::cli {
namespace {

using ::testing::HasSubstr;

struct Result {
  int code;
  std::string out;
  std::string err;
};

// Rewrites the fact of entry `index` (0-based) in both its stored bytes and its parse, leaving
// the chain hashes and the head alone.
void RewriteEntry(SignedJournal* journal, size_t index) {
  v1::ReplayResponse& r = journal->replay[index];
  r.mutable_entry()->mutable_record()->mutable_facts(0)->set_value("999");
  r.set_payload(r.entry().SerializeAsString());
}

// Verifies `verify` failed with exit 4 and `problem` in its output.
void ExpectTampered(const Result& verify, const std::string& problem) {
  EXPECT_EQ(verify.code, 4) << verify.out << verify.err;
  EXPECT_THAT(verify.out, HasSubstr(problem));
}

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = *NodeKey::LoadOrCreate(dir_.Path("node.pem"));
    other_key_ = *NodeKey::LoadOrCreate(dir_.Path("attacker.pem"));
    journal_ = MakeSignedJournal(*key_, "j", "node-a", 3);
    std::ofstream(dir_.Path("trusted")) << "# node keys\nnode-a " << HexDigest(key_->public_key())
                                        << "\n";
  }

  // Serves `journal` and claims it intact, whatever it holds.
  void Serve(const SignedJournal& journal) {
    FakeReproService& fake = server_.service();
    fake.replay = journal.replay;
    fake.verify.Clear();
    fake.verify.set_intact(true);
    *fake.verify.add_nodes() = journal.check;
    fake.verify.mutable_nodes(0)->set_intact(true);
    fake.node.set_node("node-a");
  }

  Result Verify(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--addr", server_.address(), "verify", "j"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::ostringstream out, err;
    Environment env{&out, &err, false, std::nullopt, "/", config_dir_};
    int code = RunCli(args, env);
    return {code, out.str(), err.str()};
  }
  Result VerifyTrusted() { return Verify({"--trusted_keys", dir_.Path("trusted")}); }

  testing::TempDir dir_;
  std::string config_dir_;  // empty: no key pinning
  std::unique_ptr<NodeKey> key_;
  std::unique_ptr<NodeKey> other_key_;
  SignedJournal journal_;
  FakeReproServer server_;
};

TEST_F(VerifyTest, AnHonestJournalPasses) {
  Serve(journal_);
  Result r = VerifyTrusted();
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("by reproctl"));
  EXPECT_THAT(r.out, HasSubstr("intact"));
}

TEST_F(VerifyTest, AnEntryShownDifferentlyFromItsStoredBytesFails) {
  SignedJournal lie = journal_;
  lie.replay[1].mutable_entry()->mutable_record()->mutable_facts(0)->set_value("999");
  Serve(lie);
  ExpectTampered(VerifyTrusted(), "differs from its stored bytes");
}

TEST_F(VerifyTest, RewrittenStoredBytesFail) {
  SignedJournal lie = journal_;
  RewriteEntry(&lie, 1);
  Serve(lie);
  ExpectTampered(VerifyTrusted(), "does not match its chain hash");
}

TEST_F(VerifyTest, RewrittenEntriesWithTheChainRecomputedFailTheSignature) {
  SignedJournal lie = journal_;
  RewriteEntry(&lie, 0);
  std::string old_signature = lie.check.head().signature();
  RechainAndSign(*key_, &lie);
  lie.check.mutable_head()->set_signature(old_signature);  // the attacker lacks the key
  Serve(lie);
  ExpectTampered(VerifyTrusted(), "signature does not verify");
}

TEST_F(VerifyTest, AHeadReSignedByADifferentKeyFails) {
  SignedJournal lie = journal_;
  lie.replay[2].set_payload(lie.replay[1].payload());  // anything: it is all re-signed
  lie.replay.pop_back();
  RechainAndSign(*other_key_, &lie);
  Serve(lie);
  ExpectTampered(VerifyTrusted(), "re-signed by a different key");
}

TEST_F(VerifyTest, ATruncatedReplayFails) {
  SignedJournal lie = journal_;
  lie.replay.pop_back();  // the head still says 3
  Serve(lie);
  ExpectTampered(VerifyTrusted(), "only 2 entries were replayed");
}

TEST_F(VerifyTest, AMissingEntryFails) {
  SignedJournal lie = journal_;
  lie.replay.erase(lie.replay.begin() + 1);
  Serve(lie);
  ExpectTampered(VerifyTrusted(), "entry 2 is missing");
}

TEST_F(VerifyTest, KeysArePinnedOnFirstUseAndAChangeIsCaught) {
  config_dir_ = dir_.Path("config");
  Serve(journal_);
  Result first = Verify();
  EXPECT_EQ(first.code, 0) << first.out << first.err;
  EXPECT_THAT(first.err, HasSubstr("pinned the key of node node-a on first use: " +
                                   HexDigest(key_->public_key())));
  std::ifstream pinned(config_dir_ + "/known_nodes");
  std::stringstream text;
  text << pinned.rdbuf();
  EXPECT_EQ(text.str(), "node-a " + HexDigest(key_->public_key()) + "\n");

  Result second = Verify();
  EXPECT_EQ(second.code, 0);
  EXPECT_EQ(second.err, "");

  SignedJournal lie = journal_;
  RechainAndSign(*other_key_, &lie);
  Serve(lie);
  EXPECT_EQ(Verify().code, 4);
}

TEST_F(VerifyTest, AGapMakesTheRecordIncompleteButNotTampered) {
  SignedJournal journal = journal_;
  v1::ReplayResponse gap = journal.replay.back();
  v1::JournalEntry* entry = gap.mutable_entry();
  entry->set_seq(4);
  entry->clear_record();
  v1::GapCount* lost = entry->mutable_gap()->add_lost();
  lost->set_kind("record");
  lost->set_count(2);
  gap.set_payload(entry->SerializeAsString());
  journal.replay.push_back(gap);
  RechainAndSign(*key_, &journal);
  Serve(journal);
  Result r = VerifyTrusted();
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("INCOMPLETE"));
  EXPECT_THAT(r.out, HasSubstr("node-a: 2 record"));
}

// An export whose head of node-a sits in a one-leaf head log signed by the node's key.
v1::Provenance ExportWithTreeHead(const NodeKey& key, const v1::JournalHead& head) {
  v1::Provenance exported;
  exported.set_format(kProvenanceFormat);
  exported.set_job("j");
  v1::ProvenanceHead* h = exported.add_heads();
  h->set_node("node-a");
  h->set_seq(head.seq());
  h->set_hash(HexDigest(head.hash()));
  h->set_signature(HexDigest(head.signature()));
  h->set_public_key(HexDigest(key.public_key()));
  const std::string root = MerkleLeafHash(HeadSigningBytes("node-a", "j", head.seq(), head.hash()));
  v1::ProvenanceTreeHead* tree = h->mutable_tree_head();
  tree->set_size(1);
  tree->set_root(HexDigest(root));
  tree->set_time_unix_nanos(1);
  tree->set_signature(HexDigest(key.Sign(TreeHeadSigningBytes("node-a", 1, root, 1))));
  tree->set_public_key(HexDigest(key.public_key()));
  h->set_leaf_index(0);
  return exported;
}

// --against an export with a tree head: today's journal must hold the exported head, and the
// node that served the tree head must prove its log extends it (this fake serves no proofs).
TEST_F(VerifyTest, AgainstAnExportTheJournalMustStillHoldTheExportedHead) {
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(
                  ExportWithTreeHead(*key_, journal_.check.head()), &json)
                  .ok());
  std::ofstream(dir_.Path("export.json")) << json;
  Serve(journal_);
  ExpectTampered(Verify({"--against", dir_.Path("export.json")}), "serves no head log proof");

  SignedJournal shorter = MakeSignedJournal(*key_, "j", "node-a", 2);  // genuine, but earlier
  Serve(shorter);
  server_.service().node.set_node("node-z");  // another node answers: no proof expected
  ExpectTampered(Verify({"--against", dir_.Path("export.json")}), "rolled back or truncated");
}

}  // namespace
}  // namespace repro::cli
