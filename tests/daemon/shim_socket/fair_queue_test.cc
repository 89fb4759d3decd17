// FairQueue: uids take turns, a uid's jobs take its turns in turn, urgent entries go first (but
// cannot starve bulk ones), each job's entries keep their order.
#include "daemon/shim_socket/fair_queue.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Drain(FairQueue<std::string>& queue) {
  std::vector<std::string> out;
  while (!queue.empty()) out.push_back(queue.Pop());
  return out;
}

TEST(FairQueueTest, AFloodingUidDoesNotPushAnotherUidToTheBack) {
  FairQueue<std::string> queue;
  for (int i = 0; i < 4; ++i) queue.Push(1000, false, "flood" + std::to_string(i));
  queue.Push(2000, false, "calm");
  EXPECT_EQ(queue.size(), 5u);
  EXPECT_THAT(Drain(queue), ElementsAre("flood0", "calm", "flood1", "flood2", "flood3"));
}

TEST(FairQueueTest, AFloodingJobDoesNotPushAnotherJobOfItsUidToTheBack) {
  FairQueue<std::string> queue;
  for (int i = 0; i < 4; ++i) queue.Push(1000, "flood", true, "flood" + std::to_string(i));
  queue.Push(1000, "calm", true, "calm");
  EXPECT_THAT(Drain(queue), ElementsAre("flood0", "calm", "flood1", "flood2", "flood3"));
}

TEST(FairQueueTest, AUidsJobsShareItsOneTurn) {
  FairQueue<std::string> queue;
  queue.Push(1000, "a", false, "a0");
  queue.Push(1000, "a", false, "a1");
  queue.Push(1000, "b", false, "b0");
  queue.Push(1000, "c", false, "c0");
  queue.Push(2000, "", false, "other0");
  queue.Push(2000, "", false, "other1");
  queue.Push(2000, "", false, "other2");
  // uid 2000 gets every other turn however many jobs uid 1000 runs.
  EXPECT_THAT(Drain(queue),
              ElementsAre("a0", "other0", "b0", "other1", "c0", "other2", "a1"));
  EXPECT_EQ(queue.SizeOf(1000), 0u);
}

TEST(FairQueueTest, UrgentEntriesGoFirstAndTakeTurnsToo) {
  FairQueue<std::string> queue;
  queue.Push(1000, false, "bulk-a");
  queue.Push(1000, true, "hello-a1");
  queue.Push(1000, true, "hello-a2");
  queue.Push(2000, true, "hello-b");
  queue.Push(2000, false, "bulk-b");
  EXPECT_THAT(Drain(queue), ElementsAre("hello-a1", "hello-b", "hello-a2", "bulk-a", "bulk-b"));
}

TEST(FairQueueTest, AFloodOfUrgentWorkDelaysBulkReportsButCannotStarveThem) {
  FairQueue<std::string> queue;
  const int urgent = 2 * FairQueue<std::string>::kUrgentPerBulk + 4;
  for (int i = 0; i < urgent; ++i) queue.Push(1, "flood", true, "urgent" + std::to_string(i));
  queue.Push(2, "calm", false, "report0");
  queue.Push(2, "calm", false, "report1");
  std::vector<std::string> order = Drain(queue);
  const auto at = [&](const std::string& item) {
    return std::find(order.begin(), order.end(), item) - order.begin();
  };
  EXPECT_EQ(at("report0"), FairQueue<std::string>::kUrgentPerBulk);
  EXPECT_EQ(at("report1"), 2 * FairQueue<std::string>::kUrgentPerBulk + 1);
  EXPECT_EQ(order.size(), static_cast<size_t>(urgent + 2));
}

TEST(FairQueueTest, SizeOfCountsAUidsEntriesOfEveryJobInBothLanes) {
  FairQueue<std::string> queue;
  queue.Push(1, true, "a");
  queue.Push(1, "job", false, "b");
  queue.Push(1, "other", false, "b2");
  queue.Push(2, false, "c");
  EXPECT_EQ(queue.SizeOf(1), 3u);
  EXPECT_EQ(queue.SizeOf(3), 0u);
  queue.Pop();
  EXPECT_EQ(queue.SizeOf(1), 2u);
}

TEST(FairQueueTest, ClearEmptiesBothLanes) {
  FairQueue<std::string> queue;
  queue.Push(1, true, "a");
  queue.Push(2, false, "b");
  queue.Clear();
  EXPECT_TRUE(queue.empty());
  queue.Push(3, false, "c");
  EXPECT_THAT(Drain(queue), ElementsAre("c"));
}

TEST(FairQueueTest, EachLaneCanBeTakenAloneInItsTurns) {
  FairQueue<std::string> queue;
  queue.Push(1, "a", false, "bulk1a");
  queue.Push(1, "a", true, "urgent1");
  queue.Push(2, "b", false, "bulk2");
  queue.Push(1, "c", false, "bulk1c");
  EXPECT_FALSE(queue.LaneEmpty(true));
  EXPECT_EQ(queue.PopLane(true), "urgent1");
  EXPECT_TRUE(queue.LaneEmpty(true));
  EXPECT_EQ(queue.PopLane(false), "bulk1a");
  EXPECT_EQ(queue.PopLane(false), "bulk2");  // uid 2's turn before uid 1's second job
  EXPECT_EQ(queue.PopLane(false), "bulk1c");
  EXPECT_TRUE(queue.empty());
}

TEST(FairQueueTest, RemovedEntriesLeaveTheTurnsOfOthersAsTheyWere) {
  FairQueue<std::string> queue;
  queue.Push(1, "a", false, "a1");
  queue.Push(1, "a", false, "a2");
  queue.Push(2, "b", false, "b1");
  queue.Push(1, "c", false, "c1");
  EXPECT_FALSE(queue.Remove(1, "a", true, "a1"));  // not in the urgent lane
  EXPECT_FALSE(queue.Remove(1, "a", false, "zz"));
  EXPECT_TRUE(queue.Remove(1, "a", false, "a1"));
  EXPECT_TRUE(queue.Remove(2, "b", false, "b1"));  // uid 2's only entry: its turn goes
  queue.Push(1, "a", true, "a1");                  // moved to the urgent lane
  EXPECT_EQ(queue.size(), 3u);
  EXPECT_EQ(queue.SizeOf(2), 0u);
  EXPECT_THAT(Drain(queue), ElementsAre("a1", "a2", "c1"));
}

}  // namespace
}  // namespace repro
