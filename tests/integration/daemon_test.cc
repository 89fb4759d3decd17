// The real reprod binary on a temporary data dir, driven over real gRPC and by the real reproctl:
// register, pin, admit, record, journal, verify, durability across kill -9, bad input.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "daemon/store/chain.h"
#include "daemon/store/rocks_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/http_client.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::ReprodProcess;
using testing::RunResult;
using testing::TempDir;
using testing::WriteFileOrDie;

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFileOrDie(dir_.Path("ml/users/v1/a.csv"), "id\n1\n");
    WriteFileOrDie(dir_.Path("ml/users/v1/b/c.csv"), "id\n2\n");
    WriteFileOrDie(dir_.Path("ml/users/v2/a.csv"), "id\n1\n3\n");
    reprod_ = std::make_unique<ReprodProcess>(dir_.Path("node"));
    ASSERT_TRUE(reprod_->Start().ok());
    stub_ = reprod_->NewStub();
  }

  RunResult Ctl(const std::vector<std::string>& args) { return reprod_->Ctl(args); }

  void MustCtl(const std::vector<std::string>& args) {
    RunResult r = Ctl(args);
    ASSERT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.stdout_text << r.stderr_text;
  }

  void RegisterBoth() {
    MustCtl({"version", "add", "users", "v1", dir_.Path("ml/users/v1")});
    MustCtl({"version", "add", "users", "v2", dir_.Path("ml/users/v2")});
  }

  grpc::Status PinRpc(const std::string& job, const std::vector<std::string>& versions,
                      std::optional<uint64_t> seed, v1::PinResponse* response) {
    v1::PinRequest request;
    request.set_job(job);
    for (const std::string& v : versions) {
      v1::VersionRef* ref = request.add_versions();
      ref->set_dataset(v.substr(0, v.find('@')));
      ref->set_version(v.substr(v.find('@') + 1));
    }
    if (seed) request.set_seed(*seed);
    grpc::ClientContext context;
    return stub_->Pin(&context, request, response);
  }

  // A request recording `key`=`value` for `job`.
  static v1::RecordRequest RecordOf(const std::string& job, const std::string& key,
                                    const std::string& value) {
    v1::RecordRequest request;
    request.set_job(job);
    v1::Fact* fact = request.add_facts();
    fact->set_key(key);
    fact->set_value(value);
    return request;
  }

  grpc::Status RecordRpc(const std::string& job, const std::string& key, const std::string& value,
                         uint64_t* seq = nullptr) {
    grpc::ClientContext context;
    v1::RecordResponse response;
    grpc::Status status = stub_->Record(&context, RecordOf(job, key, value), &response);
    if (seq != nullptr) *seq = response.seq();
    return status;
  }

  std::vector<v1::ReplayResponse> Replay(const std::string& job, uint64_t since = 0) {
    v1::ReplayRequest request;
    request.set_job(job);
    request.set_since_seq(since);
    grpc::ClientContext context;
    auto reader = stub_->Replay(&context, request);
    std::vector<v1::ReplayResponse> out;
    v1::ReplayResponse response;
    while (reader->Read(&response)) out.push_back(response);
    EXPECT_TRUE(reader->Finish().ok());
    return out;
  }

  v1::VerifyJournalResponse VerifyRpc(const std::string& job) {
    v1::VerifyJournalRequest request;
    request.set_job(job);
    grpc::ClientContext context;
    v1::VerifyJournalResponse response;
    grpc::Status status = stub_->VerifyJournal(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  TempDir dir_;
  std::unique_ptr<ReprodProcess> reprod_;
  std::unique_ptr<v1::Repro::Stub> stub_;
};

TEST_F(DaemonTest, RegisterPinAdmitRecordJournalVerifyWithReproctl) {
  RegisterBoth();
  RunResult again = Ctl({"version", "add", "users", "v1", dir_.Path("ml/users/v1")});
  EXPECT_EQ(again.exit_code, 0) << again.stderr_text;

  RunResult list = Ctl({"version", "list"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_THAT(list.stdout_text, HasSubstr("v1"));
  EXPECT_THAT(list.stdout_text, HasSubstr("v2"));
  RunResult show = Ctl({"--output", "json", "version", "show", "users@v1", "--files"});
  EXPECT_EQ(show.exit_code, 0) << show.stderr_text;
  EXPECT_THAT(show.stdout_text, HasSubstr("b/c.csv"));
  EXPECT_EQ(Ctl({"version", "show", "users@v9"}).exit_code, 5);

  EXPECT_EQ(Ctl({"admit", "job-1"}).exit_code, 3);
  MustCtl({"pin", "job-1", "users@v1", "--seed", "1234"});
  EXPECT_EQ(Ctl({"pin", "job-1", "users@v1", "--seed", "1234"}).exit_code, 0);  // no-op
  RunResult conflict = Ctl({"pin", "job-1", "users@v2"});
  EXPECT_EQ(conflict.exit_code, 2);
  EXPECT_THAT(conflict.stderr_text, HasSubstr("already pinned to users@v1"));
  MustCtl({"pin", "job-2", "--like", "job-1"});
  EXPECT_EQ(Ctl({"pin", "job-3", "--like", "nope"}).exit_code, 5);
  EXPECT_EQ(Ctl({"pin", "show", "job-9"}).exit_code, 5);
  RunResult show_pin = Ctl({"--output", "json", "pin", "show", "job-2"});
  EXPECT_EQ(show_pin.exit_code, 0);
  EXPECT_THAT(show_pin.stdout_text, HasSubstr("\"1234\""));  // uint64 in protobuf JSON
  EXPECT_EQ(Ctl({"admit", "job-1"}).exit_code, 0);

  MustCtl({"record", "job-1", "git/commit=abc123", "lr=0.01"});
  RunResult journal = Ctl({"--output", "json", "journal", "job-1"});
  EXPECT_EQ(journal.exit_code, 0) << journal.stderr_text;
  EXPECT_THAT(journal.stdout_text, HasSubstr("abc123"));
  // pin, version, host facts, record
  EXPECT_EQ(std::count(journal.stdout_text.begin(), journal.stdout_text.end(), '\n'), 4);
  RunResult since = Ctl({"--output", "json", "journal", "job-1", "--since", "2"});
  EXPECT_EQ(std::count(since.stdout_text.begin(), since.stdout_text.end(), '\n'), 2);
  EXPECT_EQ(Ctl({"journal", "job-404"}).exit_code, 5);

  EXPECT_EQ(Ctl({"verify", "job-1"}).exit_code, 0);
  EXPECT_EQ(Ctl({"verify", "job-1", "--rehash"}).exit_code, 0);
  WriteFileOrDie(dir_.Path("ml/users/v1/a.csv"), "id\n9\n");
  EXPECT_EQ(Ctl({"verify", "job-1", "--rehash"}).exit_code, 4);

  RunResult node = Ctl({"--output", "json", "node"});
  EXPECT_EQ(node.exit_code, 0);
  EXPECT_THAT(node.stdout_text, HasSubstr("test-node"));
  EXPECT_THAT(node.stdout_text, HasSubstr("embedded"));
}

TEST_F(DaemonTest, AdmitRefusesWhenThePinnedDataIsGone) {
  RegisterBoth();
  MustCtl({"pin", "job-1", "users@v2"});
  EXPECT_EQ(Ctl({"admit", "job-1"}).exit_code, 0);
  std::filesystem::remove_all(dir_.Path("ml/users/v2"));
  RunResult refused = Ctl({"admit", "job-1"});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_THAT(refused.stderr_text, HasSubstr("is gone"));
  RunResult unpinned = Ctl({"admit", "job-x"});
  EXPECT_EQ(unpinned.exit_code, 3);
  EXPECT_THAT(unpinned.stderr_text, HasSubstr("reproctl pin job-x dataset@version"));
}

TEST_F(DaemonTest, ReplayFollowStreamsNewEntries) {
  RegisterBoth();
  v1::PinResponse pinned;
  ASSERT_TRUE(PinRpc("job-f", {"users@v1"}, 7, &pinned).ok());

  v1::ReplayRequest request;
  request.set_job("job-f");
  request.set_follow(true);
  grpc::ClientContext context;
  // A missing entry fails the test instead of blocking it forever.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stub_->Replay(&context, request);
  v1::ReplayResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.entry().seq(), 1u);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.entry().seq(), 2u);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_TRUE(response.entry().has_host());
  std::thread writer([this] {
    absl::SleepFor(absl::Milliseconds(200));
    EXPECT_TRUE(RecordRpc("job-f", "epoch", "1").ok());
  });
  ASSERT_TRUE(reader->Read(&response));  // blocks until the record arrives
  EXPECT_EQ(response.entry().seq(), 4u);
  EXPECT_EQ(response.entry().record().facts(0).value(), "1");
  writer.join();
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  reader->Finish();

  // The same through reproctl --follow, which must end cleanly on SIGINT.
  std::string out = dir_.Path("follow.out");
  testing::Process follow = testing::Process::Spawn(
      {testing::BinPath("reproctl"), "--addr", reprod_->addr(), "journal", "job-f", "--follow"},
      {}, out);
  ASSERT_TRUE(RecordRpc("job-f", "epoch", "2").ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline &&
         testing::ReadFileOrDie(out).find("epoch") == std::string::npos) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_THAT(testing::ReadFileOrDie(out), HasSubstr("epoch"));
  EXPECT_EQ(follow.Kill(SIGINT), 0);
}

// A stream of records written without waiting for their answers: each is answered once, in
// order, with the seq of an entry that holds it, and the journal has them in that order.
TEST_F(DaemonTest, RecordStreamAnswersEveryRecordInOrderOnceDurable) {
  RegisterBoth();
  v1::PinResponse pinned;
  ASSERT_TRUE(PinRpc("streamed", {"users@v1"}, 1, &pinned).ok());
  constexpr int kRecords = 300;
  grpc::ClientContext context;
  auto stream = stub_->RecordStream(&context);
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(stream->Write(RecordOf("streamed", "step", absl::StrCat(i))));
  }
  ASSERT_TRUE(stream->WritesDone());
  std::vector<uint64_t> seqs;
  for (v1::RecordResponse response; stream->Read(&response);) seqs.push_back(response.seq());
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kRecords));
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end());  // one entry each
  std::map<uint64_t, std::string> value_at;
  for (const v1::ReplayResponse& r : Replay("streamed")) {
    if (r.entry().has_record()) value_at[r.entry().seq()] = r.entry().record().facts(0).value();
  }
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(value_at[seqs[i]], absl::StrCat(i));
}

