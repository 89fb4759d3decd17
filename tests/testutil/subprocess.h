// Running real programs from tests: capture their output and exit status, or keep them running
// in the background (daemons) and stop them with a chosen signal.
//
//   RunResult r = RunCommand({BinPath("reproctl"), "--addr", addr, "node"});
//   EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
//
//   Process daemon = Process::Spawn({BinPath("reprod"), "--data_dir", dir});
//   daemon.Kill(SIGKILL);
#ifndef REPRO_TESTS_TESTUTIL_SUBPROCESS_H_
#define REPRO_TESTS_TESTUTIL_SUBPROCESS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace repro::testing {

struct RunOptions {
  std::map<std::string, std::string> env;  // added to (or replacing in) the test's environment
  std::vector<std::string> unset_env;
  std::string stdin_text;
  std::string cwd;
  absl::Duration timeout = absl::Seconds(120);  // then SIGKILL; exit_code = -1, timed_out = true
};

struct RunResult {
  int exit_code = -1;  // exit status, or 128 + signal when killed by one
  bool timed_out = false;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs argv[0] (a path, or a name looked up in PATH) to completion.
RunResult RunCommand(const std::vector<std::string>& argv, const RunOptions& options = {});

// A background child process. Killed with SIGKILL on destruction if still running. Not
// thread-safe.
class Process {
 public:
  // Starts argv with stdout and stderr appended to `log_path` (empty: inherited). Aborts the
  // test binary if the program cannot be started.
  static Process Spawn(const std::vector<std::string>& argv, const RunOptions& options = {},
                       const std::string& log_path = "");
  Process() = default;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `sig` and waits up to `timeout` for exit; returns the exit code as in RunResult.
  int Kill(int sig, absl::Duration timeout = absl::Seconds(30));
  // Waits up to `timeout` for the process to exit by itself; -1 on timeout.
  int Wait(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago (for daemons that need a fixed port).
int PickFreePort();

// Absolute path of a built program (from $REPRO_BIN_DIR, set by CTest).
std::string BinPath(const std::string& name);
// Absolute path of a built library (from $REPRO_LIB_DIR).
std::string LibPath(const std::string& name);
// Absolute path of a file in the source tree (from $REPRO_SOURCE_DIR).
std::string SourcePath(const std::string& relative);

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_SUBPROCESS_H_
