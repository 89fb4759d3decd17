// The contract of libreproshim.so as a file: it needs only libc (and libdl), exports exactly the
// libc functions it wraps, carries no C++ runtime, and stays out of the way without a job.
#include <set>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/subprocess.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::set<std::string> Words(const std::string& text, int column) {
  std::set<std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string word;
    for (int i = 0; i <= column && (words >> word); ++i) {
      if (i == column) out.insert(word.substr(0, word.find('@')));
    }
  }
  return out;
}

TEST(ShimLibraryTest, NeedsOnlyLibc) {
  RunResult r = RunCommand({"readelf", "-d", LibPath("libreproshim.so")});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::istringstream lines(r.stdout_text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("(NEEDED)") == std::string::npos) continue;
    EXPECT_TRUE(line.find("[libc.so.6]") != std::string::npos ||
                line.find("[libdl.so.2]") != std::string::npos)
        << line;
  }
}

TEST(ShimLibraryTest, ExportsExactlyTheWrappedFunctions) {
  RunResult r = RunCommand({"nm", "-D", "--defined-only", LibPath("libreproshim.so")});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(Words(r.stdout_text, 2),
            (std::set<std::string>{"open", "open64", "__open", "__open64", "openat", "openat64",
                                   "__open_2", "__open64_2", "__openat_2", "__openat64_2", "creat",
                                   "creat64", "fopen", "fopen64", "freopen", "freopen64", "chdir",
                                   "fchdir",
                                   // the end of a process without destructors (issue 13)
                                   "_exit", "_Exit",
                                   // the view (view_wrappers.c)
                                   "stat", "stat64", "lstat", "lstat64", "fstatat", "fstatat64",
                                   "statx", "__xstat", "__xstat64", "__lxstat", "__lxstat64",
                                   "__fxstatat", "__fxstatat64", "getxattr", "lgetxattr",
                                   "listxattr", "llistxattr", "access", "faccessat", "euidaccess",
                                   "eaccess", "readlink", "readlinkat", "__readlink_chk",
                                   "__readlinkat_chk", "realpath", "__realpath_chk",
                                   "canonicalize_file_name", "opendir", "scandir", "scandir64",
                                   "execve", "execv", "execvp", "execvpe"}));
}

TEST(ShimLibraryTest, CarriesNoCxxRuntime) {
  RunResult r = RunCommand({"nm", "-D", "--undefined-only", LibPath("libreproshim.so")});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  for (const std::string& symbol : Words(r.stdout_text, 1)) {
    EXPECT_FALSE(symbol.rfind("_Z", 0) == 0 || symbol.rfind("_Unwind", 0) == 0 ||
                 symbol.rfind("__gxx", 0) == 0 ||
                 (symbol.rfind("__cxa", 0) == 0 && symbol != "__cxa_finalize"))
        << symbol;
    EXPECT_NE(symbol, "malloc") << "the shim must not allocate";
  }
}

TEST(ShimLibraryTest, StaysOutOfTheWayWithoutAJob) {
  RunOptions options;
  options.env = {{"LD_PRELOAD", LibPath("libreproshim.so")}};
  options.unset_env = {"REPRO_JOB"};
  RunResult r = RunCommand({"cat", "/etc/hostname"}, options);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, IsEmpty());
}

TEST(ShimLibraryTest, OneWarningWhenReprodIsAbsent) {
  RunOptions options;
  options.env = {{"LD_PRELOAD", LibPath("libreproshim.so")},
                 {"REPRO_JOB", "job-1"},
                 {"REPRO_SHIM_SOCKET", "/nonexistent/shim.sock"}};
  RunResult r = RunCommand({"sh", "-c", "cat /etc/hostname /etc/hostname >/dev/null; echo done"},
                           options);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "done\n");
  // One line per process (sh and cat), not one per open.
  EXPECT_EQ(std::count(r.stderr_text.begin(), r.stderr_text.end(), '\n'), 2) << r.stderr_text;
  EXPECT_THAT(r.stderr_text, HasSubstr("cannot reach reprod at /nonexistent/shim.sock"));
}

TEST(ShimLibraryTest, InvalidJobIdIsRefusedOnce) {
  RunOptions options;
  options.env = {{"LD_PRELOAD", LibPath("libreproshim.so")}, {"REPRO_JOB", "bad job!"}};
  RunResult r = RunCommand({"cat", "/etc/hostname"}, options);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("is not a valid job id"));
}

}  // namespace
}  // namespace repro::testing
