// Replacing reproctl with the command it runs (`run`, and the isolating half of `run --isolate`).
//
//   return ExecCommand({"python", "train.py"}, {"REPRO_JOB=j", "PATH=/usr/bin"}, std::cerr);
#ifndef REPRO_CLIENT_CLI_EXEC_COMMAND_H_
#define REPRO_CLIENT_CLI_EXEC_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace repro::cli {

// execvpe(command[0], command, env): command[0] is looked up in this process's PATH. Returns only
// when that fails, after one line on `err`, with the shell's code: 127 when the program is not
// found, else 126. Precondition: command is not empty.
int ExecCommand(const std::vector<std::string>& command, const std::vector<std::string>& env,
                std::ostream& err);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_EXEC_COMMAND_H_
