// reproctl: the command line of reprod. All of it lives in repro_cli (cli.h).
#include <grpc/support/log.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/cli/cli.h"
#include "client/cli/environment.h"
#include "client/cli/isolate/isolate.h"

namespace {

// gRPC logs transport trouble (a TLS handshake, a refused connection) to stderr; reproctl reports
// each failure in one line of its own, so gRPC stays quiet unless GRPC_VERBOSITY asks otherwise.
void DropLog(gpr_log_func_args*) {}

}  // namespace

int main(int argc, char** argv) {
  // The isolating half of `run --isolate`, re-executed by reproctl itself (run_verb.cc): it must
  // stay single-threaded, so it runs before anything starts gRPC.
  if (argc >= 2 && std::string(argv[1]) == repro::cli::kIsolatedExecVerb) {
    return repro::cli::RunIsolatedExec(std::vector<std::string>(argv + 2, argv + argc), std::cerr);
  }
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function(DropLog);
  std::vector<std::string> args(argv + 1, argv + argc);
  return repro::cli::RunCli(args, repro::cli::ProcessEnvironment());
}
