// RFC 6962 (Certificate Transparency) Merkle tree hashing and proofs, shared by reprod (which
// keeps the per-node head log, daemon/store/head_log.h) and reproctl (which checks its proofs).
//
//   leaf hash  = SHA-256(0x00 || data)
//   node hash  = SHA-256(0x01 || left || right)
//   MTH of n > 1 leaves splits them at k, the largest power of two below n (RFC 6962 2.1).
//
//   std::string leaf = MerkleLeafHash(data);
//   ASSIGN_OR_RETURN(std::vector<std::string> path, MerkleInclusionProof(3, 8, subtree));
//   bool ok = VerifyMerkleInclusion(3, 8, leaf, path, root).ok();
//
// Proof generation reads hashes of aligned, complete subtrees through a callback, so a store can
// serve them from disk; the verifiers need nothing but the proof.
#ifndef REPRO_COMMON_MERKLE_H_
#define REPRO_COMMON_MERKLE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace repro {

std::string MerkleLeafHash(absl::string_view data);
std::string MerkleNodeHash(absl::string_view left, absl::string_view right);
// SHA-256 of nothing: the root of the empty tree.
std::string MerkleEmptyRoot();

// The hash of the complete subtree of 2^level leaves that starts at leaf index << level.
using CompleteSubtreeFn =
    std::function<absl::StatusOr<std::string>(int level, uint64_t index)>;

// MTH of leaves [begin, end) (end > begin), from complete subtrees: O(log n) callbacks.
absl::StatusOr<std::string> MerkleSubtreeHash(uint64_t begin, uint64_t end,
                                              const CompleteSubtreeFn& complete);

// PATH(index, D[size]) of RFC 6962 2.1.1, leaf first. INVALID_ARGUMENT unless index < size.
absl::StatusOr<std::vector<std::string>> MerkleInclusionProof(uint64_t index, uint64_t size,
                                                              const CompleteSubtreeFn& complete);

// PROOF(old_size, D[new_size]) of RFC 6962 2.1.2. INVALID_ARGUMENT unless
// 0 < old_size <= new_size; empty when they are equal.
absl::StatusOr<std::vector<std::string>> MerkleConsistencyProof(
    uint64_t old_size, uint64_t new_size, const CompleteSubtreeFn& complete);

// The root that `proof` leads to from `leaf_hash` at `index` of a tree of `size` leaves
// (RFC 9162 2.1.3.2). INVALID_ARGUMENT when the proof cannot be one for that position.
absl::StatusOr<std::string> MerkleRootFromInclusion(uint64_t index, uint64_t size,
                                                    absl::string_view leaf_hash,
                                                    absl::Span<const std::string> proof);

// OK when `proof` shows that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`;
// else DATA_LOSS saying what does not match (INVALID_ARGUMENT for a malformed proof).
absl::Status VerifyMerkleInclusion(uint64_t index, uint64_t size, absl::string_view leaf_hash,
                                   absl::Span<const std::string> proof, absl::string_view root);

// OK when `proof` shows that the tree of `new_size` leaves with `new_root` extends the tree of
// `old_size` leaves with `old_root` (RFC 9162 2.1.4.2); DATA_LOSS (or INVALID_ARGUMENT for a
// malformed proof or new_size < old_size) otherwise.
absl::Status VerifyMerkleConsistency(uint64_t old_size, uint64_t new_size,
                                     absl::string_view old_root, absl::string_view new_root,
                                     absl::Span<const std::string> proof);

}  // namespace repro

#endif  // REPRO_COMMON_MERKLE_H_
