// Real programs under the real shim, against the real reprod: a C program, coreutils, CPython,
// numpy, a PyTorch DataLoader with forked workers under torchrun-style ranks, and reproctl run.
// Every file read is journaled once per job with its SHA-256, aliases return the pinned bytes,
// other versions and changed files are violations (refused in enforce mode).
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "daemon/registry/seeds.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPython[] = "/usr/bin/python3";

class ShimProgramsTest : public ShimJobTest {
 protected:
  // Checks that `opens` holds exactly `files` of v1 with their SHA-256.
  void ExpectJournaled(const std::map<std::string, v1::DataOpen>& opens,
                       const std::vector<std::string>& files) {
    EXPECT_EQ(opens.size(), files.size());
    for (const std::string& file : files) {
      auto it = opens.find(file);
      ASSERT_NE(it, opens.end()) << file;
      EXPECT_EQ(it->second.sha256(), Sha256Of(Content("v1", file))) << file;
      EXPECT_EQ(it->second.verdict(), v1::VERDICT_MATCH) << file;
      EXPECT_EQ(it->second.size(), Content("v1", file).size()) << file;
    }
  }
};

TEST_F(ShimProgramsTest, CProgramAndCoreutilsReadThePinnedVersion) {
  Pin("job-c");
  const std::string latest = Root() + "/latest";
  RunResult probe = RunAs("job-c", "enforce",
                          {BinPath("shim_probe"), "open", latest + "/a.csv", "--", "open64",
                           latest + "/a.csv", "--", "open_2", latest + "/sub/b.csv", "--", "fopen",
                           latest + "/sub/b.csv", "--", "fopen64", latest + "/a.csv"});
  EXPECT_EQ(probe.exit_code, 0) << probe.stderr_text;
  EXPECT_EQ(probe.stdout_text,
            "OK a.csv of v1\nOK a.csv of v1\nOK sub/b.csv of v1\nOK sub/b.csv of v1\n"
            "OK a.csv of v1\n");
  RunResult cat = RunAs("job-c", "enforce", {"cat", latest + "/sub/deep/c.csv"});
  EXPECT_EQ(cat.stdout_text, Content("v1", "sub/deep/c.csv"));
  RunResult head = RunAs("job-c", "record", {"head", "-c", "4096", "latest/x.bin"}, {}, Root());
  EXPECT_EQ(head.stdout_text, Content("v1", "x.bin"));
  EXPECT_THAT(probe.stderr_text + cat.stderr_text + head.stderr_text, Not(HasSubstr("repro:")));
  ExpectJournaled(WaitForOpens("job-c", 4), {"a.csv", "sub/b.csv", "sub/deep/c.csv", "x.bin"});
  for (const auto& [file, open] : WaitForOpens("job-c", 4)) {
    EXPECT_TRUE(open.redirected()) << file;
    EXPECT_EQ(open.opened_path(), Root() + "/v1/" + file);
  }
}

TEST_F(ShimProgramsTest, PythonOpenAndNumpyFromfileAndMemmap) {
  Pin("job-py");
  std::string script = Script("read.py", R"(import sys, numpy as np
root = sys.argv[1]
print(open(root + '/latest/a.csv').read(), end='')
x = np.fromfile(root + '/latest/x.bin', dtype=np.uint8)
y = np.memmap(root + '/latest/y.bin', dtype=np.uint8, mode='r')
sys.stdout.buffer.write(x.tobytes() + bytes(y))
)");
  RunResult r = RunAs("job-py", "enforce", {kPython, script, Root()});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, Content("v1", "a.csv") + Content("v1", "x.bin") + Content("v1", "y.bin"));
  ExpectJournaled(WaitForOpens("job-py", 3), {"a.csv", "x.bin", "y.bin"});
}

