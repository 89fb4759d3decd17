// ShimServer on a real socket with the real registries and journal: HELLO and pins, verdicts,
// journal entries attributed by SO_PEERCRED, hostile datagrams, many concurrent processes.
#include "daemon/shim_socket/shim_server.h"

#include <gnu/libc-version.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/sha256.h"
#include "daemon/registry/seeds.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_socket_client.h"
#include "tests/daemon/shim_socket/shim_test_stack.h"
#include "tests/testutil/system_runtime.h"
#include "tests/testutil/temp_dir.h"

extern "C" {
#include "client/shim/pin_table.h"
}

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::CountKind;
using testing::LoadedLibraryPath;
using testing::ReadFileOrDie;
using testing::ShimSocketClient;
using testing::ShimTestStack;
using testing::WriteFileOrDie;

struct Reply {
  uint16_t type = 0;
  uint32_t request_id = 0;
  uint64_t verdict = 0;
  uint64_t allow = 0;
  std::string reason;
};

Reply Decode(const std::string& msg) {
  Reply r;
  repro_shim_header h;
  const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
  if (repro_shim_read_header(p, msg.size(), &h) != REPRO_SHIM_HEADER_OK) return r;
  r.type = h.type;
  r.request_id = h.request_id;
  size_t off = REPRO_SHIM_HEADER_SIZE;
  repro_shim_field f;
  while (repro_shim_next_field(p, msg.size(), &off, &f) == 1) {
    if (f.tag == REPRO_SHIM_F_VERDICT) repro_shim_field_u64(&f, &r.verdict);
    if (f.tag == REPRO_SHIM_F_ALLOW) repro_shim_field_u64(&f, &r.allow);
    if (f.tag == REPRO_SHIM_F_REASON) r.reason.assign(reinterpret_cast<const char*>(f.value), f.size);
  }
  return r;
}

class ShimServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pin_ = stack_.PinJob("job-1", "v1", 7);
    checker_ = std::make_unique<DataChecker>(stack_.versions.get(), CheckerFileSystem(),
                                             stack_.cache.get());
    ShimServerParts parts;
    parts.pins = stack_.pins.get();
    parts.versions = stack_.versions.get();
    parts.journal = stack_.journal.get();
    parts.checker = checker_.get();
    parts.fs = DefaultFileSystem();
    parts.hash_cache = stack_.cache.get();
    parts.metrics = &metrics_;
    ShimServerOptions options = Options();
    options.socket_path = stack_.dir.Path("run/shim.sock");
    auto server = ShimServer::Start(options, parts);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // The server's options (its socket path is set by SetUp).
  virtual ShimServerOptions Options() { return {.workers = 2}; }
  // The file system through which opened files are checked.
  virtual FileSystem* CheckerFileSystem() { return DefaultFileSystem(); }

  std::string Path() const { return server_->socket_path(); }

  static std::string HelloMsg(const std::string& job, ShimMode mode, int64_t rank = 0) {
    ShimHello hello;
    hello.job = job;
    hello.rank = rank;
    hello.claimed_pid = 4242;  // a lie: reprod must use SO_PEERCRED
    hello.nonce = 1;
    hello.mode = mode;
    hello.argv = {"train", "--epochs=1"};
    return EncodeShimHello(1, hello);
  }

  std::string OpenMsg(uint32_t id, const std::string& rel, uint32_t flags = 0) {
    ShimOpen open;
    open.dataset = "ds";
    open.flags = flags;
    open.requested_path = "latest/" + rel;
    open.opened_path = stack_.root() + "/" + rel;
    return EncodeShimOpen(id, open);
  }

  // Connects, says HELLO and checks the PIN answer.
  std::unique_ptr<ShimSocketClient> Hello(ShimMode mode, const std::string& job = "job-1") {
    auto client = std::make_unique<ShimSocketClient>(Path());
    EXPECT_TRUE(client->connected());
    EXPECT_TRUE(client->Send(HelloMsg(job, mode)));
    std::optional<std::string> pin = client->Receive();
    EXPECT_TRUE(pin.has_value());
    if (pin.has_value()) {
      EXPECT_EQ(Decode(*pin).type, REPRO_SHIM_PIN);
    }
    return client;
  }

  std::string Rendered() { return metrics_.RenderPrometheus(); }

  ShimTestStack stack_;
  v1::Pin pin_;
  Metrics metrics_;
  std::unique_ptr<DataChecker> checker_;
  std::unique_ptr<ShimServer> server_;
};

