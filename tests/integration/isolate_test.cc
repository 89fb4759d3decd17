// `reproctl run --isolate`: the job runs in a private mount namespace where the dataset root
// shows only the pinned version. A statically linked busybox (which the shim cannot see) reads,
// lists and hashes latest/ and gets v1, as root and as an ordinary user (through a user
// namespace); in enforce mode the other registered versions are absent, in record mode present;
// a dynamically linked program in the same job is still journaled by the shim. Where user
// namespaces are unavailable, reproctl refuses to start the job in one line.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBusybox[] = "/usr/bin/busybox";  // Debian busybox-static: no shim in it
constexpr char kNobody[] = "65534";

// Runs in the job as `busybox sh -c kScript sh ROOT`: each section is what one way of looking
// at the root shows; coreutils' cat (by path: busybox's shell prefers its own applets) is
// dynamically linked, so the shim journals its read; the last command's status is the job's.
constexpr char kScript[] = R"(cd "$1" || exit 99
echo "== cat"; busybox cat latest/a.csv
echo "== ls"; busybox ls -1 latest
echo "== sha256sum"; busybox sha256sum latest/x.bin
echo "== root"; busybox ls -1 .
echo "== readlink"; busybox readlink latest
echo "== current"; busybox cat current/a.csv
echo "== v2"; busybox cat v2/a.csv 2>/dev/null || echo absent
/usr/bin/cat latest/sub/b.csv > /dev/null
exit 7
)";

class IsolateTest : public ShimJobTest {
 protected:
  void SetUp() override {
    ShimJobTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(std::filesystem::exists(kBusybox)) << kBusybox << ": install busybox-static";
    // latest moves to v3, whose names differ from v1's (one added, the others removed) and whose
    // a.csv is longer; `current` is an unregistered copy (an alias too); README is a plain file.
    WriteFileOrDie(Root() + "/v3/a.csv", "a.csv of v3, which is longer\n");
    WriteFileOrDie(Root() + "/v3/new-in-v3.csv", "only in v3\n");
    RunResult r = reprod_->Ctl({"version", "add", "ds", "v3", Root() + "/v3"});
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    std::filesystem::remove(Root() + "/latest");
    std::filesystem::create_directory_symlink("v3", Root() + "/latest");
    WriteFileOrDie(Root() + "/current/a.csv", "a stale copy\n");
    WriteFileOrDie(Root() + "/README", "about ds\n");

    // An ordinary user needs to reach reproctl, the shim, the data, and reprod's sockets.
    bin_ = dir_.Path("bin");
    std::filesystem::create_directories(bin_);
    for (const std::string& file : {BinPath("reproctl"), LibPath("libreproshim.so")}) {
      std::filesystem::copy_file(file,
                                 bin_ + "/" + std::filesystem::path(file).filename().string());
    }
    // Whatever the umask: the data, the binaries and the directories of the sockets.
    namespace fs = std::filesystem;
    const fs::perms rx = fs::perms::others_read | fs::perms::others_exec;
    for (const std::string& dir : {dir_.path(), dir_.Path("node")}) {
      fs::permissions(dir, rx, fs::perm_options::add);
    }
    for (const std::string& tree : {dir_.Path("ml"), bin_, work_}) {
      fs::permissions(tree, rx, fs::perm_options::add);
      for (const fs::directory_entry& e : fs::recursive_directory_iterator(tree)) {
        if (e.is_symlink()) continue;
        fs::permissions(e.path(), e.is_directory() ? rx : fs::perms::others_read,
                        fs::perm_options::add);
      }
    }
    ASSERT_EQ(chmod(reprod_->grpc_socket().c_str(), 0666), 0);
  }

  // reproctl run --isolate for `job` in `mode`, as root or (as_user) as nobody, with `tail` as
  // the command.
  std::vector<std::string> RunCommandLine(const std::string& job, const std::string& mode,
                                          const std::vector<std::string>& tail) {
    std::vector<std::string> argv = {
        bin_ + "/reproctl", "--addr", reprod_->addr(), "run", "--job", job,
        "--mode",           mode,     "--isolate",     "--"};
    argv.insert(argv.end(), tail.begin(), tail.end());
    return argv;
  }

  // Runs kScript, or `tail` when given, from `cwd` (default: the work directory).
  RunResult RunIsolated(const std::string& job, const std::string& mode, bool as_user,
                        std::vector<std::string> tail = {}, const std::string& cwd = "",
                        const std::map<std::string, std::string>& env = {}) {
    if (tail.empty()) tail = {kBusybox, "sh", "-c", kScript, "sh", Root()};
    std::vector<std::string> argv = RunCommandLine(job, mode, tail);
    if (as_user) {
      argv.insert(argv.begin(), {"setpriv", absl::StrCat("--reuid=", kNobody),
                                 absl::StrCat("--regid=", kNobody), "--clear-groups", "--"});
    }
    RunOptions options;
    options.unset_env = {"REPRO_PINNED", "REPRO_RANK_SEED", "REPRO_SHIM_SOCKET",
                         "LD_PRELOAD",   "REPRO_JOB",       "REPRO_SHIM_LIB"};
    options.cwd = cwd.empty() ? work_ : cwd;
    options.env = env;
    return RunCommand(argv, options);
  }