TEST_F(ShimProgramsTest, TorchDataLoaderWorkersUnderTorchrunRanks) {
  Pin("job-torch");
  std::string script = Script("train.py", R"(import os, sys, torch
from torch.utils.data import DataLoader, Dataset
root = sys.argv[1] + '/latest'
files = sorted(os.path.relpath(os.path.join(d, n), root)
               for d, _, names in os.walk(root) for n in names)
class Files(Dataset):
    def __len__(self): return len(files)
    def __getitem__(self, i):
        with open(os.path.join(root, files[i]), 'rb') as f:
            return files[i], f.read()
got = {}
for names, blobs in DataLoader(Files(), batch_size=2, num_workers=2,
                               collate_fn=lambda b: tuple(zip(*b))):
    got.update(zip(names, blobs))
for name in sorted(got):
    print(name, got[name].hex())
print('rank_seed', os.environ['REPRO_RANK_SEED'])
)");
  RunResult r = RunAs("job-torch", "record", {kPython, script, Root()},
                      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"},
                       {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  for (const std::string& file : Files()) {
    std::string content = Content("v1", file);
    EXPECT_THAT(r.stdout_text, HasSubstr(absl::StrCat(file, " ", absl::BytesToHexString(content))));
  }
  EXPECT_THAT(r.stdout_text, HasSubstr(absl::StrCat("rank_seed ", DeriveRankSeed(1234, 1))));
  ExpectJournaled(WaitForOpens("job-torch", Files().size()), Files());

  // The main process and its forked workers each said HELLO, as rank 1.
  std::vector<v1::ProcessStart> starts = Starts("job-torch");
  ASSERT_GE(starts.size(), 3u);
  int main_pid = starts[0].pid();
  int workers = 0;
  for (const v1::ProcessStart& s : starts) {
    EXPECT_EQ(s.rank(), 1);
    EXPECT_EQ(s.rank_seed(), DeriveRankSeed(1234, 1));
    workers += s.parent_pid() == main_pid;
  }
  EXPECT_GE(workers, 2);
  for (const auto& [file, open] : WaitForOpens("job-torch", Files().size())) {
    EXPECT_EQ(open.rank(), 1);
    EXPECT_NE(open.pid(), main_pid) << file << " should have been read by a worker";
  }
}

TEST_F(ShimProgramsTest, OtherVersionRecordedOrRefused) {
  Pin("job-v2");
  RunResult record = RunAs("job-v2", "record", {"cat", Root() + "/v2/a.csv"});
  EXPECT_EQ(record.exit_code, 0);
  EXPECT_EQ(record.stdout_text, Content("v2", "a.csv"));
  std::vector<v1::Violation> violations = WaitForViolations("job-v2", 1);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].verdict(), v1::VERDICT_OTHER_VERSION);
  EXPECT_FALSE(violations[0].refused());
  EXPECT_EQ(violations[0].path(), Root() + "/v2/a.csv");
  std::map<std::string, v1::DataOpen> opens = WaitForOpens("job-v2", 1);
  ASSERT_EQ(opens.count("v2/a.csv"), 1u);
  EXPECT_EQ(opens["v2/a.csv"].sha256(), Sha256Of(Content("v2", "a.csv")));

  RunResult enforce = RunAs("job-v2", "enforce", {"cat", Root() + "/v2/sub/b.csv"});
  EXPECT_NE(enforce.exit_code, 0);
  EXPECT_EQ(enforce.stdout_text, "");
  EXPECT_THAT(enforce.stderr_text, HasSubstr("Permission denied"));
  EXPECT_THAT(enforce.stderr_text,
              HasSubstr(absl::StrCat("repro: job job-v2 refused ", Root(), "/v2/sub/b.csv: ")));
  EXPECT_THAT(enforce.stderr_text, HasSubstr(absl::StrCat("ds is pinned to v1 (", Root(), "/v1)")));
  violations = WaitForViolations("job-v2", 2);
  ASSERT_EQ(violations.size(), 2u);
  EXPECT_TRUE(violations[1].refused());
}

TEST_F(ShimProgramsTest, FileChangedInThePinnedVersion) {
  Pin("job-changed");
  WriteFileOrDie(Root() + "/v1/a.csv", "back-filled\n");
  RunResult record = RunAs("job-changed", "record", {"cat", Root() + "/latest/a.csv"});
  EXPECT_EQ(record.stdout_text, "back-filled\n");  // record mode lets it be read...
  std::vector<v1::Violation> violations = WaitForViolations("job-changed", 1);  // ...and says so
  EXPECT_EQ(violations[0].verdict(), v1::VERDICT_CONTENT_CHANGED);
  EXPECT_FALSE(violations[0].refused());
  EXPECT_EQ(WaitForOpens("job-changed", 1)["a.csv"].sha256(), Sha256Of("back-filled\n"));

  RunResult enforce = RunAs("job-changed", "enforce", {"cat", Root() + "/latest/a.csv"});
  EXPECT_NE(enforce.exit_code, 0);
  EXPECT_EQ(enforce.stdout_text, "");
  EXPECT_THAT(enforce.stderr_text, HasSubstr("no longer matches the registered one"));
  violations = WaitForViolations("job-changed", 2);
  EXPECT_TRUE(violations[1].refused());
}

