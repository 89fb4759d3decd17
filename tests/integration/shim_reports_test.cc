// Reports leave a process through its report ring: whatever the process does right after an open
// (exit without destructors, fork, exec, go quiet for good) the open is journaled, and many
// processes reporting at once get every report journaled exactly once.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"
#include "tests/testutil/temp_dir.h"

namespace repro::testing {
namespace {

class ShimReportsTest : public ShimJobTest {
 protected:
  std::vector<std::string> ReprodFlags() override { return MetricsFlags(); }

  RunResult Probe(const std::string& job, const std::vector<std::string>& commands) {
    std::vector<std::string> argv = {BinPath("shim_probe")};
    argv.insert(argv.end(), commands.begin(), commands.end());
    return RunAs(job, "record", argv);
  }
  std::string Latest(const std::string& file) const { return Root() + "/latest/" + file; }
};

TEST_F(ShimReportsTest, AnOpenRightBeforeExitWithoutDestructorsIsJournaled) {
  Pin("job-exit");
  RunResult r = Probe("job-exit", {"open", Latest("a.csv"), "--", "_exit"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(WaitForOpens("job-exit", 1).count("a.csv"), 1u);
}

TEST_F(ShimReportsTest, AnOpenRightBeforeForkAndInTheForkedChildIsJournaled) {
  Pin("job-fork");
  RunResult r = Probe("job-fork", {"open", Latest("a.csv"), "--", "fork", "--", "open",
                                   Latest("sub/b.csv"), "--", "_exit"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  std::map<std::string, v1::DataOpen> opens = WaitForOpens("job-fork", 2);
  EXPECT_EQ(opens.count("a.csv"), 1u);
  EXPECT_EQ(opens.count("sub/b.csv"), 1u);
}

TEST_F(ShimReportsTest, AnOpenRightBeforeExecIsJournaled) {
  Pin("job-exec");
  RunResult r = Probe("job-exec", {"open", Latest("a.csv"), "--", "exec", "/bin/true"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(WaitForOpens("job-exec", 1).count("a.csv"), 1u);
}

TEST_F(ShimReportsTest, AProcessThatGoesQuietAfterABurstHasEveryOpenJournaled) {
  Pin("job-quiet");
  std::vector<std::string> argv = {BinPath("shim_probe")};
  for (const std::string& file : Files()) {
    argv.insert(argv.end(), {"open", Latest(file), "--"});
  }
  argv.push_back("pause");
  RunOptions options;
  options.env = JobEnv("job-quiet", "record");
  Process quiet = Process::Spawn(argv, options);
  // Journaled while the process sleeps: nothing waits for it to do anything else.
  EXPECT_EQ(WaitForOpens("job-quiet", Files().size()).size(), Files().size());
  EXPECT_TRUE(quiet.running());
  // They came through the process's report ring, not as datagrams.
  EXPECT_THAT(Metrics(),
              ::testing::HasSubstr(absl::StrCat("repro_shim_ring_reports_total ", Files().size())));
}

// In enforce mode a file reprod already verified, unchanged since, is allowed by the shim from its
// verdict index without a round trip, and its open is still journaled.
TEST_F(ShimReportsTest, EnforceAllowsVerifiedFilesLocallyAndStillJournalsThem) {
  Pin("job-warm");
  for (const std::string& file : Files()) {
    EXPECT_EQ(RunAs("job-warm", "record", {"cat", Latest(file)}).exit_code, 0);
  }
  ASSERT_EQ(WaitForOpens("job-warm", Files().size()).size(), Files().size());  // hashed, cached
  absl::SleepFor(absl::Milliseconds(50));  // past the hash cache's racy window
  Pin("job-local");
  std::vector<std::string> argv = {BinPath("shim_probe")};
  for (const std::string& file : Files()) argv.insert(argv.end(), {"open", Latest(file), "--"});
  argv.pop_back();
  RunResult r = RunAs("job-local", "enforce", argv);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(std::count(r.stdout_text.begin(), r.stdout_text.end(), '\n'),
            static_cast<long>(Files().size()));
  EXPECT_THAT(r.stdout_text, ::testing::Not(::testing::HasSubstr("ERR")));
  std::map<std::string, v1::DataOpen> opens = WaitForOpens("job-local", Files().size());
  for (const std::string& file : Files()) {
    EXPECT_EQ(opens[file].verdict(), v1::VERDICT_MATCH) << file;
  }
  EXPECT_THAT(Metrics(), ::testing::HasSubstr(
                             absl::StrCat("repro_shim_local_verdicts_total ", Files().size())));
}

// 64 processes, each of its own job, open 10,000 files each at once: each job's journal holds
// every file exactly once (WaitForOpens fails the test on a duplicate). The 64 Pythons report far
// faster than reprod can journal on two cores; a report that finds the ring, socket and backlog
// full waits for reprod to make room (backpressure) instead of being dropped.
TEST_F(ShimReportsTest, SixtyFourProcessesHaveEveryReportJournaledOnce) {
  constexpr int kProcesses = 64;
  constexpr int kFiles = 10000;
  const std::string many = dir_.Path("ml/many");
  for (int i = 0; i < kFiles; ++i) WriteFileOrDie(absl::StrCat(many, "/m1/f", i), "x");
  RunResult added = reprod_->Ctl({"version", "add", "many", "m1", many + "/m1"});
  ASSERT_EQ(added.exit_code, 0) << added.stderr_text;
  const std::string script = Script("opens.py", R"(
import os, sys
for i in range(int(sys.argv[2])):
    os.close(os.open(f"{sys.argv[1]}/f{i}", os.O_RDONLY))
)");
  std::vector<Process> processes;
  for (int p = 0; p < kProcesses; ++p) {
    const std::string job = absl::StrCat("job-many-", p);
    RunResult pinned = reprod_->Ctl({"pin", job, "many@m1"});
    ASSERT_EQ(pinned.exit_code, 0) << pinned.stderr_text;
    RunOptions options;
    options.env = JobEnv(job, "record");
    // 64 HELLOs at once to an instrumented reprod, beside other tests on 2 cores, can take longer
    // than the default 2 s; a process whose HELLO timed out keeps its reports in its backlog,
    // drops what does not fit, and the record then rightly says so (a gap: README, "A process
    // that ends without its count"). This test is about what happens to reports once they are
    // sent: all of them must be journaled, exactly once.
    options.env["REPRO_SHIM_TIMEOUT_MS"] = "20000";
    processes.push_back(
        Process::Spawn({"/usr/bin/python3", script, many + "/m1", absl::StrCat(kFiles)}, options));
  }
  for (Process& p : processes) EXPECT_EQ(p.Wait(absl::Seconds(300)), 0);
  for (int p = 0; p < kProcesses; ++p) {
    EXPECT_EQ(WaitForOpens(absl::StrCat("job-many-", p), kFiles).size(),
              static_cast<size_t>(kFiles));
  }
}

}  // namespace
}  // namespace repro::testing