// The first record that fails ends the stream with its status, after the answers of the records
// before it; nothing after it is read.
TEST_F(DaemonTest, RecordStreamEndsAtTheFirstFailure) {
  RegisterBoth();
  v1::PinResponse pinned;
  ASSERT_TRUE(PinRpc("partly", {"users@v1"}, 1, &pinned).ok());
  grpc::ClientContext context;
  auto stream = stub_->RecordStream(&context);
  for (const char* value : {"1", "2", "3", "", "5", "6"}) {
    v1::RecordRequest request = RecordOf("partly", "step", value);
    if (value[0] == '\0') request.clear_facts();  // the 4th has no fact: INVALID_ARGUMENT
    stream->Write(request);  // may fail once the stream has ended
  }
  stream->WritesDone();
  int answers = 0;
  for (v1::RecordResponse response; stream->Read(&response);) ++answers;
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("at least one"));
  EXPECT_EQ(answers, 3);
  std::vector<std::string> values;
  for (const v1::ReplayResponse& r : Replay("partly")) {
    if (r.entry().has_record()) values.push_back(r.entry().record().facts(0).value());
  }
  EXPECT_EQ(values, (std::vector<std::string>{"1", "2", "3"}));
}

TEST_F(DaemonTest, AcknowledgedPinsAndRecordsSurviveKill9) {
  RegisterBoth();
  v1::PinResponse pinned;
  ASSERT_TRUE(PinRpc("base", {"users@v1"}, 1, &pinned).ok());
  // Writers hammer the daemon; whatever was acknowledged before the kill must be there after.
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  std::vector<std::string> pinned_jobs;
  std::vector<std::pair<uint64_t, std::string>> recorded;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        std::string value = absl::StrCat(w, "-", i);
        if (i % 4 == 0) {
          std::string job = absl::StrCat("job-", value);
          v1::PinResponse r;
          if (PinRpc(job, {"users@v2"}, std::nullopt, &r).ok()) {
            absl::MutexLock lock(&mu);
            pinned_jobs.push_back(job);
          }
        } else {
          uint64_t seq = 0;
          if (RecordRpc("base", "step", value, &seq).ok()) {
            absl::MutexLock lock(&mu);
            recorded.emplace_back(seq, value);
          }
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(700));
  EXPECT_EQ(reprod_->Kill(SIGKILL), 128 + SIGKILL);
  stop = true;
  for (std::thread& t : writers) t.join();
  ASSERT_GT(recorded.size(), 10u);
  ASSERT_GT(pinned_jobs.size(), 3u);

  ASSERT_TRUE(reprod_->Start().ok());
  stub_ = reprod_->NewStub();
  for (const std::string& job : pinned_jobs) {
    grpc::ClientContext context;
    v1::GetPinRequest request;
    request.set_job(job);
    v1::GetPinResponse response;
    EXPECT_TRUE(stub_->GetPin(&context, request, &response).ok()) << job << " lost";
  }
  std::vector<v1::ReplayResponse> entries = Replay("base");
  std::map<uint64_t, std::string> by_seq;
  for (const auto& e : entries) {
    if (e.entry().has_record()) by_seq[e.entry().seq()] = e.entry().record().facts(0).value();
  }
  for (const auto& [seq, value] : recorded) {
    auto it = by_seq.find(seq);
    ASSERT_NE(it, by_seq.end()) << "acknowledged entry " << seq << " lost";
    EXPECT_EQ(it->second, value);
  }
  v1::VerifyJournalResponse verify = VerifyRpc("base");
  EXPECT_TRUE(verify.intact()) << verify.nodes(0).problem();
  // And the journal keeps growing from where it was.
  EXPECT_TRUE(RecordRpc("base", "after", "restart").ok());
  EXPECT_TRUE(VerifyRpc("base").intact());
}

