// A crash loop: a real reprod is killed with SIGKILL while writers Record into several jobs, and
// restarted on the same data dir, REPRO_CRASH_CYCLES times (default 10; the hardening issue asks
// for 100 in a local run: REPRO_CRASH_CYCLES=100 build/bin/crash_loop_test). Afterwards every
// acknowledged entry is present with its value and every job's chain verifies.
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using testing::ReprodProcess;
using testing::TempDir;
using testing::WriteFileOrDie;

constexpr int kJobs = 3;
constexpr int kWriters = 4;

int Cycles() {
  const char* cycles = std::getenv("REPRO_CRASH_CYCLES");
  return cycles != nullptr ? std::max(1, std::atoi(cycles)) : 10;
}

std::string JobName(int job) { return absl::StrCat("crash-", job); }

// job -> seq -> value of every acknowledged Record.
using Acknowledged = std::map<std::string, std::map<uint64_t, std::string>>;

// Records until `stop`, adding what reprod acknowledged to `acknowledged`.
void RecordUntil(const ReprodProcess& reprod, int writer, int cycle, const std::atomic<bool>& stop,
                 absl::Mutex* mu, Acknowledged* acknowledged) {
  std::unique_ptr<v1::Repro::Stub> stub = reprod.NewStub();
  for (int i = 0; !stop; ++i) {
    v1::RecordRequest request;
    request.set_job(JobName((writer + i) % kJobs));
    v1::Fact* fact = request.add_facts();
    fact->set_key("step");
    fact->set_value(absl::StrCat(cycle, "/", writer, "/", i));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RecordResponse response;
    if (!stub->Record(&context, request, &response).ok()) continue;  // killed under it
    absl::MutexLock lock(mu);
    auto [it, inserted] = (*acknowledged)[request.job()].emplace(response.seq(), fact->value());
    EXPECT_TRUE(inserted) << request.job() << " seq " << response.seq() << " acknowledged twice ("
                          << it->second << ", " << fact->value() << ")";
  }
}

TEST(CrashLoopTest, EveryAcknowledgedRecordSurvivesRepeatedKill9) {
  TempDir dir;
  WriteFileOrDie(dir.Path("ml/users/v1/a.csv"), "id\n1\n");
  ReprodProcess reprod(dir.Path("node"));
  ASSERT_TRUE(reprod.Start().ok());
  ASSERT_EQ(reprod.Ctl({"version", "add", "users", "v1", dir.Path("ml/users/v1")}).exit_code, 0);
  for (int job = 0; job < kJobs; ++job) {
    ASSERT_EQ(reprod.Ctl({"pin", JobName(job), "users@v1"}).exit_code, 0);
  }

  std::mt19937 random(42);  // seeded: the same kill points every run, up to scheduling
  absl::Mutex mu;
  Acknowledged acknowledged;
  const int cycles = Cycles();
  for (int cycle = 0; cycle < cycles; ++cycle) {
    if (!reprod.running()) {
      ASSERT_TRUE(reprod.Start().ok()) << "cycle " << cycle;
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back(RecordUntil, std::cref(reprod), w, cycle, std::cref(stop), &mu,
                           &acknowledged);
    }
    absl::SleepFor(absl::Milliseconds(100 + random() % 500));
    EXPECT_EQ(reprod.Kill(SIGKILL), 128 + SIGKILL);
    stop = true;
    for (std::thread& t : writers) t.join();
  }

  ASSERT_TRUE(reprod.Start().ok());
  std::unique_ptr<v1::Repro::Stub> stub = reprod.NewStub();
  size_t total = 0;
  for (int job = 0; job < kJobs; ++job) {
    const std::string name = JobName(job);
    std::map<uint64_t, std::string> stored;
    v1::ReplayRequest replay;
    replay.set_job(name);
    grpc::ClientContext replay_context;
    auto reader = stub->Replay(&replay_context, replay);
    v1::ReplayResponse response;
    while (reader->Read(&response)) {
      if (response.entry().has_record()) {
        stored[response.entry().seq()] = response.entry().record().facts(0).value();
      }
    }
    ASSERT_TRUE(reader->Finish().ok());
    for (const auto& [seq, value] : acknowledged[name]) {
      auto it = stored.find(seq);
      ASSERT_NE(it, stored.end()) << name << ": acknowledged entry " << seq << " lost";
      EXPECT_EQ(it->second, value) << name << " entry " << seq;
    }
    total += acknowledged[name].size();

    v1::VerifyJournalRequest verify;
    verify.set_job(name);
    grpc::ClientContext verify_context;
    v1::VerifyJournalResponse verified;
    ASSERT_TRUE(stub->VerifyJournal(&verify_context, verify, &verified).ok());
    EXPECT_TRUE(verified.intact()) << name << ": " << verified.nodes(0).problem();
  }
  std::printf("%d kill -9 cycles, %zu acknowledged records, all present and verified\n", cycles,
              total);
  EXPECT_GT(total, static_cast<size_t>(cycles)) << "too little load to prove anything";
}

}  // namespace
}  // namespace repro
