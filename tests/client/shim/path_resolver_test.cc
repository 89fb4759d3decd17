// The shim's path rules on a real directory tree: aliases, other versions, and the spellings that
// must not escape them ("..", "//", ".", symlinks, relative paths after chdir, directory fds).
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/test_pins.h"
#include "tests/testutil/temp_dir.h"

extern "C" {
#include "client/shim/cwd_tracker.h"
#include "client/shim/path_resolver.h"
}

namespace repro::testing {
namespace {

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? buf : "";
}

class PathResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = RealPath(dir_.path());
    root_ = base_ + "/ml/ds";
    for (const char* file : {"v1/a.txt", "v1/sub/b.txt", "v2/a.txt", "v2/sub/b.txt",
                             "copy/a.txt", "README"}) {
      WriteFileOrDie(root_ + "/" + file, file);
    }
    std::filesystem::create_directory_symlink("v2", root_ + "/latest");
    std::filesystem::create_directories(base_ + "/work/plain");
    std::filesystem::create_directory_symlink(root_ + "/v2", base_ + "/work/to_v2");
    std::filesystem::create_directory_symlink(root_ + "/latest", base_ + "/work/to_latest");
    std::filesystem::create_directory_symlink("../ml", base_ + "/work/ml_link");
    pin_ = MakePin({{"ds", "v1", root_, "v1", {"v2"}}});
    ASSERT_EQ(getcwd(old_cwd_, sizeof(old_cwd_)), old_cwd_);
  }

  void TearDown() override {
    ASSERT_EQ(chdir(old_cwd_), 0);
    shim_cwd_changed(old_cwd_);
  }

  shim_target Resolve(const std::string& path, int dirfd = AT_FDCWD) {
    shim_target t;
    EXPECT_EQ(shim_resolve(pin_.get(), dirfd, path.c_str(), 0, &t), 0) << path;
    return t;
  }

  // The path resolves into the pinned version at `expected` (relative to root_).
  void ExpectPinned(const std::string& path, const std::string& expected, bool redirected,
                    int dirfd = AT_FDCWD) {
    EXPECT_EQ(shim_quick_check(pin_.get(), dirfd, path.c_str(), 0), 1) << path;
    shim_target t = Resolve(path, dirfd);
    EXPECT_EQ(t.place, SHIM_IN_VERSION) << path;
    EXPECT_FALSE(t.other) << path;
    EXPECT_EQ(t.redirected, redirected) << path;
    EXPECT_EQ(std::string(t.path), root_ + "/" + expected) << path;
  }

  void ExpectOther(const std::string& path, const std::string& expected) {
    shim_target t = Resolve(path);
    EXPECT_EQ(t.place, SHIM_IN_VERSION) << path;
    EXPECT_TRUE(t.other) << path;
    EXPECT_EQ(std::string(t.path), root_ + "/" + expected) << path;
  }

  void Chdir(const std::string& dir) {
    ASSERT_EQ(chdir(dir.c_str()), 0) << dir;
    shim_cwd_changed(dir.c_str());
  }

  TempDir dir_;
  std::string base_;
  std::string root_;
  std::unique_ptr<shim_pin> pin_;
  char old_cwd_[PATH_MAX];
};

TEST_F(PathResolverTest, PinnedVersionPassesAndAliasesAreRewritten) {
  ExpectPinned(root_ + "/v1/a.txt", "v1/a.txt", false);
  ExpectPinned(root_ + "/v1/sub/b.txt", "v1/sub/b.txt", false);
  ExpectPinned(root_ + "/latest/a.txt", "v1/a.txt", true);          // a symlink alias
  ExpectPinned(root_ + "/latest/sub/b.txt", "v1/sub/b.txt", true);
  ExpectPinned(root_ + "/copy/a.txt", "v1/a.txt", true);            // an unregistered copy
  ExpectPinned(root_ + "/current/a.txt", "v1/a.txt", true);         // a name that does not exist
  shim_target t = Resolve(root_ + "/latest/sub/b.txt");
  EXPECT_STREQ(t.path + t.rel_off, "sub/b.txt");
}

