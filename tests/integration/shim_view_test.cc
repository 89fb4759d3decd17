// The view under the real shim, in real processes against the real reprod: after `latest` moved
// to v3 (a file added, one removed, two resized), a job pinned to v1 lists, stats, resolves and
// opens latest/ exactly as it does v1/, in Python, in C (shim_probe) and with coreutils,
// findutils and tar; other versions are refused in enforce mode and journaled once in record
// mode; enforce mode fails closed; a torch job rerun with `pin --like` trains the same weights.
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"

namespace repro::testing {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPython[] = "/usr/bin/python3";

// Every way Python looks at a directory tree, one line per call, paths relative to argv[1].
constexpr char kPythonMatrix[] = R"(import errno, glob, hashlib, json, os, pathlib, sys
base = sys.argv[1]
root = os.path.dirname(base)
def rel(p): return os.path.relpath(p, base)
def attempt(f):
    try: return f()
    except OSError as e: return 'ERR ' + errno.errorcode[e.errno]
def show(name, value): print(name, json.dumps(value, sort_keys=True))
def stat(p):
    st = os.stat(p)
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_mode]
show('glob', sorted(rel(p) for p in glob.glob(base + '/**', recursive=True)))
show('glob_csv', sorted(rel(p) for p in glob.glob(base + '/*.csv')))
show('listdir', attempt(lambda: sorted(os.listdir(base))))
show('listdir_sub', attempt(lambda: sorted(os.listdir(base + '/sub'))))
show('scandir', sorted((e.name, e.is_dir(), e.stat().st_size) for e in os.scandir(base)))
show('walk', sorted((rel(d), sorted(ds), sorted(fs)) for d, ds, fs in os.walk(base)))
show('iterdir', sorted(p.name for p in pathlib.Path(base).iterdir()))
show('pathlib_glob', sorted(str(p.relative_to(base)) for p in pathlib.Path(base).glob('**/*')))
for f in ['a.csv', 'sub/b.csv', 'new.csv', 'x.bin', 'y.bin', 'sub/deep/c.csv']:
    p = base + '/' + f
    show('getsize ' + f, attempt(lambda: os.path.getsize(p)))
    show('exists ' + f, [os.path.exists(p), os.path.isfile(p), os.path.isdir(p)])
    show('stat ' + f, attempt(lambda: stat(p)))
    show('access ' + f, os.access(p, os.R_OK))
    show('read ' + f, attempt(lambda: hashlib.sha256(open(p, 'rb').read()).hexdigest()))
show('realpath', os.path.relpath(os.path.realpath(base), root))
show('realpath_file', os.path.relpath(os.path.realpath(base + '/sub/deep/c.csv'), root))
show('stat_dir', stat(base))
)";

// coreutils, findutils and tar on $1 (a directory name inside the dataset root, the cwd).
constexpr char kToolsMatrix[] = R"(set -e
echo "== ls"; ls -lR --time-style=+%s "$1/"
echo "== find"; find "$1/" -printf '%p %s %y %T@\n' | sort
echo "== du"; du -ab "$1/" | sort -k2
echo "== tar"; tar -C "$1" -cf - . | tar -tvf - | sort -k6
echo "== stat"; stat -c '%n %s %i %Y' "$1/a.csv" "$1/x.bin"
)";

class ShimViewTest : public ShimJobTest {
 protected:
  // v3: a.csv and x.bin resized, sub/b.csv and y.bin removed, new.csv and run.sh added;
  // latest -> v3. job-view is pinned to v1.
  void SetUp() override {
    ShimJobTest::SetUp();
    const std::string v3 = Root() + "/v3";
    WriteFileOrDie(v3 + "/a.csv", "a.csv of v3, which is longer than before\n");
    WriteFileOrDie(v3 + "/x.bin", std::string(6000, 'x'));
    WriteFileOrDie(v3 + "/sub/deep/c.csv", Content("v1", "sub/deep/c.csv"));
    WriteFileOrDie(v3 + "/new.csv", "only in v3\n");
    WriteFileOrDie(v3 + "/run.sh", "#!/bin/sh\nexit 3\n");
    std::filesystem::permissions(v3 + "/run.sh", std::filesystem::perms::owner_exec,
                                 std::filesystem::perm_options::add);
    RunResult add = reprod_->Ctl({"version", "add", "ds", "v3", v3});
    ASSERT_EQ(add.exit_code, 0) << add.stderr_text;
    std::filesystem::remove(Root() + "/latest");
    std::filesystem::create_directory_symlink("v3", Root() + "/latest");
    Pin("job-view");
  }

