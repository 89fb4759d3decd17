// A fixture for tests that run real programs under the real shim against the real reprod: a
// dataset "ds" whose versions v1 and v2 are registered (v1 and v2 differ in every file; root/latest
// -> v2), helpers to pin jobs, run commands as a job, and read the job's journal over gRPC.
//
//   class ShimProgramsTest : public ShimJobTest {};
//   TEST_F(ShimProgramsTest, Cat) {
//     Pin("job-1");
//     RunResult r = RunAs("job-1", "record", {"cat", Root() + "/latest/a.csv"});
//     EXPECT_EQ(r.stdout_text, Content("v1", "a.csv"));
//     auto opens = WaitForOpens("job-1", 1);
//   }
#ifndef REPRO_TESTS_CLIENT_SHIM_SHIM_JOB_H_
#define REPRO_TESTS_CLIENT_SHIM_SHIM_JOB_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "repro/v1/journal.pb.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/subprocess.h"
#include "tests/testutil/temp_dir.h"

namespace repro::testing {

class ShimJobTest : public ::testing::Test {
 protected:
  // Files of every version, relative to the version directory.
  static const std::vector<std::string>& Files();
  // The content of `file` in `version` (differs between versions).
  static std::string Content(const std::string& version, const std::string& file);

  void SetUp() override;

  // Extra reprod flags (e.g. MetricsFlags()), read by SetUp.
  virtual std::vector<std::string> ReprodFlags() { return {}; }
  // --metrics_listen on a free local port, for ReprodFlags; then Metrics() reads /metrics.
  std::vector<std::string> MetricsFlags();
  std::string Metrics();
  // Waits up to 30 s for /metrics to hold `line` (e.g. a series and its value); a failure names
  // what it held.
  void WaitForMetric(const std::string& line);

  // The canonical dataset root: Root()/v1, Root()/v2, Root()/latest -> v2.
  const std::string& Root() const { return root_; }
  // Pins `job` to ds@`version` with seed 1234.
  void Pin(const std::string& job, const std::string& version = "v1");
  // The environment of a process of `job` under the shim in `mode`.
  std::map<std::string, std::string> JobEnv(const std::string& job, const std::string& mode);
  // Runs `argv` as a process of `job` (`extra` env added, `cwd` when not empty).
  RunResult RunAs(const std::string& job, const std::string& mode,
                  const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& extra = {},
                  const std::string& cwd = "");
  // Writes a Python script into the work directory and returns its path.
  std::string Script(const std::string& name, const std::string& code);

  // The job's journal over gRPC: this node's entries with seq > since_seq.
  std::vector<v1::JournalEntry> Journal(const std::string& job, uint64_t since_seq = 0);
  // Polls Journal(job) (reading only what is new at each look) until `done` holds; fails the
  // test after `timeout`.
  std::vector<v1::JournalEntry> WaitForJournal(
      const std::string& job, const std::function<bool(const std::vector<v1::JournalEntry>&)>& done,
      absl::Duration timeout = absl::Seconds(20));
  // Waits until the job has at least `count` DataOpen entries and returns them by relative path
  // (version/relative_path for other versions); a file journaled twice fails the test.
  std::map<std::string, v1::DataOpen> WaitForOpens(const std::string& job, size_t count);
  // Waits until the job has at least `count` Violation entries and returns them.
  std::vector<v1::Violation> WaitForViolations(const std::string& job, size_t count);
  // The job's ProcessStart entries.
  std::vector<v1::ProcessStart> Starts(const std::string& job);

  TempDir dir_;
  std::unique_ptr<ReprodProcess> reprod_;
  std::string root_;
  std::string work_;  // a scratch directory outside the dataset
  int metrics_port_ = 0;
};

}  // namespace repro::testing

#endif  // REPRO_TESTS_CLIENT_SHIM_SHIM_JOB_H_