TEST_F(ShimServerTest, HelloAnswersThePinAndJournalsTheProcess) {
  ShimSocketClient client(Path());
  ASSERT_TRUE(client.Send(HelloMsg("job-1", ShimMode::kRecord, 2)));
  std::optional<std::string> msg = client.Receive();
  ASSERT_TRUE(msg.has_value());
  auto pin = std::make_unique<shim_pin>();
  ASSERT_EQ(shim_pin_from_message(pin.get(), reinterpret_cast<const uint8_t*>(msg->data()),
                                  msg->size()),
            0);
  EXPECT_EQ(pin->seed, 7u);
  EXPECT_EQ(pin->rank_seed, DeriveRankSeed(7, 2));
  ASSERT_EQ(pin->count, 1u);
  EXPECT_EQ(std::string(pin->datasets[0].root), stack_.root());
  EXPECT_STREQ(pin->datasets[0].pinned_dir, "v1");
  ASSERT_EQ(pin->datasets[0].other_count, 1u);
  EXPECT_STREQ(pin->others[pin->datasets[0].first_other], "v2");

  ASSERT_TRUE(stack_.WaitForEntries("job-1", [](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kProcessStart) == 1;
  }));
  for (const v1::JournalEntry& e : stack_.Entries("job-1")) {
    if (!e.has_process_start()) continue;
    EXPECT_EQ(e.process_start().pid(), getpid());  // SO_PEERCRED, not the claimed 4242
    EXPECT_EQ(e.process_start().uid(), getuid());
    EXPECT_EQ(e.process_start().rank(), 2);
    EXPECT_EQ(e.process_start().rank_seed(), DeriveRankSeed(7, 2));
    EXPECT_EQ(e.process_start().mode(), "record");
    EXPECT_EQ(e.process_start().exe_sha256().size(), 32u);  // this test binary, hashed
    EXPECT_THAT(e.process_start().argv(), ::testing::ElementsAre("train", "--epochs=1"));
  }
}

TEST_F(ShimServerTest, UnpinnedJobGetsAnError) {
  ShimSocketClient client(Path());
  ASSERT_TRUE(client.Send(HelloMsg("nobody", ShimMode::kEnforce)));
  std::optional<std::string> msg = client.Receive();
  ASSERT_TRUE(msg.has_value());
  Reply reply = Decode(*msg);
  EXPECT_EQ(reply.type, REPRO_SHIM_ERROR);
  EXPECT_THAT(reply.reason, HasSubstr("job nobody has no pinned data version"));
}

