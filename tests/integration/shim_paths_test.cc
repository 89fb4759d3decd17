// Path tricks against the real shim in real processes (shim_probe calls each wrapped function):
// "..", doubled slashes, symlinks into another version, relative paths after chdir and fchdir,
// openat with a directory fd, stdio, writes, and a forked child that reconnects on its own.
#include <filesystem>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;

class ShimPathsTest : public ShimJobTest {
 protected:
  void SetUp() override {
    ShimJobTest::SetUp();
    Pin("job-p");
    std::filesystem::create_directory_symlink(Root() + "/v2", work_ + "/to_v2");
    std::filesystem::create_directory_symlink(Root() + "/latest", work_ + "/to_latest");
    std::filesystem::create_directory_symlink(Root(), work_ + "/to_root");
  }

  // Runs shim_probe with `commands` (joined by "--") as job-p; returns its stdout lines.
  std::vector<std::string> Probe(const std::string& mode,
                                 const std::vector<std::vector<std::string>>& commands,
                                 std::string* stderr_text = nullptr) {
    std::vector<std::string> argv = {BinPath("shim_probe")};
    for (const std::vector<std::string>& command : commands) {
      argv.insert(argv.end(), command.begin(), command.end());
      argv.push_back("--");
    }
    RunResult r = RunAs("job-p", mode, argv);
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    if (stderr_text != nullptr) *stderr_text = r.stderr_text;
    return absl::StrSplit(r.stdout_text, '\n', absl::SkipEmpty());
  }

  static std::string V1(const std::string& file) {
    std::string content = Content("v1", file);
    return "OK " + content.substr(0, content.find('\n'));
  }
  static std::string V2(const std::string& file) {
    std::string content = Content("v2", file);
    return "OK " + content.substr(0, content.find('\n'));
  }
};

TEST_F(ShimPathsTest, SpellingsOfTheAliasReadThePinnedVersion) {
  const std::string& r = Root();
  EXPECT_THAT(Probe("enforce", {{"open", r + "//latest//a.csv"},
                                {"open", r + "/./latest/sub/../a.csv"},
                                {"open", r + "/latest/sub/deep/../../sub/b.csv"},
                                {"open", work_ + "/to_latest/a.csv"},
                                {"open", work_ + "/to_root/latest/sub/b.csv"},
                                {"open", work_ + "/../ml/ds/latest/a.csv"},
                                {"fopen", r + "/latest/sub/deep/c.csv"},
                                {"freopen", r + "/latest/a.csv"}}),
              ::testing::ElementsAre(V1("a.csv"), V1("a.csv"), V1("sub/b.csv"), V1("a.csv"),
                                     V1("sub/b.csv"), V1("a.csv"), V1("sub/deep/c.csv"),
                                     V1("a.csv")));
}

TEST_F(ShimPathsTest, SpellingsOfAnotherVersionAreRefused) {
  const std::string& r = Root();
  std::string err;
  EXPECT_THAT(Probe("enforce",
                    {{"open", r + "/latest/../v2/a.csv"},
                     {"open", r + "/v1/../v2/sub/b.csv"},
                     {"open", r + "//v2//a.csv"},
                     {"open", work_ + "/to_v2/a.csv"},
                     {"open", work_ + "/to_root/v2/a.csv"},
                     {"openat", r + "/v2", "a.csv"}},
                    &err),
              ::testing::Each("ERR EACCES"));
  EXPECT_THAT(err, HasSubstr("ds is pinned to v1"));
  // Record mode reads them and journals each once.
  EXPECT_THAT(Probe("record", {{"open", r + "/latest/../v2/a.csv"}, {"open", work_ + "/to_v2/a.csv"}}),
              ::testing::Each(V2("a.csv")));
  // Per file once: v2/a.csv and v2/sub/b.csv refused, v2/a.csv read in record mode; and v2
  // itself, refused as a directory to list (openat's directory).
  std::vector<v1::Violation> violations = WaitForViolations("job-p", 4);
  EXPECT_EQ(violations.size(), 4u);
  int allowed = 0;
  for (const v1::Violation& v : violations) {
    EXPECT_EQ(v.verdict(), v1::VERDICT_OTHER_VERSION);
    allowed += !v.refused();
  }
  EXPECT_EQ(allowed, 1);
}

TEST_F(ShimPathsTest, RelativePathsAfterChdirAndFchdir) {
  const std::string& r = Root();
  EXPECT_THAT(Probe("enforce", {{"chdir", r},
                                {"open", "latest/a.csv"},
                                {"open", "v2/a.csv"},
                                {"chdir", "latest/sub"},
                                {"open", "b.csv"},
                                {"open", "../a.csv"},
                                {"open", "../../v2/a.csv"},
                                {"fchdir", work_ + "/to_latest"},
                                {"open", "sub/deep/c.csv"},
                                {"chdir", work_},
                                {"open", "to_latest/a.csv"},
                                {"open", "to_v2/a.csv"}}),
              ::testing::ElementsAre("OK", V1("a.csv"), "ERR EACCES", "OK", V1("sub/b.csv"),
                                     V1("a.csv"), "ERR EACCES", "OK", V1("sub/deep/c.csv"), "OK",
                                     V1("a.csv"), "ERR EACCES"));
}

