// Tampering with a stopped reprod's journal from outside, with RocksDB's own `ldb` (Debian
// rocksdb-tools), as a node admin could. Each edit must be caught: by `reproctl verify` alone
// where the edit breaks a chain or a signature, and with `--against` an earlier export where it
// cannot (a rollback to an earlier signed head, a deleted job: both look intact on their own).
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "common/signed_statements.h"
#include "daemon/store/chain.h"
#include "daemon/store/node_key.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "repro/v1/journal.pb.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::ReprodOptions;
using testing::ReprodProcess;
using testing::RunCommand;
using testing::RunResult;
using testing::TempDir;
using testing::WriteFileOrDie;

std::string Hex(absl::string_view bytes) {
  return "0x" + absl::AsciiStrToUpper(absl::BytesToHexString(bytes));
}

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFileOrDie(dir_.Path("ml/users/v1/a.csv"), "id\n1\n");
    Start({});
    MustCtl({"version", "add", "users", "v1", dir_.Path("ml/users/v1")});
    MustCtl({"pin", "job-t", "users@v1", "--seed", "5"});
  }

  void Start(std::vector<std::string> flags) {
    reprod_.reset();
    ReprodOptions options;
    options.extra_flags = std::move(flags);
    reprod_ = std::make_unique<ReprodProcess>(dir_.Path("node"), options);
    ASSERT_TRUE(reprod_->Start().ok()) << reprod_->log();
  }
  void Stop() { ASSERT_EQ(reprod_->Kill(SIGTERM), 0); }

  RunResult Ctl(const std::vector<std::string>& args) { return reprod_->Ctl(args); }
  void MustCtl(const std::vector<std::string>& args) {
    RunResult r = Ctl(args);
    ASSERT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.stdout_text << r.stderr_text;
  }
  void Record(int from, int to) {
    for (int i = from; i < to; ++i) MustCtl({"record", "job-t", absl::StrCat("step=", i)});
  }
  std::string Export() {
    RunResult r = Ctl({"export", "job-t"});
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    std::string path = dir_.Path(absl::StrCat("export-", exports_++, ".json"));
    std::ofstream(path) << r.stdout_text;
    return path;
  }

  // `ldb --db=DATA_DIR --column_family=COLUMN args...` on the stopped daemon's database.
  std::string Ldb(const std::string& column, std::vector<std::string> args) {
    std::vector<std::string> argv = {"ldb", "--db=" + reprod_->data_dir(),
                                     "--column_family=" + column};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(argv, " ") << "\n" << r.stderr_text;
    return r.stdout_text;
  }
  // Every key -> value of `column` whose key starts with `prefix`.
  std::map<std::string, std::string> Scan(const std::string& column, const std::string& prefix) {
    std::string end = prefix;
    end.back() = static_cast<char>(end.back() + 1);
    std::map<std::string, std::string> out;
    for (absl::string_view line : absl::StrSplit(
             Ldb(column, {"--hex", "scan", "--from=" + Hex(prefix), "--to=" + Hex(end)}), '\n',
             absl::SkipEmpty())) {
      std::vector<std::string> kv = absl::StrSplit(line, " : ");
      if (kv.size() != 2) continue;
      out[absl::HexStringToBytes(kv[0].substr(2))] = absl::HexStringToBytes(kv[1].substr(2));
    }
    return out;
  }
  void Put(const std::string& column, const std::string& key, const std::string& value) {
    Ldb(column, {"--hex", "put", Hex(key), Hex(value)});
  }
  void Delete(const std::string& column, const std::string& key) {
    Ldb(column, {"--key_hex", "delete", Hex(key)});
  }
  std::string Head() { return Scan("journal_heads", "job-t").at("job-t"); }

  // Rewrites the value of the fact in entry `seq` and recomputes every later chain hash and the
  // head's hash, keeping the head's old signature: the edit a careful admin without the key makes.
  // Returns the new head (unsigned).
  v1::JournalHead RewriteWithChainRecomputed(uint64_t seq) {
    std::map<std::string, std::string> entries = Scan("journal", JobPrefix("job-t"));
    std::string hash = GenesisHash();
    for (const auto& [key, value] : entries) {
      std::string payload = value.substr(kSha256Size);
      v1::JournalEntry entry;
      EXPECT_TRUE(entry.ParseFromString(payload));
      if (entry.seq() == seq) {
        EXPECT_TRUE(entry.has_record());
        entry.mutable_record()->mutable_facts(0)->set_value("rewritten");
        payload = entry.SerializeAsString();
      }
      hash = ChainHash(hash, payload);
      Put("journal", key, EncodeStoredEntry(hash, payload));
    }
    v1::JournalHead head;
    EXPECT_TRUE(head.ParseFromString(Head()));
    head.set_hash(hash);
    Put("journal_heads", "job-t", head.SerializeAsString());
    return head;
  }

  TempDir dir_;
  std::unique_ptr<ReprodProcess> reprod_;
  int exports_ = 0;
};

