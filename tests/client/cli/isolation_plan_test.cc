// PlanIsolation (which roots, which pinned and other version names) and the plan's words across
// reproctl's re-exec.
#include "client/cli/isolate/isolation_plan.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A PinnedVersion or a VersionInfo of DATASET@VERSION at ROOT/VERSION.
template <typename Version>
Version At(const std::string& dataset, const std::string& version, const std::string& root) {
  Version v;
  v.set_dataset(dataset);
  v.set_version(version);
  v.set_root(root);
  v.set_path(root + "/" + version);
  return v;
}
constexpr auto Pinned = At<v1::PinnedVersion>;
constexpr auto Registered = At<v1::VersionInfo>;

TEST(PlanIsolationTest, EachPinnedRootWithItsOtherVersions) {
  v1::Pin pin;
  *pin.add_versions() = Pinned("clicks", "c1", "/data/clicks");
  *pin.add_versions() = Pinned("ctr", "v1", "/data/ctr");
  std::vector<v1::VersionInfo> registered = {
      Registered("ctr", "v2", "/data/ctr"),     Registered("ctr", "v1", "/data/ctr"),
      Registered("ctr", "v0", "/data/ctr"),     Registered("clicks", "c1", "/data/clicks"),
      Registered("other", "o1", "/data/other"),  // not pinned: not in the plan
  };
  absl::StatusOr<IsolationPlan> plan = PlanIsolation(pin, registered, /*enforce=*/true);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->enforce);
  ASSERT_EQ(plan->roots.size(), 2u);
  EXPECT_EQ(plan->roots[0].root, "/data/clicks");
  EXPECT_EQ(plan->roots[0].pinned, "c1");
  EXPECT_TRUE(plan->roots[0].others.empty());
  EXPECT_EQ(plan->roots[1].root, "/data/ctr");
  EXPECT_EQ(plan->roots[1].pinned, "v1");
  EXPECT_THAT(plan->roots[1].others, ElementsAre("v0", "v2"));
}

TEST(PlanIsolationTest, RefusesTwoPinnedDatasetsInOneRoot) {
  v1::Pin pin;
  *pin.add_versions() = Pinned("a", "v1", "/data/shared");
  *pin.add_versions() = Pinned("b", "w1", "/data/shared");
  absl::StatusOr<IsolationPlan> plan = PlanIsolation(pin, {}, false);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(plan.status().message(), HasSubstr("share the root /data/shared"));
}

TEST(PlanIsolationTest, RefusesAVersionOutsideItsRoot) {
  v1::Pin pin;
  v1::PinnedVersion v = Pinned("a", "v1", "/data/a");
  v.set_path("/elsewhere/v1");
  *pin.add_versions() = v;
  EXPECT_EQ(PlanIsolation(pin, {}, false).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(IsolationPlanWordsTest, RoundTrip) {
  IsolationPlan plan;
  plan.enforce = false;
  plan.roots = {{.root = "/data/ctr", .pinned = "v1", .others = {"v2", "--"}},
                {.root = "/data/x y", .pinned = "--env", .others = {}}};
  plan.env = {"A=1", "--=odd", ""};
  plan.command = {"python3", "--", "train.py"};
  plan.announce = "reproctl: running python3";
  absl::StatusOr<IsolationPlan> back = DecodeIsolationPlan(EncodeIsolationPlan(plan));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->enforce);
  ASSERT_EQ(back->roots.size(), 2u);
  EXPECT_EQ(back->roots[0].root, "/data/ctr");
  EXPECT_THAT(back->roots[0].others, ElementsAre("v2", "--"));
  EXPECT_EQ(back->roots[1].pinned, "--env");
  EXPECT_EQ(back->env, plan.env);
  EXPECT_EQ(back->command, plan.command);
  EXPECT_EQ(back->announce, plan.announce);
}

TEST(IsolationPlanWordsTest, RejectsMalformedWords) {
  for (const std::vector<std::string>& words : std::vector<std::vector<std::string>>{
           {},
           {"enforce"},
           {"maybe", "", "--env", "0", "--", "true"},
           {"enforce", "", "--env", "0", "--"},                 // no command
           {"enforce", "", "--env", "5", "A=1", "--", "true"},  // count past the end
           {"enforce", "", "--root", "relative", "v1", "0", "--env", "0", "--", "true"},
           {"enforce", "", "--root", "/r", "../up", "0", "--env", "0", "--", "true"},
           {"enforce", "", "--root", "/r", "v1", "1", "a/b", "--env", "0", "--", "true"},
           {"enforce", "", "--root", "/r", "v1", "x", "--env", "0", "--", "true"},
           {"enforce", "", "--", "true"},
       }) {
    EXPECT_EQ(DecodeIsolationPlan(words).status().code(), absl::StatusCode::kInvalidArgument)
        << words.size();
  }
}

}  // namespace
}  // namespace repro::cli