// Changed in place after reprod hashed and cached it: same size, and (sub/b.csv) even the old
// mtime put back. The inode's ctime still moves, so the cached hash is not trusted: caught in
// both modes.
TEST_F(ShimProgramsTest, FileChangedInPlaceWithSizeAndMtimeKept) {
  Pin("job-cache");
  const std::vector<std::string> files = {"a.csv", "sub/b.csv"};
  for (const std::string& file : files) {
    RunResult warm = RunAs("job-cache", "record", {"cat", Root() + "/latest/" + file});
    EXPECT_EQ(warm.stdout_text, Content("v1", file));
  }
  ASSERT_EQ(WaitForOpens("job-cache", 2).size(), 2u);  // hashed, and cached by stat
  absl::SleepFor(absl::Milliseconds(50));  // past the hash cache's racy window
  struct stat before;
  ASSERT_EQ(stat((Root() + "/v1/sub/b.csv").c_str(), &before), 0);
  for (const std::string& file : files) {
    std::string changed = Content("v1", file);
    changed[0] = changed[0] == 'X' ? 'Y' : 'X';  // same size
    WriteFileOrDie(Root() + "/v1/" + file, changed);
  }
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, (Root() + "/v1/sub/b.csv").c_str(), times, 0), 0);
  for (const char* mode : {"record", "enforce"}) {
    const std::string job = absl::StrCat("job-inplace-", mode);
    Pin(job);
    for (const std::string& file : files) {
      RunResult r = RunAs(job, mode, {"cat", Root() + "/latest/" + file});
      if (std::string(mode) == "enforce") {
        EXPECT_NE(r.exit_code, 0) << file;
        EXPECT_THAT(r.stderr_text, HasSubstr("no longer matches the registered one")) << file;
      } else {
        EXPECT_EQ(r.exit_code, 0) << file;
      }
    }
    std::vector<v1::Violation> violations = WaitForViolations(job, 2);
    ASSERT_EQ(violations.size(), 2u) << mode;
    for (const v1::Violation& v : violations) {
      EXPECT_EQ(v.verdict(), v1::VERDICT_CONTENT_CHANGED) << mode << " " << v.path();
      EXPECT_EQ(v.refused(), std::string(mode) == "enforce") << v.path();
    }
  }
}

TEST_F(ShimProgramsTest, ReproctlRunPinsSeedsAndRuns) {
  std::string script = Script("run.py", R"(import os, random, sys
sys.path.insert(0, sys.argv[2])
import repro_seed
seed = repro_seed.seed_everything()
print(open(sys.argv[1] + '/latest/a.csv').read(), end='')
for key in ('REPRO_JOB', 'REPRO_MODE', 'REPRO_SEED', 'PYTHONHASHSEED', 'REPRO_RANK_SEED'):
    print(key, os.environ.get(key))
print('seeded', seed, random.random())
)");
  RunOptions options;
  options.unset_env = {"REPRO_SHIM_SOCKET", "LD_PRELOAD", "REPRO_RANK_SEED", "RANK"};
  options.cwd = work_;
  std::vector<std::string> command = {"run", "--job", "job-run", "--pin", "ds@v1", "--seed", "42",
                                      "--", kPython, script, Root(),
                                      SourcePath("client/python")};
  RunResult first = reprod_->Ctl(command, options);
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  const std::string rank_seed = std::to_string(DeriveRankSeed(42, 0));
  EXPECT_THAT(first.stdout_text, HasSubstr(Content("v1", "a.csv")));
  EXPECT_THAT(first.stdout_text, HasSubstr("REPRO_JOB job-run\nREPRO_MODE record\nREPRO_SEED 42\n"
                                           "PYTHONHASHSEED 42\nREPRO_RANK_SEED " + rank_seed));
  EXPECT_THAT(first.stdout_text, HasSubstr("seeded " + rank_seed));
  EXPECT_THAT(first.stderr_text, HasSubstr("reproctl: running /usr/bin/python3 as job job-run"));
  // The same job again: the pin is confirmed, the run is identical, even its random numbers.
  RunResult again = reprod_->Ctl(command, options);
  EXPECT_EQ(again.stdout_text, first.stdout_text);
  ExpectJournaled(WaitForOpens("job-run", 1), {"a.csv"});

  RunResult unpinned = reprod_->Ctl({"run", "--job", "nobody", "--", "true"}, options);
  EXPECT_EQ(unpinned.exit_code, 5);
  EXPECT_THAT(unpinned.stderr_text, HasSubstr("job nobody has no pin"));
  RunResult missing = reprod_->Ctl({"run", "--job", "job-run", "--", "/no/such/program"}, options);
  EXPECT_EQ(missing.exit_code, 127);
  RunResult usage = reprod_->Ctl({"run", "--job", "job-run", "--mode", "strict", "--", "true"},
                                 options);
  EXPECT_EQ(usage.exit_code, 1);
  EXPECT_THAT(usage.stderr_text, HasSubstr("--mode is record or enforce"));
}

}  // namespace
}  // namespace repro::testing
