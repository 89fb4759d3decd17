// reprod killed and restarted under running jobs: a record-mode job finishes (one warning line),
// what it read while reprod was down is journaled once it is back; an enforce-mode job is refused
// dataset opens, with a clear reason, until reprod is back; a job started while reprod is down
// knows its pin from the environment reproctl run gives it.
#include <signal.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;

// Reads one file per step; after each it writes done<N> and waits for go<N>.
constexpr char kSteps[] = R"(import os, sys, time
root, work = sys.argv[1], sys.argv[2]
for n, name in enumerate(['a.csv', 'sub/b.csv', 'sub/deep/c.csv'], 1):
    try:
        with open(root + '/latest/' + name) as f:
            print(n, 'read', f.read().strip(), flush=True)
    except OSError as e:
        print(n, 'refused', e.errno, flush=True)
    open(f'{work}/done{n}', 'w').close()
    while not os.path.exists(f'{work}/go{n}'):
        time.sleep(0.02)
)";

class ShimRestartTest : public ShimJobTest {
 protected:
  // Starts the steps script as a process of `job`; its output goes to the returned log.
  std::string StartSteps(const std::string& job, const std::string& mode) {
    RunOptions options;
    options.env = JobEnv(job, mode);
    options.cwd = work_;
    const std::string log = work_ + "/steps.log";
    steps_ = Process::Spawn({"/usr/bin/python3", Script("steps.py", kSteps), Root(), work_},
                            options, log);
    return log;
  }

  void WaitFor(const std::string& name) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!std::filesystem::exists(work_ + "/" + name) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(std::filesystem::exists(work_ + "/" + name)) << name;
  }

  void Go(int step) { WriteFileOrDie(absl::StrCat(work_, "/go", step), ""); }

  Process steps_;
};

TEST_F(ShimRestartTest, RecordJobSurvivesAndReconnects) {
  Pin("job-r");
  const std::string log = StartSteps("job-r", "record");
  WaitFor("done1");
  WaitForOpens("job-r", 1);   // a.csv is durable before the kill
  reprod_->Kill(SIGKILL);
  Go(1);
  WaitFor("done2");           // read while reprod is down
  ASSERT_TRUE(reprod_->Start().ok()) << reprod_->log();
  Go(2);
  WaitFor("done3");
  Go(3);
  EXPECT_EQ(steps_.Wait(absl::Seconds(60)), 0);
  const std::string output = ReadFileOrDie(log);
  for (const char* line : {"1 read a.csv of v1\n", "2 read sub/b.csv of v1\n",
                           "3 read sub/deep/c.csv of v1\n"}) {
    EXPECT_THAT(output, HasSubstr(line));
  }
  // One warning for the outage, not one per open.
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 4) << output;
  EXPECT_THAT(output, HasSubstr("repro: job job-r: cannot reach reprod at"));
  // Everything it read is journaled, once, including what it read while reprod was down.
  std::map<std::string, v1::DataOpen> opens = WaitForOpens("job-r", 3);
  EXPECT_EQ(opens.size(), 3u);
  for (const char* file : {"a.csv", "sub/b.csv", "sub/deep/c.csv"}) EXPECT_EQ(opens.count(file), 1u);
}

TEST_F(ShimRestartTest, EnforceJobIsRefusedWhileReprodIsDown) {
  Pin("job-e");
  const std::string log = StartSteps("job-e", "enforce");
  WaitFor("done1");
  reprod_->Kill(SIGKILL);
  Go(1);
  WaitFor("done2");
  ASSERT_TRUE(reprod_->Start().ok()) << reprod_->log();
  absl::SleepFor(absl::Milliseconds(300));  // past the shim's retry interval
  Go(2);
  WaitFor("done3");
  Go(3);
  EXPECT_EQ(steps_.Wait(absl::Seconds(60)), 0);
  const std::string output = ReadFileOrDie(log);
  EXPECT_THAT(output, HasSubstr("1 read a.csv of v1\n"));
  EXPECT_THAT(output, HasSubstr("2 refused 13\n"));
  EXPECT_THAT(output, HasSubstr("3 read sub/deep/c.csv of v1\n"));
  EXPECT_THAT(output, HasSubstr("reprod is unreachable at " + reprod_->shim_socket() +
                                " and enforce mode needs its verdict; ds is pinned to v1"));
}

TEST_F(ShimRestartTest, JobStartedWhileReprodIsDown) {
  Pin("job-d");
  reprod_->Kill(SIGKILL);
  // What reproctl run puts in the environment: the pinned version directories.
  std::map<std::string, std::string> pinned = {{"REPRO_PINNED", "ds@v1=" + Root() + "/v1"}};
  RunResult enforce = RunAs("job-d", "enforce",
                            {BinPath("shim_probe"), "open", Root() + "/latest/a.csv", "--",
                             "open", work_ + "/steps.log.none", "--", "open", "/etc/hostname"},
                            pinned);
  EXPECT_EQ(enforce.exit_code, 0);
  EXPECT_THAT(enforce.stdout_text, ::testing::StartsWith("ERR EACCES\nERR ENOENT\nOK "));
  EXPECT_THAT(enforce.stderr_text, HasSubstr("reprod is unreachable"));
  // Record mode still reads the pinned version through the alias.
  RunResult record = RunAs("job-d", "record", {"cat", Root() + "/latest/a.csv"}, pinned);
  EXPECT_EQ(record.exit_code, 0);
  EXPECT_EQ(record.stdout_text, Content("v1", "a.csv"));
  EXPECT_THAT(record.stderr_text, HasSubstr("cannot reach reprod"));
}

}  // namespace
}  // namespace repro::testing
