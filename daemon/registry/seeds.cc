#include "daemon/registry/seeds.h"

#include "common/sha256.h"
#include "daemon/store/chain.h"

namespace repro {
namespace {

constexpr uint64_t kSeedMask = 0x7fffffffffffffffULL;
constexpr absl::string_view kNul("\0", 1);

uint64_t SeedFrom(Sha256& h) { return DecodeBigEndian64(h.Finish()) & kSeedMask; }

}  // namespace

uint64_t DeriveJobSeed(absl::string_view job,
                       const google::protobuf::RepeatedPtrField<v1::PinnedVersion>& versions) {
  Sha256 h;
  h.Update(absl::string_view("repro.seed.v1\0", 14));
  h.Update(job);
  h.Update(kNul);
  for (const v1::PinnedVersion& v : versions) {
    h.Update(v.dataset());
    h.Update(kNul);
    h.Update(v.version());
    h.Update(kNul);
    h.Update(v.digest());
  }
  return SeedFrom(h);
}

uint64_t DeriveRankSeed(uint64_t job_seed, uint64_t rank) {
  Sha256 h;
  h.Update(absl::string_view("repro.rank_seed.v1\0", 19));
  h.Update(EncodeBigEndian64(job_seed));
  h.Update(EncodeBigEndian64(rank));
  return SeedFrom(h);
}

}  // namespace repro
