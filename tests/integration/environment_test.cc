// What real processes under the real shim run with, journaled by the real reprod: the shared
// libraries they loaded (at their first dataset open, and at exit for those loaded later), their
// glibc version and, for Python, the packages they imported; and `reproctl diff` naming a package
// that differs between two otherwise identical runs.
#include <gnu/libc-version.h>
#include <stdlib.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "repro/v1/provenance.pb.h"
#include "tests/client/shim/shim_job.h"
#include "tests/testutil/temp_dir.h"

namespace repro::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The job's libraries by soname (each must be journaled once per job).
std::map<std::string, v1::Library> Libraries(const std::vector<v1::JournalEntry>& entries) {
  std::map<std::string, v1::Library> out;
  for (const v1::JournalEntry& e : entries) {
    if (!e.has_libraries()) continue;
    for (const v1::Library& library : e.libraries().libraries()) {
      EXPECT_TRUE(out.emplace(library.soname(), library).second)
          << library.soname() << " journaled twice";
    }
  }
  return out;
}

// "group: change key a -> b" for every difference.
std::vector<std::string> Changes(const v1::JobDiff& diff) {
  std::vector<std::string> out;
  for (const v1::DiffGroup& group : diff.groups()) {
    for (const v1::Difference& d : group.differences()) {
      out.push_back(absl::StrCat(group.name(), ": ", d.change(), " ", d.key(), " ", d.a(), " -> ",
                                 d.b()));
    }
  }
  return out;
}

// The job's Python packages by name.
std::map<std::string, v1::PythonPackage> Packages(const std::vector<v1::JournalEntry>& entries) {
  std::map<std::string, v1::PythonPackage> out;
  for (const v1::JournalEntry& e : entries) {
    if (!e.has_python_packages()) continue;
    for (const v1::PythonPackage& package : e.python_packages().packages()) {
      EXPECT_TRUE(out.emplace(absl::AsciiStrToLower(package.name()), package).second)
          << package.name() << " journaled twice";
    }
  }
  return out;
}

std::string Realpath(const std::string& path) {
  char resolved[PATH_MAX];
  return realpath(path.c_str(), resolved) != nullptr ? resolved : path;
}

class EnvironmentTest : public ShimJobTest {
 protected:
  // A site-packages directory holding the pure-Python distribution "fakepkg" at `version`.
  std::string SitePackages(const std::string& name, const std::string& version) {
    const std::string site = dir_.Path(absl::StrCat(name, "/site-packages"));
    WriteFileOrDie(site + "/fakepkg/__init__.py", absl::StrCat("VERSION = '", version, "'\n"));
    const std::string info = absl::StrCat(site, "/fakepkg-", version, ".dist-info");
    WriteFileOrDie(info + "/METADATA",
                   absl::StrCat("Metadata-Version: 2.1\nName: fakepkg\nVersion: ", version, "\n"));
    WriteFileOrDie(info + "/top_level.txt", "fakepkg\n");
    return site;
  }

  // Runs the script that imports fakepkg from `site` and reads latest/a.csv, as `job`.
  void RunImporting(const std::string& job, const std::string& site) {
    const std::string script = Script("import_fakepkg.py", R"(
import sys
import fakepkg
with open(sys.argv[1]) as f:
    f.read()
)");
    RunResult r = RunAs(job, "record", {"/usr/bin/python3", script, Root() + "/latest/a.csv"},
                        {{"PYTHONPATH", site}, {"PYTHONDONTWRITEBYTECODE", "1"}});
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  }

  std::vector<v1::JournalEntry> WaitForPackage(const std::string& job, const std::string& name) {
    return WaitForJournal(job, [&](const std::vector<v1::JournalEntry>& entries) {
      for (const v1::JournalEntry& e : entries) {
        for (const v1::PythonPackage& p : e.python_packages().packages()) {
          if (absl::AsciiStrToLower(p.name()) == name) return true;
        }
      }
      return false;
    });
  }

