// The whole of reproctl, in-process, against FakeReproService: arguments in, a request out, the
// reply printed, the exit code of the contract.
#include "client/cli/cli.h"

#include <signal.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/cli/hex_json.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "common/sha256.h"
#include "repro/v1/provenance.pb.h"
#include "tests/client/cli/fake_repro_service.h"
#include "tests/client/cli/signed_journal.h"
#include "tests/testutil/temp_dir.h"

namespace repro::cli {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

struct Result {
  int code;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  // Runs reproctl with `args` against the fake server (--addr goes first).
  Result Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--addr", server_.address()});
    return RunRaw(std::move(args));
  }
  // Runs reproctl with exactly `args`.
  Result RunRaw(const std::vector<std::string>& args) {
    std::ostringstream out, err;
    Environment env = env_;
    env.out = &out;
    env.err = &err;
    int code = RunCli(args, env);
    return {code, out.str(), err.str()};
  }
  FakeReproService& fake() { return server_.service(); }

  // One line on stderr, starting with "reproctl: ".
  static void ExpectOneErrorLine(const Result& r, absl::string_view contains) {
    EXPECT_THAT(r.err, StartsWith("reproctl: "));
    EXPECT_THAT(r.err, EndsWith("\n"));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(std::string(contains)));
  }

  FakeReproServer server_;
  Environment env_{nullptr, nullptr, false, std::nullopt, "/home/me"};
  testing::TempDir key_dir_;
};

// Every stdout line is a JSON object that parses as `Message`.
template <typename Message>
std::vector<Message> JsonLines(const std::string& out) {
  std::vector<Message> messages;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    Message message;
    EXPECT_TRUE(HexJsonToMessage(std::string(line), &message).ok()) << line;
    messages.push_back(message);
  }
  EXPECT_TRUE(out.empty() || out.back() == '\n');
  return messages;
}

v1::VersionInfo Version(const std::string& dataset, const std::string& version) {
  v1::VersionInfo v;
  v.set_dataset(dataset);
  v.set_version(version);
  v.set_digest(std::string(32, '\x11'));
  v.set_file_count(2);
  v.set_total_bytes(3000);
  return v;
}

// ---- help and usage ----

TEST_F(CliTest, Help) {
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"help"}, {"--help"}, {"-h"}}) {
    Result r = RunRaw(args);
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("usage: reproctl [FLAGS] COMMAND"));
    EXPECT_THAT(r.out, HasSubstr("version add DATASET VERSION PATH"));
    EXPECT_EQ(r.err, "");
  }
  Result pin = RunRaw({"help", "pin"});
  EXPECT_EQ(pin.code, 0);
  EXPECT_THAT(pin.out, HasSubstr("usage: reproctl pin JOB --like OTHER_JOB"));
  Result flag = RunRaw({"pin", "show", "j", "--help"});
  EXPECT_EQ(flag.code, 0);
  EXPECT_THAT(flag.out, StartsWith("usage: reproctl pin show JOB\n"));
  Result group = RunRaw({"version", "--help"});
  EXPECT_THAT(group.out, HasSubstr("usage: reproctl version list"));
  EXPECT_EQ(fake().calls, 0);
}

