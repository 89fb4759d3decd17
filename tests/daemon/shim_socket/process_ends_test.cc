// ProcessEnds with real child processes and their pidfds: a process whose last connection ended
// without its count is handed over once it exited and its pid has no connection open, never while
// it lives, and not at all when it counted, came back on a later connection, or ended on an
// older one.
#include "daemon/shim_socket/process_ends.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

constexpr absl::Duration kSettle = absl::Milliseconds(100);

class ProcessEndsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      for (;;) pause();
    }
  }
  void TearDown() override { EndChild(); }

  void EndChild() {
    if (child_ <= 0) return;
    kill(child_, SIGKILL);
    waitpid(child_, nullptr, 0);
    child_ = 0;
  }

  // The end of the child's connection number `link` (made: the count its ring holds).
  ProcessEnds::End EndOf(uint64_t link, bool counted, std::optional<uint64_t> made = 5) {
    return {.pid = child_,
            .job = "job-1",
            .key = "reports/1/2",
            .link = link,
            .counted = counted,
            .made = made,
            .pidfd = ProcessEnds::OpenPidfd(child_)};
  }

  std::vector<ProcessEnds::Gone> Gone() {
    absl::MutexLock lock(&mu_);
    return gone_;
  }

  // Waits up to `timeout` for a process to be handed over.
  bool WaitForGone(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(
                                    +[](std::vector<ProcessEnds::Gone>* g) { return !g->empty(); },
                                    &gone_),
                                timeout);
  }

  pid_t child_ = 0;
  absl::Mutex mu_;
  std::vector<ProcessEnds::Gone> gone_ ABSL_GUARDED_BY(mu_);
  ProcessEnds ends_{{.settle = kSettle}, [this](const ProcessEnds::Gone& gone) {
                      absl::MutexLock lock(&mu_);
                      gone_.push_back(gone);
                    }};
};

TEST_F(ProcessEndsTest, AnUncountedEndIsHandedOverOnlyOnceTheProcessExited) {
  ends_.Connected(child_);
  ends_.Started(child_, "job-1", "reports/1/2", 0);
  const pid_t pid = child_;
  ends_.Disconnected(EndOf(0, /*counted=*/false));
  EXPECT_FALSE(WaitForGone(kSettle * 10));  // alive: it may reconnect
  EXPECT_EQ(ends_.watched(), 1u);
  EndChild();
  ASSERT_TRUE(WaitForGone());
  ASSERT_EQ(Gone().size(), 1u);
  EXPECT_EQ(Gone()[0].job, "job-1");
  EXPECT_EQ(Gone()[0].key, "reports/1/2");
  EXPECT_EQ(Gone()[0].pid, pid);
  EXPECT_EQ(Gone()[0].made, 5u);
  EXPECT_EQ(ends_.watched(), 0u);
}

TEST_F(ProcessEndsTest, ACountedEndIsNotWatched) {
  ends_.Connected(child_);
  ends_.Started(child_, "job-1", "reports/1/2", 0);
  ends_.Disconnected(EndOf(0, /*counted=*/true));
  EXPECT_EQ(ends_.watched(), 0u);
  EndChild();
  EXPECT_FALSE(WaitForGone(kSettle * 10));
}

TEST_F(ProcessEndsTest, ALaterConnectionOfTheProcessEndsTheWatch) {
  ends_.Connected(child_);
  ends_.Started(child_, "job-1", "reports/1/2", 0);
  ends_.Disconnected(EndOf(0, /*counted=*/false));  // it gave this connection up, and came back
  ends_.Connected(child_);
  ends_.Started(child_, "job-1", "reports/1/2", 1);
  EXPECT_EQ(ends_.watched(), 0u);
  ends_.Disconnected(EndOf(1, /*counted=*/true));
  EndChild();
  EXPECT_FALSE(WaitForGone(kSettle * 10));
}

TEST_F(ProcessEndsTest, AnOlderConnectionServedLastIsNotTheLastWord) {
  ends_.Connected(child_);
  ends_.Connected(child_);
  ends_.Started(child_, "job-1", "reports/1/2", 1);  // served side by side, the later one first
  ends_.Started(child_, "job-1", "reports/1/2", 0);
  ends_.Disconnected(EndOf(1, /*counted=*/true));
  ends_.Disconnected(EndOf(0, /*counted=*/false));
  EXPECT_EQ(ends_.watched(), 0u);
}

TEST_F(ProcessEndsTest, AnOpenConnectionOfThePidHoldsTheHandOverBack) {
  ends_.Connected(child_);
  ends_.Connected(child_);  // made before it exited, not read yet
  ends_.Started(child_, "job-1", "reports/1/2", 0);
  const pid_t pid = child_;
  ends_.Disconnected(EndOf(0, /*counted=*/false));
  EndChild();
  EXPECT_FALSE(WaitForGone(kSettle * 10));
  ends_.Disconnected({.pid = pid});  // it said nothing after all
  ASSERT_TRUE(WaitForGone());
  EXPECT_EQ(Gone()[0].pid, pid);
}

TEST_F(ProcessEndsTest, WithoutAPidfdTheEndOfTheConnectionIsTheEndOfTheProcess) {
  ends_.Connected(0);  // a peer in another pid namespace
  ends_.Started(0, "job-1", "reports/0/2", 0);
  ends_.Disconnected(
      {.pid = 0, .job = "job-1", .key = "reports/0/2", .counted = false, .made = std::nullopt});
  ASSERT_TRUE(WaitForGone());
  EXPECT_FALSE(Gone()[0].made.has_value());
}

TEST_F(ProcessEndsTest, StopDropsWhatIsWatched) {
  ends_.Connected(child_);
  ends_.Started(child_, "job-1", "reports/1/2", 0);
  ends_.Disconnected(EndOf(0, /*counted=*/false));
  ends_.Stop();
  EndChild();
  EXPECT_EQ(ends_.watched(), 0u);
  EXPECT_FALSE(WaitForGone(kSettle * 10));
}

TEST(ProcessEndsLimitTest, AUidOverItsCapIsHandedOverAtOnceNotKeptInMemory) {
  absl::Mutex mu;
  std::vector<std::string> gone;
  ProcessEnds ends({.settle = kSettle, .max_watched_per_uid = 1}, [&](const ProcessEnds::Gone& g) {
    absl::MutexLock lock(&mu);
    gone.push_back(g.key);
  });
  const pid_t self = getpid();  // alive throughout
  ends.Connected(self);          // and holding a connection open: no reason to wait for it
  for (const char* key : {"reports/1/1", "reports/1/2"}) {  // two nonces of one process
    ends.Connected(self);
    ends.Started(self, "job-1", key, 0);
    ends.Disconnected({.pid = self,
                       .uid = 7,
                       .job = "job-1",
                       .key = key,
                       .pidfd = ProcessEnds::OpenPidfd(self)});
  }
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(+[](std::vector<std::string>* g) {
                                    return !g->empty();
                                  }, &gone),
                                  absl::Seconds(10)));
  EXPECT_EQ(gone, std::vector<std::string>{"reports/1/2"});  // the first is watched by its pidfd
}

}  // namespace
}  // namespace repro
