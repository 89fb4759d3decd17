#include "daemon/hashing/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "daemon/hashing/tree_hasher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::repro::testing::TempDir;
using ::repro::testing::WriteFileOrDie;
using ::testing::HasSubstr;

std::string Be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

v1::FileEntry Entry(std::string path, absl::string_view content, int64_t mtime_ns = 0) {
  v1::FileEntry e;
  e.set_path(std::move(path));
  e.set_size(content.size());
  e.set_mtime_ns(mtime_ns);
  e.set_sha256(Sha256Of(content));
  return e;
}

v1::Manifest ManifestOf(std::vector<v1::FileEntry> entries) {
  v1::Manifest m;
  for (v1::FileEntry& e : entries) *m.add_files() = std::move(e);
  return m;
}

TEST(ManifestDigestTest, GoldenVector) {
  v1::Manifest m = ManifestOf({Entry("a.txt", "abc", 111), Entry("dir/b.bin", "", 222)});
  ASSERT_TRUE(ValidateManifest(m).ok());

  // The documented encoding, spelled out.
  std::string encoding("repro.manifest.v1\0", 18);
  encoding += Be64(5) + "a.txt" + Be64(3) + Sha256Of("abc");
  encoding += Be64(9) + "dir/b.bin" + Be64(0) + Sha256Of("");
  EXPECT_EQ(ManifestDigest(m), Sha256Of(encoding));
  // Pinned independently (computed with Python's hashlib), so that changing the encoding and
  // the spelled-out version together still fails.
  EXPECT_EQ(HexDigest(ManifestDigest(m)),
            "edcd90913c24e66e2788a0d16a2930fb1eaab940b814057419bb6331d3548544");
}

TEST(ManifestDigestTest, EmptyManifestIsTheDomainAlone) {
  EXPECT_EQ(ManifestDigest(v1::Manifest()), Sha256Of(kManifestDigestDomain));
}

TEST(ManifestDigestTest, MtimeIsNotPartOfTheDigest) {
  EXPECT_EQ(ManifestDigest(ManifestOf({Entry("a", "x", 1)})),
            ManifestDigest(ManifestOf({Entry("a", "x", 2)})));
}

TEST(ManifestDigestTest, PathBoundariesAreUnambiguous) {
  // Same concatenated bytes, different split between path and the rest.
  EXPECT_NE(ManifestDigest(ManifestOf({Entry("ab", "x")})),
            ManifestDigest(ManifestOf({Entry("a", "x")})));
  EXPECT_NE(ManifestDigest(ManifestOf({Entry("a", ""), Entry("b", "")})),
            ManifestDigest(ManifestOf({Entry("a", "")})));
}

class TreeDigestTest : public ::testing::Test {
 protected:
  std::string DigestOf(const std::string& dir) {
    TreeHasher hasher(DefaultFileSystem(), /*cache=*/nullptr, /*threads=*/2);
    absl::StatusOr<TreeHashResult> result = hasher.HashTree(dir);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return "";
    EXPECT_EQ(result->digest, ManifestDigest(result->manifest));
    return result->digest;
  }

  void WriteTree(const std::string& root) {
    WriteFileOrDie(root + "/a.txt", "alpha");
    WriteFileOrDie(root + "/sub/b.bin", std::string(1000, 'b'));
    WriteFileOrDie(root + "/sub/deeper/c", "gamma");
  }

  static void SetMtime(const std::string& path, int64_t seconds) {
    struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
  }

  TempDir tmp_;
};

TEST_F(TreeDigestTest, CopiesWithOtherMtimesHaveTheSameDigest) {
  WriteTree(tmp_.Path("one"));
  WriteTree(tmp_.Path("two"));
  SetMtime(tmp_.Path("two/a.txt"), 1000000000);
  SetMtime(tmp_.Path("two/sub/b.bin"), 1000000001);
  SetMtime(tmp_.Path("two/sub/deeper/c"), 1000000002);
  EXPECT_EQ(DigestOf(tmp_.Path("one")), DigestOf(tmp_.Path("two")));
}

TEST_F(TreeDigestTest, OneChangedByteChangesTheDigest) {
  WriteTree(tmp_.Path("one"));
  WriteTree(tmp_.Path("two"));
  std::string content(1000, 'b');
  content[500] = 'c';
  WriteFileOrDie(tmp_.Path("two/sub/b.bin"), content);
  EXPECT_NE(DigestOf(tmp_.Path("one")), DigestOf(tmp_.Path("two")));
}