TEST_F(ShimServerTest, EnforceVerdictsAndJournal) {
  WriteFileOrDie(stack_.root() + "/v1/extra.csv", "not registered\n");
  std::unique_ptr<ShimSocketClient> client = Hello(ShimMode::kEnforce);
  struct Case {
    std::string rel;
    v1::Verdict verdict;
  };
  std::vector<Case> cases = {{"v1/a.csv", v1::VERDICT_MATCH},
                             {"v1/sub/b.csv", v1::VERDICT_MATCH},
                             {"v2/a.csv", v1::VERDICT_OTHER_VERSION},
                             {"v1/extra.csv", v1::VERDICT_NOT_IN_MANIFEST}};
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(client->Send(OpenMsg(100 + i, cases[i].rel)));
    std::optional<std::string> msg = client->Receive();
    ASSERT_TRUE(msg.has_value()) << cases[i].rel;
    Reply reply = Decode(*msg);
    EXPECT_EQ(reply.type, REPRO_SHIM_VERDICT);
    EXPECT_EQ(reply.request_id, 100 + i);
    EXPECT_EQ(reply.verdict, static_cast<uint64_t>(cases[i].verdict)) << cases[i].rel;
    EXPECT_EQ(reply.allow, cases[i].verdict == v1::VERDICT_MATCH) << cases[i].rel;
    if (!reply.allow) {
      EXPECT_FALSE(reply.reason.empty());
    }
  }
  ASSERT_TRUE(stack_.WaitForEntries("job-1", [](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kDataOpen) == 2 &&
           CountKind(entries, v1::JournalEntry::kViolation) == 2;
  })) << "journal: " << stack_.Entries("job-1").size() << " entries";
  for (const v1::JournalEntry& e : stack_.Entries("job-1")) {
    if (e.has_data_open()) {
      EXPECT_EQ(e.data_open().pid(), getpid());
      EXPECT_EQ(e.data_open().verdict(), v1::VERDICT_MATCH);
      EXPECT_EQ(e.data_open().sha256(),
                Sha256Of(e.data_open().relative_path() == "a.csv" ? "a of v1\n" : "b of v1\n"));
    }
    if (e.has_violation()) {
      EXPECT_TRUE(e.violation().refused());
      EXPECT_EQ(e.violation().pinned_version(), "v1");
    }
  }
}

TEST_F(ShimServerTest, RecordModeJournalsEachFileOncePerJob) {
  std::unique_ptr<ShimSocketClient> a = Hello(ShimMode::kRecord);
  std::unique_ptr<ShimSocketClient> b = Hello(ShimMode::kRecord);
  for (ShimSocketClient* client : {a.get(), b.get()}) {
    ASSERT_TRUE(client->Send(OpenMsg(0, "v1/a.csv", REPRO_SHIM_OPEN_REDIRECTED)));
    ASSERT_TRUE(client->Send(OpenMsg(0, "v2/a.csv", REPRO_SHIM_OPEN_OTHER_VERSION)));
  }
  ASSERT_TRUE(stack_.WaitForEntries("job-1", [](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kDataOpen) >= 2 &&
           CountKind(entries, v1::JournalEntry::kViolation) >= 1;
  }));
  absl::SleepFor(absl::Milliseconds(200));  // anything duplicated would have landed by now
  std::vector<v1::JournalEntry> entries = stack_.Entries("job-1");
  EXPECT_EQ(CountKind(entries, v1::JournalEntry::kDataOpen), 2);  // v1/a.csv and v2/a.csv
  EXPECT_EQ(CountKind(entries, v1::JournalEntry::kViolation), 1);
  for (const v1::JournalEntry& e : entries) {
    if (e.has_violation()) {
      EXPECT_FALSE(e.violation().refused());
    }
    if (e.has_data_open() && e.data_open().version() == "v1") {
      EXPECT_TRUE(e.data_open().redirected());
    }
  }
}

// A process that exits with an answer of reprod's unread (here its PIN) makes the kernel report
// ECONNRESET on reprod's end before the datagrams the process sent last, which are still queued:
// they are read and journaled all the same.
TEST_F(ShimServerTest, ReportsSentJustBeforeAnUnreadCloseAreJournaled) {
  constexpr int kOpens = 2000;  // far more than the socket buffers hold: the tail is unread
  {
    ShimSocketClient client(Path());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Send(HelloMsg("job-1", ShimMode::kRecord)));
    ASSERT_TRUE(client.Pending());  // the PIN answer, left unread
    for (int i = 0; i < kOpens; ++i) {
      ASSERT_TRUE(client.Send(OpenMsg(0, absl::StrCat("v1/extra", i, ".csv"))));
    }
  }  // closed with the PIN unread
  // Each file is not in the manifest: one violation each.
  EXPECT_TRUE(stack_.WaitForEntries("job-1", [&](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kViolation) == kOpens;
  }, absl::Seconds(30))) << CountKind(stack_.Entries("job-1"), v1::JournalEntry::kViolation);
}

