// From a LOADED report to journal items: real system libraries, fixture site directories, and
// files the reporting process may not read.
#include "daemon/loaded_code/loaded_entries.h"

#include <gnu/libc-version.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/paths.h"
#include "common/sha256.h"
#include "daemon/loaded_code/shared_library.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/system_runtime.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using testing::LoadedLibraryPath;
using testing::ReadFileOrDie;
using testing::TempDir;
using testing::WriteFileOrDie;

LoadedSource Source() {
  return {.job = "job-1", .pid = 1234, .uid = getuid(), .gid = getgid(), .rank = 3};
}

std::string Real(const std::string& path) {
  absl::StatusOr<std::string> real = DefaultFileSystem()->RealPath(path);
  EXPECT_TRUE(real.ok()) << real.status();
  return real.value_or("");
}

std::vector<v1::Library> Libraries(const LoadedEntries& built) {
  std::vector<v1::Library> out;
  for (const JournalItem& item : built.items) {
    if (!item.entry.has_libraries()) continue;
    EXPECT_EQ(item.entry.libraries().pid(), 1234);
    EXPECT_EQ(item.entry.libraries().rank(), 3);
    EXPECT_EQ(item.entry.libraries().libraries_size(), 1);
    out.push_back(item.entry.libraries().libraries(0));
  }
  return out;
}

std::vector<v1::PythonPackage> Packages(const LoadedEntries& built) {
  std::vector<v1::PythonPackage> out;
  for (const JournalItem& item : built.items) {
    if (!item.entry.has_python_packages()) continue;
    EXPECT_EQ(item.entry.python_packages().packages_size(), 1);
    out.push_back(item.entry.python_packages().packages(0));
  }
  return out;
}

TEST(LoadedEntriesTest, LibcWithTheVersionTheProcessReported) {
  const std::string libc = LoadedLibraryPath("libc.so.6");
  ASSERT_FALSE(libc.empty());
  LoadedEntryBuilder builder(DefaultFileSystem(), nullptr);
  LoadedReport loaded;
  loaded.libraries = {libc, libc};  // repeated in one report: one entry
  loaded.libc_version = gnu_get_libc_version();
  LoadedEntries built = builder.Build(Source(), loaded);
  ASSERT_EQ(built.items.size(), 1u);
  EXPECT_EQ(built.skipped_libraries, 0u);
  const v1::Library library = Libraries(built).at(0);
  EXPECT_EQ(library.path(), Real(libc));
  EXPECT_EQ(library.soname(), "libc.so.6");
  EXPECT_EQ(library.version(), gnu_get_libc_version());
  EXPECT_EQ(library.sha256(), Sha256Of(ReadFileOrDie(libc)));
  EXPECT_EQ(built.items[0].once_key,
            absl::StrCat("lib/", Real(libc), "/", HexDigest(library.sha256())));
}

TEST(LoadedEntriesTest, VersionsComeFromTheVersionedFile) {
  const std::string libz = LoadedLibraryPath("libz.so.1");  // a symlink to libz.so.1.2.x
  ASSERT_FALSE(libz.empty());
  LoadedEntryBuilder builder(DefaultFileSystem(), nullptr);
  LoadedReport loaded;
  loaded.libraries = {libz, Real(libz)};  // one file under two names: one entry
  LoadedEntries built = builder.Build(Source(), loaded);
  ASSERT_EQ(built.items.size(), 1u);
  const v1::Library library = Libraries(built).at(0);
  EXPECT_EQ(library.soname(), "libz.so.1");
  const std::string file_name(Basename(Real(libz)));
  ASSERT_THAT(file_name, ::testing::StartsWith("libz.so.1."));
  EXPECT_EQ(library.version(), file_name.substr(std::string("libz.so.").size()));
}

