// Mapping imported modules to installed distributions: fixture site directories with every kind
// of distribution entry, and the system Python's real numpy.
#include "daemon/loaded_code/python_packages.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/fault_file_system.h"
#include "tests/testutil/system_runtime.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using testing::FaultFileSystem;
using testing::TempDir;
using testing::WriteFileOrDie;

// A site directory holding one distribution of each kind.
class PythonPackagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> real = DefaultFileSystem()->RealPath(site_.path());
    ASSERT_TRUE(real.ok()) << real.status();
    site_path_ = *real;
    // dist-info with top_level.txt (and a second metadata block that must not be read).
    Write("foo_pkg-1.0.dist-info/METADATA",
          "Metadata-Version: 2.1\nName: Foo-Pkg\nVersion: 1.0\n\nName: NotThis\nVersion: 9\n");
    Write("foo_pkg-1.0.dist-info/top_level.txt", "foo\n_foo_c\n");
    Write("foo/__init__.py", "");
    // Claims "foo" only by its own name: the listed claim above wins.
    Write("foo-0.1.egg-info/PKG-INFO", "Name: foo\nVersion: 0.1\n");
    // dist-info with a RECORD only.
    Write("bar-2.0.dist-info/METADATA", "Name: bar\nVersion: 2.0\n");
    Write("bar-2.0.dist-info/RECORD",
          "bar/__init__.py,sha256=abc,10\n"
          "bar.libs/libbar-1a2b.so.1,,\n"
          "\"baz,odd.py\",,\n"
          "bar-2.0.dist-info/METADATA,,\n"
          "../../../bin/bar,,\n"
          "__pycache__/bar_mod.cpython-311.pyc,,\n"
          "bar_mod.py,,\n");
    // egg-info as a plain file; the module has a compiled cache.
    Write("six-1.16.0.egg-info", "Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n");
    Write("six.py", "");
    Write("__pycache__/six.cpython-311.pyc", "");
    // egg-info directory with top_level.txt; an extension module.
    Write("PyYAML-6.0.egg-info/PKG-INFO", "Name: PyYAML\nVersion: 6.0\nSummary: YAML\n");
    Write("PyYAML-6.0.egg-info/top_level.txt", "_yaml\nyaml\n");
    Write("_yaml.cpython-311-x86_64-linux-gnu.so", "");
    // egg-info directory without top_level.txt: claims its name in import form.
    Write("python_dateutil-2.8.2.egg-info/PKG-INFO", "Name: python-dateutil\nVersion: 2.8.2\n");
    // CRLF line ends.
    Write("crlf-3.0.dist-info/METADATA", "Name: crlf\r\nVersion: 3.0\r\n\r\n");
    Write("crlf-3.0.dist-info/top_level.txt", "crlf\r\n");
    // Broken: no METADATA.
    Write("broken-1.0.dist-info/RECORD", "broken/__init__.py,,\n");
  }

  void Write(const std::string& relative, const std::string& contents) {
    WriteFileOrDie(site_.Path(relative), contents);
  }
  // The site directory, symlink-free (as the resolver names locations).
  std::string Site() const { return site_path_; }

  TempDir site_;
  std::string site_path_;
};

MATCHER_P3(IsDistribution, name, version, location, "") {
  return arg.ok() && arg->name == name && arg->version == version && arg->location == location;
}