TEST_F(ShimServerTest, AViewUseOfAnotherVersionIsAViolationNotARead) {
  std::unique_ptr<ShimSocketClient> client = Hello(ShimMode::kRecord);
  ShimOpen listed;
  listed.dataset = "ds";
  listed.flags = REPRO_SHIM_OPEN_OTHER_VERSION;
  listed.requested_path = stack_.root() + "/v2";
  listed.opened_path = stack_.root() + "/v2";
  listed.view_use = REPRO_SHIM_VIEW_LIST;
  ASSERT_TRUE(client->Send(EncodeShimOpen(0, listed)));
  ASSERT_TRUE(client->Send(OpenMsg(0, "v1/a.csv")));  // a read after it, to know it was handled
  ASSERT_TRUE(stack_.WaitForEntries("job-1", [](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kDataOpen) >= 1 &&
           CountKind(entries, v1::JournalEntry::kViolation) >= 1;
  }));
  std::vector<v1::JournalEntry> entries = stack_.Entries("job-1");
  EXPECT_EQ(CountKind(entries, v1::JournalEntry::kDataOpen), 1);  // v1/a.csv only
  for (const v1::JournalEntry& e : entries) {
    if (!e.has_violation()) continue;
    EXPECT_EQ(e.violation().verdict(), v1::VERDICT_OTHER_VERSION);
    EXPECT_FALSE(e.violation().refused());
    EXPECT_EQ(e.violation().path(), stack_.root() + "/v2");
    EXPECT_EQ(e.violation().detail(),
              "it was listed, and it belongs to another version than the pinned ds@v1");
  }
}

TEST_F(ShimServerTest, HostileDatagramsAreCountedAndServingGoesOn) {
  ShimSocketClient client(Path());
  std::string hello = HelloMsg("job-1", ShimMode::kEnforce);
  std::string wrong_version = hello;
  wrong_version[4] = 7;
  std::vector<std::string> hostile = {
      "x",                                             // truncated
      std::string(REPRO_SHIM_MAX_MESSAGE + 100, 'z'),  // oversized
      wrong_version,
      std::string(200, '\xee'),                        // garbage
      hello.substr(0, hello.size() - 3),               // cut short
      OpenMsg(5, "v1/a.csv"),                          // OPEN before HELLO
  };
  for (const std::string& datagram : hostile) ASSERT_TRUE(client.Send(datagram));
  std::optional<std::string> error = client.Receive();  // the OPEN before HELLO is answered
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(Decode(*error).type, REPRO_SHIM_ERROR);
  // The same connection still works.
  ASSERT_TRUE(client.Send(hello));
  ASSERT_TRUE(client.Receive().has_value());
  ASSERT_TRUE(client.Send(OpenMsg(6, "v1/a.csv")));
  std::optional<std::string> verdict = client.Receive();
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(Decode(*verdict).allow, 1u);
  std::string metrics = Rendered();
  for (const char* reason : {"truncated", "oversized", "bad_version", "bad_magic", "bad_length",
                             "no_hello"}) {
    EXPECT_THAT(metrics, HasSubstr(absl::StrCat("repro_shim_messages_rejected_total{reason=\"",
                                                reason, "\"} 1")))
        << reason;
  }
}

