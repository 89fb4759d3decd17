#include "common/merkle.h"

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace repro {
namespace {

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

// The largest power of two below n (n > 1): RFC 6962's split point k.
uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

int Log2(uint64_t power_of_two) {
  int level = 0;
  while ((uint64_t{1} << level) < power_of_two) ++level;
  return level;
}

// PATH(index, D[begin, end)), leaf first.
absl::Status AppendPath(uint64_t index, uint64_t begin, uint64_t end,
                        const CompleteSubtreeFn& complete, std::vector<std::string>* out) {
  if (end - begin == 1) return absl::OkStatus();
  const uint64_t k = SplitPoint(end - begin);
  if (index < k) {
    RETURN_IF_ERROR(AppendPath(index, begin, begin + k, complete, out));
    ASSIGN_OR_RETURN(std::string sibling, MerkleSubtreeHash(begin + k, end, complete));
    out->push_back(std::move(sibling));
  } else {
    RETURN_IF_ERROR(AppendPath(index - k, begin + k, end, complete, out));
    ASSIGN_OR_RETURN(std::string sibling, MerkleSubtreeHash(begin, begin + k, complete));
    out->push_back(std::move(sibling));
  }
  return absl::OkStatus();
}

// SUBPROOF(m, D[begin, end), whole).
absl::Status AppendSubproof(uint64_t m, uint64_t begin, uint64_t end, bool whole,
                            const CompleteSubtreeFn& complete, std::vector<std::string>* out) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (whole) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string hash, MerkleSubtreeHash(begin, end, complete));
    out->push_back(std::move(hash));
    return absl::OkStatus();
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    RETURN_IF_ERROR(AppendSubproof(m, begin, begin + k, whole, complete, out));
    ASSIGN_OR_RETURN(std::string right, MerkleSubtreeHash(begin + k, end, complete));
    out->push_back(std::move(right));
  } else {
    RETURN_IF_ERROR(AppendSubproof(m - k, begin + k, end, false, complete, out));
    ASSIGN_OR_RETURN(std::string left, MerkleSubtreeHash(begin, begin + k, complete));
    out->push_back(std::move(left));
  }
  return absl::OkStatus();
}

absl::Status CheckHashSizes(absl::Span<const std::string> proof) {
  for (const std::string& hash : proof) {
    if (hash.size() != kSha256Size) {
      return absl::InvalidArgumentError(
          absl::StrCat("a proof hash is ", hash.size(), " bytes, not ", kSha256Size));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string MerkleLeafHash(absl::string_view data) {
  Sha256 h;
  h.Update(absl::string_view("\x00", 1));
  h.Update(data);
  return h.Finish();
}

std::string MerkleNodeHash(absl::string_view left, absl::string_view right) {
  Sha256 h;
  h.Update(absl::string_view("\x01", 1));
  h.Update(left);
  h.Update(right);
  return h.Finish();
}

std::string MerkleEmptyRoot() { return Sha256Of(""); }

absl::StatusOr<std::string> MerkleSubtreeHash(uint64_t begin, uint64_t end,
                                              const CompleteSubtreeFn& complete) {
  const uint64_t n = end - begin;
  if (end <= begin) return absl::InvalidArgumentError("empty subtree");
  if (IsPowerOfTwo(n) && begin % n == 0) {
    const int level = Log2(n);
    return complete(level, begin >> level);
  }
  const uint64_t k = IsPowerOfTwo(n) ? n / 2 : SplitPoint(n);
  ASSIGN_OR_RETURN(std::string left, MerkleSubtreeHash(begin, begin + k, complete));
  ASSIGN_OR_RETURN(std::string right, MerkleSubtreeHash(begin + k, end, complete));
  return MerkleNodeHash(left, right);
}

absl::StatusOr<std::vector<std::string>> MerkleInclusionProof(uint64_t index, uint64_t size,
                                                              const CompleteSubtreeFn& complete) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf ", index, " is not in a tree of ", size, " leaves"));
  }
  std::vector<std::string> path;
  RETURN_IF_ERROR(AppendPath(index, 0, size, complete, &path));
  return path;
}

absl::StatusOr<std::vector<std::string>> MerkleConsistencyProof(
    uint64_t old_size, uint64_t new_size, const CompleteSubtreeFn& complete) {
  if (old_size == 0 || old_size > new_size) {
    return absl::InvalidArgumentError(absl::StrCat("no consistency proof from a tree of ",
                                                   old_size, " leaves to one of ", new_size));
  }
  std::vector<std::string> proof;
  if (old_size == new_size) return proof;
  RETURN_IF_ERROR(AppendSubproof(old_size, 0, new_size, true, complete, &proof));
  return proof;
}

absl::StatusOr<std::string> MerkleRootFromInclusion(uint64_t index, uint64_t size,
                                                    absl::string_view leaf_hash,
                                                    absl::Span<const std::string> proof) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf ", index, " is not in a tree of ", size, " leaves"));
  }
  RETURN_IF_ERROR(CheckHashSizes(proof));
  if (leaf_hash.size() != kSha256Size) return absl::InvalidArgumentError("bad leaf hash size");
  uint64_t fn = index;
  uint64_t sn = size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : proof) {
    if (sn == 0) return absl::InvalidArgumentError("the inclusion proof is too long");
    if ((fn & 1) == 1 || fn == sn) {
      r = MerkleNodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = MerkleNodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::InvalidArgumentError("the inclusion proof is too short");
  return r;
}

absl::Status VerifyMerkleInclusion(uint64_t index, uint64_t size, absl::string_view leaf_hash,
                                   absl::Span<const std::string> proof, absl::string_view root) {
  ASSIGN_OR_RETURN(std::string computed, MerkleRootFromInclusion(index, size, leaf_hash, proof));
  if (computed != root) {
    return absl::DataLossError(absl::StrCat("leaf ", index, " is not in the tree of ", size,
                                            " leaves with root ", HexDigest(root)));
  }
  return absl::OkStatus();
}

absl::Status VerifyMerkleConsistency(uint64_t old_size, uint64_t new_size,
                                     absl::string_view old_root, absl::string_view new_root,
                                     absl::Span<const std::string> proof) {
  if (new_size < old_size) {
    return absl::InvalidArgumentError(absl::StrCat("the tree shrank from ", old_size, " to ",
                                                   new_size, " leaves"));
  }
  if (old_size == new_size || old_size == 0) {
    if (!proof.empty()) return absl::InvalidArgumentError("a trivial proof must be empty");
    if (old_size == new_size && old_root != new_root) {
      return absl::DataLossError(absl::StrCat("two different trees of ", old_size, " leaves"));
    }
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(CheckHashSizes(proof));
  if (proof.empty()) return absl::InvalidArgumentError("the consistency proof is empty");
  std::vector<std::string> path(proof.begin(), proof.end());
  if (IsPowerOfTwo(old_size)) path.insert(path.begin(), std::string(old_root));
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  std::string fr = path[0];
  std::string sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const std::string& c = path[i];
    if (sn == 0) return absl::InvalidArgumentError("the consistency proof is too long");
    if ((fn & 1) == 1 || fn == sn) {
      fr = MerkleNodeHash(c, fr);
      sr = MerkleNodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = MerkleNodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::InvalidArgumentError("the consistency proof is too short");
  if (fr != old_root || sr != new_root) {
    return absl::DataLossError(absl::StrCat("the tree of ", new_size,
                                            " leaves does not extend the tree of ", old_size,
                                            " leaves (a fork or a rewritten history)"));
  }
  return absl::OkStatus();
}

}  // namespace repro