// Below a version's name the rest of a plainly spelled path is copied whole (the fast path);
// any "." or ".." component, empty component or trailing '/' in it takes the component walk,
// and both give the same answers.
TEST_F(PathResolverTest, TheRestBelowAVersionIsTakenLexically) {
  ExpectPinned(root_ + "/latest/sub/deeper/c.txt", "v1/sub/deeper/c.txt", true);  // need not exist
  ExpectPinned(root_ + "/latest/sub/.hidden/c.txt", "v1/sub/.hidden/c.txt", true);
  ExpectPinned(root_ + "/latest/sub//deeper/c.txt", "v1/sub/deeper/c.txt", true);
  ExpectPinned(root_ + "/latest/sub/deeper/../b.txt", "v1/sub/b.txt", true);
  ExpectPinned(root_ + "/latest/sub/./b.txt", "v1/sub/b.txt", true);
  ExpectOther(root_ + "/latest/sub/../../v2/sub/b.txt", "v2/sub/b.txt");
  ExpectOther(root_ + "/v2/sub/deeper/c.txt", "v2/sub/deeper/c.txt");
  shim_target dir;
  ASSERT_EQ(shim_resolve(pin_.get(), AT_FDCWD, (root_ + "/latest/sub/").c_str(), 1, &dir), 0);
  EXPECT_EQ(std::string(dir.path), root_ + "/v1/sub");
  EXPECT_STREQ(dir.path + dir.rel_off, "sub");
}

TEST_F(PathResolverTest, OtherVersionsAreRecognized) {
  ExpectOther(root_ + "/v2/a.txt", "v2/a.txt");
  ExpectOther(root_ + "/v2/sub/b.txt", "v2/sub/b.txt");
}

TEST_F(PathResolverTest, SpellingsDoNotEscape) {
  ExpectOther(root_ + "/latest/../v2/a.txt", "v2/a.txt");
  ExpectOther(root_ + "/v1/sub/../../v2/a.txt", "v2/a.txt");
  ExpectPinned(root_ + "//latest///a.txt", "v1/a.txt", true);
  ExpectPinned(root_ + "/./latest/./sub/../a.txt", "v1/a.txt", true);
  ExpectPinned(base_ + "/ml//ds/latest/a.txt", "v1/a.txt", true);
  ExpectPinned(base_ + "/work/../ml/ds/latest/a.txt", "v1/a.txt", true);
}

TEST_F(PathResolverTest, SymlinksOutsideTheRootAreFollowed) {
  ExpectOther(base_ + "/work/to_v2/a.txt", "v2/a.txt");
  ExpectPinned(base_ + "/work/to_latest/a.txt", "v1/a.txt", true);
  ExpectPinned(base_ + "/work/ml_link/ds/latest/sub/b.txt", "v1/sub/b.txt", true);
  ExpectOther(base_ + "/work/ml_link/ds/v2/a.txt", "v2/a.txt");
}

TEST_F(PathResolverTest, RelativePathsAfterChdir) {
  Chdir(root_);
  ExpectPinned("latest/a.txt", "v1/a.txt", true);
  ExpectOther("v2/a.txt", "v2/a.txt");
  Chdir("latest");  // logical, as a shell does: still the alias, not v2
  ExpectPinned("a.txt", "v1/a.txt", true);
  ExpectPinned("./sub/b.txt", "v1/sub/b.txt", true);
  ExpectOther("../v2/a.txt", "v2/a.txt");
  Chdir(base_ + "/work");
  ExpectPinned("to_latest/a.txt", "v1/a.txt", true);
  ExpectOther("to_v2/sub/b.txt", "v2/sub/b.txt");
  ExpectPinned("../ml/ds/latest/a.txt", "v1/a.txt", true);
}