  // Runs shim_probe with `commands` (joined by "--") as job-view; returns its stdout lines.
  std::vector<std::string> Probe(const std::string& mode,
                                 const std::vector<std::vector<std::string>>& commands,
                                 std::string* stderr_text = nullptr,
                                 const std::map<std::string, std::string>& extra = {},
                                 const std::string& cwd = "") {
    std::vector<std::string> argv = {BinPath("shim_probe")};
    for (const std::vector<std::string>& command : commands) {
      argv.insert(argv.end(), command.begin(), command.end());
      argv.push_back("--");
    }
    RunResult r = RunAs("job-view", mode, argv, extra, cwd);
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    if (stderr_text != nullptr) *stderr_text = r.stderr_text;
    return absl::StrSplit(r.stdout_text, '\n', absl::SkipEmpty());
  }

  // The C calls of the matrix on `base` (a directory), as shim_probe commands.
  static std::vector<std::vector<std::string>> CMatrix(const std::string& base) {
    std::vector<std::vector<std::string>> commands;
    for (const std::string file : {"a.csv", "sub/b.csv", "new.csv", "x.bin", "sub/deep/c.csv"}) {
      const std::string p = base + "/" + file;
      for (const std::string call : {"stat", "stat64", "lstat", "lstat64", "xstat", "lxstat",
                                     "statx", "lstatx", "access", "faccessat", "euidaccess",
                                     "realpath", "canonicalize", "open"}) {
        commands.push_back({call, p});
      }
      commands.push_back({"fstatat", base, file});
    }
    for (const std::string dir : {"", "/sub", "/sub/deep"}) {
      commands.push_back({"opendir", base + dir});
      commands.push_back({"scandir", base + dir});
      commands.push_back({"stat", base + dir});
      commands.push_back({"realpath", base + dir});
    }
    commands.push_back({"chdir", base + "/sub"});
    commands.push_back({"getcwd"});
    commands.push_back({"open", "b.csv"});
    commands.push_back({"opendir", "."});
    commands.push_back({"execv", base + "/run.sh"});
    return commands;
  }

  // Runs `argv` three ways: under the shim on latest/ and on v1/ (must agree), and without the
  // shim on latest/ (must differ, or the comparison proves nothing). `base_at` is the index of
  // the argument that names the directory; its spellings in the output read "BASE".
  void ExpectSameAsPinned(const std::string& mode, std::vector<std::string> argv, size_t base_at,
                          const std::string& latest, const std::string& pinned,
                          const std::string& cwd = "") {
    auto run = [&](const std::string& base, bool shim) {
      argv[base_at] = base;
      RunResult r;
      if (shim) {
        r = RunAs("job-view", mode, argv, {}, cwd);
      } else {
        RunOptions options;
        options.cwd = cwd.empty() ? work_ : cwd;
        r = RunCommand(argv, options);
      }
      EXPECT_EQ(r.exit_code, 0) << argv[0] << " on " << base << ": " << r.stderr_text;
      EXPECT_THAT(r.stderr_text, Not(HasSubstr("repro:"))) << base;
      return absl::StrReplaceAll(r.stdout_text, {{base, "BASE"}});
    };
    const std::string via_alias = run(latest, true);
    EXPECT_EQ(via_alias, run(pinned, true)) << argv[0] << " in " << mode << " mode";
    EXPECT_NE(via_alias, run(latest, false)) << argv[0] << ": the moved alias looks the same";
    EXPECT_NE(via_alias, "");
  }
};

TEST_F(ShimViewTest, PythonSeesThePinnedVersionThroughTheAlias) {
  const std::string script = Script("matrix.py", kPythonMatrix);
  for (const std::string mode : {"record", "enforce"}) {
    ExpectSameAsPinned(mode, {kPython, script, ""}, 2, Root() + "/latest", Root() + "/v1");
  }
}

