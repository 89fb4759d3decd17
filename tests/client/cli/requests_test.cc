#include "client/cli/requests.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro::cli {
namespace {

using ::testing::HasSubstr;

TEST(ParseFactTest, SplitsOnTheFirstEquals) {
  absl::StatusOr<v1::Fact> fact = ParseFact("hp:lr=a=b");
  ASSERT_TRUE(fact.ok()) << fact.status();
  EXPECT_EQ(fact->key(), "hp:lr");
  EXPECT_EQ(fact->value(), "a=b");
}

TEST(ParseFactTest, EmptyValueIsAllowed) {
  absl::StatusOr<v1::Fact> fact = ParseFact("note=");
  ASSERT_TRUE(fact.ok());
  EXPECT_EQ(fact->key(), "note");
  EXPECT_EQ(fact->value(), "");
}

TEST(ParseFactTest, ValueKeepsSpacesAndUtf8) {
  absl::StatusOr<v1::Fact> fact = ParseFact("git/commit=abc def \xc3\xa9");
  ASSERT_TRUE(fact.ok());
  EXPECT_EQ(fact->value(), "abc def \xc3\xa9");
}

TEST(ParseFactTest, Rejects) {
  EXPECT_THAT(ParseFact("lr").status().message(), HasSubstr("is not KEY=VALUE"));
  EXPECT_EQ(ParseFact("=1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFact("a b=1").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseFactsTest, RejectsRepeatedKeys) {
  std::vector<std::string> args = {"a=1", "b=2", "a=3"};
  EXPECT_THAT(ParseFacts(args).status().message(), HasSubstr("fact a given twice"));
  std::vector<std::string> ok = {"a=1", "b=2"};
  absl::StatusOr<std::vector<v1::Fact>> facts = ParseFacts(ok);
  ASSERT_TRUE(facts.ok());
  ASSERT_EQ(facts->size(), 2u);
  EXPECT_EQ((*facts)[1].key(), "b");
}

TEST(ParseUint64FlagTest, DigitsOnly) {
  EXPECT_EQ(*ParseUint64Flag("seed", "0"), 0u);
  EXPECT_EQ(*ParseUint64Flag("seed", "18446744073709551615"), ~uint64_t{0});
  for (const char* bad : {"", "-1", "+1", " 1", "1x", "0x10", "18446744073709551616"}) {
    EXPECT_EQ(ParseUint64Flag("seed", bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_THAT(ParseUint64Flag("since", "x").status().message(), HasSubstr("--since"));
}

TEST(BuildPinRequestTest, VersionsAndSeed) {
  PinSpec spec;
  spec.job = "train-42";
  spec.refs = {"user_ctr@v1", "images@2025-01"};
  spec.seed = "7";
  absl::StatusOr<v1::PinRequest> request = BuildPinRequest(spec);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->job(), "train-42");
  ASSERT_EQ(request->versions_size(), 2);
  EXPECT_EQ(request->versions(0).dataset(), "user_ctr");
  EXPECT_EQ(request->versions(0).version(), "v1");
  EXPECT_EQ(request->versions(1).dataset(), "images");
  EXPECT_TRUE(request->has_seed());
  EXPECT_EQ(request->seed(), 7u);
  EXPECT_TRUE(request->like_job().empty());
}

TEST(BuildPinRequestTest, NoSeedLeavesItAbsent) {
  PinSpec spec{"j", {"d@v"}, std::nullopt, std::nullopt};
  absl::StatusOr<v1::PinRequest> request = BuildPinRequest(spec);
  ASSERT_TRUE(request.ok());
  EXPECT_FALSE(request->has_seed());
}

TEST(BuildPinRequestTest, Like) {
  PinSpec spec{"j2", {}, std::nullopt, std::string("j1")};
  absl::StatusOr<v1::PinRequest> request = BuildPinRequest(spec);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->like_job(), "j1");
  EXPECT_EQ(request->versions_size(), 0);
}

TEST(BuildPinRequestTest, Rejects) {
  auto message = [](PinSpec spec) { return std::string(BuildPinRequest(spec).status().message()); };
  EXPECT_THAT(message({"j", {}, std::nullopt, std::nullopt}), HasSubstr("no data versions"));
  EXPECT_THAT(message({"j", {"d@v"}, std::nullopt, std::string("k")}), HasSubstr("--like"));
  EXPECT_THAT(message({"j", {}, std::string("1"), std::string("k")}), HasSubstr("--like"));
  EXPECT_THAT(message({"j", {"d@v1", "d@v2"}, std::nullopt, std::nullopt}),
              HasSubstr("dataset d given twice"));
  EXPECT_THAT(message({"j", {"dv"}, std::nullopt, std::nullopt}), HasSubstr("DATASET@VERSION"));
  EXPECT_THAT(message({"j", {"d@v"}, std::string("-3"), std::nullopt}), HasSubstr("--seed"));
  EXPECT_THAT(message({"bad job", {"d@v"}, std::nullopt, std::nullopt}), HasSubstr("job id"));
  EXPECT_THAT(message({"j", {}, std::nullopt, std::string("")}), HasSubstr("job id"));
}

TEST(AbsolutePathTest, MadeAbsoluteAndTidy) {
  EXPECT_EQ(*AbsolutePath("data/v1", "/home/u"), "/home/u/data/v1");
  EXPECT_EQ(*AbsolutePath("./data//v1/", "/home/u/"), "/home/u/data/v1");
  EXPECT_EQ(*AbsolutePath("/ml/./u/v1", "/home/u"), "/ml/u/v1");
  EXPECT_EQ(*AbsolutePath("../x", "/home/u"), "/home/u/../x");  // reprod resolves ".."
  EXPECT_EQ(*AbsolutePath(".", "/home/u"), "/home/u");
  EXPECT_EQ(*AbsolutePath("/", "/home/u"), "/");
  EXPECT_EQ(AbsolutePath("", "/").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace repro::cli
