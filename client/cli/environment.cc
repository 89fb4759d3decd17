#include "client/cli/environment.h"

#include <unistd.h>

#include <cstdlib>
#include <memory>

namespace repro::cli {

Environment ProcessEnvironment() {
  Environment env;
  env.stderr_is_tty = isatty(STDERR_FILENO) == 1;
  if (const char* addr = std::getenv("REPRO_ADDR"); addr != nullptr && addr[0] != '\0') {
    env.repro_addr = addr;
  }
  // getcwd(nullptr, 0) allocates a buffer of the right size (glibc).
  std::unique_ptr<char, decltype(&free)> cwd(getcwd(nullptr, 0), &free);
  if (cwd != nullptr) env.cwd = cwd.get();
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] == '/') {
    env.config_dir = std::string(xdg) + "/repro";
  } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    env.config_dir = std::string(home) + "/.config/repro";
  }
  return env;
}

}  // namespace repro::cli