// The issue's own steps: keep the signed head after some entries, append more, export, delete
// the newer entries and put the old head back. verify alone says intact (by construction: an
// earlier signed head is genuine); --against the export proves the rollback.
TEST_F(TamperTest, RollbackToAnEarlierHeadIsCaughtAgainstAnEarlierExport) {
  Record(0, 3);
  Stop();
  const std::string old_head = Head();
  const std::map<std::string, std::string> old_entries = Scan("journal", JobPrefix("job-t"));
  const std::string old_log_size = Scan("head_log", "s").at("s");
  Start({});
  Record(3, 6);
  const std::string exported = Export();
  EXPECT_EQ(Ctl({"verify", "job-t", "--against", exported}).exit_code, 0);
  Stop();
  for (const auto& [key, value] : Scan("journal", JobPrefix("job-t"))) {
    if (!old_entries.count(key)) Delete("journal", key);
  }
  Put("journal_heads", "job-t", old_head);
  Start({});
  RunResult alone = Ctl({"verify", "job-t"});
  EXPECT_EQ(alone.exit_code, 0) << alone.stdout_text << alone.stderr_text;
  RunResult against = Ctl({"verify", "job-t", "--against", exported});
  EXPECT_EQ(against.exit_code, 4) << against.stdout_text << against.stderr_text;
  EXPECT_THAT(against.stdout_text, HasSubstr("rolled back"));

  // Rolling the head log back too: the log no longer extends the exported tree.
  Stop();
  Put("head_log", "s", old_log_size);
  Start({});
  RunResult both = Ctl({"verify", "job-t", "--against", exported});
  EXPECT_EQ(both.exit_code, 4) << both.stdout_text << both.stderr_text;
}

TEST_F(TamperTest, ADeletedJobIsCaughtAgainstAnEarlierExport) {
  Record(0, 2);
  const std::string exported = Export();
  Stop();
  for (const auto& [key, value] : Scan("journal", JobPrefix("job-t"))) Delete("journal", key);
  for (const auto& [key, value] : Scan("journal_index", JobPrefix("job-t"))) {
    Delete("journal_index", key);
  }
  Delete("journal_heads", "job-t");
  Start({});
  EXPECT_EQ(Ctl({"verify", "job-t"}).exit_code, 5);  // unknown, not provably tampered
  RunResult against = Ctl({"verify", "job-t", "--against", exported});
  EXPECT_EQ(against.exit_code, 4) << against.stdout_text << against.stderr_text;
  EXPECT_THAT(against.stdout_text, HasSubstr("deleted job"));
}

TEST_F(TamperTest, EntriesRewrittenWithTheChainRecomputedFailTheSignature) {
  Record(0, 3);
  Stop();
  RewriteWithChainRecomputed(5);
  Start({});
  RunResult verify = Ctl({"verify", "job-t"});
  EXPECT_EQ(verify.exit_code, 4) << verify.stdout_text << verify.stderr_text;
  EXPECT_THAT(verify.stdout_text, HasSubstr("signature"));
}

// With the key outside the data dir (--node_key), an admin who rewrites the journal must re-sign
// with a key of their own and start reprod with it: reprod itself then says intact, but the key
// pinned on first use (or in an export) no longer matches.
TEST_F(TamperTest, AHeadReSignedByADifferentKeyIsCaught) {
  Stop();
  std::filesystem::create_directories(dir_.Path("secret"));
  auto key = NodeKey::LoadOrCreate(dir_.Path("secret/node_key.pem"));
  ASSERT_TRUE(key.ok());
  Start({"--node_key=" + dir_.Path("secret/node_key.pem")});
  Record(0, 3);
  MustCtl({"verify", "job-t"});  // pins the key on first use
  const std::string exported = Export();
  Stop();
  v1::JournalHead head = RewriteWithChainRecomputed(5);
  auto attacker = NodeKey::LoadOrCreate(dir_.Path("attacker.pem"));
  ASSERT_TRUE(attacker.ok());
  head.set_signature(
      (*attacker)->Sign(HeadSigningBytes(head.node(), "job-t", head.seq(), head.hash())));
  Put("journal_heads", "job-t", head.SerializeAsString());
  Start({"--node_key=" + dir_.Path("attacker.pem")});
  RunResult verify = Ctl({"verify", "job-t"});
  EXPECT_EQ(verify.exit_code, 4) << verify.stdout_text << verify.stderr_text;
  EXPECT_THAT(verify.stdout_text, HasSubstr("re-signed by a different key"));
  EXPECT_EQ(Ctl({"verify", "job-t", "--against", exported}).exit_code, 4);
}

// A real rotation: the old key signs a statement naming the new one, so the auditor who pinned
// the old key accepts heads signed by the new one.
TEST_F(TamperTest, AKeyRotationSignedByTheOldKeyKeepsVerifying) {
  Record(0, 2);
  MustCtl({"verify", "job-t"});  // pins the in-dir key
  Stop();
  ASSERT_TRUE(NodeKey::LoadOrCreate(dir_.Path("new.pem")).ok());
  Start({"--node_key=" + dir_.Path("new.pem"), "--previous_node_key=" +
                                                    dir_.Path("node/data/node_key.pem")});
  RunResult rotated = Ctl({"verify", "job-t"});  // heads re-signed at rotation, none appended
  EXPECT_EQ(rotated.exit_code, 0) << rotated.stdout_text << rotated.stderr_text << reprod_->log();
  Record(2, 3);
  RunResult verify = Ctl({"verify", "job-t"});
  EXPECT_EQ(verify.exit_code, 0) << verify.stdout_text << verify.stderr_text << reprod_->log();
}

}  // namespace
}  // namespace repro