TEST_F(ShimPathsTest, OpenatWithADirectoryFd) {
  const std::string& r = Root();
  EXPECT_THAT(Probe("enforce", {{"openat", r + "/latest", "a.csv"},  // the dir open is rewritten
                                {"openat64", r + "/latest/sub", "deep/c.csv"},
                                {"openat_2", r, "latest/sub/b.csv"},
                                {"openat", r + "/v1", "../latest/a.csv"},
                                {"openat", work_, "to_latest/a.csv"},
                                {"openat", r + "/v1/sub", "../../v2/a.csv"}}),
              ::testing::ElementsAre(V1("a.csv"), V1("sub/deep/c.csv"), V1("sub/b.csv"),
                                     V1("a.csv"), V1("a.csv"), "ERR EACCES"));
}

TEST_F(ShimPathsTest, WritesUnderARoot) {
  const std::string& r = Root();
  std::string err;
  EXPECT_THAT(Probe("enforce", {{"write", r + "/latest/new.csv"}, {"creat", r + "/v1/a.csv"}},
                    &err),
              ::testing::Each("ERR EACCES"));
  EXPECT_THAT(err, HasSubstr("data versions are read-only"));
  EXPECT_EQ(ReadFileOrDie(r + "/v1/a.csv"), Content("v1", "a.csv"));
  // Record mode lets the write through, untouched (it lands where the alias points), and journals it.
  EXPECT_THAT(Probe("record", {{"write", r + "/latest/new.csv"}}), ::testing::ElementsAre("OK"));
  EXPECT_TRUE(std::filesystem::exists(r + "/v2/new.csv"));
  std::vector<v1::Violation> violations = WaitForViolations("job-p", 3);
  EXPECT_EQ(violations.back().verdict(), v1::VERDICT_WRITE);
  EXPECT_FALSE(violations.back().refused());
  // Outside the roots nothing changes.
  EXPECT_THAT(Probe("enforce", {{"write", work_ + "/out.txt"}, {"open", work_ + "/out.txt"}}),
              ::testing::ElementsAre("OK", "OK x"));
}

TEST_F(ShimPathsTest, ForkedChildReconnectsOnItsOwn) {
  EXPECT_THAT(Probe("enforce", {{"open", Root() + "/latest/a.csv"},
                                {"fork"},
                                {"open", Root() + "/latest/sub/b.csv"},
                                {"open", Root() + "/v2/a.csv"}}),
              ::testing::ElementsAre(V1("a.csv"), V1("sub/b.csv"), "ERR EACCES"));
  std::map<std::string, v1::DataOpen> opens = WaitForOpens("job-p", 2);
  std::vector<v1::ProcessStart> starts = Starts("job-p");
  ASSERT_EQ(starts.size(), 2u);
  // The two processes journal their starts from their own connections, in either order.
  const bool child_first = starts[0].parent_pid() == starts[1].pid();
  const v1::ProcessStart& parent = starts[child_first ? 1 : 0];
  const v1::ProcessStart& child = starts[child_first ? 0 : 1];
  EXPECT_EQ(child.parent_pid(), parent.pid());
  EXPECT_EQ(opens["a.csv"].pid(), parent.pid());
  EXPECT_EQ(opens["sub/b.csv"].pid(), child.pid());  // attributed to the child
}

// Counts the syscalls the shim could add to an open (path lookups, stat, pid, messages to reprod)
// in a run of shim_probe opening `paths` with `env`.
int Syscalls(const std::string& out, const std::map<std::string, std::string>& env,
             const std::vector<std::string>& paths) {
  std::vector<std::string> argv = {
      "strace", "-f", "-c", "-o", out,
      "-e", "trace=readlink,readlinkat,stat,lstat,newfstatat,fstat,statx,getpid,getcwd,sendto,"
            "sendmsg",
      BinPath("shim_probe")};
  for (const std::string& path : paths) argv.insert(argv.end(), {"open", path, "--"});
  RunOptions options;
  options.env = env;
  RunResult r = RunCommand(argv, options);
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  std::istringstream summary(ReadFileOrDie(out));
  for (std::string line; std::getline(summary, line);) {
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int calls = 0;
    if (!words.empty() && words.back() == "total" && words.size() >= 4 &&
        absl::SimpleAtoi(words[3], &calls)) {
      return calls;
    }
  }
  ADD_FAILURE() << "no total in strace's summary";
  return 0;
}

TEST_F(ShimPathsTest, RepeatedOpensCostNoExtraSyscall) {
  if (RunCommand({"strace", "-V"}).exit_code != 0) GTEST_SKIP() << "strace is not installed";
  std::vector<std::string> outside, dataset;
  for (int i = 0; i < 40; ++i) {
    outside.push_back(absl::StrCat(work_, "/outside/f", i));
    WriteFileOrDie(outside.back(), "x");
    dataset.push_back(Root() + "/latest/a.csv");
  }
  auto first = [](const std::vector<std::string>& v, size_t n) {
    return std::vector<std::string>(v.begin(), v.begin() + n);
  };
  const std::map<std::string, std::string> bare, shim = JobEnv("job-p", "record");
  const std::string out = work_ + "/strace.txt";
  // 30 more opens cost no such syscall with the shim either: only the first open of a directory
  // (and of a dataset file) costs the shim anything.
  for (const std::vector<std::string>* paths : {&outside, &dataset}) {
    int without = Syscalls(out, bare, *paths) - Syscalls(out, bare, first(*paths, 10));
    int with = Syscalls(out, shim, *paths) - Syscalls(out, shim, first(*paths, 10));
    EXPECT_EQ(with, without) << (*paths)[0];
  }
}

}  // namespace
}  // namespace repro::testing
