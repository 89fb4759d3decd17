// ShimSession without a socket: parsed requests in, replies, journal items and rejections out,
// attributed to the peer the transport names.
#include "daemon/shim_socket/shim_session.h"

#include <memory>
#include <string>
#include <vector>

#include "daemon/registry/seeds.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/shim_socket/shim_test_stack.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::ShimTestStack;
using testing::WriteFileOrDie;

const ShimPeer kPeer{.pid = 31337, .uid = 1000, .gid = 100};

struct Header {
  uint16_t type = 0;
  uint32_t request_id = 0;
};

Header HeaderOf(const std::string& msg) {
  repro_shim_header h{};
  EXPECT_EQ(repro_shim_read_header(reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), &h),
            REPRO_SHIM_HEADER_OK);
  return {h.type, h.request_id};
}

class ShimSessionTest : public ::testing::Test {
 protected:
  ShimSessionTest()
      : checker_(stack_.versions.get(), DefaultFileSystem(), stack_.cache.get()),
        pins_(stack_.pins.get(), stack_.versions.get()),
        context_({.pins = &pins_, .checker = &checker_, .fs = DefaultFileSystem()}, &metrics_),
        session_(&context_, kPeer) {
    stack_.PinJob("job-1", "v1", 7);
  }

  static ShimRequest Hello(const std::string& job, ShimMode mode) {
    ShimRequest r;
    r.type = REPRO_SHIM_HELLO;
    r.request_id = 1;
    r.hello.job = job;
    r.hello.rank = 3;
    r.hello.claimed_pid = 4242;  // a lie: the session uses the peer
    r.hello.nonce = 9;
    r.hello.mode = mode;
    r.hello.exe = "/nonexistent/train";
    return r;
  }

  ShimRequest Open(uint32_t id, const std::string& rel, uint32_t flags = 0) {
    ShimRequest r;
    r.type = REPRO_SHIM_OPEN;
    r.request_id = id;
    r.open.dataset = "ds";
    r.open.flags = flags;
    r.open.requested_path = "latest/" + rel;
    r.open.opened_path = stack_.root() + "/" + rel;
    return r;
  }

  ShimOutput Serve(ShimRequest request) {
    ShimOutput out;
    session_.Handle(std::move(request), &out);
    return out;
  }

  ShimTestStack stack_;
  Metrics metrics_;
  DataChecker checker_;
  ShimPins pins_;
  ShimSessionContext context_;
  ShimSession session_;
};

TEST_F(ShimSessionTest, HelloAnswersThePinAndJournalsThePeer) {
  ShimOutput out = Serve(Hello("job-1", ShimMode::kRecord));
  ASSERT_EQ(out.replies.size(), 1u);
  EXPECT_EQ(HeaderOf(out.replies[0]).type, REPRO_SHIM_PIN);
  EXPECT_EQ(HeaderOf(out.replies[0]).request_id, 1u);
  EXPECT_TRUE(out.rejections.empty());
  EXPECT_EQ(session_.job(), "job-1");
  ASSERT_EQ(out.items.size(), 1u);
  const v1::ProcessStart& start = out.items[0].entry.process_start();
  EXPECT_EQ(start.pid(), kPeer.pid);  // not the claimed 4242
  EXPECT_EQ(start.uid(), kPeer.uid);
  EXPECT_EQ(start.gid(), kPeer.gid);
  EXPECT_EQ(start.rank(), 3);
  EXPECT_EQ(start.rank_seed(), DeriveRankSeed(7, 3));
  EXPECT_EQ(start.mode(), "record");
  EXPECT_EQ(out.items[0].once_key, "process/31337/9");
}

// What the connection's end tells ProcessEnds: which process and connection it was, and whether
// the process said how many reports it made after its last one.
TEST_F(ShimSessionTest, KnowsItsProcessItsLinkAndWhetherTheProcessCounted) {
  ReportNumbers numbers(nullptr);
  ShimSessionContext context(
      {.pins = &pins_, .checker = &checker_, .fs = DefaultFileSystem(), .numbers = &numbers},
      &metrics_);
  ShimSession session(&context, kPeer);
  ShimRequest hello = Hello("job-1", ShimMode::kRecord);
  hello.hello.report_seq = 0;
  hello.hello.link = 3;
  ShimOutput out;
  session.Handle(std::move(hello), &out);
  EXPECT_EQ(session.numbers_key(), ReportNumbers::Key(kPeer.pid, 9));
  EXPECT_EQ(session.link(), 3u);
  EXPECT_FALSE(session.counted());
  ShimRequest count;
  count.type = REPRO_SHIM_LOADED;
  count.reports_made = 0;
  session.Handle(std::move(count), &out);
  EXPECT_TRUE(session.counted());
  ShimRequest open = Open(0, "v1/a.csv");
  open.open.report_seq = 0;
  session.Handle(std::move(open), &out);
  EXPECT_FALSE(session.counted());  // a report after its count: it has to count again
}

