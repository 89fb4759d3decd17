#include "tests/testutil/system_runtime.h"

#include <dlfcn.h>
#include <link.h>

#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testutil/subprocess.h"

namespace repro::testing {

std::string LoadedLibraryPath(const std::string& soname) {
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) handle = dlopen(soname.c_str(), RTLD_NOW);  // kept loaded
  if (handle == nullptr) return "";
  link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr || map->l_name == nullptr) {
    return "";
  }
  return map->l_name;
}

std::optional<PythonModule> SystemPythonModule(const std::string& module) {
  RunResult r =
      RunCommand({kSystemPython, "-c",
                  "import os, sys; m = __import__(sys.argv[1]); "
                  "print(m.__version__); print(os.path.dirname(os.path.dirname(m.__file__)))",
                  module});
  std::vector<std::string> lines =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(r.stdout_text), '\n');
  if (r.exit_code != 0 || lines.size() != 2) return std::nullopt;
  return PythonModule{lines[0], lines[1]};
}

}  // namespace repro::testing
