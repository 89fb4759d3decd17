#include "client/cli/output.h"

#include "client/cli/hex_json.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "repro/v1/repro.pb.h"

namespace repro::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(OutputTest, ParseFormat) {
  EXPECT_EQ(*ParseOutputFormat("text"), OutputFormat::kText);
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(ParseOutputFormat("yaml").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OutputTest, JsonIsOneLineWithProtobufNames) {
  std::ostringstream out, err;
  Output output(OutputFormat::kJson, &out, &err);
  EXPECT_TRUE(output.json());
  v1::PinResponse response;
  v1::Pin* pin = response.mutable_pin();
  pin->set_job("train-42");
  pin->set_seed(18446744073709551615u);
  pin->set_like_job("old");
  v1::PinnedVersion* v = pin->add_versions();
  v->set_dataset("user_ctr");
  v->set_digest(std::string(32, '\xff'));
  pin->mutable_created_at()->set_seconds(1736330400);
  ASSERT_TRUE(output.Json(response).ok());
  ASSERT_TRUE(output.Json(response).ok());

  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n');
  ASSERT_EQ(lines.size(), 3u);  // two objects, then the empty rest after the last '\n'
  EXPECT_EQ(lines[2], "");
  const std::string& line = lines[0];
  EXPECT_EQ(line.front(), '{');
  EXPECT_EQ(line.back(), '}');
  EXPECT_THAT(line, HasSubstr("\"likeJob\":\"old\""));                // lowerCamelCase names
  EXPECT_THAT(line, HasSubstr("\"seed\":\"18446744073709551615\""));  // 64-bit as string
  EXPECT_THAT(line, HasSubstr("\"createdAt\":\"2025-01-08T10:00:00Z\""));
  EXPECT_THAT(line, HasSubstr(absl::StrCat("\"digest\":\"", std::string(64, 'f'), "\"")));  // hex
  EXPECT_THAT(line, HasSubstr("\"created\":false"));  // defaults are printed for scripts
  EXPECT_THAT(line, Not(HasSubstr("like_job")));
  EXPECT_THAT(line, Not(HasSubstr(" ")));

  // It parses back to the same message (HexJsonToMessage reads the hex digests).
  v1::PinResponse parsed;
  ASSERT_TRUE(HexJsonToMessage(line, &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), response.SerializeAsString());
  EXPECT_EQ(HexJsonToMessage(absl::StrCat(R"({"pin":{"versions":[{"digest":"xyz0"}]}})"), &parsed)
                .code(),
            absl::StatusCode::kInvalidArgument);  // not hex
  EXPECT_EQ(err.str(), "");
}

TEST(OutputTest, BytesInRepeatedAndNestedMessagesAreHexToo) {
  std::ostringstream out, err;
  Output output(OutputFormat::kJson, &out, &err);
  v1::ReplayResponse response;
  response.set_hash(std::string("\x00\x01\xab", 3));
  v1::LibrariesLoaded* loaded = response.mutable_entry()->mutable_libraries();
  loaded->add_libraries()->set_sha256(std::string("\xde\xad", 2));
  loaded->add_libraries()->set_sha256(std::string("\xbe\xef", 2));
  ASSERT_TRUE(output.Json(response).ok());
  EXPECT_THAT(out.str(), HasSubstr("\"hash\":\"0001ab\""));
  EXPECT_THAT(out.str(), HasSubstr("\"sha256\":\"dead\""));
  EXPECT_THAT(out.str(), HasSubstr("\"sha256\":\"beef\""));
}

TEST(OutputTest, TextGoesOutAsIs) {
  std::ostringstream out, err;
  Output output(OutputFormat::kText, &out, &err);
  EXPECT_FALSE(output.json());
  output.Text("a\n");
  output.Text("b");
  EXPECT_EQ(out.str(), "a\nb");
}

}  // namespace
}  // namespace repro::cli
