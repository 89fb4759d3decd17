#include "client/cli/arg_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr FlagSpec kFlags[] = {
    {"addr", FlagKind::kValue, "ADDR", ""},
    {"follow", FlagKind::kBool, "", ""},
    {"help", FlagKind::kBool, "", ""},
    {"pin", FlagKind::kList, "D@V", ""},
};

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args) { return ParseArgs(args, kFlags); }

TEST(ArgParserTest, FlagsAnywhereBetweenWords) {
  absl::StatusOr<ParsedArgs> args =
      Parse({"--addr", "unix:/s", "journal", "--follow", "job-1", "--pin=a@b"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positional, ElementsAre("journal", "job-1"));
  EXPECT_EQ(args->Value("addr"), "unix:/s");
  EXPECT_TRUE(args->Bool("follow"));
  EXPECT_THAT(args->Values("pin"), ElementsAre("a@b"));
  EXPECT_FALSE(args->saw_dashdash);
}

TEST(ArgParserTest, EqualsAndSpaceForms) {
  absl::StatusOr<ParsedArgs> a = Parse({"--addr=host:1"});
  absl::StatusOr<ParsedArgs> b = Parse({"--addr", "host:1"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->Value("addr"), "host:1");
  EXPECT_EQ(b->Value("addr"), "host:1");
}

TEST(ArgParserTest, ValueMayContainEqualsAndBeEmpty) {
  absl::StatusOr<ParsedArgs> args = Parse({"--addr=a=b", "--pin="});
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(args->Value("addr"), "a=b");
  EXPECT_THAT(args->Values("pin"), ElementsAre(""));
}

TEST(ArgParserTest, ValueTakenEvenWhenItLooksLikeAFlag) {
  absl::StatusOr<ParsedArgs> args = Parse({"--addr", "--follow"});
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(args->Value("addr"), "--follow");
  EXPECT_FALSE(args->Has("follow"));
}

TEST(ArgParserTest, DashDashEndsFlags) {
  absl::StatusOr<ParsedArgs> args =
      Parse({"run", "--pin", "a@b", "--", "python", "--follow", "--", "x"});
  ASSERT_TRUE(args.ok());
  EXPECT_THAT(args->positional, ElementsAre("run"));
  EXPECT_TRUE(args->saw_dashdash);
  EXPECT_THAT(args->after_dashdash, ElementsAre("python", "--follow", "--", "x"));
  EXPECT_FALSE(args->Has("follow"));
}

TEST(ArgParserTest, ListFlagKeepsEveryValueInOrder) {
  absl::StatusOr<ParsedArgs> args = Parse({"--pin", "a@1", "--pin=b@2"});
  ASSERT_TRUE(args.ok());
  EXPECT_THAT(args->Values("pin"), ElementsAre("a@1", "b@2"));
  EXPECT_EQ(args->Value("pin"), "b@2");
}

TEST(ArgParserTest, BoolValues) {
  for (const char* yes : {"--follow", "--follow=true", "--follow=1", "--follow=yes"}) {
    absl::StatusOr<ParsedArgs> args = Parse({yes});
    ASSERT_TRUE(args.ok()) << yes;
    EXPECT_TRUE(args->Bool("follow")) << yes;
  }
  absl::StatusOr<ParsedArgs> off = Parse({"--follow=false"});
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->Has("follow"));
  EXPECT_FALSE(off->Bool("follow"));
  // A bool never takes the next word.
  absl::StatusOr<ParsedArgs> next = Parse({"--follow", "false"});
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->Bool("follow"));
  EXPECT_THAT(next->positional, ElementsAre("false"));
}

TEST(ArgParserTest, LastValueCounts) {
  absl::StatusOr<ParsedArgs> args = Parse({"--addr=a", "--addr", "b", "--follow", "--follow=0"});
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(args->Value("addr"), "b");
  EXPECT_THAT(args->Values("addr"), ElementsAre("b"));
  EXPECT_FALSE(args->Bool("follow"));
}

TEST(ArgParserTest, ShortHelpAndLoneDash) {
  absl::StatusOr<ParsedArgs> args = Parse({"-h", "-"});
  ASSERT_TRUE(args.ok());
  EXPECT_TRUE(args->Bool("help"));
  EXPECT_THAT(args->positional, ElementsAre("-"));
}

TEST(ArgParserTest, Errors) {
  EXPECT_THAT(Parse({"--nope"}).status().message(), HasSubstr("unknown flag --nope"));
  EXPECT_THAT(Parse({"-x"}).status().message(), HasSubstr("unknown flag -x"));
  EXPECT_THAT(Parse({"--addr"}).status().message(), HasSubstr("--addr needs a value"));
  EXPECT_THAT(Parse({"--follow=maybe"}).status().message(), HasSubstr("true or false"));
  EXPECT_EQ(Parse({"--nope"}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ArgParserTest, Empty) {
  absl::StatusOr<ParsedArgs> args = Parse({});
  ASSERT_TRUE(args.ok());
  EXPECT_THAT(args->positional, IsEmpty());
  EXPECT_FALSE(args->Value("addr").has_value());
  EXPECT_THAT(args->Values("pin"), IsEmpty());
}

}  // namespace
}  // namespace repro::cli
