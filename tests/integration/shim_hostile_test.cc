// Malformed and hostile datagrams on the real reprod's shim socket: each is rejected and counted
// by reason in /metrics, and reprod keeps serving real shims.
#include "absl/strings/str_cat.h"
#include "daemon/shim_socket/shim_message.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/shim/shim_job.h"
#include "tests/client/shim/shim_socket_client.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;

class ShimHostileTest : public ShimJobTest {
 protected:
  std::vector<std::string> ReprodFlags() override { return MetricsFlags(); }
};

TEST_F(ShimHostileTest, RejectsCountsAndKeepsServing) {
  Pin("job-h");
  ShimHello hello;
  hello.job = "job-h";
  hello.claimed_pid = 1;
  std::string valid = EncodeShimHello(1, hello);
  std::string wrong_version = valid;
  wrong_version[4] = 9;
  std::string garbage;
  for (int i = 0; i < 300; ++i) garbage.push_back(static_cast<char>(i * 131 + 7));
  {
    ShimSocketClient hostile(reprod_->shim_socket());
    ASSERT_TRUE(hostile.connected());
    ASSERT_TRUE(hostile.Send("RPS"));                                              // truncated
    ASSERT_TRUE(hostile.Send(std::string(REPRO_SHIM_MAX_MESSAGE + 1, 'R')));      // oversized
    ASSERT_TRUE(hostile.Send(wrong_version));                                     // wrong version
    ASSERT_TRUE(hostile.Send(garbage));                                           // garbage
    ASSERT_TRUE(hostile.Send(valid.substr(0, valid.size() - 1)));                 // length lies
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(hostile.Send(garbage));            // a flood
  }
  // A real process of the job is served as usual.
  RunResult r = RunAs("job-h", "enforce", {"cat", Root() + "/latest/a.csv"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, Content("v1", "a.csv"));
  WaitForOpens("job-h", 1);
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("repro_shim_messages_rejected_total{reason=\"truncated\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("repro_shim_messages_rejected_total{reason=\"oversized\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("repro_shim_messages_rejected_total{reason=\"bad_version\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("repro_shim_messages_rejected_total{reason=\"bad_magic\"} 501"));
  EXPECT_THAT(metrics, HasSubstr("repro_shim_messages_rejected_total{reason=\"bad_length\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("repro_shim_verdicts_total{verdict=\"match\"} 1"));
  // The rejections were logged, but not 505 times.
  std::string log = reprod_->log();
  size_t lines = 0;
  for (size_t at = log.find("rejected a datagram"); at != std::string::npos;
       at = log.find("rejected a datagram", at + 1)) {
    ++lines;
  }
  EXPECT_GE(lines, 1u);
  EXPECT_LE(lines, 2u);
}

}  // namespace
}  // namespace repro::testing
