// Who may do what, with real processes of distinct uids against the real reprod (root): an
// ordinary user pins, runs and reads their own job; other users' writes into it are refused and
// leave its journal unchanged; versions and LOADED libraries are hashed only for callers who can
// read them; on loopback TCP a caller is the uid owning their socket, also when another uid's
// socket shares its address; TCP needs mTLS off loopback and roles come from certificate
// identities.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <filesystem>
#include <map>
#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/test_certificates.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTestUser[] = "repro-authtest";

struct User {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The user this test runs ordinary commands as; created once (useradd) when missing.
User TestUser(const char* name) {
  if (getpwnam(name) == nullptr) {
    RunResult r = RunCommand(
        {"useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name});
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  }
  passwd* pw = getpwnam(name);
  if (pw == nullptr) return {};
  return {name, pw->pw_uid, pw->pw_gid};
}

class AuthTest : public ShimJobTest {
 protected:
  std::vector<std::string> ReprodFlags() override { return MetricsFlags(); }

  void SetUp() override {
    ShimJobTest::SetUp();
    if (HasFatalFailure()) return;
    user_ = TestUser(kTestUser);
    nobody_ = TestUser("nobody");
    ASSERT_NE(user_.uid, 0u);
    // mkdtemp made the test's directory 0700; its files are 0644 and directories 0755.
    chmod(dir_.path().c_str(), 0755);
  }

  // Runs `argv` as `user` (setpriv: real and effective ids, the user's groups).
  RunResult As(const User& user, std::vector<std::string> argv, RunOptions options = {}) {
    std::vector<std::string> full = {"setpriv", absl::StrCat("--reuid=", user.uid),
                                     absl::StrCat("--regid=", user.gid), "--init-groups"};
    full.insert(full.end(), argv.begin(), argv.end());
    if (options.cwd.empty()) options.cwd = work_;
    return RunCommand(full, options);
  }
  RunResult CtlAs(const User& user, std::vector<std::string> args) {
    return CtlOver(reprod_->addr(), user, std::move(args));
  }
  // reproctl as `user`, to reprod at `addr`.
  RunResult CtlOver(const std::string& addr, const User& user, std::vector<std::string> args) {
    args.insert(args.begin(), {BinPath("reproctl"), "--addr", addr});
    return As(user, std::move(args));
  }

  // `user` pins `job` to ds@v1 and runs one process of it under the shim, which reads a.csv.
  void PinAndRun(const User& user, const std::string& job) {
    RunResult pin = CtlAs(user, {"pin", job, "ds@v1", "--seed", "7"});
    ASSERT_EQ(pin.exit_code, 0) << pin.stderr_text;
    RunOptions options;
    options.unset_env = {"REPRO_SHIM_SOCKET", "LD_PRELOAD", "REPRO_RANK_SEED", "RANK"};
    options.env = {{"REPRO_SHIM_LIB", LibPath("libreproshim.so")}};
    RunResult run = As(user,
                       {BinPath("reproctl"), "--addr", reprod_->addr(), "run", "--job", job, "--",
                        "/bin/cat", Root() + "/latest/a.csv"},
                       options);
    ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_EQ(run.stdout_text, Content("v1", "a.csv"));
    WaitForOpens(job, 1);
    // The libraries cat reported are journaled in the background: wait for them too, so the
    // journal holds still from here on.
    WaitForJournal(job, [](const std::vector<v1::JournalEntry>& entries) {
      for (const v1::JournalEntry& e : entries) {
        if (e.has_libraries()) return true;
      }
      return false;
    });
  }

  User user_;
  User nobody_;
};

TEST_F(AuthTest, AnOrdinaryUserPinsRunsReadsAndVerifiesTheirJob) {
  PinAndRun(user_, "job-u");
  std::vector<v1::ProcessStart> starts = Starts("job-u");
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].uid(), user_.uid);

  RunResult show = CtlAs(user_, {"pin", "show", "job-u", "--output", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.stderr_text;
  EXPECT_THAT(show.stdout_text, HasSubstr(absl::StrCat("\"owner\":\"uid:", user_.uid, "\"")));
  RunResult journal = CtlAs(user_, {"journal", "job-u"});
  EXPECT_EQ(journal.exit_code, 0) << journal.stderr_text;
  EXPECT_THAT(journal.stdout_text, HasSubstr("a.csv"));
  RunResult verify = CtlAs(user_, {"verify", "job-u"});
  EXPECT_EQ(verify.exit_code, 0) << verify.stdout_text << verify.stderr_text;
  // Pinning it again (the same pin) is the owner's no-op.
  EXPECT_EQ(CtlAs(user_, {"pin", "job-u", "ds@v1", "--seed", "7"}).exit_code, 0);
}

TEST_F(AuthTest, OnlyAnAdminPinsOnBehalfOfAnotherOwner) {
  RunResult forged = CtlAs(user_, {"pin", "job-o", "ds@v1", "--owner", "uid:0"});
  EXPECT_EQ(forged.exit_code, 6) << forged.stderr_text;
  const std::string owner = absl::StrCat("uid:", user_.uid);
  RunResult bad = reprod_->Ctl({"pin", "job-k", "ds@v1", "--owner", "alice"});
  EXPECT_EQ(bad.exit_code, 1) << bad.stderr_text;  // not an owner string
  RunResult pinned = reprod_->Ctl({"pin", "job-k", "ds@v1", "--owner", owner});
  ASSERT_EQ(pinned.exit_code, 0) << pinned.stderr_text;
  EXPECT_EQ(CtlAs(user_, {"record", "job-k", "commit=abc"}).exit_code, 0);
  EXPECT_EQ(CtlAs(nobody_, {"record", "job-k", "commit=abc"}).exit_code, 6);
}

TEST_F(AuthTest, OtherUsersCannotWriteIntoOrReadAJob) {
  PinAndRun(user_, "job-u");
  const std::vector<v1::JournalEntry> before = Journal("job-u");

  RunResult record = CtlAs(nobody_, {"record", "job-u", "commit=forged"});
  EXPECT_EQ(record.exit_code, 6) << record.stderr_text;
  EXPECT_THAT(record.stderr_text, HasSubstr(absl::StrCat("belongs to uid:", user_.uid)));
  RunResult streamed =
      As(nobody_, {BinPath("record_stream_call"), reprod_->addr(), "job-u", "5"});
  EXPECT_EQ(streamed.exit_code, 2) << streamed.stdout_text << streamed.stderr_text;
  EXPECT_THAT(streamed.stdout_text, HasSubstr("0 answered, status 7 "));  // PERMISSION_DENIED

  RunResult pin = CtlAs(nobody_, {"pin", "job-u", "ds@v1", "--seed", "7"});
  EXPECT_EQ(pin.exit_code, 6) << pin.stderr_text;

  // A process of nobody claiming the job through the shim: its HELLO is refused. (The shim's
  // environment is set after setpriv, which runs as root until it drops to nobody.)
  std::vector<std::string> shimmed_argv = {"/usr/bin/env"};
  for (const auto& [key, value] : JobEnv("job-u", "record")) {
    shimmed_argv.push_back(key + "=" + value);
  }
  shimmed_argv.insert(shimmed_argv.end(), {"/bin/cat", Root() + "/latest/a.csv"});
  RunOptions options;
  options.unset_env = {"REPRO_PINNED", "REPRO_RANK_SEED", "RANK", "REPRO_RANK"};
  RunResult shimmed = As(nobody_, shimmed_argv, options);
  EXPECT_EQ(shimmed.exit_code, 0) << shimmed.stderr_text;  // record mode: the process runs on
  WaitForMetric("repro_denied_total{reason=\"not_owner\",rpc=\"ShimHello\"}");
  RunResult sender =
      As(nobody_, {BinPath("shim_loaded_sender"), reprod_->shim_socket(), "job-u", "/bin/cat"});
  EXPECT_EQ(sender.exit_code, 3) << sender.stderr_text;

  for (const char* verb : {"journal", "verify"}) {
    RunResult read = CtlAs(nobody_, {verb, "job-u"});
    EXPECT_EQ(read.exit_code, 6) << verb << ": " << read.stderr_text;
  }
  RunResult unknown = CtlAs(nobody_, {"journal", "no-such-job"});
  EXPECT_EQ(unknown.exit_code, 5) << unknown.stderr_text;

  std::vector<v1::JournalEntry> after = Journal("job-u");
  ASSERT_EQ(after.size(), before.size()) << after.back().DebugString();
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("repro_denied_total{reason=\"not_owner\",rpc=\"Record\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("repro_denied_total{reason=\"not_owner\",rpc=\"RecordStream\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("repro_denied_total{reason=\"not_owner\",rpc=\"Pin\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("repro_denied_total{reason=\"not_owner_or_auditor\",rpc=\"Replay\"} 1"));
}

TEST_F(AuthTest, RegisteringAVersionNeedsReadAccessToAllOfIt) {
  WriteFileOrDie(dir_.Path("private/v1/a.csv"), "secret");
  chmod(dir_.Path("private/v1").c_str(), 0700);
  RunResult refused = CtlAs(user_, {"version", "add", "priv", "v1", dir_.Path("private/v1")});
  EXPECT_EQ(refused.exit_code, 6) << refused.stderr_text;
  EXPECT_THAT(refused.stderr_text, HasSubstr("may not read"));
  RunResult list = reprod_->Ctl({"version", "list"});
  EXPECT_THAT(list.stdout_text, Not(HasSubstr("priv")));
  // What the user can read, they may register.
  WriteFileOrDie(dir_.Path("mine/v1/a.csv"), "public");
  RunResult allowed = CtlAs(user_, {"version", "add", "mine", "v1", dir_.Path("mine/v1")});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.stderr_text;
  EXPECT_THAT(Metrics(),
              HasSubstr("repro_denied_total{reason=\"unreadable\",rpc=\"RegisterVersion\"} 1"));
}

TEST_F(AuthTest, LoadedLibrariesAreHashedOnlyWhenTheProcessCouldReadThem) {
  PinAndRun(user_, "job-l");
  WriteFileOrDie(dir_.Path("secret/libsecret.so.1"), "root only");
  chmod(dir_.Path("secret").c_str(), 0700);
  WriteFileOrDie(dir_.Path("public/libpublic.so.1"), "everyone");
  RunResult sender =
      As(user_, {BinPath("shim_loaded_sender"), reprod_->shim_socket(), "job-l",
                 dir_.Path("secret/libsecret.so.1"), dir_.Path("public/libpublic.so.1")});
  ASSERT_EQ(sender.exit_code, 0) << sender.stderr_text;
  auto has_library = [](const std::vector<v1::JournalEntry>& entries, const std::string& name) {
    for (const v1::JournalEntry& e : entries) {
      for (const v1::Library& l : e.libraries().libraries()) {
        if (l.path().find(name) != std::string::npos) return true;
      }
    }
    return false;
  };
  std::vector<v1::JournalEntry> entries = WaitForJournal(
      "job-l", [&](const auto& entries) { return has_library(entries, "libpublic"); });
  EXPECT_FALSE(has_library(entries, "libsecret"));
  EXPECT_THAT(Metrics(),
              HasSubstr("repro_denied_total{reason=\"unreadable\",rpc=\"ShimLoaded\"} 1"));
}

// reprod also serving plain TCP on loopback, IPv4 and IPv6: a caller is the uid owning their
// socket, which reprod finds by the connection's address pair.
class AuthLoopbackTcpTest : public AuthTest {
 protected:
  std::vector<std::string> ReprodFlags() override {
    std::vector<std::string> flags = AuthTest::ReprodFlags();
    v4_ = absl::StrCat("127.0.0.1:", PickFreePort());
    v6_ = absl::StrCat("[::1]:", PickFreePort());
    flags.push_back(absl::StrCat("--grpc_listen=unix:", dir_.Path("node"), "/reprod.sock,", v4_,
                                 ",", v6_));
    return flags;
  }

  std::string v4_;
  std::string v6_;
};

TEST_F(AuthLoopbackTcpTest, ACallerIsTheUidOwningTheirSocket) {
  RunResult pin = CtlOver(v4_, user_, {"pin", "job-t", "ds@v1"});
  ASSERT_EQ(pin.exit_code, 0) << pin.stderr_text;
  RunResult show = reprod_->Ctl({"pin", "show", "job-t", "--output", "json"});
  EXPECT_THAT(show.stdout_text, HasSubstr(absl::StrCat("\"owner\":\"uid:", user_.uid, "\"")));
  RunResult record = CtlOver(v6_, user_, {"record", "job-t", "over=ipv6"});
  EXPECT_EQ(record.exit_code, 0) << record.stderr_text;

  for (const std::string& addr : {v4_, v6_}) {
    RunResult forged = CtlOver(addr, nobody_, {"record", "job-t", "by=nobody"});
    EXPECT_EQ(forged.exit_code, 6) << addr << ": " << forged.stderr_text;
    EXPECT_THAT(forged.stderr_text, HasSubstr(absl::StrCat("belongs to uid:", user_.uid)));
    RunResult read = CtlOver(addr, nobody_, {"journal", "job-t"});
    EXPECT_EQ(read.exit_code, 6) << addr << ": " << read.stderr_text;
  }
  RunResult journal = reprod_->Ctl({"journal", "job-t"});
  EXPECT_THAT(journal.stdout_text, HasSubstr("over=ipv6"));
  EXPECT_THAT(journal.stdout_text, Not(HasSubstr("by=nobody")));
}

// Nobody calls reprod from a local address that root's sockets hold too, each connected elsewhere
// (SO_REUSEADDR here; on a busy node, ephemeral ports shared between connections to different
// peers): reprod takes the caller for nobody, never root. reproctl cannot choose its address, so
// its calls go through tcp_relay, run as the uid under test.
TEST_F(AuthLoopbackTcpTest, AnotherUidsSocketOnTheCallersAddressIsNotTheCaller) {
  Pin("job-r");  // root's job
  // Root's sockets, all from one local address, to listeners of this test.
  constexpr int kRootSockets = 8;
  std::vector<int> fds;
  absl::Cleanup close_fds = [&fds] {
    for (int fd : fds) close(fd);
  };
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < kRootSockets; ++i) {
    sockaddr_in to = from;
    to.sin_port = 0;
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof(to);
    fds.push_back(listener);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    ASSERT_EQ(listen(listener, 1), 0);
    ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&to), &len), 0);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fds.push_back(fd);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)), 0) << strerror(errno);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0) << strerror(errno);
    len = sizeof(from);
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&from), &len), 0);  // the shared port
  }
  const std::string shared_port = absl::StrCat(ntohs(from.sin_port));
  const std::string reprod_port = v4_.substr(v4_.rfind(':') + 1);

  // Records `fact` into root's job through a relay run as `user` from the shared address.
  auto record_through_relay = [&](const User& user, const std::string& fact) {
    const std::string log = dir_.Path("relay-" + user.name + ".log");
    Process relay = Process::Spawn(
        {"setpriv", absl::StrCat("--reuid=", user.uid), absl::StrCat("--regid=", user.gid),
         "--clear-groups", BinPath("tcp_relay"), shared_port, reprod_port},
        {}, log);
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::string text;
    while (!absl::StrContains(text = ReadFileOrDie(log), "listening on ") &&
           relay.running() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    std::string relay_port(absl::StripAsciiWhitespace(text.substr(text.find("on ") + 3)));
    RunResult r = RunCommand({BinPath("reproctl"), "--addr", "127.0.0.1:" + relay_port,
                              "--timeout=20s", "record", "job-r", fact});
    relay.Kill(SIGKILL);
    return r;
  };
  RunResult forged = record_through_relay(nobody_, "by=nobody");
  EXPECT_EQ(forged.exit_code, 6) << forged.stderr_text;
  EXPECT_THAT(forged.stderr_text, HasSubstr("belongs to uid:0"));
  // The same path as root is root: the relay carries the call, and its socket decides.
  RunResult owner = record_through_relay({"root", 0, 0}, "by=root");
  EXPECT_EQ(owner.exit_code, 0) << owner.stderr_text;
  RunResult journal = reprod_->Ctl({"journal", "job-r"});
  EXPECT_THAT(journal.stdout_text, HasSubstr("by=root"));
  EXPECT_THAT(journal.stdout_text, Not(HasSubstr("by=nobody")));
}