  // `reproctl diff a b --output json`, expecting exit code `code`.
  v1::JobDiff Diff(const std::string& a, const std::string& b, int code) {
    RunResult r = reprod_->Ctl({"--output", "json", "diff", a, b});
    EXPECT_EQ(r.exit_code, code) << r.stdout_text << r.stderr_text;
    v1::JobDiff diff;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.stdout_text, &diff).ok())
        << r.stdout_text;
    return diff;
  }
};

TEST_F(EnvironmentTest, PythonImportingNumpyJournalsNumpyAndLibc) {
  RunResult version = RunCommand(
      {"/usr/bin/python3", "-c", "import numpy; print(numpy.__version__, end='')"});
  ASSERT_EQ(version.exit_code, 0) << version.stderr_text;
  Pin("numpy-job");
  const std::string script = Script("numpy_reader.py", R"(
import sys
import numpy
print(numpy.fromfile(sys.argv[1], dtype=numpy.uint8).size)
)");
  RunResult r = RunAs("numpy-job", "record", {"/usr/bin/python3", script, Root() + "/latest/a.csv"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;

  std::vector<v1::JournalEntry> entries = WaitForPackage("numpy-job", "numpy");
  std::map<std::string, v1::PythonPackage> packages = Packages(entries);
  EXPECT_EQ(packages["numpy"].version(), version.stdout_text);
  EXPECT_FALSE(packages["numpy"].location().empty());

  std::map<std::string, v1::Library> libraries = Libraries(entries);
  ASSERT_TRUE(libraries.count("libc.so.6")) << "libc is not among the journaled libraries";
  const v1::Library& libc = libraries["libc.so.6"];
  EXPECT_EQ(libc.version(), gnu_get_libc_version());
  EXPECT_EQ(libc.sha256(), Sha256Of(ReadFileOrDie(Realpath(libc.path()))));
  // numpy's extension modules are libraries of the process too.
  bool numpy_extension = false;
  for (const auto& [soname, library] : libraries) {
    numpy_extension |= library.path().find("/numpy/") != std::string::npos;
  }
  EXPECT_TRUE(numpy_extension);
}

TEST_F(EnvironmentTest, ALibraryLoadedLateIsJournaledAtExit) {
  Pin("late-job");
  // libz is loaded after the first dataset open, so only the report at exit can name it.
  RunResult r = RunAs("late-job", "record",
                      {BinPath("shim_probe"), "open", Root() + "/latest/a.csv", "--", "dlopen",
                       "libz.so.1"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  ASSERT_THAT(r.stdout_text, ::testing::HasSubstr("OK"));
  std::vector<v1::JournalEntry> entries =
      WaitForJournal("late-job", [](const std::vector<v1::JournalEntry>& entries) {
        return Libraries(entries).count("libz.so.1") > 0;
      });
  std::map<std::string, v1::Library> libraries = Libraries(entries);
  EXPECT_TRUE(libraries.count("libc.so.6"));
  EXPECT_FALSE(libraries["libz.so.1"].version().empty());
  EXPECT_EQ(libraries["libz.so.1"].sha256(),
            Sha256Of(ReadFileOrDie(Realpath(libraries["libz.so.1"].path()))));
}

TEST_F(EnvironmentTest, DiffNamesExactlyTheImportedPackageThatDiffers) {
  const std::string site_1 = SitePackages("one", "1.0");
  const std::string site_2 = SitePackages("two", "2.0");
  for (const char* job : {"pkg-a", "pkg-b", "pkg-c"}) Pin(job);
  RunImporting("pkg-a", site_1);
  RunImporting("pkg-b", site_1);
  RunImporting("pkg-c", site_2);
  for (const char* job : {"pkg-a", "pkg-b", "pkg-c"}) WaitForPackage(job, "fakepkg");
  EXPECT_EQ(Packages(Journal("pkg-c"))["fakepkg"].version(), "2.0");

  EXPECT_THAT(Changes(Diff("pkg-a", "pkg-b", 0)), IsEmpty());
  EXPECT_THAT(Changes(Diff("pkg-a", "pkg-c", 1)),
              ElementsAre("python_packages: changed fakepkg 1.0 -> 2.0"));
}

}  // namespace
}  // namespace repro::testing