TEST_F(ShimViewTest, CCallsSeeThePinnedVersionThroughTheAlias) {
  for (const std::string mode : {"record", "enforce"}) {
    std::vector<std::string> latest = Probe(mode, CMatrix(Root() + "/latest"));
    std::vector<std::string> pinned = Probe(mode, CMatrix(Root() + "/v1"));
    ASSERT_EQ(latest.size(), pinned.size()) << mode;
    for (size_t i = 0; i < latest.size(); ++i) {
      EXPECT_EQ(latest[i], pinned[i]) << mode << ": " << absl::StrJoin(CMatrix("latest")[i], " ");
    }
  }
  // The alias itself: a symlink that names the pinned version.
  EXPECT_THAT(Probe("enforce", {{"readlink", Root() + "/latest"},
                                {"lstat", Root() + "/latest"},
                                {"realpath", Root() + "/latest"},
                                {"chdir", Root() + "/latest"},
                                {"getcwd"},
                                {"execv", Root() + "/latest/run.sh"}}),
              ElementsAre("OK v1", ::testing::StartsWith("OK link "), "OK " + Root() + "/v1", "OK",
                          "OK " + Root() + "/v1", "ERR ENOENT"));
}

TEST_F(ShimViewTest, ToolsSeeThePinnedVersionThroughTheAlias) {
  const std::string script = Script("tools.sh", kToolsMatrix);
  for (const std::string mode : {"record", "enforce"}) {
    ExpectSameAsPinned(mode, {"/bin/sh", script, ""}, 2, "latest", "v1", Root());
  }
}

TEST_F(ShimViewTest, AnotherVersionIsRefusedInEnforceAndJournaledOnceInRecord) {
  const std::string v3 = Root() + "/v3";
  std::string err;
  EXPECT_THAT(Probe("enforce", {{"opendir", v3}, {"scandir", Root() + "/latest/../v3/sub"},
                                {"stat", v3 + "/a.csv"}, {"lstatx", v3 + "/new.csv"},
                                {"access", v3 + "/a.csv"}, {"realpath", v3 + "/a.csv"},
                                {"readlink", v3 + "/a.csv"}, {"chdir", v3},
                                {"execv", v3 + "/run.sh"}, {"open", v3 + "/a.csv"}},
                    &err),
              Each("ERR EACCES"));
  EXPECT_THAT(err, HasSubstr(absl::StrCat("repro: job job-view refused ", v3,
                                          ": it belongs to another version; ds is pinned to v1 (",
                                          Root(), "/v1)")));
  RunResult python = RunAs("job-view", "enforce",
                           {kPython, "-c", "import os, sys; os.listdir(sys.argv[1])", v3});
  EXPECT_NE(python.exit_code, 0);
  EXPECT_THAT(python.stderr_text, HasSubstr("PermissionError"));
  WaitForViolations("job-view", 1);

  // Record mode: the calls answer as without the shim; reprod journals one violation for the
  // whole version directory (once per process), saying what was done with it.
  const std::vector<std::vector<std::string>> calls = {
      {"opendir", v3}, {"stat", v3 + "/a.csv"}, {"realpath", v3 + "/new.csv"},
      {"execv", v3 + "/run.sh"}};
  RunOptions bare;
  std::vector<std::string> argv = {BinPath("shim_probe")};
  for (const auto& call : calls) {
    argv.insert(argv.end(), call.begin(), call.end());
    argv.push_back("--");
  }
  RunResult without = RunCommand(argv, bare);
  EXPECT_EQ(Probe("record", calls), std::vector<std::string>(absl::StrSplit(
                                        without.stdout_text, '\n', absl::SkipEmpty())));
  auto allowed = [](const std::vector<v1::JournalEntry>& entries, const std::string& what) {
    int n = 0;
    for (const v1::JournalEntry& e : entries) {
      n += e.has_violation() && !e.violation().refused() &&
           absl::StrContains(e.violation().detail(), what);
    }
    return n;
  };
  std::vector<v1::JournalEntry> entries = WaitForJournal("job-view", [&](const auto& e) {
    return allowed(e, "it was listed") >= 1 && allowed(e, "it was executed") >= 1;
  });
  int listed = 0;
  for (const v1::JournalEntry& e : entries) {
    if (!e.has_violation()) continue;
    const v1::Violation& v = e.violation();
    EXPECT_EQ(v.verdict(), v1::VERDICT_OTHER_VERSION) << v.path();
    if (!v.refused() && absl::StrContains(v.detail(), "it was listed")) {
      ++listed;
      EXPECT_EQ(v.path(), v3);
      EXPECT_THAT(v.detail(), HasSubstr("another version than the pinned ds@v1"));
    }
  }
  // stat and realpath of the same version directory in the same process added nothing.
  EXPECT_EQ(listed, 1);
}