TEST_F(ShimServerTest, ServesHundredsOfProcessesAtOnce) {
  constexpr int kClients = 200;
  std::vector<std::unique_ptr<ShimSocketClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<ShimSocketClient>(Path()));
    ASSERT_TRUE(clients.back()->connected()) << i;
    ASSERT_TRUE(clients.back()->Send(HelloMsg("job-1", ShimMode::kEnforce, i)));
  }
  for (auto& client : clients) ASSERT_TRUE(client->Send(OpenMsg(9, "v1/sub/b.csv")));
  int allowed = 0;
  for (auto& client : clients) {
    ASSERT_TRUE(client->Receive().has_value());  // PIN
    std::optional<std::string> verdict = client->Receive();
    ASSERT_TRUE(verdict.has_value());
    allowed += Decode(*verdict).allow == 1;
  }
  EXPECT_EQ(allowed, kClients);
  ASSERT_TRUE(stack_.WaitForEntries("job-1", [](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kDataOpen) == 1 &&
           CountKind(entries, v1::JournalEntry::kProcessStart) >= 1;
  }));
  EXPECT_THAT(Rendered(), HasSubstr("repro_shim_connections_total 200"));
}

TEST_F(ShimServerTest, LoadedLibrariesAndPackagesAreJournaledOncePerJob) {
  const std::string libc = LoadedLibraryPath("libc.so.6");
  ASSERT_FALSE(libc.empty());
  // Without numpy in the system Python, only the library is checked.
  std::optional<testing::PythonModule> numpy = testing::SystemPythonModule("numpy");
  ShimLoaded loaded;
  loaded.libraries = {libc};
  loaded.libc_version = gnu_get_libc_version();
  if (numpy.has_value()) loaded.package_dirs = {numpy->site + "/numpy"};
  // Two processes of the job report the same, one of them twice (at its first open and at exit).
  std::unique_ptr<ShimSocketClient> a = Hello(ShimMode::kEnforce);
  std::unique_ptr<ShimSocketClient> b = Hello(ShimMode::kRecord);
  ASSERT_TRUE(a->Send(EncodeShimLoaded(0, loaded)));
  ASSERT_TRUE(a->Send(OpenMsg(7, "v1/a.csv")));  // answered while the report is described
  ASSERT_TRUE(a->Send(EncodeShimLoaded(0, loaded)));
  ASSERT_TRUE(b->Send(EncodeShimLoaded(0, loaded)));
  std::optional<std::string> verdict = a->Receive();
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(Decode(*verdict).allow, 1u);
  const int packages = numpy.has_value() ? 1 : 0;
  ASSERT_TRUE(stack_.WaitForEntries("job-1", [&](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kLibraries) == 1 &&
           CountKind(entries, v1::JournalEntry::kPythonPackages) == packages;
  }));
  server_->Stop();  // what was reported is journaled by now
  std::vector<v1::JournalEntry> entries = stack_.Entries("job-1");
  EXPECT_EQ(CountKind(entries, v1::JournalEntry::kLibraries), 1);
  EXPECT_EQ(CountKind(entries, v1::JournalEntry::kPythonPackages), packages);
  for (const v1::JournalEntry& e : entries) {
    if (e.has_libraries()) {
      EXPECT_EQ(e.libraries().pid(), getpid());  // SO_PEERCRED
      ASSERT_EQ(e.libraries().libraries_size(), 1);
      const v1::Library& library = e.libraries().libraries(0);
      EXPECT_EQ(library.soname(), "libc.so.6");
      EXPECT_EQ(library.version(), gnu_get_libc_version());
      EXPECT_EQ(library.sha256(), Sha256Of(ReadFileOrDie(libc)));
    }
    if (e.has_python_packages()) {
      ASSERT_EQ(e.python_packages().packages_size(), 1);
      EXPECT_EQ(e.python_packages().packages(0).name(), "numpy");
      EXPECT_EQ(e.python_packages().packages(0).version(), numpy->version);
    }
  }
}

TEST_F(ShimServerTest, LoadedBeforeHelloIsRejected) {
  ShimSocketClient client(Path());
  ShimLoaded loaded;
  loaded.libraries = {LoadedLibraryPath("libc.so.6")};
  ASSERT_TRUE(client.Send(EncodeShimLoaded(0, loaded)));
  ASSERT_TRUE(client.Send(HelloMsg("job-1", ShimMode::kRecord)));
  ASSERT_TRUE(client.Receive().has_value());  // the PIN: the connection goes on
  server_->Stop();
  EXPECT_EQ(CountKind(stack_.Entries("job-1"), v1::JournalEntry::kLibraries), 0);
  EXPECT_THAT(Rendered(),
              HasSubstr("repro_shim_messages_rejected_total{reason=\"no_hello\"} 1"));
}

