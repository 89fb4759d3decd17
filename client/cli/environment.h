// What reproctl takes from its process: output streams, whether stderr is a terminal (for the
// progress line), $REPRO_ADDR and the working directory. main() fills it from the process; tests
// fill it by hand.
//
//   Environment env = ProcessEnvironment();
//   return RunCli(args, env);
#ifndef REPRO_CLIENT_CLI_ENVIRONMENT_H_
#define REPRO_CLIENT_CLI_ENVIRONMENT_H_

#include <iostream>
#include <optional>
#include <ostream>
#include <string>

namespace repro::cli {

struct Environment {
  std::ostream* out = &std::cout;
  std::ostream* err = &std::cerr;
  bool stderr_is_tty = false;
  std::optional<std::string> repro_addr;  // $REPRO_ADDR when set and not empty
  std::string cwd = "/";                  // absolute
  // Where reproctl keeps node keys pinned on first use ($XDG_CONFIG_HOME/repro, else
  // $HOME/.config/repro); empty: nowhere, keys are then not pinned.
  std::string config_dir;
};

// The environment of this process (std::cout, std::cerr, isatty(2), getenv, getcwd).
Environment ProcessEnvironment();

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_ENVIRONMENT_H_