TEST_F(PathResolverTest, OpenatWithADirectoryFd) {
  int v1 = open((root_ + "/v1").c_str(), O_RDONLY | O_DIRECTORY);
  int v2 = open((root_ + "/v2").c_str(), O_RDONLY | O_DIRECTORY);
  int work = open((base_ + "/work").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(v1, 0);
  ASSERT_GE(v2, 0);
  ASSERT_GE(work, 0);
  ExpectPinned("sub/b.txt", "v1/sub/b.txt", false, v1);
  ExpectPinned("../latest/a.txt", "v1/a.txt", true, v1);
  EXPECT_TRUE(Resolve("a.txt", v2).other);
  ExpectPinned("to_latest/a.txt", "v1/a.txt", true, work);
  EXPECT_EQ(Resolve("plain/x", work).place, SHIM_OUTSIDE);
  close(v1);
  close(v2);
  close(work);
}

TEST_F(PathResolverTest, RootEntriesAndDirectories) {
  EXPECT_NE(Resolve(root_).place, SHIM_IN_VERSION);  // the root itself is left alone
  EXPECT_EQ(Resolve(root_ + "/").place, SHIM_ROOT_ENTRY);
  EXPECT_EQ(Resolve(root_ + "/README").place, SHIM_ROOT_ENTRY);  // a file, not an alias
  shim_target latest = Resolve(root_ + "/latest");
  EXPECT_EQ(latest.place, SHIM_IN_VERSION);
  EXPECT_TRUE(latest.version_dir);
  EXPECT_TRUE(latest.redirected);
  EXPECT_EQ(std::string(latest.path), root_ + "/v1");
  shim_target v2 = Resolve(root_ + "/v2/");
  EXPECT_TRUE(v2.version_dir);
  EXPECT_TRUE(v2.other);
  EXPECT_TRUE(Resolve(root_ + "/v1/sub/..").version_dir);
}

TEST_F(PathResolverTest, DirectoriesOpenedWithODirectoryAreFollowedToTheEnd) {
  auto resolve_dir = [&](const std::string& path) {
    shim_target t;
    EXPECT_EQ(shim_resolve(pin_.get(), AT_FDCWD, path.c_str(), 1, &t), 0) << path;
    return t;
  };
  shim_target latest = resolve_dir(base_ + "/work/to_latest");  // a symlink as last component
  EXPECT_TRUE(latest.version_dir);
  EXPECT_TRUE(latest.redirected);
  EXPECT_EQ(std::string(latest.path), root_ + "/v1");
  EXPECT_TRUE(resolve_dir(base_ + "/work/to_v2").other);
  const std::string plain = base_ + "/work/plain";
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, plain.c_str(), 1), 1);
  EXPECT_EQ(resolve_dir(plain).place, SHIM_OUTSIDE);
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, plain.c_str(), 1), 0);
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, (base_ + "/work/to_latest").c_str(), 1), 1);
}

TEST_F(PathResolverTest, OutsideIsCachedWithoutSyscalls) {
  const std::string file = base_ + "/work/plain/data.bin";
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, file.c_str(), 0), 1);  // not seen yet
  EXPECT_EQ(Resolve(file).place, SHIM_OUTSIDE);
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, file.c_str(), 0), 0);
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, (base_ + "/work/plain/other").c_str(), 0), 0);
  // Through a symlink into the root the directory is never cached as outside.
  const std::string linked = base_ + "/work/to_v2/a.txt";
  EXPECT_TRUE(Resolve(linked).other);
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, linked.c_str(), 0), 1);
  // "." and ".." say nothing about where the directory leads.
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, (base_ + "/work/to_v2/..").c_str(), 0), 1);
  Chdir(base_ + "/work/plain");
  EXPECT_EQ(Resolve("x.bin").place, SHIM_OUTSIDE);
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, "y.bin", 0), 0);
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, "../to_v2/a.txt", 0), 1);
}

TEST_F(PathResolverTest, IncompletePinTreatsEveryOtherNameAsAnAlias) {
  auto pin = std::make_unique<shim_pin>();
  const std::string env = "ds@v1=" + root_ + "/v1";
  ASSERT_EQ(shim_pin_from_env(pin.get(), env.c_str(), 1), 1);
  shim_target t;
  ASSERT_EQ(shim_resolve(pin.get(), AT_FDCWD, (root_ + "/v2/a.txt").c_str(), 0, &t), 0);
  EXPECT_TRUE(t.redirected);
  EXPECT_EQ(std::string(t.path), root_ + "/v1/a.txt");
}

TEST_F(PathResolverTest, UnresolvableSpellingsAreLeftAlone) {
  std::filesystem::create_symlink("loop2", base_ + "/work/loop1");
  std::filesystem::create_symlink("loop1", base_ + "/work/loop2");
  shim_target t;
  EXPECT_EQ(shim_resolve(pin_.get(), AT_FDCWD, (base_ + "/work/loop1/x").c_str(), 0, &t), -1);
  EXPECT_EQ(shim_resolve(pin_.get(), 12345, "x", 0, &t), -1);  // not an open descriptor
  std::string longest(SHIM_PATH_MAX + 10, 'a');
  EXPECT_EQ(shim_resolve(pin_.get(), AT_FDCWD, ("/" + longest).c_str(), 0, &t), -1);
  // A missing directory outside the roots: outside, never cached as such.
  const std::string missing = base_ + "/work/missing/x";
  EXPECT_EQ(Resolve(missing).place, SHIM_OUTSIDE);
  EXPECT_EQ(shim_quick_check(pin_.get(), AT_FDCWD, missing.c_str(), 0), 1);
}

}  // namespace
}  // namespace repro::testing
