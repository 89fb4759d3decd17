#include "tests/testutil/reprod_process.h"

#include <filesystem>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testutil/temp_dir.h"

namespace repro::testing {

ReprodProcess::ReprodProcess(std::string work_dir, ReprodOptions options)
    : work_dir_(std::move(work_dir)),
      options_(std::move(options)),
      data_dir_(work_dir_ + "/data"),
      grpc_socket_(work_dir_ + "/reprod.sock"),
      shim_socket_(work_dir_ + "/shim.sock"),
      log_path_(work_dir_ + "/reprod.log") {}

std::vector<std::string> ReprodProcess::Command() const {
  std::vector<std::string> argv = {BinPath("reprod"),
                                   "--data_dir=" + data_dir_,
                                   "--grpc_listen=" + addr(),
                                   "--shim_socket=" + shim_socket_,
                                   "--node_name=" + options_.node_name,
                                   "--log_level=debug"};
  argv.insert(argv.end(), options_.extra_flags.begin(), options_.extra_flags.end());
  return argv;
}

absl::Status ReprodProcess::Start() {
  std::filesystem::create_directories(work_dir_);
  process_ = Process::Spawn(Command(), options_.run, log_path_);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (!process_.running()) {
      return absl::InternalError(absl::StrCat("reprod exited during start; log:\n", log()));
    }
    // A fresh channel per attempt: a channel that failed once waits out gRPC's reconnect backoff.
    if (std::filesystem::exists(grpc_socket_)) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
      v1::NodeInfo info;
      if (NewStub()->GetNodeInfo(&context, v1::GetNodeInfoRequest(), &info).ok()) {
        return absl::OkStatus();
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("reprod did not answer in 30s; log:\n", log()));
}

int ReprodProcess::Kill(int sig) { return process_.Kill(sig); }

std::string ReprodProcess::log() const {
  std::string text = ReadFileOrDie(log_path_);
  constexpr size_t kTail = 8000;
  return text.size() > kTail ? text.substr(text.size() - kTail) : text;
}

std::unique_ptr<v1::Repro::Stub> ReprodProcess::NewStub() const {
  return v1::Repro::NewStub(grpc::CreateChannel(addr(), grpc::InsecureChannelCredentials()));
}

RunResult ReprodProcess::Ctl(const std::vector<std::string>& args,
                             const RunOptions& options) const {
  std::vector<std::string> argv = {BinPath("reproctl"), "--addr", addr()};
  argv.insert(argv.end(), args.begin(), args.end());
  // Keys reproctl pins on first use stay with this test, not in the user's ~/.config.
  RunOptions with_config = options;
  with_config.env.emplace("XDG_CONFIG_HOME", work_dir_ + "/reproctl-config");
  return RunCommand(argv, with_config);
}

}  // namespace repro::testing
