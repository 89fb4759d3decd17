#include "daemon/registry/seeds.h"

#include <set>

#include "common/sha256.h"
#include "daemon/store/chain.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

google::protobuf::RepeatedPtrField<v1::PinnedVersion> Versions(
    std::initializer_list<std::pair<std::string, std::string>> list) {
  google::protobuf::RepeatedPtrField<v1::PinnedVersion> out;
  for (const auto& [dataset, version] : list) {
    v1::PinnedVersion* v = out.Add();
    v->set_dataset(dataset);
    v->set_version(version);
    v->set_digest(Sha256Of(dataset + version));
  }
  return out;
}

TEST(SeedsTest, JobSeedFollowsTheDocumentedFormula) {
  auto versions = Versions({{"clicks", "v7"}, {"users", "v1"}});
  std::string input = std::string("repro.seed.v1\0", 14) + "job-1" + std::string(1, '\0');
  for (const auto& v : versions) {
    input += v.dataset() + std::string(1, '\0') + v.version() + std::string(1, '\0') + v.digest();
  }
  uint64_t expected = DecodeBigEndian64(Sha256Of(input)) & 0x7fffffffffffffffULL;
  EXPECT_EQ(DeriveJobSeed("job-1", versions), expected);
}

TEST(SeedsTest, JobSeedIsStableAndDependsOnJobAndData) {
  auto versions = Versions({{"users", "v1"}});
  uint64_t seed = DeriveJobSeed("job-1", versions);
  EXPECT_EQ(seed, DeriveJobSeed("job-1", versions));
  EXPECT_NE(seed, DeriveJobSeed("job-2", versions));
  EXPECT_NE(seed, DeriveJobSeed("job-1", Versions({{"users", "v2"}})));
  EXPECT_LT(seed, 1ULL << 63);
}

TEST(SeedsTest, RankSeedsFollowTheFormulaAndDiffer) {
  std::string input = std::string("repro.rank_seed.v1\0", 19) + EncodeBigEndian64(42) +
                      EncodeBigEndian64(3);
  EXPECT_EQ(DeriveRankSeed(42, 3), DecodeBigEndian64(Sha256Of(input)) & 0x7fffffffffffffffULL);
  std::set<uint64_t> seeds;
  for (uint64_t rank = 0; rank < 1000; ++rank) {
    uint64_t s = DeriveRankSeed(42, rank);
    EXPECT_LT(s, 1ULL << 63);
    seeds.insert(s);
  }
  EXPECT_EQ(seeds.size(), 1000u);
  EXPECT_NE(DeriveRankSeed(42, 0), DeriveRankSeed(43, 0));
}

}  // namespace
}  // namespace repro