TEST_F(DaemonTest, TamperingWithTheStoredJournalIsReported) {
  RegisterBoth();
  v1::PinResponse pinned;
  ASSERT_TRUE(PinRpc("job-t", {"users@v1"}, 5, &pinned).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(RecordRpc("job-t", "k", absl::StrCat(i)).ok());
  ASSERT_EQ(reprod_->Kill(SIGTERM), 0);
  {
    // An "auditor-proof" edit: change a stored fact's value in place.
    auto store = RocksStore::Open({.data_dir = reprod_->data_dir()});
    ASSERT_TRUE(store.ok()) << store.status();
    // Entry 5 holds k=1 (after the pin, its version, the host facts and k=0).
    auto value = (*store)->Get(Column::kJournal, JournalKey("job-t", 5));
    ASSERT_TRUE(value.ok() && value->has_value());
    std::string edited = **value;
    size_t at = edited.rfind('1');
    ASSERT_NE(at, std::string::npos);
    edited[at] = '7';
    rocksdb::WriteBatch batch;
    batch.Put((*store)->handle(Column::kJournal), JournalKey("job-t", 5), edited);
    ASSERT_TRUE((*store)->WriteDurable(&batch).ok());
  }
  ASSERT_TRUE(reprod_->Start().ok());
  RunResult verify = Ctl({"verify", "job-t"});
  EXPECT_EQ(verify.exit_code, 4) << verify.stdout_text << verify.stderr_text;
  EXPECT_THAT(verify.stdout_text + verify.stderr_text, HasSubstr("5"));
}

TEST_F(DaemonTest, BadRequestsGetClearErrorsAndTheDaemonKeepsServing) {
  RegisterBoth();
  v1::PinResponse pinned;
  EXPECT_EQ(PinRpc("bad job", {"users@v1"}, 1, &pinned).error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(PinRpc("", {"users@v1"}, 1, &pinned).error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(PinRpc("job", {}, 1, &pinned).error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(PinRpc("job", {"users@v7"}, 1, &pinned).error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(PinRpc("job", {"Users!@v1"}, 1, &pinned).error_code(), grpc::INVALID_ARGUMENT);
  ASSERT_TRUE(PinRpc("job", {"users@v1"}, 1, &pinned).ok());
  EXPECT_EQ(RecordRpc("job", "k", std::string(100 * 1024, 'x')).error_code(),
            grpc::INVALID_ARGUMENT);
  // Bigger than gRPC's message limit: refused by the transport, the daemon is unharmed.
  EXPECT_EQ(RecordRpc("job", "k", std::string(5 * 1024 * 1024, 'x')).error_code(),
            grpc::RESOURCE_EXHAUSTED);
  EXPECT_EQ(RecordRpc("nojob", "k", "v").error_code(), grpc::NOT_FOUND);
  {
    v1::RegisterVersionRequest request;
    request.set_dataset("users");
    request.set_version("v3");
    request.set_path("not/absolute");
    grpc::ClientContext context;
    auto reader = stub_->RegisterVersion(&context, request);
    v1::RegisterVersionResponse response;
    while (reader->Read(&response)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::INVALID_ARGUMENT);
  }
  EXPECT_EQ(Ctl({"pin", "job-u", "no-at-sign"}).exit_code, 1);
  EXPECT_EQ(Ctl({"frobnicate"}).exit_code, 1);
  EXPECT_TRUE(RecordRpc("job", "k", "still serving").ok());
}

TEST_F(DaemonTest, SecondDaemonOnTheSameDataDirIsRefused) {
  std::vector<std::string> argv = reprod_->Command();
  for (std::string& arg : argv) {
    if (arg.rfind("--grpc_listen=", 0) == 0) arg = "--grpc_listen=unix:" + dir_.Path("other.sock");
  }
  RunResult second = testing::RunCommand(argv, {.timeout = absl::Seconds(30)});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.stderr_text, HasSubstr("in use by another reprod"));
  EXPECT_TRUE(reprod_->running());
}

TEST_F(DaemonTest, SigtermShutsDownCleanlyAndRemovesTheSocket) {
  EXPECT_EQ(reprod_->Kill(SIGTERM), 0);
  EXPECT_FALSE(std::filesystem::exists(reprod_->grpc_socket()));
  EXPECT_THAT(reprod_->log(), HasSubstr("stopped"));
  ASSERT_TRUE(reprod_->Start().ok());  // and starts again on the same data dir
}

TEST_F(DaemonTest, UnreachableDaemonIsExitOneWithTheAddress) {
  RunResult r = testing::RunCommand(
      {testing::BinPath("reproctl"), "--addr", "unix:" + dir_.Path("nothing.sock"), "node"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.stderr_text, HasSubstr("nothing.sock"));
}

TEST(DaemonStartTest, MetricsEndpointShowsGroupCommits) {
  TempDir dir;
  WriteFileOrDie(dir.Path("ml/users/v1/a.csv"), "id\n1\n");
  int port = testing::PickFreePort();
  ReprodProcess reprod(dir.Path("node"),
                       {.extra_flags = {absl::StrCat("--metrics_listen=127.0.0.1:", port)}});
  ASSERT_TRUE(reprod.Start().ok());
  ASSERT_EQ(reprod.Ctl({"version", "add", "users", "v1", dir.Path("ml/users/v1")}).exit_code, 0);
  ASSERT_EQ(reprod.Ctl({"pin", "job-1", "users@v1"}).exit_code, 0);
  ASSERT_EQ(reprod.Ctl({"record", "job-1", "a=1"}).exit_code, 0);
  auto response = testing::HttpFetch({.port = port}, "GET", "/metrics");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->body, HasSubstr("repro_journal_entries_total 4"));
  EXPECT_THAT(response->body, HasSubstr("repro_journal_commits_total 2"));
  EXPECT_THAT(response->body, HasSubstr("# TYPE repro_journal_commit_seconds histogram"));
}

TEST(DaemonStartTest, UnwritableDataDirIsRefused) {
  TempDir dir;
  testing::UnwritableDir ro(dir.Path("node/data"));
  if (!ro.ok()) GTEST_SKIP() << "cannot make a directory unwritable here";
  ReprodProcess reprod(dir.Path("node"));
  RunResult r = testing::RunCommand(reprod.Command(), {.timeout = absl::Seconds(30)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.stderr_text, HasSubstr("is not writable"));
}

TEST(DaemonStartTest, CorruptDataDirIsRefusedWithAdvice) {
  TempDir dir;
  {
    ReprodProcess reprod(dir.path());
    ASSERT_TRUE(reprod.Start().ok());
    ASSERT_EQ(reprod.Kill(SIGTERM), 0);
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir.Path("data"))) {
    if (entry.path().filename().string().rfind("MANIFEST-", 0) == 0) {
      WriteFileOrDie(entry.path().string(), std::string(1000, 'z'));
    }
  }
  ReprodProcess reprod(dir.path());
  RunResult r = testing::RunCommand(reprod.Command(), {.timeout = absl::Seconds(30)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.stderr_text, HasSubstr("is corrupt"));
}

}  // namespace
}  // namespace repro