TEST_F(ShimViewTest, EnforceWithNoPinKnownDoesNotRun) {
  reprod_->Kill(SIGKILL);
  RunResult r = RunAs("job-view", "enforce", {"cat", Root() + "/latest/a.csv"},
                      {{"REPRO_SHIM_TIMEOUT_MS", "300"}});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_EQ(r.stdout_text, "");
  EXPECT_THAT(r.stderr_text, HasSubstr("runs in enforce mode, but no pin is known"));
  // Record mode keeps running and says so.
  RunResult record = RunAs("job-view", "record", {"cat", work_ + "/../ml/ds/v1/a.csv"},
                           {{"REPRO_SHIM_TIMEOUT_MS", "300"}});
  EXPECT_EQ(record.exit_code, 0);
}

TEST_F(ShimViewTest, EnforceWithReprodDownFromTheStartRefusesDataButKeepsTheView) {
  reprod_->Kill(SIGKILL);
  // What `reproctl run` and the webhook put in the environment: the pinned version directories.
  const std::map<std::string, std::string> pinned = {{"REPRO_PINNED", "ds@v1=" + Root() + "/v1"},
                                                     {"REPRO_SHIM_TIMEOUT_MS", "300"}};
  std::string err;
  EXPECT_THAT(Probe("enforce",
                    {{"open", Root() + "/latest/a.csv"},
                     {"opendir", Root() + "/latest"},
                     {"realpath", Root() + "/latest"},
                     {"open", work_ + "/../ml/ds/v2/a.csv"}},
                    &err, pinned),
              ElementsAre("ERR EACCES", "OK a.csv,sub,x.bin,y.bin", "OK " + Root() + "/v1",
                          "ERR EACCES"));
  EXPECT_THAT(err, HasSubstr("reprod is unreachable"));
}

TEST_F(ShimViewTest, UnresolvablePathsAreRefusedInEnforceMode) {
  // A working directory so deep that the absolute form of a relative path into the dataset is
  // longer than PATH_MAX: the kernel resolves the relative path, the shim cannot.
  std::string deep = work_;
  while (deep.size() < 3000) deep += "/ddddddddddddddddddddddddddddddddddddddddddddddddddd";
  std::filesystem::create_directories(deep);
  std::filesystem::create_directory_symlink(Root() + "/latest", deep + "/to_latest");
  std::string far = "to_latest";
  for (int i = 0; i < 150; ++i) far += "/sub/..";
  far += "/a.csv";
  std::string err;
  EXPECT_THAT(Probe("enforce", {{"open", far}, {"stat", far}, {"open", "to_latest/a.csv"}}, &err,
                    {}, deep),
              ElementsAre("ERR EACCES", "ERR EACCES", "OK a.csv of v1"));
  EXPECT_THAT(err, HasSubstr("refused a path the shim cannot resolve"));
  // A symlink loop: the kernel fails it too; nothing is read either way.
  std::filesystem::create_symlink(work_ + "/loop2", work_ + "/loop1");
  std::filesystem::create_symlink(work_ + "/loop1", work_ + "/loop2");
  EXPECT_THAT(Probe("enforce", {{"open", work_ + "/loop1/a.csv"}}), ElementsAre("ERR ELOOP"));
}

