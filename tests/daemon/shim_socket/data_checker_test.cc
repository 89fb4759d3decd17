// DataChecker on registered versions: match, content changed, not in the manifest, another
// version, and paths that are not files of a version.
#include "daemon/shim_socket/data_checker.h"

#include <unistd.h>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/shim_socket/shim_test_stack.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::ShimTestStack;
using testing::WriteFileOrDie;

class DataCheckerTest : public ::testing::Test {
 protected:
  void SetUp() override { pin_ = stack_.PinJob("job-1", "v1"); }

  OpenCheck Check(const std::string& path, const std::string& dataset = "ds") {
    return checker_.Check(pin_, dataset, path);
  }

  ShimTestStack stack_;
  DataChecker checker_{stack_.versions.get(), DefaultFileSystem(), stack_.cache.get()};
  v1::Pin pin_;
};

TEST_F(DataCheckerTest, MatchingFile) {
  OpenCheck c = Check(stack_.root() + "/v1/sub/b.csv");
  EXPECT_EQ(c.verdict, v1::VERDICT_MATCH) << c.detail;
  EXPECT_EQ(c.version, "v1");
  EXPECT_EQ(c.relative_path, "sub/b.csv");
  EXPECT_EQ(c.sha256, Sha256Of("b of v1\n"));
  EXPECT_EQ(c.stat.size, 8u);
}

TEST_F(DataCheckerTest, ChangedContentIsCaught) {
  WriteFileOrDie(stack_.root() + "/v1/a.csv", "a of v9\n");  // same size, new content
  OpenCheck c = Check(stack_.root() + "/v1/a.csv");
  EXPECT_EQ(c.verdict, v1::VERDICT_CONTENT_CHANGED);
  EXPECT_EQ(c.sha256, Sha256Of("a of v9\n"));
  EXPECT_THAT(c.detail, HasSubstr("no longer matches"));
}

TEST_F(DataCheckerTest, FilesOutsideTheManifest) {
  WriteFileOrDie(stack_.root() + "/v1/extra.csv", "new\n");
  OpenCheck extra = Check(stack_.root() + "/v1/extra.csv");
  EXPECT_EQ(extra.verdict, v1::VERDICT_NOT_IN_MANIFEST);
  EXPECT_THAT(extra.detail, HasSubstr("extra.csv is not in the manifest of ds@v1"));
  EXPECT_TRUE(extra.sha256.empty());  // unregistered files are never read
  for (const std::string& path :
       {stack_.root() + "/v1/../v2/a.csv", stack_.root() + "/v1", stack_.root() + "/copy/a.csv",
        stack_.root() + "/v1//a.csv", std::string("/etc/passwd")}) {
    EXPECT_EQ(Check(path).verdict, v1::VERDICT_NOT_IN_MANIFEST) << path;
  }
  EXPECT_THAT(Check(stack_.root() + "/v1/a.csv", "other").detail,
              HasSubstr("dataset other is not pinned by job job-1"));
}

TEST_F(DataCheckerTest, AnotherVersion) {
  OpenCheck c = Check(stack_.root() + "/v2/a.csv");
  EXPECT_EQ(c.verdict, v1::VERDICT_OTHER_VERSION);
  EXPECT_EQ(c.version, "v2");
  EXPECT_EQ(c.sha256, Sha256Of("a of v2\n"));
  EXPECT_THAT(c.detail, HasSubstr("belongs to ds@v2, not to the pinned ds@v1"));
}

TEST_F(DataCheckerTest, UnreadableFile) {
  ASSERT_EQ(unlink((stack_.root() + "/v1/a.csv").c_str()), 0);
  EXPECT_EQ(Check(stack_.root() + "/v1/a.csv").verdict, v1::VERDICT_UNREADABLE);
}

}  // namespace
}  // namespace repro
