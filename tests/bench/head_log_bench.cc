// head_log_bench: proof sizes and verification times for a node's head log of --heads heads
// (default 1 M). Builds the log in a RocksDB data dir the way the journal does (leaves staged in
// write batches), then measures inclusion and consistency proofs: their size, the time reprod
// takes to make one from the store, and the time reproctl takes to check one, as a ratio to
// one Ed25519 verification (which every head check costs anyway), measured in the same run.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/merkle.h"
#include "common/sha256.h"
#include "common/signed_statements.h"
#include "daemon/store/head_log.h"
#include "tests/bench/bench_util.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(uint64_t, heads, 1000000, "heads in the log");
ABSL_FLAG(int, samples, 2000, "proofs made and checked per measurement");

namespace repro::bench {
namespace {

constexpr size_t kBatch = 4096;  // heads per staged write batch

}  // namespace

int Main() {
  const uint64_t heads = absl::GetFlag(FLAGS_heads);
  const int samples = absl::GetFlag(FLAGS_samples);
  testing::TempDir dir;
  auto store = RocksStore::Open({.data_dir = dir.Path("data")});
  auto key = NodeKey::LoadOrCreate(dir.Path("key.pem"));
  if (!store.ok() || !key.ok()) return 1;
  auto log = HeadLog::Open(store->get(), "bench", key->get());
  if (!log.ok()) return 1;

  std::vector<LoggedHead> batch;
  const double build = TimeSeconds([&] {
    for (uint64_t i = 0; i < heads; ++i) {
      batch.push_back(
          {"job", i + 1, HeadSigningBytes("bench", "job", i + 1, Sha256Of(std::to_string(i)))});
      if (batch.size() == kBatch || i + 1 == heads) {
        rocksdb::WriteBatch wb;
        HeadLog::Frontier next = (*log)->Stage(batch, &wb);
        if (!(*store)->WriteFast(&wb).ok()) exit(1);
        (*log)->Apply(std::move(next));
        batch.clear();
      }
    }
  });
  const v1::SignedTreeHead sth = (*log)->SignedHead();
  printf("head_log_bench: %llu heads logged in %.1f s (%.0f heads/s)\n",
         static_cast<unsigned long long>(heads), build, heads / build);

  // Baseline: one Ed25519 verification of a head signature.
  const std::string message = HeadSigningBytes("bench", "job", 1, Sha256Of("x"));
  const std::string signature = (*key)->Sign(message);
  const double ed25519 = TimeSeconds([&] {
    for (int i = 0; i < samples; ++i) {
      if (!VerifyEd25519((*key)->public_key(), message, signature)) exit(1);
    }
  }) / samples;
  Report("Ed25519 head signature check (baseline)", ed25519 * 1e6, "us");

  std::mt19937_64 random(42);
  std::vector<uint64_t> seqs;
  for (int i = 0; i < samples; ++i) seqs.push_back(random() % heads + 1);
  std::vector<v1::HeadLogInclusion> proofs(samples);
  const double make = TimeSeconds([&] {
    for (int i = 0; i < samples; ++i) proofs[i] = *(*log)->ProveHead("job", seqs[i], sth.size());
  }) / samples;
  size_t hashes = 0;
  const double check = TimeSeconds([&] {
    for (int i = 0; i < samples; ++i) {
      std::vector<std::string> path(proofs[i].path().begin(), proofs[i].path().end());
      hashes += path.size();
      const std::string leaf = MerkleLeafHash(
          HeadSigningBytes("bench", "job", seqs[i], Sha256Of(std::to_string(seqs[i] - 1))));
      if (!VerifyMerkleInclusion(proofs[i].leaf_index(), sth.size(), leaf, path, sth.root())
               .ok()) {
        exit(1);
      }
    }
  }) / samples;
  printf("inclusion proof: %.1f hashes (%.0f bytes) on average\n",
         static_cast<double>(hashes) / samples, 32.0 * hashes / samples);
  Report("inclusion proof made by reprod (RocksDB reads)", make * 1e6, "us", ed25519 * 1e6,
         "Ed25519 check");
  Report("inclusion proof checked by reproctl", check * 1e6, "us", ed25519 * 1e6,
         "Ed25519 check");

  std::vector<uint64_t> old_sizes;
  for (int i = 0; i < samples; ++i) old_sizes.push_back(random() % heads + 1);
  std::vector<std::vector<std::string>> consistency(samples);
  const double make_c = TimeSeconds([&] {
    for (int i = 0; i < samples; ++i) {
      consistency[i] = *(*log)->ProveConsistency(old_sizes[i], sth.size());
    }
  }) / samples;
  // The old roots, outside the timed check (an auditor has them in the export).
  std::vector<std::string> old_roots;
  for (uint64_t size : old_sizes) old_roots.push_back(*(*log)->RootAt(size));
  const double check_c = TimeSeconds([&] {
    for (int i = 0; i < samples; ++i) {
      if (!VerifyMerkleConsistency(old_sizes[i], sth.size(), old_roots[i], sth.root(),
                                   consistency[i])
               .ok()) {
        exit(1);
      }
    }
  }) / samples;
  hashes = 0;
  for (auto& proof : consistency) hashes += proof.size();
  printf("consistency proof: %.1f hashes (%.0f bytes) on average\n",
         static_cast<double>(hashes) / samples, 32.0 * hashes / samples);
  Report("consistency proof made by reprod", make_c * 1e6, "us", ed25519 * 1e6, "Ed25519 check");
  Report("consistency proof checked by reproctl", check_c * 1e6, "us", ed25519 * 1e6,
         "Ed25519 check");
  return 0;
}

}  // namespace repro::bench
