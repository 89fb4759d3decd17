// What this machine and the test process itself run with, for tests that check what reprod
// reads of real libraries and Python packages (rather than of fixtures that could agree with a
// wrong reader).
//
//   std::string libc = LoadedLibraryPath("libc.so.6");  // "/lib/x86_64-linux-gnu/libc.so.6"
//   std::optional<PythonModule> numpy = SystemPythonModule("numpy");
//   if (!numpy) GTEST_SKIP() << "no numpy in /usr/bin/python3";
#ifndef REPRO_TESTS_TESTUTIL_SYSTEM_RUNTIME_H_
#define REPRO_TESTS_TESTUTIL_SYSTEM_RUNTIME_H_

#include <optional>
#include <string>

namespace repro::testing {

// The path under which the dynamic loader loaded `soname` into this process (loading it first if
// it is not loaded yet), as dl_iterate_phdr reports it; "" when it cannot be loaded.
std::string LoadedLibraryPath(const std::string& soname);

// The system Python (DESIGN.md: /usr/bin/python3 on Debian), as a subprocess reports it.
inline constexpr char kSystemPython[] = "/usr/bin/python3";

struct PythonModule {
  std::string version;  // MODULE.__version__
  std::string site;     // the directory its top-level package lies in
};

// What kSystemPython says of the package `module`; nullopt when it cannot import it.
std::optional<PythonModule> SystemPythonModule(const std::string& module);

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_SYSTEM_RUNTIME_H_