TEST_F(PythonPackagesTest, ResolvesEveryKindOfEntry) {
  PythonPackageResolver resolver(DefaultFileSystem());
  auto resolve = [&](const char* module) { return resolver.Resolve(Site(), module); };
  const std::string foo = Site() + "/foo_pkg-1.0.dist-info";
  EXPECT_THAT(resolve("foo"), IsDistribution("Foo-Pkg", "1.0", foo));
  EXPECT_THAT(resolve("_foo_c"), IsDistribution("Foo-Pkg", "1.0", foo));
  const std::string bar = Site() + "/bar-2.0.dist-info";
  for (const char* module : {"bar", "bar.libs", "baz,odd", "bar_mod"}) {
    EXPECT_THAT(resolve(module), IsDistribution("bar", "2.0", bar)) << module;
  }
  EXPECT_THAT(resolve("six"), IsDistribution("six", "1.16.0", Site() + "/six-1.16.0.egg-info"));
  const std::string yaml = Site() + "/PyYAML-6.0.egg-info";
  EXPECT_THAT(resolve("yaml"), IsDistribution("PyYAML", "6.0", yaml));
  EXPECT_THAT(resolve("_yaml"), IsDistribution("PyYAML", "6.0", yaml));
  EXPECT_THAT(
      resolve("python_dateutil"),
      IsDistribution("python-dateutil", "2.8.2", Site() + "/python_dateutil-2.8.2.egg-info"));
  EXPECT_THAT(resolve("crlf"), IsDistribution("crlf", "3.0", Site() + "/crlf-3.0.dist-info"));

  for (const char* unclaimed :
       {"dateutil", "broken", "..", "__pycache__", "bar-2.0.dist-info", "NotThis", "nothing"}) {
    EXPECT_EQ(resolve(unclaimed).status().code(), absl::StatusCode::kNotFound) << unclaimed;
  }
  EXPECT_EQ(resolver.Resolve(Site() + "/missing", "foo").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PythonPackagesTest, TheMetadataStatIsReturned) {
  PythonPackageResolver resolver(DefaultFileSystem());
  absl::StatusOr<PythonDistribution> six = resolver.Resolve(Site(), "six");
  ASSERT_TRUE(six.ok()) << six.status();
  EXPECT_EQ(six->metadata.type, FileType::kRegular);
  EXPECT_EQ(six->metadata.uid, getuid());
}

TEST_F(PythonPackagesTest, ScansASiteOnceUntilItChanges) {
  FaultFileSystem fs;
  PythonPackageResolver resolver(&fs);
  ASSERT_TRUE(resolver.Resolve(Site(), "foo").ok());
  ASSERT_TRUE(resolver.Resolve(Site(), "six").ok());
  ASSERT_FALSE(resolver.Resolve(Site(), "new").ok());
  EXPECT_EQ(fs.list_directory_calls(), 1u);

  Write("new-5.0.dist-info/METADATA", "Name: new\nVersion: 5.0\n");
  // Make sure the site's mtime moves even on a file system with a coarse clock.
  timespec later[2] = {{0, UTIME_OMIT}, {0, 0}};
  later[1].tv_sec = time(nullptr) + 10;
  ASSERT_EQ(utimensat(AT_FDCWD, Site().c_str(), later, 0), 0);
  EXPECT_THAT(resolver.Resolve(Site(), "new"),
              IsDistribution("new", "5.0", Site() + "/new-5.0.dist-info"));
  EXPECT_EQ(fs.list_directory_calls(), 2u);
}

TEST_F(PythonPackagesTest, ASymlinkedSiteIsResolvedToItsDirectory) {
  TempDir other;
  const std::string link = other.Path("venv-site");
  ASSERT_EQ(symlink(Site().c_str(), link.c_str()), 0);
  PythonPackageResolver resolver(DefaultFileSystem());
  absl::StatusOr<std::string> real = DefaultFileSystem()->RealPath(Site());
  ASSERT_TRUE(real.ok());
  EXPECT_THAT(resolver.Resolve(link, "six"),
              IsDistribution("six", "1.16.0", *real + "/six-1.16.0.egg-info"));
}

TEST(SiteEntryModuleTest, Entries) {
  EXPECT_EQ(SiteEntryModule("numpy"), "numpy");
  EXPECT_EQ(SiteEntryModule("numpy.libs"), "numpy.libs");
  EXPECT_EQ(SiteEntryModule("six.py"), "six");
  EXPECT_EQ(SiteEntryModule("six.cpython-311.pyc"), "six");
  EXPECT_EQ(SiteEntryModule("_yaml.cpython-311-x86_64-linux-gnu.so"), "_yaml");
  EXPECT_EQ(SiteEntryModule("foo.abi3.so"), "foo");
  for (const char* none :
       {"", ".", "..", "__pycache__", "numpy-1.24.2.egg-info", "PyYAML-6.0.dist-info",
        "foo-1.0.data", "distutils-precedence.pth", "foo.egg-link", ".py"}) {
    EXPECT_EQ(SiteEntryModule(none), std::nullopt) << none;
  }
}

TEST(SiteModuleTest, PackageDirs) {
  auto of = [](const char* dir) {
    std::optional<SiteModule> m = SiteModuleOfPackageDir(dir);
    return m.has_value() ? m->site + " " + m->module : "none";
  };
  EXPECT_EQ(of("/usr/lib/python3/dist-packages/numpy"), "/usr/lib/python3/dist-packages numpy");
  EXPECT_EQ(of("/x/site-packages/six.py"), "/x/site-packages six");
  EXPECT_EQ(of("/x/site-packages/__pycache__/six.cpython-311.pyc"), "/x/site-packages six");
  EXPECT_EQ(of("/x/site-packages/_yaml.cpython-311-x86_64-linux-gnu.so"), "/x/site-packages _yaml");
  EXPECT_EQ(of("/numpy"), "/ numpy");
  EXPECT_EQ(of("/x/site-packages/numpy-1.24.2.egg-info"), "none");
  EXPECT_EQ(of("/x/site-packages/"), "none");
  EXPECT_EQ(of("/x/site-packages/__pycache__/six.txt"), "none");
  EXPECT_EQ(of("numpy"), "none");
  EXPECT_EQ(of(""), "none");
}

TEST(SiteModuleTest, FilesUnderPackagesDirectories) {
  auto of = [](const char* path) {
    std::optional<SiteModule> m = SiteModuleOfFile(path);
    return m.has_value() ? m->site + " " + m->module : "none";
  };
  EXPECT_EQ(of("/usr/lib/python3/dist-packages/numpy/core/"
               "_multiarray_umath.cpython-311-x86_64-linux-gnu.so"),
            "/usr/lib/python3/dist-packages numpy");
  EXPECT_EQ(of("/v/lib/python3.11/site-packages/numpy.libs/libopenblas64_p-r0.so"),
            "/v/lib/python3.11/site-packages numpy.libs");
  EXPECT_EQ(of("/v/site-packages/_yaml.cpython-311-x86_64-linux-gnu.so"), "/v/site-packages _yaml");
  EXPECT_EQ(of("/v/site-packages/__pycache__/six.cpython-311.pyc"), "/v/site-packages six");
  EXPECT_EQ(of("/v/site-packages/torch/lib/libtorch_cpu.so"), "/v/site-packages torch");
  EXPECT_EQ(of("/usr/lib/x86_64-linux-gnu/libc.so.6"), "none");
  EXPECT_EQ(of("/v/site-packages/PyYAML-6.0.dist-info/RECORD"), "none");
  EXPECT_EQ(of("/v/site-packages"), "none");
  EXPECT_EQ(of("/v/site-packages/"), "none");
}

TEST(ImportFormTest, Names) {
  EXPECT_EQ(ImportFormOf("python-dateutil"), "python_dateutil");
  EXPECT_EQ(ImportFormOf("zope.interface"), "zope_interface");
  EXPECT_EQ(ImportFormOf("PyJWT"), "pyjwt");
}

TEST(SystemPythonTest, NumpyIsFoundWithTheVersionPythonImports) {
  std::optional<testing::PythonModule> numpy = testing::SystemPythonModule("numpy");
  if (!numpy.has_value()) GTEST_SKIP() << testing::kSystemPython << " cannot import numpy";
  PythonPackageResolver resolver(DefaultFileSystem());
  std::optional<SiteModule> module = SiteModuleOfPackageDir(numpy->site + "/numpy");
  ASSERT_TRUE(module.has_value());
  absl::StatusOr<PythonDistribution> found = resolver.Resolve(module->site, module->module);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->name, "numpy");
  EXPECT_EQ(found->version, numpy->version);
  EXPECT_THAT(found->location, ::testing::StartsWith(numpy->site + "/numpy-"));
}

}  // namespace
}  // namespace repro