TEST(AuthTcpTest, ANonLoopbackListenerWithoutMtlsRefusesToStart) {
  TempDir dir;
  for (std::vector<std::string> tls : std::vector<std::vector<std::string>>{{}, {"--tls_cert=x"}}) {
    std::vector<std::string> argv = {BinPath("reprod"), "--data_dir=" + dir.Path("data"),
                                     "--grpc_listen=0.0.0.0:0", "--shim_socket="};
    argv.insert(argv.end(), tls.begin(), tls.end());
    RunResult r = RunCommand(argv, {.timeout = absl::Seconds(60)});
    EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
    EXPECT_THAT(r.stderr_text, HasSubstr(tls.empty() ? "needs mTLS" : "--tls_key"));
  }
}

// reprod serving TCP with mTLS on every address; "ci-admin" is an admin identity.
class AuthMtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestKeyPair> ca = MakeTestCa(dir_.path(), "ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *ca;
    absl::StatusOr<TestKeyPair> server =
        MakeTestLeaf(ca_, dir_.path(), "server", "localhost", kLocalServerSans);
    ASSERT_TRUE(server.ok()) << server.status();
    for (const char* name : {"ci-admin", "ci-user"}) {
      absl::StatusOr<TestKeyPair> client = MakeTestLeaf(ca_, dir_.path(), name, name, "");
      ASSERT_TRUE(client.ok()) << client.status();
      clients_[name] = *client;
    }
    absl::StatusOr<TestKeyPair> rogue_ca = MakeTestCa(dir_.path(), "rogue");
    ASSERT_TRUE(rogue_ca.ok()) << rogue_ca.status();
    absl::StatusOr<TestKeyPair> intruder =
        MakeTestLeaf(*rogue_ca, dir_.path(), "intruder", "ci-admin", "");
    ASSERT_TRUE(intruder.ok()) << intruder.status();
    clients_["intruder"] = *intruder;

    WriteFileOrDie(dir_.Path("ml/ds/v1/a.csv"), "1,2\n");
    port_ = PickFreePort();
    const std::string work = dir_.Path("node");
    reprod_ = std::make_unique<ReprodProcess>(
        work,
        ReprodOptions{.extra_flags = {
                          absl::StrCat("--grpc_listen=unix:", work, "/reprod.sock,0.0.0.0:", port_),
                          "--tls_cert=" + server->cert, "--tls_key=" + server->key,
                          "--tls_client_ca=" + ca_.cert, "--admin_identities=ci-admin"}});
    absl::Status started = reprod_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  // reproctl over TCP with the client certificate `name`.
  RunResult Ctl(const std::string& name, std::vector<std::string> args) {
    const TestKeyPair& client = clients_[name];
    std::vector<std::string> argv = {
        BinPath("reproctl"),       absl::StrCat("--addr=localhost:", port_),
        "--tls_ca=" + ca_.cert,    "--tls_cert=" + client.cert,
        "--tls_key=" + client.key, "--timeout=20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  TempDir dir_;
  TestKeyPair ca_;
  std::map<std::string, TestKeyPair> clients_;
  int port_ = 0;
  std::unique_ptr<ReprodProcess> reprod_;
};

TEST_F(AuthMtlsTest, AClientCertificateOfAnotherCaIsRefused) {
  RunResult trusted = Ctl("ci-user", {"node"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.stderr_text;
  RunResult intruder = Ctl("intruder", {"node"});  // its CN says ci-admin, its CA is not ours
  EXPECT_EQ(intruder.exit_code, 1) << intruder.stdout_text;
  EXPECT_THAT(reprod_->Ctl({"version", "list"}).stdout_text, Not(HasSubstr("ds")));
}

TEST_F(AuthMtlsTest, OnlyAnAdminIdentityRegistersAndOwnersAreCertificates) {
  const std::string path = dir_.Path("ml/ds/v1");
  RunResult user = Ctl("ci-user", {"version", "add", "ds", "v1", path});
  EXPECT_EQ(user.exit_code, 6) << user.stderr_text;
  EXPECT_THAT(user.stderr_text, HasSubstr("admin"));
  RunResult admin = Ctl("ci-admin", {"version", "add", "ds", "v1", path});
  EXPECT_EQ(admin.exit_code, 0) << admin.stderr_text;

  ASSERT_EQ(Ctl("ci-user", {"pin", "job-c", "ds@v1"}).exit_code, 0);
  RunResult show = Ctl("ci-user", {"pin", "show", "job-c", "--output", "json"});
  EXPECT_THAT(show.stdout_text, HasSubstr("\"owner\":\"cert:ci-user\""));
  EXPECT_EQ(Ctl("ci-user", {"record", "job-c", "commit=abc"}).exit_code, 0);
  EXPECT_EQ(Ctl("ci-admin", {"record", "job-c", "by=admin"}).exit_code, 0);
  EXPECT_EQ(Ctl("ci-admin", {"journal", "job-c"}).exit_code, 0);
}

}  // namespace
}  // namespace repro::testing
