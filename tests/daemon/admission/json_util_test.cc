#include "daemon/admission/json_util.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

using ::testing::HasSubstr;

TEST(ParseJsonTest, ParsesADocument) {
  absl::StatusOr<nlohmann::json> parsed =
      ParseJson(R"( {"a": {"b": ["x", 1]}, "n": 12345678901234567890} )");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)["a"]["b"][0], "x");
  EXPECT_EQ((*parsed)["n"].get<uint64_t>(), 12345678901234567890u);  // exact, not a double
}

TEST(ParseJsonTest, RefusesSyntaxErrorsWithThePosition) {
  for (const char* bad : {"", "{", "{\"a\":}", "{\"a\":1} trailing", "[1,]", "nul"}) {
    absl::StatusOr<nlohmann::json> parsed = ParseJson(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("invalid JSON")) << bad;
  }
  EXPECT_THAT(ParseJson("{\"a\" 1}").status().message(), HasSubstr("column 6"));
}

TEST(ParseJsonTest, RefusesInvalidUtf8AndLoneSurrogates) {
  EXPECT_FALSE(ParseJson("{\"a\":\"\xff\"}").ok());
  EXPECT_FALSE(ParseJson(R"({"a":"\ud800"})").ok());
}

TEST(ParseJsonTest, BoundsNestingBeforeParsing) {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(ParseJson(nested(kMaxJsonDepth)).ok());
  absl::StatusOr<nlohmann::json> deep = ParseJson(nested(kMaxJsonDepth + 1));
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(deep.status().message(), HasSubstr("deeper than 64"));
  // A hostile body the size of the webhook's limit is refused by the linear pre-scan.
  EXPECT_FALSE(ParseJson(std::string(3 << 20, '{')).ok());
  // Brackets inside strings (escaped quotes included) do not count.
  EXPECT_TRUE(ParseJson("{\"a\":\"" + std::string(1000, '[') + "\\\"{{{\"}").ok());
}

TEST(FindTest, ReturnsNullInsteadOfThrowing) {
  const nlohmann::json doc = nlohmann::json::parse(R"({"a": {"b": "s", "n": 3}, "l": [1]})");
  ASSERT_NE(Find(doc, {"a", "b"}), nullptr);
  EXPECT_EQ(Find(doc, {}), &doc);
  EXPECT_EQ(Find(doc, {"a", "missing"}), nullptr);
  EXPECT_EQ(Find(doc, {"l", "0"}), nullptr);       // not an object
  EXPECT_EQ(Find(doc, {"a", "b", "c"}), nullptr);  // through a string
  ASSERT_NE(FindString(doc, {"a", "b"}), nullptr);
  EXPECT_EQ(*FindString(doc, {"a", "b"}), "s");
  EXPECT_EQ(FindString(doc, {"a", "n"}), nullptr);  // a number
}

TEST(DumpJsonTest, ReplacesInvalidUtf8InsteadOfThrowing) {
  EXPECT_EQ(DumpJson({{"a", "x\xffy"}}), "{\"a\":\"x\xEF\xBF\xBDy\"}");
}

}  // namespace
}  // namespace repro
