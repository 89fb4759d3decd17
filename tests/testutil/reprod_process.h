// ReprodProcess: a real `reprod` binary on a temporary data dir, for integration tests, with
// helpers to talk to it through real gRPC and the real `reproctl`.
//
//   TempDir dir;
//   ReprodProcess reprod(dir.path());
//   ASSERT_TRUE(reprod.Start().ok());
//   RunResult r = reprod.Ctl({"pin", "job-1", "ds@v1"});
//   std::unique_ptr<v1::Repro::Stub> stub = reprod.NewStub();
//   reprod.Kill(SIGKILL);
//   ASSERT_TRUE(reprod.Start().ok());  // same data dir
#ifndef REPRO_TESTS_TESTUTIL_REPROD_PROCESS_H_
#define REPRO_TESTS_TESTUTIL_REPROD_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "repro/v1/repro.grpc.pb.h"
#include "tests/testutil/subprocess.h"

namespace repro::testing {

struct ReprodOptions {
  std::string node_name = "test-node";
  std::vector<std::string> extra_flags;  // e.g. {"--etcd_endpoints=..."}
  RunOptions run;                         // environment of the daemon
};

// Not thread-safe.
class ReprodProcess {
 public:
  // Data dir, sockets and log live under `work_dir`, which must outlive this object.
  explicit ReprodProcess(std::string work_dir, ReprodOptions options = {});

  // Starts reprod and waits until it answers GetNodeInfo (up to 30 s). On failure the status
  // carries the end of the daemon's log.
  absl::Status Start();
  // Sends `sig` and waits for exit; returns the exit code (128 + signal when killed).
  int Kill(int sig);
  bool running() { return process_.running(); }
  pid_t pid() const { return process_.pid(); }

  std::string addr() const { return "unix:" + grpc_socket_; }
  const std::string& grpc_socket() const { return grpc_socket_; }
  const std::string& shim_socket() const { return shim_socket_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string log() const;
  // The command line Start() runs.
  std::vector<std::string> Command() const;

  std::unique_ptr<v1::Repro::Stub> NewStub() const;
  // Runs `reproctl --addr <addr> args...`, with XDG_CONFIG_HOME under the work dir (unless
  // `options` sets it), so keys pinned on first use belong to this test.
  RunResult Ctl(const std::vector<std::string>& args, const RunOptions& options = {}) const;

 private:
  const std::string work_dir_;
  const ReprodOptions options_;
  const std::string data_dir_;
  const std::string grpc_socket_;
  const std::string shim_socket_;
  const std::string log_path_;
  Process process_;
};

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_REPROD_PROCESS_H_
