#include "client/cli/format.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro::cli {
namespace {

TEST(FormatBytesTest, HumanReadable) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1), "1 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1024), "1.0 KiB");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(10 * 1024 * 1024 + 300 * 1024), "10.3 MiB");
  EXPECT_EQ(FormatBytes(1048575), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ(FormatBytes(uint64_t{3} << 30), "3.0 GiB");
  EXPECT_EQ(FormatBytes(uint64_t{5} << 40), "5.0 TiB");
  EXPECT_EQ(FormatBytes(~uint64_t{0}), "16.0 EiB");
  EXPECT_EQ(FormatBytes(1536, ""), "1.5KiB");
  EXPECT_EQ(FormatBytes(12, ""), "12B");
}

TEST(DigestTest, FullAndShort) {
  std::string digest(32, '\0');
  for (int i = 0; i < 32; ++i) digest[i] = static_cast<char>(0xa0 + i);
  EXPECT_EQ(FullDigest(digest), "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
  EXPECT_EQ(ShortDigest(digest), "a0a1a2a3a4a5");
  EXPECT_EQ(ShortDigest(digest).size(), kShortDigestLength);
  EXPECT_EQ(FullDigest(""), "-");
  EXPECT_EQ(ShortDigest(""), "-");
  EXPECT_EQ(ShortDigest("\x01"), "01");  // odd servers: short digests stay short
}

TEST(FormatTimeTest, UtcRfc3339) {
  google::protobuf::Timestamp t;
  EXPECT_EQ(FormatTime(t), "-");
  t.set_seconds(1736330400);  // 2025-01-08T10:00:00Z
  t.set_nanos(250'000'000);
  EXPECT_EQ(FormatTime(t), "2025-01-08T10:00:00Z");
  EXPECT_EQ(FormatTime(t, /*millis=*/true), "2025-01-08T10:00:00.250Z");
  t.set_nanos(-5);  // out of range from an odd server: clamped, no crash
  EXPECT_EQ(FormatTime(t, true), "2025-01-08T10:00:00.000Z");
}

TEST(FormatSecondsTest, Ranges) {
  EXPECT_EQ(FormatSeconds(0.4212), "0.42s");
  EXPECT_EQ(FormatSeconds(12.34), "12.3s");
  EXPECT_EQ(FormatSeconds(185), "3m05s");
  EXPECT_EQ(FormatSeconds(7260), "2h01m");
  EXPECT_EQ(FormatSeconds(-1), "0.00s");
}

TEST(QuoteTest, PlainTokensStayBare) {
  EXPECT_EQ(QuoteIfNeeded("abc123"), "abc123");
  EXPECT_EQ(QuoteIfNeeded("git/commit:x.y-z_1"), "git/commit:x.y-z_1");
  EXPECT_EQ(QuoteIfNeeded(""), "\"\"");
  EXPECT_EQ(QuoteIfNeeded("a b"), "\"a b\"");
  EXPECT_EQ(QuoteIfNeeded("a=b"), "\"a=b\"");
  EXPECT_EQ(QuoteIfNeeded("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
}

TEST(OneLineTest, ControlCharactersBecomeSpaces) { EXPECT_EQ(OneLine("a\nb\r\tc"), "a b  c"); }

TEST(TableTest, AlignsColumns) {
  Table table({"DATASET", "FILES", "PATH"});
  table.AlignRight(1);
  table.AddRow({"user_ctr", "12", "/ml/u"});
  table.AddRow({"x", "1234", ""});
  EXPECT_EQ(table.rows(), 2u);
  EXPECT_EQ(table.Render(),
            "DATASET   FILES  PATH\n"
            "user_ctr     12  /ml/u\n"
            "x          1234\n");
}

TEST(TableTest, MissingAndExtraCells) {
  Table table({"A", "B"});
  table.AddRow({"only"});
  table.AddRow({"1", "2", "dropped"});
  EXPECT_EQ(table.Render(), "A     B\nonly\n1     2\n");
}

TEST(KeyValueBlockTest, AlignsValues) {
  KeyValueBlock block;
  block.Add("job", "j");
  block.Add("created", "now");
  block.Add("empty", "");
  EXPECT_EQ(block.Render(), "job      j\ncreated  now\nempty\n");
}

}  // namespace
}  // namespace repro::cli