TEST_F(CliTest, UsageErrorsAreOneLineAndExitOne) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  std::vector<Case> cases = {
      {{}, "usage: no command given"},
      {{"frob"}, "usage: unknown command \"frob\""},
      {{"version"}, "usage: reproctl version needs one of: add, show, list"},
      {{"version", "add", "d", "v"}, "usage: missing arguments; expected: reproctl version add"},
      {{"node", "extra"}, "usage: unexpected argument \"extra\""},
      {{"node", "--bogus"}, "usage: unknown flag --bogus"},
      {{"pin", "list", "--rehash"},
       "usage: --rehash does not apply here; expected: reproctl pin "
       "list"},
      {{"--output=yaml", "node"}, "usage: --output must be text or json"},
      {{"--timeout=soon", "node"}, "usage: --timeout takes a duration"},
      {{"--timeout=0", "node"}, "usage: --timeout must be more than zero"},
      {{"--addr=nowhere", "node"}, "usage: invalid address \"nowhere\""},
      {{"--addr", "unix:/x", "--addr=nowhere", "node"}, "usage: invalid address \"nowhere\""},
      {{"--tls_ca=/x.pem", "node"}, "usage: --tls_ca, --tls_cert and --tls_key apply to TCP"},
      {{"--addr=h:1", "--tls_cert=/c.pem", "node"}, "usage: --tls_cert and --tls_key go together"},
      {{"pin", "j"}, "usage: no data versions to pin j to"},
      {{"pin", "j", "d@v", "--like", "k"}, "usage: --like copies"},
      {{"pin", "j", "d@v1", "d@v2"}, "usage: dataset d given twice"},
      {{"pin", "j", "d@v", "--seed=-1"}, "usage: --seed takes a number"},
      {{"journal", "j", "--since=x"}, "usage: --since takes a number"},
      {{"record", "j", "lr"}, "\"lr\" is not KEY=VALUE"},
      {{"record", "j", "a=1", "a=2"}, "fact a given twice"},
      {{"pin", "show", "bad job"}, "job id \"bad job\""},
      {{"version", "show", "nover"}, "is not of the form DATASET@VERSION"},
  };
  for (const Case& c : cases) {
    Result r = RunRaw(c.args);
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    ExpectOneErrorLine(r, c.message);
  }
  EXPECT_EQ(fake().calls, 0);  // nothing reached the daemon
}