TEST_F(ShimServerTest, ASecondReprodCannotTakeTheSocket) {
  ShimServerParts parts;
  parts.pins = stack_.pins.get();
  parts.versions = stack_.versions.get();
  parts.journal = stack_.journal.get();
  parts.checker = checker_.get();
  parts.fs = DefaultFileSystem();
  absl::StatusOr<std::unique_ptr<ShimServer>> second =
      ShimServer::Start({.socket_path = Path()}, parts);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  server_->Stop();  // a stale socket file (as after kill -9) is replaced
  ASSERT_EQ(access(Path().c_str(), F_OK), -1);
  WriteFileOrDie(stack_.dir.Path("run/other"), "");
  second = ShimServer::Start({.socket_path = Path()}, parts);
  EXPECT_TRUE(second.ok()) << second.status();
}

// The real file system, except that checking one file holds its caller until the test lets go.
class GatedFileSystem : public FileSystem {
 public:
  explicit GatedFileSystem(std::string gated) : gated_(std::move(gated)) {}
  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    if (path == gated_) {
      entered_.Notify();
      released_.WaitForNotification();
    }
    return DefaultFileSystem()->Stat(path);
  }
  absl::StatusOr<std::string> RealPath(const std::string& path) override {
    return DefaultFileSystem()->RealPath(path);
  }
  absl::StatusOr<std::vector<DirEntry>> ListDirectory(const std::string& path) override {
    return DefaultFileSystem()->ListDirectory(path);
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override {
    return DefaultFileSystem()->OpenForRead(path);
  }
  absl::Notification& entered() { return entered_; }
  void Release() {
    if (!released_.HasBeenNotified()) released_.Notify();
  }

 private:
  const std::string gated_;
  absl::Notification entered_, released_;
};

// Urgent work and bulk reports have workers each: one bulk worker, held up checking a file, keeps
// no HELLO and no verdict waiting, also on a connection whose reports wait in the bulk lane.
class ShimServerLanesTest : public ShimServerTest {
 protected:
  void TearDown() override {
    gated_fs_.Release();
    server_.reset();  // its workers are done with gated_fs_ before it goes
  }
  ShimServerOptions Options() override { return {.urgent_workers = 1, .workers = 1}; }
  FileSystem* CheckerFileSystem() override { return &gated_fs_; }
  GatedFileSystem gated_fs_{stack_.root() + "/v1/a.csv"};
};

TEST_F(ShimServerLanesTest, AVerdictDoesNotWaitBehindBulkReports) {
  std::unique_ptr<ShimSocketClient> recorder = Hello(ShimMode::kRecord);
  ASSERT_TRUE(recorder->Send(OpenMsg(0, "v1/a.csv")));  // a report: the bulk worker checks it
  ASSERT_TRUE(gated_fs_.entered().WaitForNotificationWithTimeout(absl::Seconds(10)));

  std::unique_ptr<ShimSocketClient> enforcer = Hello(ShimMode::kEnforce);  // urgent: answered
  ASSERT_TRUE(enforcer->Send(OpenMsg(0, "v1/sub/b.csv")));  // waits in the bulk lane
  ASSERT_TRUE(enforcer->Send(OpenMsg(9, "v1/sub/b.csv")));  // wants a verdict: moves it
  std::optional<std::string> msg = enforcer->Receive();
  ASSERT_TRUE(msg.has_value()) << "no verdict while the bulk worker is busy";
  EXPECT_EQ(Decode(*msg).type, REPRO_SHIM_VERDICT);
  EXPECT_EQ(Decode(*msg).request_id, 9u);
  EXPECT_EQ(Decode(*msg).allow, 1u);

  gated_fs_.Release();
  ASSERT_TRUE(stack_.WaitForEntries("job-1", [](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kDataOpen) == 2;  // a.csv, and b.csv once
  })) << "journal: " << stack_.Entries("job-1").size() << " entries";
}