TEST_F(ShimSessionTest, UnpinnedJobGetsAnErrorAndNoSession) {
  ShimOutput out = Serve(Hello("nobody", ShimMode::kEnforce));
  ASSERT_EQ(out.replies.size(), 1u);
  EXPECT_EQ(HeaderOf(out.replies[0]).type, REPRO_SHIM_ERROR);
  EXPECT_TRUE(out.items.empty());
  EXPECT_EQ(session_.job(), "");
  // Its opens are then refused as coming before an accepted HELLO.
  out = Serve(Open(5, "v1/a.csv"));
  ASSERT_EQ(out.rejections.size(), 1u);
  EXPECT_EQ(out.rejections[0].first, ShimReject::kNoHello);
  ASSERT_EQ(out.replies.size(), 1u);
  EXPECT_EQ(HeaderOf(out.replies[0]).type, REPRO_SHIM_ERROR);
  EXPECT_EQ(HeaderOf(out.replies[0]).request_id, 5u);
}

TEST_F(ShimSessionTest, ASecondHelloIsRejected) {
  Serve(Hello("job-1", ShimMode::kRecord));
  ShimOutput out = Serve(Hello("job-1", ShimMode::kEnforce));
  ASSERT_EQ(out.rejections.size(), 1u);
  EXPECT_EQ(out.rejections[0].first, ShimReject::kUnexpected);
  EXPECT_TRUE(out.replies.empty());
  EXPECT_TRUE(out.items.empty());
}

TEST_F(ShimSessionTest, EnforceAnswersVerdictsAndJournalsReadsAndViolations) {
  WriteFileOrDie(stack_.root() + "/v1/extra.csv", "not registered\n");
  Serve(Hello("job-1", ShimMode::kEnforce));

  ShimOutput match = Serve(Open(10, "v1/a.csv"));
  ASSERT_EQ(match.replies.size(), 1u);
  EXPECT_EQ(HeaderOf(match.replies[0]).type, REPRO_SHIM_VERDICT);
  ASSERT_EQ(match.items.size(), 1u);
  const v1::DataOpen& data = match.items[0].entry.data_open();
  EXPECT_EQ(data.pid(), kPeer.pid);
  EXPECT_EQ(data.verdict(), v1::VERDICT_MATCH);
  EXPECT_EQ(data.relative_path(), "a.csv");
  EXPECT_EQ(match.items[0].once_key, "data/ds/a.csv");

  ShimOutput refused = Serve(Open(11, "v1/extra.csv"));
  ASSERT_EQ(refused.replies.size(), 1u);
  ASSERT_EQ(refused.items.size(), 1u);  // no DataOpen: the process did not get the file
  const v1::Violation& violation = refused.items[0].entry.violation();
  EXPECT_EQ(violation.verdict(), v1::VERDICT_NOT_IN_MANIFEST);
  EXPECT_TRUE(violation.refused());
  EXPECT_EQ(violation.pinned_version(), "v1");
  EXPECT_THAT(metrics_.RenderPrometheus(),
              HasSubstr("repro_shim_verdicts_total{verdict=\"not_in_manifest\"} 1"));
}

TEST_F(ShimSessionTest, RecordModeAnswersNothingAndAllowsWithAViolation) {
  Serve(Hello("job-1", ShimMode::kRecord));
  ShimOutput out = Serve(Open(0, "v2/a.csv", REPRO_SHIM_OPEN_OTHER_VERSION));
  EXPECT_TRUE(out.replies.empty());  // request_id 0: nobody waits
  ASSERT_EQ(out.items.size(), 2u);
  EXPECT_EQ(out.items[0].entry.data_open().version(), "v2");
  EXPECT_EQ(out.items[1].entry.violation().verdict(), v1::VERDICT_OTHER_VERSION);
  EXPECT_FALSE(out.items[1].entry.violation().refused());
}

// One process reads a file of another version while another executes it (a forked child that
// execs a script, which its new image then reads): two facts, both journaled in either order.
TEST_F(ShimSessionTest, AnExecAndAReadOfOneFileAreBothJournaled) {
  ShimSession reader(&context_, ShimPeer{.pid = 31338, .uid = 1000, .gid = 100});
  ShimOutput out;
  reader.Handle(Hello("job-1", ShimMode::kRecord), &out);
  reader.Handle(Open(0, "v2/a.csv", REPRO_SHIM_OPEN_OTHER_VERSION), &out);
  Serve(Hello("job-1", ShimMode::kRecord));
  ShimRequest exec = Open(0, "v2/a.csv", REPRO_SHIM_OPEN_OTHER_VERSION);
  exec.open.view_use = REPRO_SHIM_VIEW_EXEC;
  ShimOutput executed = Serve(std::move(exec));
  ASSERT_EQ(executed.items.size(), 1u);
  for (JournalItem& item : executed.items) out.items.push_back(std::move(item));
  ASSERT_TRUE(stack_.journal->Append("job-1", std::move(out.items)).ok());
  std::vector<std::string> details;
  for (const v1::JournalEntry& e : stack_.Entries("job-1")) {
    if (e.has_violation()) details.push_back(e.violation().detail());
  }
  ASSERT_EQ(details.size(), 2u);
  EXPECT_THAT(details[0], HasSubstr("it belongs to ds@v2"));
  EXPECT_THAT(details[1], HasSubstr("it was executed"));
}

TEST_F(ShimSessionTest, WritesAreViolationsWithoutAHash) {
  Serve(Hello("job-1", ShimMode::kRecord));
  ShimOutput out = Serve(Open(0, "v1/a.csv", REPRO_SHIM_OPEN_WRITE));
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].entry.violation().verdict(), v1::VERDICT_WRITE);
}

}  // namespace
}  // namespace repro