TEST_F(TreeDigestTest, RenamedFileChangesTheDigest) {
  WriteTree(tmp_.Path("one"));
  WriteTree(tmp_.Path("two"));
  ASSERT_EQ(rename(tmp_.Path("two/a.txt").c_str(), tmp_.Path("two/a2.txt").c_str()), 0);
  EXPECT_NE(DigestOf(tmp_.Path("one")), DigestOf(tmp_.Path("two")));
}

TEST_F(TreeDigestTest, EmptyFileIsNotTheSameAsNoFile) {
  WriteTree(tmp_.Path("one"));
  WriteTree(tmp_.Path("two"));
  WriteFileOrDie(tmp_.Path("two/empty"), "");
  EXPECT_NE(DigestOf(tmp_.Path("one")), DigestOf(tmp_.Path("two")));
}

TEST_F(TreeDigestTest, EmptyDirectoriesDoNotChangeTheDigest) {
  WriteTree(tmp_.Path("one"));
  WriteTree(tmp_.Path("two"));
  ASSERT_EQ(mkdir(tmp_.Path("two/nothing_here").c_str(), 0755), 0);
  EXPECT_EQ(DigestOf(tmp_.Path("one")), DigestOf(tmp_.Path("two")));
}

TEST(SortManifestTest, SortsBytewiseUnsigned) {
  v1::Manifest m = ManifestOf(
      {Entry("b", ""), Entry("\xc3\xa9", ""), Entry("a/b", ""), Entry("a-c", ""), Entry("A", "")});
  SortManifest(&m);
  std::vector<std::string> paths;
  for (const auto& f : m.files()) paths.push_back(f.path());
  // '-' (0x2d) < '/' (0x2f); 0xc3 sorts after ASCII (unsigned comparison).
  EXPECT_THAT(paths, ::testing::ElementsAre("A", "a-c", "a/b", "b", "\xc3\xa9"));
  EXPECT_TRUE(ValidateManifest(m).ok());
}

TEST(FindFileTest, FindsByBinarySearch) {
  v1::Manifest m = ManifestOf({Entry("a", "1"), Entry("b/c", "2"), Entry("d", "3")});
  ASSERT_NE(FindFile(m, "b/c"), nullptr);
  EXPECT_EQ(FindFile(m, "b/c")->sha256(), Sha256Of("2"));
  EXPECT_EQ(FindFile(m, "b"), nullptr);
  EXPECT_EQ(FindFile(m, "e"), nullptr);
  EXPECT_EQ(FindFile(v1::Manifest(), "a"), nullptr);
}

TEST(ValidateManifestTest, AcceptsCanonicalManifests) {
  EXPECT_TRUE(ValidateManifest(v1::Manifest()).ok());
  EXPECT_TRUE(ValidateManifest(
                  ManifestOf({Entry(".hidden", ""), Entry("a..b/c.", "x"), Entry("a/b/c", "y")}))
                  .ok());
}

void ExpectInvalid(v1::Manifest m, absl::StatusCode code, absl::string_view mentions) {
  absl::Status s = ValidateManifest(m);
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(mentions))) << s;
}

TEST(ValidateManifestTest, RejectsUnsorted) {
  ExpectInvalid(ManifestOf({Entry("b", ""), Entry("a", "")}), absl::StatusCode::kInvalidArgument,
                "not sorted");
}

TEST(ValidateManifestTest, RejectsDuplicates) {
  ExpectInvalid(ManifestOf({Entry("a", ""), Entry("dup", ""), Entry("dup", "x")}),
                absl::StatusCode::kInvalidArgument, "\"dup\" more than once");
}

TEST(ValidateManifestTest, RejectsBadPaths) {
  for (const char* path : {"/abs", "../up", "a/../b", "a/./b", ".", "a//b", "a/", ""}) {
    SCOPED_TRACE(path);
    ExpectInvalid(ManifestOf({Entry(path, "")}), absl::StatusCode::kInvalidArgument,
                  *path == '\0' ? "empty path" : absl::StrCat("\"", path, "\""));
  }
  ExpectInvalid(ManifestOf({Entry(std::string("a\0b", 3), "")}), absl::StatusCode::kInvalidArgument,
                "NUL");
}

TEST(ValidateManifestTest, RejectsBadHashes) {
  v1::Manifest m = ManifestOf({Entry("a", ""), Entry("b", "")});
  m.mutable_files(1)->set_sha256(std::string(31, 'x'));
  ExpectInvalid(m, absl::StatusCode::kDataLoss, "\"b\" has a 31-byte SHA-256");
  m.mutable_files(1)->clear_sha256();
  ExpectInvalid(m, absl::StatusCode::kDataLoss, "\"b\" has a 0-byte SHA-256");
}

}  // namespace
}  // namespace repro