// Per-uid limits: a uid over its connection cap is refused, others are not; an executable over
// max_hash_bytes is journaled unhashed, saying why.
class ShimServerLimitsTest : public ShimServerTest {
 protected:
  ShimServerOptions Options() override {
    return {.workers = 2, .max_connections_per_uid = 3, .max_hash_bytes = 1000};
  }
};

TEST_F(ShimServerLimitsTest, AUidOverItsConnectionCapIsRefusedAndOthersAreNot) {
  std::vector<std::unique_ptr<ShimSocketClient>> clients;
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<ShimSocketClient>(Path()));
    ASSERT_TRUE(clients.back()->connected());
    clients.back()->Send(HelloMsg("job-1", ShimMode::kRecord, i));  // refused ones are closed
    answered += clients.back()->Receive(/*timeout_ms=*/20000).has_value();
  }
  EXPECT_EQ(answered, 3);
  EXPECT_THAT(
      Rendered(),
      HasSubstr("repro_shim_connections_refused_total{reason=\"max_connections_per_uid\"} 2"));
  // Another uid still connects: its HELLO is answered (with an error: job-1 is not its job).
  for (const std::string& dir : {stack_.dir.path(), stack_.dir.Path("run")}) {
    ASSERT_EQ(chmod(dir.c_str(), 0755), 0) << dir;  // reachable by nobody
  }
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    ShimSocketClient other(Path());
    if (!other.Send(HelloMsg("job-1", ShimMode::kRecord))) _exit(3);
    std::optional<std::string> reply = other.Receive(20000);
    _exit(reply.has_value() && Decode(*reply).type == REPRO_SHIM_ERROR ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // A connection closed gives its place back.
  clients.front().reset();
  ASSERT_TRUE(stack_.WaitForEntries("job-1", [](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kProcessStart) >= 1;
  }));
  for (int attempt = 0; attempt < 200; ++attempt) {
    ShimSocketClient again(Path());
    again.Send(HelloMsg("job-1", ShimMode::kRecord, 9));
    if (again.Receive(20000).has_value()) return;
    usleep(50000);  // the server has not seen the close yet
  }
  ADD_FAILURE() << "a closed connection never gave its place back";
}

TEST_F(ShimServerLimitsTest, AnExecutableOverTheLimitIsJournaledUnhashed) {
  ShimHello hello;
  hello.job = "job-1";
  hello.nonce = 1;
  hello.claimed_pid = 4242;
  hello.exe = "/etc/hostname";  // a claim: never hashed, nor journaled while the kernel names one
  std::unique_ptr<ShimSocketClient> client = std::make_unique<ShimSocketClient>(Path());
  ASSERT_TRUE(client->Send(EncodeShimHello(1, hello)));
  ASSERT_TRUE(client->Receive().has_value());
  ASSERT_TRUE(stack_.WaitForEntries("job-1", [](const auto& entries) {
    return CountKind(entries, v1::JournalEntry::kProcessStart) == 1;
  }));
  for (const v1::JournalEntry& e : stack_.Entries("job-1")) {
    if (!e.has_process_start()) continue;
    EXPECT_TRUE(e.process_start().exe_sha256().empty());
    EXPECT_NE(e.process_start().exe(), "/etc/hostname");
    EXPECT_THAT(e.process_start().exe_not_hashed(), HasSubstr("not hashed: "));
    EXPECT_THAT(e.process_start().exe_not_hashed(), HasSubstr("is too large to hash"));
  }
  EXPECT_THAT(Rendered(), HasSubstr("repro_shim_exes_not_hashed_total 1"));
}

}  // namespace
}  // namespace repro
