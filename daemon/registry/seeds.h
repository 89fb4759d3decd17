// Seed derivation: how a job's seed is chosen when the launcher gives none, and how each rank
// gets its own seed from the job seed. Both are pure functions of their inputs, so a job
// reproduced with `reproctl pin NEW --like OLD` gets the same seeds on every rank.
//
//   job seed  = first 8 bytes (big-endian) of
//               SHA-256("repro.seed.v1\0" || job || "\0" ||
//                       for each pinned version in dataset order:
//                         dataset || "\0" || version || "\0" || digest[32])
//               with the top bit cleared
//   rank seed = first 8 bytes (big-endian) of
//               SHA-256("repro.rank_seed.v1\0" || be64(job seed) || be64(rank))
//               with the top bit cleared
//
// Derived seeds are below 2^63 so they fit a signed 64-bit integer (torch.manual_seed, JAX);
// numpy's legacy np.random.seed needs seed % 2**32 (client/python/repro_seed.py does that).
#ifndef REPRO_DAEMON_REGISTRY_SEEDS_H_
#define REPRO_DAEMON_REGISTRY_SEEDS_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_field.h"
#include "repro/v1/journal.pb.h"

namespace repro {

// `versions` must be sorted by dataset (as in a stored Pin).
uint64_t DeriveJobSeed(absl::string_view job,
                       const google::protobuf::RepeatedPtrField<v1::PinnedVersion>& versions);

uint64_t DeriveRankSeed(uint64_t job_seed, uint64_t rank);

}  // namespace repro

#endif  // REPRO_DAEMON_REGISTRY_SEEDS_H_
