#include "client/cli/exec_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "client/cli/format.h"

namespace repro::cli {

int ExecCommand(const std::vector<std::string>& command, const std::vector<std::string>& env,
                std::ostream& err) {
  std::vector<char*> argv, envp;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  execvpe(argv[0], argv.data(), envp.data());
  const int error = errno;
  err << "reproctl: cannot run " << QuoteIfNeeded(command[0]) << ": " << strerror(error) << '\n';
  err.flush();
  return error == ENOENT ? 127 : 126;  // the shell's codes
}

}  // namespace repro::cli