TEST_F(CliTest, DashDashMakesTheRestOperands) {
  fake().pin.mutable_pin()->set_job("show");
  Result r = Run({"pin", "--", "show", "d@v"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fake().last_pin.job(), "show");
}

// ---- connection ----

TEST_F(CliTest, UnreachableDaemon) {
  Result r = RunRaw({"--addr", "unix:/nonexistent/reprod.sock", "node"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  ExpectOneErrorLine(r, "reproctl: cannot reach reprod at unix:/nonexistent/reprod.sock: ");
}

TEST_F(CliTest, AddressFromEnvironmentAndFlagOverridesIt) {
  env_.repro_addr = "unix:/nonexistent/env.sock";
  Result from_env = RunRaw({"node"});
  ExpectOneErrorLine(from_env, "cannot reach reprod at unix:/nonexistent/env.sock");
  Result flag = Run({"node"});  // --addr of the fake
  EXPECT_EQ(flag.code, 0) << flag.err;
}

TEST_F(CliTest, DefaultAddress) {
  Result r = RunRaw({"node"});
  if (r.code != 0) ExpectOneErrorLine(r, "unix:/run/reprod/reprod.sock");
}

TEST_F(CliTest, UnavailableFromAConnectedDaemonIsItsOwnMessage) {
  fake().error = grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcd is unreachable");
  Result r = Run({"pin", "list"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "reproctl: etcd is unreachable\n");
}

TEST_F(CliTest, Deadline) {
  fake().delay = absl::Milliseconds(500);
  Result r = Run({"--timeout=0.1", "node"});
  EXPECT_EQ(r.code, 1);
  ExpectOneErrorLine(r, "GetNodeInfo took longer than --timeout=100ms");
}

TEST_F(CliTest, ServerMessageIsOneLine) {
  fake().error = grpc::Status(grpc::StatusCode::INTERNAL, "line one\nline two");
  Result r = Run({"node"});
  EXPECT_EQ(r.err, "reproctl: line one line two\n");
  fake().error = grpc::Status(grpc::StatusCode::INTERNAL, "");
  EXPECT_EQ(Run({"node"}).err, "reproctl: GetNodeInfo failed: INTERNAL\n");
}

TEST(ParseTimeoutTest, Forms) {
  EXPECT_EQ(*ParseTimeout("30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseTimeout("45"), absl::Seconds(45));
  EXPECT_EQ(*ParseTimeout("0.25"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseTimeout("1m30s"), absl::Seconds(90));
  EXPECT_EQ(*ParseTimeout("inf"), absl::InfiniteDuration());
  for (const char* bad : {"", "0", "-1s", "soon", "nan", "30 s"}) {
    EXPECT_EQ(ParseTimeout(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// ---- version ----

TEST_F(CliTest, VersionAdd) {
  v1::RegisterVersionResponse progress;
  progress.mutable_progress()->set_files_total(2);
  progress.mutable_progress()->set_files_done(1);
  v1::RegisterVersionResponse result;
  *result.mutable_result()->mutable_version() = Version("user_ctr", "v1");
  result.mutable_result()->set_created(true);
  fake().register_stream = {progress, result};

  Result r = Run({"version", "add", "user_ctr", "v1", "./data/v1/"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fake().last_register.dataset(), "user_ctr");
  EXPECT_EQ(fake().last_register.version(), "v1");
  EXPECT_EQ(fake().last_register.path(), "/home/me/data/v1");
  EXPECT_THAT(r.out, HasSubstr("status   created\n"));
  EXPECT_THAT(r.out, HasSubstr("digest   " + std::string(64, '1') + "\n"));
  EXPECT_EQ(r.err, "");  // no progress line when stderr is not a terminal

  env_.stderr_is_tty = true;
  Result tty = Run({"version", "add", "user_ctr", "v1", "/abs"});
  EXPECT_EQ(tty.code, 0);
  EXPECT_THAT(tty.err, StartsWith("\rhashing  1/2 files"));
  EXPECT_THAT(tty.err, EndsWith("\r"));  // wiped at the end

  Result json = Run({"--output=json", "version", "add", "user_ctr", "v1", "/abs"});
  std::vector<v1::RegisterResult> lines = JsonLines<v1::RegisterResult>(json.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].created());
  EXPECT_EQ(lines[0].version().digest(), std::string(32, '\x11'));
}

TEST_F(CliTest, VersionAddConflictAndOddStreams) {
  fake().error = grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "user_ctr@v1 has other content");
  Result conflict = Run({"version", "add", "user_ctr", "v1", "/d"});
  EXPECT_EQ(conflict.code, 2);
  EXPECT_EQ(conflict.err, "reproctl: user_ctr@v1 has other content\n");

  fake().error = grpc::Status::OK;
  fake().register_stream.clear();
  Result empty = Run({"version", "add", "user_ctr", "v1", "/d"});
  EXPECT_EQ(empty.code, 1);
  ExpectOneErrorLine(empty, "without a result");
}

TEST_F(CliTest, VersionShow) {
  *fake().get_version.mutable_version() = Version("user_ctr", "v1");
  v1::FileEntry* file = fake().get_version.mutable_manifest()->add_files();
  file->set_path("a.csv");
  file->set_size(10);
  Result summary = Run({"version", "show", "user_ctr@v1"});
  EXPECT_EQ(summary.code, 0) << summary.err;
  EXPECT_EQ(fake().last_get_version.ref().dataset(), "user_ctr");
  EXPECT_FALSE(fake().last_get_version.include_files());
  EXPECT_THAT(summary.out, StartsWith("version     user_ctr@v1\n"));

  Result files = Run({"version", "show", "user_ctr@v1", "--files"});
  EXPECT_TRUE(fake().last_get_version.include_files());
  EXPECT_THAT(files.out, StartsWith("SHA256"));
  EXPECT_THAT(files.out, HasSubstr("10 B  a.csv\n"));

  fake().error = grpc::Status(grpc::StatusCode::NOT_FOUND, "no version user_ctr@v9");
  Result missing = Run({"version", "show", "user_ctr@v9"});
  EXPECT_EQ(missing.code, 5);
  EXPECT_EQ(missing.err, "reproctl: no version user_ctr@v9\n");
}

TEST_F(CliTest, VersionListJsonIsOneLinePerVersion) {
  *fake().list_versions.add_versions() = Version("a", "v1");
  *fake().list_versions.add_versions() = Version("a", "v2");
  Result r = Run({"version", "list", "a", "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fake().last_list_versions.dataset(), "a");
  std::vector<v1::VersionInfo> lines = JsonLines<v1::VersionInfo>(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].version(), "v2");
  EXPECT_THAT(r.out, HasSubstr("\"fileCount\":\"2\""));

  Result text = Run({"version", "list"});
  EXPECT_EQ(fake().last_list_versions.dataset(), "");
  EXPECT_THAT(text.out, StartsWith("DATASET  VERSION  DIGEST        FILES     SIZE"));
  EXPECT_THAT(text.out, HasSubstr("a        v2       111111111111      2  2.9 KiB"));

  fake().list_versions.Clear();
  EXPECT_EQ(Run({"version", "list", "--output=json"}).out, "");
}

// ---- pin ----

TEST_F(CliTest, Pin) {
  fake().pin.set_created(true);
  fake().pin.mutable_pin()->set_job("j");
  Result r = Run({"pin", "j", "user_ctr@v1", "images@v2", "--seed", "7"});
  EXPECT_EQ(r.code, 0) << r.err;
  const v1::PinRequest& request = fake().last_pin;
  EXPECT_EQ(request.job(), "j");
  ASSERT_EQ(request.versions_size(), 2);
  EXPECT_EQ(request.versions(1).dataset(), "images");
  EXPECT_TRUE(request.has_seed());
  EXPECT_EQ(request.seed(), 7u);
  EXPECT_THAT(r.out, StartsWith("pinned\njob      j\n"));

  Result like = Run({"pin", "j2", "--like", "j"});
  EXPECT_EQ(like.code, 0);
  EXPECT_EQ(fake().last_pin.like_job(), "j");
  EXPECT_EQ(fake().last_pin.versions_size(), 0);
  EXPECT_FALSE(fake().last_pin.has_seed());
}

TEST_F(CliTest, PinConflictAndUnknown) {
  fake().error =
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "job j is already pinned to user_ctr@v1");
  Result conflict = Run({"pin", "j", "user_ctr@v2"});
  EXPECT_EQ(conflict.code, 2);
  EXPECT_EQ(conflict.err, "reproctl: job j is already pinned to user_ctr@v1\n");

  fake().error = grpc::Status(grpc::StatusCode::NOT_FOUND, "job old has no pin");
  EXPECT_EQ(Run({"pin", "j", "--like", "old"}).code, 5);
  EXPECT_EQ(Run({"pin", "show", "old"}).code, 5);
  // FAILED_PRECONDITION means a conflict only for Pin.
  fake().error = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not pinned");
  EXPECT_EQ(Run({"record", "j", "a=b"}).code, 1);
}

TEST_F(CliTest, PinShowAndList) {
  fake().get_pin.mutable_pin()->set_job("j");
  fake().get_pin.mutable_pin()->set_seed(9);
  Result show = Run({"pin", "show", "j"});
  EXPECT_EQ(show.code, 0);
  EXPECT_EQ(fake().last_get_pin.job(), "j");
  EXPECT_THAT(show.out, StartsWith("job      j\nseed     9\n"));
  Result show_json = Run({"pin", "show", "j", "--output=json"});
  std::vector<v1::GetPinResponse> one = JsonLines<v1::GetPinResponse>(show_json.out);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].pin().seed(), 9u);

  *fake().list_pins.add_pins() = fake().get_pin.pin();
  fake().list_pins.add_pins()->set_job("k");
  Result list = Run({"--output=json", "pin", "list"});
  std::vector<v1::Pin> pins = JsonLines<v1::Pin>(list.out);
  ASSERT_EQ(pins.size(), 2u);
  EXPECT_EQ(pins[1].job(), "k");
  EXPECT_THAT(Run({"pin", "list"}).out, StartsWith("JOB  SEED  VERSIONS  CREATED\nj       9"));
}

// ---- admit, record ----

TEST_F(CliTest, Admit) {
  fake().admit.set_admitted(true);
  Result yes = Run({"admit", "j"});
  EXPECT_EQ(yes.code, 0);
  EXPECT_EQ(yes.out, "admitted j\n");
  EXPECT_EQ(yes.err, "");
  EXPECT_EQ(fake().last_admit.job(), "j");

  fake().admit.set_admitted(false);
  fake().admit.set_reason("job j has no pin; pin it with reproctl pin");
  Result no = Run({"admit", "j"});
  EXPECT_EQ(no.code, 3);
  EXPECT_EQ(no.out, "refused j\n");
  EXPECT_EQ(no.err,
            "reproctl: job j would not be admitted: job j has no pin; pin it with reproctl "
            "pin\n");

  Result json = Run({"admit", "j", "--output=json"});
  EXPECT_EQ(json.code, 3);
  std::vector<v1::AdmitResponse> lines = JsonLines<v1::AdmitResponse>(json.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(json.out, HasSubstr("\"admitted\":false"));
}

TEST_F(CliTest, Record) {
  fake().record.set_seq(12);
  Result r = Run({"record", "j", "git/commit=abc", "hp:lr=a=b", "note="});
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(fake().last_record.facts_size(), 3);
  EXPECT_EQ(fake().last_record.facts(1).key(), "hp:lr");
  EXPECT_EQ(fake().last_record.facts(1).value(), "a=b");
  EXPECT_EQ(fake().last_record.facts(2).value(), "");
  EXPECT_EQ(r.out, "recorded 3 facts for j at seq 12\n");
  EXPECT_EQ(Run({"record", "j", "a=1", "--output=json"}).out, "{\"seq\":\"12\"}\n");
}

// ---- journal ----

v1::ReplayResponse Entry(uint64_t seq) {
  v1::ReplayResponse response;
  v1::JournalEntry* entry = response.mutable_entry();
  entry->set_job("j");
  entry->set_seq(seq);
  entry->mutable_time()->set_seconds(1736330400);
  v1::Fact* fact = entry->mutable_record()->add_facts();
  fact->set_key("step");
  fact->set_value(std::to_string(seq));
  response.set_hash(std::string(32, '\x01'));
  return response;
}

TEST_F(CliTest, Journal) {
  fake().replay = {Entry(1), Entry(2)};
  Result r = Run({"journal", "j", "--since", "0"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fake().last_replay.job(), "j");
  EXPECT_FALSE(fake().last_replay.follow());
  EXPECT_EQ(r.out,
            "     1  2025-01-08T10:00:00.000Z  record              step=1\n"
            "     2  2025-01-08T10:00:00.000Z  record              step=2\n");

  Result json = Run({"journal", "j", "--since=1", "--output=json"});
  EXPECT_EQ(fake().last_replay.since_seq(), 1u);
  std::vector<v1::ReplayResponse> lines = JsonLines<v1::ReplayResponse>(json.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].entry().seq(), 2u);
  EXPECT_THAT(json.out, HasSubstr("\"entry\":{\"job\":\"j\",\"seq\":\"1\""));

  fake().replay.clear();
  fake().error = grpc::Status(grpc::StatusCode::NOT_FOUND, "job x has no journal");
  Result missing = Run({"journal", "x"});
  EXPECT_EQ(missing.code, 5);
  EXPECT_EQ(missing.err, "reproctl: job x has no journal\n");
}

TEST_F(CliTest, JournalFollowEndsCleanlyOnSigint) {
  fake().replay = {Entry(1)};
  Result result;
  std::thread cli([&] { result = Run({"journal", "j", "--follow"}); });
  absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!fake().following && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(fake().following);
  kill(getpid(), SIGINT);
  cli.join();
  EXPECT_EQ(result.code, 0);
  EXPECT_EQ(result.err, "");
  EXPECT_THAT(result.out, HasSubstr("record              step=1\n"));
  EXPECT_TRUE(fake().last_replay.follow());
  // The default disposition is back: a second follow can install its guard again.
  while (fake().following && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_FALSE(fake().following);  // the server saw the cancellation
  fake().replay.clear();
  std::thread again([&] { result = Run({"journal", "j", "--follow"}); });
  while (!fake().following && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(fake().following);
  kill(getpid(), SIGTERM);
  again.join();
  EXPECT_EQ(result.code, 0);
}

// ---- verify, node ----

TEST_F(CliTest, Verify) {
  auto key = NodeKey::LoadOrCreate(key_dir_.Path("key.pem"));
  ASSERT_TRUE(key.ok()) << key.status();
  SignedJournal journal = MakeSignedJournal(**key, "j", "node-a", 2);
  fake().replay = journal.replay;
  fake().verify.set_intact(true);
  v1::NodeJournalCheck* node = fake().verify.add_nodes();
  *node = journal.check;
  Result ok = Run({"verify", "j"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_FALSE(fake().last_verify.rehash());
  EXPECT_THAT(ok.out, HasSubstr("result   ok\n"));

  v1::Drift* drift = fake().verify.add_drift();
  drift->set_path("a.csv");
  drift->set_problem("content changed");
  fake().verify.set_rehashed(true);
  Result drifted = Run({"verify", "j", "--rehash"});
  EXPECT_TRUE(fake().last_verify.rehash());
  EXPECT_EQ(drifted.code, 4);
  EXPECT_THAT(drifted.out, HasSubstr("result   DRIFTED\n"));

  fake().verify.clear_drift();
  node->set_intact(false);
  EXPECT_EQ(Run({"verify", "j"}).code, 4);
  Result json = Run({"verify", "j", "--output=json"});
  EXPECT_EQ(json.code, 4);
  EXPECT_EQ(JsonLines<v1::VerifyJournalResponse>(json.out).size(), 1u);

  fake().verify.Clear();  // an empty reply proves nothing
  EXPECT_EQ(Run({"verify", "j"}).code, 4);
}

TEST_F(CliTest, Node) {
  fake().node.set_node("node-a");
  fake().node.set_mode("embedded");
  fake().node.set_public_key(std::string(32, '\xee'));
  Result text = Run({"node"});
  EXPECT_EQ(text.code, 0);
  EXPECT_THAT(text.out, StartsWith("node        node-a\nmode        embedded\n"));
  EXPECT_THAT(text.out, HasSubstr("public_key  " + std::string(64, 'e')));
  Result json = Run({"node", "--output=json"});
  std::vector<v1::NodeInfo> lines = JsonLines<v1::NodeInfo>(json.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].node(), "node-a");
  EXPECT_THAT(json.out, HasSubstr("\"publicKey\":\"" + std::string(64, 'e') + "\""));  // hex
  EXPECT_EQ(lines[0].public_key(), fake().node.public_key());

  fake().node.Clear();  // odd, empty reply: printed, no crash
  EXPECT_EQ(Run({"node"}).code, 0);
}

// ---- diff and export (their logic: provenance_test.cc, job_diff_test.cc) ----

// A pinned job with a journal of two entries on node-a, verified intact.
void ServeJob(FakeReproService& fake) {
  fake.get_pin.mutable_pin()->set_job("j");
  fake.get_pin.mutable_pin()->set_seed(42);
  v1::PinnedVersion* version = fake.get_pin.mutable_pin()->add_versions();
  version->set_dataset("users");
  version->set_version("v1");
  version->set_digest(std::string(32, '\x11'));
  fake.replay.clear();
  for (uint64_t seq : {1, 2}) {
    v1::ReplayResponse r;
    r.mutable_entry()->set_job("j");
    r.mutable_entry()->set_node("node-a");
    r.mutable_entry()->set_seq(seq);
    v1::Fact* fact = r.mutable_entry()->mutable_record()->add_facts();
    fact->set_key("lr");
    fact->set_value(absl::StrCat("0.0", seq));
    r.set_hash(std::string(32, static_cast<char>(seq)));
    fake.replay.push_back(r);
  }
  fake.verify.set_intact(true);
  v1::NodeJournalCheck* node = fake.verify.add_nodes();
  node->set_node("node-a");
  node->set_intact(true);
  node->mutable_head()->set_seq(2);
  node->mutable_head()->set_hash(std::string(32, '\x02'));
  node->mutable_head()->set_signature(std::string(64, '\x05'));
}

TEST_F(CliTest, ExportPrintsOneIndentedDocument) {
  ServeJob(fake());
  Result r = Run({"export", "j"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(fake().last_verify.job(), "j");
  EXPECT_FALSE(fake().last_verify.rehash());
  EXPECT_EQ(fake().last_replay.job(), "j");
  EXPECT_GT(std::count(r.out.begin(), r.out.end(), '\n'), 10);
  v1::Provenance p;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &p).ok()) << r.out;
  EXPECT_EQ(p.format(), "repro.provenance.v1");
  EXPECT_EQ(p.job(), "j");
  EXPECT_TRUE(p.journal_intact());
  EXPECT_GT(p.exported_at().seconds(), 0);
  EXPECT_EQ(p.pin().versions(0).digest(), std::string(64, '1'));
  EXPECT_EQ(p.pin().seed(), 42u);
  ASSERT_EQ(p.facts_size(), 1);
  EXPECT_EQ(p.facts(0).value(), "0.02");
  ASSERT_EQ(p.heads_size(), 1);
  EXPECT_EQ(p.heads(0).signature(), HexDigest(std::string(64, '\x05')));
  EXPECT_THAT(r.out, HasSubstr("\"journalIntact\": true"));

  Result json = Run({"export", "j", "--output=json"});
  EXPECT_EQ(json.code, 0);
  EXPECT_EQ(JsonLines<v1::Provenance>(json.out).size(), 1u);
}

TEST_F(CliTest, ExportOfABrokenJournalSaysSoAndExitsFour) {
  ServeJob(fake());
  fake().verify.mutable_nodes(0)->set_intact(false);
  Result r = Run({"export", "j", "--output=json"});
  EXPECT_EQ(r.code, 4);
  ExpectOneErrorLine(r, "the journal of job j is not intact");
  std::vector<v1::Provenance> lines = JsonLines<v1::Provenance>(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0].journal_intact());
}

TEST_F(CliTest, DiffOfTwoRunsWithTheSameRecordMatches) {
  ServeJob(fake());
  Result r = Run({"diff", "j", "k"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("j and k match (compared: data versions, files read, seeds"));
  EXPECT_EQ(fake().last_verify.job(), "");  // diff needs no signatures
  Result json = Run({"diff", "j", "k", "--output=json"});
  EXPECT_EQ(json.code, 0);
  std::vector<v1::JobDiff> lines = JsonLines<v1::JobDiff>(json.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].same());
  EXPECT_EQ(lines[0].job_b(), "k");
  EXPECT_EQ(lines[0].groups_size(), 10);
}

TEST_F(CliTest, DiffAndExportOfAnUnknownJobExitFive) {
  fake().error = grpc::Status(grpc::StatusCode::NOT_FOUND, "job x has no pin");
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"diff", "x", "y"}, {"export", "x"}}) {
    Result r = Run(args);
    EXPECT_EQ(r.code, 5) << args[0];
    ExpectOneErrorLine(r, "job x has no pin");
  }
  fake().error = grpc::Status::OK;
  Result bad = Run({"diff", "j", "bad job"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(fake().calls, 2);  // the job ids are checked before any call
}

}  // namespace
}  // namespace repro::cli