  // What kScript prints when the job sees v1 under every alias, with or without the other
  // versions v2 and v3 beside it.
  std::string Expected(bool others_visible) {
    const std::string sha256 = absl::BytesToHexString(Sha256Of(Content("v1", "x.bin")));
    std::string out = absl::StrCat("== cat\n", Content("v1", "a.csv"));
    absl::StrAppend(&out, "== ls\na.csv\nsub\nx.bin\ny.bin\n");
    absl::StrAppend(&out, "== sha256sum\n", sha256, "  latest/x.bin\n");
    absl::StrAppend(&out, "== root\nREADME\ncurrent\nlatest\nv1\n",
                    others_visible ? "v2\nv3\n" : "");
    absl::StrAppend(&out, "== readlink\nv1\n");
    absl::StrAppend(&out, "== current\n", Content("v1", "a.csv"));
    absl::StrAppend(&out, "== v2\n", others_visible ? Content("v2", "a.csv") : "absent\n");
    return out;
  }

  // `r` ran kScript and saw the view (exit 7 is the script's own).
  void ExpectScriptSaw(const RunResult& r, bool others_visible) {
    EXPECT_EQ(r.exit_code, 7) << r.stderr_text;
    EXPECT_EQ(r.stdout_text, Expected(others_visible)) << r.stderr_text;
    EXPECT_THAT(r.stderr_text, HasSubstr("isolated)"));
  }

  // The shim, still in the job, journaled coreutils' read of latest/sub/b.csv as v1's.
  void ExpectShimJournaledTheRead(const std::string& job) {
    std::map<std::string, v1::DataOpen> opens = WaitForOpens(job, 1);
    ASSERT_EQ(opens.count("sub/b.csv"), 1u);
    EXPECT_EQ(opens["sub/b.csv"].verdict(), v1::VERDICT_MATCH);
    EXPECT_EQ(opens["sub/b.csv"].opened_path(), Root() + "/v1/sub/b.csv");
  }

  // The real root is untouched by the job's view.
  void ExpectHostViewUnchanged() {
    EXPECT_EQ(std::filesystem::read_symlink(Root() + "/latest"), "v3");
    EXPECT_TRUE(std::filesystem::exists(Root() + "/v2/a.csv"));
    EXPECT_EQ(ReadFileOrDie(Root() + "/current/a.csv"), "a stale copy\n");
  }

  std::string bin_;
};

TEST_F(IsolateTest, EnforceAsRootShowsOnlyThePinnedVersion) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  Pin("job-root");
  ExpectScriptSaw(RunIsolated("job-root", "enforce", /*as_user=*/false), /*others_visible=*/false);
  ExpectShimJournaledTheRead("job-root");
  ExpectHostViewUnchanged();
}

TEST_F(IsolateTest, EnforceAsOrdinaryUserThroughAUserNamespace) {
  if (geteuid() == 0) {  // the job is nobody's: only its owner (or an admin) starts its processes
    RunResult r = reprod_->Ctl(
        {"pin", "job-user", "ds@v1", "--seed", "1234", "--owner", "uid:65534"});
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  } else {
    Pin("job-user");
  }
  ExpectScriptSaw(RunIsolated("job-user", "enforce", /*as_user=*/geteuid() == 0),
                  /*others_visible=*/false);
  ExpectShimJournaledTheRead("job-user");
  if (geteuid() == 0) {
    std::vector<v1::ProcessStart> starts = Starts("job-user");
    ASSERT_FALSE(starts.empty());
    EXPECT_EQ(starts[0].uid(), 65534u);  // the user is itself inside its namespace
  }
  ExpectHostViewUnchanged();
}

TEST_F(IsolateTest, RecordModeKeepsTheOtherVersionsVisible) {
  Pin("job-record");
  ExpectScriptSaw(RunIsolated("job-record", "record", /*as_user=*/geteuid() == 0),
                  /*others_visible=*/true);
  if (geteuid() == 0) {
    ExpectScriptSaw(RunIsolated("job-record", "record", /*as_user=*/false),
                    /*others_visible=*/true);
  }
  ExpectHostViewUnchanged();
}

// A shell in latest/ has the kernel's working directory in v3 and $PWD=ROOT/latest; the job is
// started in $PWD as the view shows it.
TEST_F(IsolateTest, AWorkingDirectoryUnderAnAliasIsEnteredThroughTheView) {
  Pin("job-cwd");
  RunResult r =
      RunIsolated("job-cwd", "enforce", /*as_user=*/geteuid() == 0, {kBusybox, "cat", "a.csv"},
                  Root() + "/latest", {{"PWD", Root() + "/latest"}});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, Content("v1", "a.csv")) << r.stderr_text;
}

// without_userns runs reproctl as nobody inside a user namespace of its own whose
// user.max_user_namespaces is 0: creating another one fails there as it does on a machine with
// user namespaces disabled, while the rest of the machine (and the tests beside) keep them.
TEST_F(IsolateTest, RefusesInOneLineWithoutUserNamespaces) {
  if (geteuid() != 0) GTEST_SKIP() << "without_userns needs root";
  Pin("job-refused");
  std::vector<std::string> argv = {BinPath("without_userns"), kNobody, kNobody};
  for (const std::string& word :
       RunCommandLine("job-refused", "enforce", {kBusybox, "echo", "the job ran"})) {
    argv.push_back(word);
  }
  RunOptions options;
  options.unset_env = {"REPRO_SHIM_SOCKET", "LD_PRELOAD", "REPRO_JOB"};
  options.cwd = work_;
  RunResult r = RunCommand(argv, options);
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("the job ran")));
  std::vector<std::string> lines = absl::StrSplit(r.stderr_text, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(), HasSubstr("reproctl: --isolate needs a user namespace"));
  EXPECT_THAT(lines.back(), HasSubstr("the job was not started"));
  int refusals = 0;
  for (const std::string& line : lines) refusals += line.find("user namespace") != line.npos;
  EXPECT_EQ(refusals, 1) << r.stderr_text;
  EXPECT_TRUE(Starts("job-refused").empty());
}

}  // namespace
}  // namespace repro::testing