TEST_F(ShimViewTest, DirectorySwappedForASymlinkIntoTheRootIsSeen) {
  const std::string d = work_ + "/d";
  WriteFileOrDie(d + "/latest/a.csv", "outside\n");
  WriteFileOrDie(d + "/v2/a.csv", "outside\n");
  EXPECT_THAT(Probe("enforce", {{"open", d + "/latest/a.csv"},
                                {"open", d + "/v2/a.csv"},
                                {"replace", d, Root()},
                                {"open", d + "/latest/a.csv"},
                                {"stat", d + "/latest/new.csv"},
                                {"open", d + "/v2/a.csv"}}),
              ElementsAre("OK outside", "OK outside", "OK", "OK a.csv of v1", "ERR ENOENT",
                          "ERR EACCES"));
}

// glob + numpy.load + a shuffled DataLoader with two workers, seeded from REPRO_SEED; prints the
// SHA-256 of the trained weights.
constexpr char kTrain[] = R"(import glob, hashlib, os, sys
import numpy as np, torch
from torch.utils.data import DataLoader, TensorDataset
seed = int(os.environ['REPRO_SEED'])
torch.manual_seed(seed)
shards = sorted(glob.glob(sys.argv[1] + '/latest/shard-*.npy'))
data = torch.from_numpy(np.concatenate([np.load(p) for p in shards])).float()
loader = DataLoader(TensorDataset(data[:, :4], data[:, 4:]), batch_size=8, shuffle=True,
                    num_workers=2, generator=torch.Generator().manual_seed(seed))
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(2):
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
h = hashlib.sha256()
for name, t in sorted(model.state_dict().items()):
    h.update(t.numpy().tobytes())
print(len(shards), 'shards', h.hexdigest())
)";

TEST_F(ShimViewTest, TorchRerunWithPinLikeTrainsTheSameWeights) {
  const std::string root = std::filesystem::path(Root()).parent_path().string() + "/shards";
  RunResult make = RunCommand(
      {kPython, "-c",
       "import numpy as np, os, sys\n"
       "for v, n in (('v1', 4), ('v2', 5)):\n"
       "    os.makedirs(sys.argv[1] + '/' + v)\n"
       "    for i in range(n):\n"
       "        rng = np.random.default_rng(i)\n"
       "        np.save('%s/%s/shard-%d.npy' % (sys.argv[1], v, i), rng.normal(size=(32, 5)))\n",
       root});
  ASSERT_EQ(make.exit_code, 0) << make.stderr_text;
  for (const std::string v : {"v1", "v2"}) {
    RunResult add = reprod_->Ctl({"version", "add", "shards", v, root + "/" + v});
    ASSERT_EQ(add.exit_code, 0) << add.stderr_text;
  }
  std::filesystem::create_directory_symlink("v1", root + "/latest");
  const std::string script = Script("train.py", kTrain);
  RunOptions options;
  options.unset_env = {"REPRO_SHIM_SOCKET", "LD_PRELOAD", "REPRO_RANK_SEED", "RANK"};
  options.cwd = work_;
  auto train = [&](const std::string& job, const std::vector<std::string>& pin) {
    std::vector<std::string> argv = {"run", "--job", job, "--mode", "enforce"};
    argv.insert(argv.end(), pin.begin(), pin.end());
    argv.insert(argv.end(), {"--", kPython, script, root});
    RunResult r = reprod_->Ctl(argv, options);
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    return r.stdout_text;
  };
  const std::string first = train("train-1", {"--pin", "shards@v1", "--seed", "7"});
  EXPECT_THAT(first, HasSubstr("4 shards "));
  // latest moves to v2, which has one more shard; the rerun copies train-1's pin.
  std::filesystem::remove(root + "/latest");
  std::filesystem::create_directory_symlink("v2", root + "/latest");
  RunResult like = reprod_->Ctl({"pin", "train-2", "--like", "train-1"});
  ASSERT_EQ(like.exit_code, 0) << like.stderr_text;
  EXPECT_EQ(train("train-2", {}), first);
  // The control: pinned to v2, the same code and seed train other weights.
  const std::string control = train("train-3", {"--pin", "shards@v2", "--seed", "7"});
  EXPECT_THAT(control, HasSubstr("5 shards "));
  EXPECT_NE(control, first);
}

}  // namespace
}  // namespace repro::testing