TEST(LoadedEntriesTest, SkipsWhatCannotBeDescribed) {
  TempDir dir;
  WriteFileOrDie(dir.Path("libplain-2.1.so"), "not an ELF file");
  WriteFileOrDie(dir.Path("libsecret.so.1"), "private");
  ASSERT_EQ(chmod(dir.Path("libsecret.so.1").c_str(), 0600), 0);
  // Readable itself, but in a directory the process cannot search.
  WriteFileOrDie(dir.Path("private/libhidden.so.1"), "hidden");
  ASSERT_EQ(chmod(dir.Path("private").c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);  // mkdtemp made it 0700
  LoadedEntryBuilder builder(DefaultFileSystem(), nullptr);
  LoadedReport loaded;
  loaded.libraries = {"/nonexistent/libx.so.1", dir.path(), dir.Path("libplain-2.1.so"),
                      dir.Path("libsecret.so.1"), dir.Path("private/libhidden.so.1")};
  LoadedSource other_user = Source();
  other_user.uid = getuid() + 1000;  // neither root nor the owner
  other_user.gid = getgid() + 1000;
  LoadedEntries built = builder.Build(other_user, loaded);
  // Missing, a directory, unreadable by the process, in a directory it cannot search.
  EXPECT_EQ(built.skipped_libraries, 4u);
  std::vector<v1::Library> libraries = Libraries(built);
  ASSERT_EQ(libraries.size(), 1u);
  // Not ELF: named as the loader named it, versioned by its file name.
  EXPECT_EQ(libraries[0].soname(), "libplain-2.1.so");
  EXPECT_EQ(libraries[0].version(), "2.1");
  EXPECT_EQ(libraries[0].sha256(), Sha256Of("not an ELF file"));

  // The owner may read all three files.
  EXPECT_EQ(Libraries(builder.Build(Source(), loaded)).size(), 3u);
}

TEST(LoadedEntriesTest, PackagesOfPackageDirsAndOfLibraries) {
  TempDir dir;
  const std::string site = Real(dir.path()) + "/lib/python3.11/site-packages";
  WriteFileOrDie(site + "/Foo_Bar-1.0.dist-info/METADATA", "Name: Foo_Bar\nVersion: 1.0\n");
  WriteFileOrDie(site + "/Foo_Bar-1.0.dist-info/RECORD",
                 "foo/__init__.py,,\nfoo/_c.cpython-311-x86_64-linux-gnu.so,,\n");
  WriteFileOrDie(site + "/foo/__init__.py", "");
  WriteFileOrDie(site + "/foo/_c.cpython-311-x86_64-linux-gnu.so", "extension");
  WriteFileOrDie(site + "/six-1.16.0.egg-info", "Name: six\nVersion: 1.16.0\n");
  WriteFileOrDie(site + "/__pycache__/six.cpython-311.pyc", "");
  LoadedEntryBuilder builder(DefaultFileSystem(), nullptr);
  LoadedReport loaded;
  loaded.libraries = {site + "/foo/_c.cpython-311-x86_64-linux-gnu.so"};
  loaded.package_dirs = {site + "/foo", site + "/__pycache__/six.cpython-311.pyc",
                         site + "/unknown", site + "/Foo_Bar-1.0.dist-info"};
  LoadedEntries built = builder.Build(Source(), loaded);
  EXPECT_EQ(Libraries(built).size(), 1u);
  EXPECT_EQ(built.skipped_packages, 2u);  // "unknown" maps to nothing; a dist-info is no module
  std::vector<v1::PythonPackage> packages = Packages(built);
  ASSERT_EQ(packages.size(), 2u);  // foo once, from its directory and from its extension
  EXPECT_EQ(packages[0].name(), "Foo_Bar");
  EXPECT_EQ(packages[0].version(), "1.0");
  EXPECT_EQ(packages[0].location(), site + "/Foo_Bar-1.0.dist-info");
  EXPECT_EQ(packages[1].name(), "six");
  EXPECT_EQ(packages[1].version(), "1.16.0");
  std::vector<std::string> keys;
  for (const JournalItem& item : built.items) keys.push_back(item.once_key);
  EXPECT_THAT(keys, ::testing::IsSupersetOf({"pkg/foo-bar/1.0", "pkg/six/1.16.0"}));
}

TEST(LoadedEntriesTest, LibraryVersion) {
  EXPECT_EQ(LibraryVersion("libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "2.36"), "2.36");
  EXPECT_EQ(LibraryVersion("libc.so.6", "/usr/lib/x86_64-linux-gnu/libc-2.31.so", ""), "2.31");
  EXPECT_EQ(LibraryVersion("libstdc++.so.6", "/usr/lib/libstdc++.so.6.0.30", "2.36"), "6.0.30");
  EXPECT_EQ(LibraryVersion("libfoo.so.3", "/opt/lib/libfoo.so", ""), "3");
  EXPECT_EQ(LibraryVersion("libtorch_cpu.so", "/x/torch/lib/libtorch_cpu.so", "2.36"), "");
}

TEST(LoadedEntriesTest, ProcessMayRead) {
  FileStat stat;
  stat.uid = 1000;
  stat.gid = 100;
  stat.mode = S_IFREG | 0640;
  EXPECT_TRUE(ProcessMayRead(1000, 1, stat));    // owner
  EXPECT_TRUE(ProcessMayRead(2000, 100, stat));  // group
  EXPECT_FALSE(ProcessMayRead(2000, 1, stat));   // others
  EXPECT_TRUE(ProcessMayRead(0, 0, stat));       // root
  stat.mode = S_IFREG | 0044;
  EXPECT_FALSE(ProcessMayRead(1000, 1, stat));  // the owner's bits apply to the owner
  EXPECT_TRUE(ProcessMayRead(2000, 1, stat));
}

}  // namespace
}  // namespace repro
