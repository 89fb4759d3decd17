// Which opened paths name a Python package or module in a site-packages / dist-packages directory
// (what the shim reports as PACKAGE_DIR), and which do not.
#include <string>

#include "gtest/gtest.h"

extern "C" {
#include "client/shim/loaded_report.h"
}

namespace repro::testing {
namespace {

// The package directory the shim would report for `path`, or "" for none.
std::string PackageDir(const std::string& path) {
  return path.substr(0, shim_package_dir_length(path.c_str()));
}

TEST(PackageDirTest, APackageIsItsTopLevelDirectory) {
  EXPECT_EQ(PackageDir("/usr/lib/python3/dist-packages/numpy/core/__init__.py"),
            "/usr/lib/python3/dist-packages/numpy");
  EXPECT_EQ(PackageDir("/v/lib/python3.11/site-packages/torch/_C.cpython-311-x86_64-linux-gnu.so"),
            "/v/lib/python3.11/site-packages/torch");
  EXPECT_EQ(PackageDir("/usr/lib/python3/dist-packages/numpy/__pycache__/version.cpython-311.pyc"),
            "/usr/lib/python3/dist-packages/numpy");
}

TEST(PackageDirTest, AModuleIsItsFileAndItsCompiledCache) {
  EXPECT_EQ(PackageDir("/usr/lib/python3/dist-packages/six.py"),
            "/usr/lib/python3/dist-packages/six.py");
  EXPECT_EQ(PackageDir("/usr/lib/python3/dist-packages/__pycache__/six.cpython-311.pyc"),
            "/usr/lib/python3/dist-packages/__pycache__/six.cpython-311.pyc");
}

TEST(PackageDirTest, OnlySiteAndDistPackagesDirectoriesCount) {
  EXPECT_EQ(PackageDir("/home/u/my-packages/venv/lib/python3.11/site-packages/yaml/__init__.py"),
            "/home/u/my-packages/venv/lib/python3.11/site-packages/yaml");
  EXPECT_EQ(PackageDir("/home/u/my-packages/data.csv"), "");
  EXPECT_EQ(PackageDir("/usr/lib/python3.11/json/__init__.py"), "");
  EXPECT_EQ(PackageDir("/ml/data/latest/part-0.csv"), "");
}

TEST(PackageDirTest, DirectoriesThemselvesAndEmptyNamesAreNotPackages) {
  EXPECT_EQ(PackageDir("/usr/lib/python3/dist-packages/"), "");
  EXPECT_EQ(PackageDir("/usr/lib/python3/dist-packages//numpy/x.py"), "");
  EXPECT_EQ(PackageDir("/usr/lib/python3/dist-packages/__pycache__/"), "");
}

}  // namespace
}  // namespace repro::testing
