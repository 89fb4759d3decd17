#include "common/merkle.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/testutil/subprocess.h"

namespace repro {
namespace {

std::string Unhex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

// An in-memory tree: every complete subtree computed from the leaves.
class MemoryTree {
 public:
  explicit MemoryTree(std::vector<std::string> leaves) : leaves_(std::move(leaves)) {}
  CompleteSubtreeFn Fn() const {
    return [this](int level, uint64_t index) -> absl::StatusOr<std::string> {
      return Hash(index << level, (index + 1) << level);
    };
  }
  // MTH of leaves [begin, end) by the definition, independent of MerkleSubtreeHash.
  std::string Hash(uint64_t begin, uint64_t end) const {
    if (end - begin == 1) return MerkleLeafHash(leaves_[begin]);
    uint64_t k = 1;
    while (k * 2 < end - begin) k *= 2;
    return MerkleNodeHash(Hash(begin, begin + k), Hash(begin + k, end));
  }

 private:
  std::vector<std::string> leaves_;
};

// The RFC 6962 test leaves, as published by Certificate Transparency (transparency-dev/merkle
// testonly/constants.go and proof/verify_test.go).
std::vector<std::string> CtLeaves() {
  std::vector<std::string> out;
  for (const char* hex : {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                          "606162636465666768696a6b6c6d6e6f"}) {
    out.push_back(Unhex(hex));
  }
  return out;
}

const char* const kCtRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct ProofVector {
  uint64_t a;  // leaf (1-based, as in the CT vectors) or old size
  uint64_t size;
  std::vector<const char*> proof;
};

const std::vector<ProofVector> kCtInclusion = {
    {1, 1, {}},
    {1, 8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {3, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {2, 5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

const std::vector<ProofVector> kCtConsistency = {
    {1, 1, {}},
    {1, 8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6, 7,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

std::vector<std::string> Hashes(const std::vector<const char*>& hex) {
  std::vector<std::string> out;
  for (const char* h : hex) out.push_back(Unhex(h));
  return out;
}

TEST(MerkleTest, RootsMatchCertificateTransparencyVectors) {
  MemoryTree tree(CtLeaves());
  EXPECT_EQ(HexDigest(MerkleEmptyRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  for (uint64_t n = 1; n <= 8; ++n) {
    absl::StatusOr<std::string> root = MerkleSubtreeHash(0, n, tree.Fn());
    ASSERT_TRUE(root.ok()) << root.status();
    EXPECT_EQ(HexDigest(*root), kCtRoots[n - 1]) << "size " << n;
  }
}

TEST(MerkleTest, InclusionProofsMatchCertificateTransparencyVectors) {
  MemoryTree tree(CtLeaves());
  std::vector<std::string> leaves = CtLeaves();
  for (const ProofVector& v : kCtInclusion) {
    const uint64_t index = v.a - 1;
    absl::StatusOr<std::vector<std::string>> proof =
        MerkleInclusionProof(index, v.size, tree.Fn());
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, Hashes(v.proof)) << "leaf " << index << " of " << v.size;
    EXPECT_TRUE(VerifyMerkleInclusion(index, v.size, MerkleLeafHash(leaves[index]), *proof,
                                      Unhex(kCtRoots[v.size - 1]))
                    .ok());
  }
}

TEST(MerkleTest, ConsistencyProofsMatchCertificateTransparencyVectors) {
  MemoryTree tree(CtLeaves());
  for (const ProofVector& v : kCtConsistency) {
    absl::StatusOr<std::vector<std::string>> proof =
        MerkleConsistencyProof(v.a, v.size, tree.Fn());
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, Hashes(v.proof)) << v.a << " -> " << v.size;
    EXPECT_TRUE(VerifyMerkleConsistency(v.a, v.size, Unhex(kCtRoots[v.a - 1]),
                                        Unhex(kCtRoots[v.size - 1]), *proof)
                    .ok());
  }
}

TEST(MerkleTest, AlteredProofsFail) {
  MemoryTree tree(CtLeaves());
  std::vector<std::string> leaves = CtLeaves();
  const std::string root8 = Unhex(kCtRoots[7]);
  const std::string root6 = Unhex(kCtRoots[5]);
  std::vector<std::string> incl = Hashes(kCtInclusion[2].proof);  // leaf 5 of 8
  const std::string leaf = MerkleLeafHash(leaves[5]);
  ASSERT_TRUE(VerifyMerkleInclusion(5, 8, leaf, incl, root8).ok());
  EXPECT_FALSE(VerifyMerkleInclusion(4, 8, leaf, incl, root8).ok());
  EXPECT_FALSE(VerifyMerkleInclusion(5, 16, leaf, incl, root8).ok());
  EXPECT_FALSE(VerifyMerkleInclusion(5, 8, MerkleLeafHash("x"), incl, root8).ok());
  EXPECT_FALSE(VerifyMerkleInclusion(5, 8, leaf, incl, root6).ok());
  for (size_t i = 0; i < incl.size(); ++i) {
    std::vector<std::string> bad = incl;
    bad[i][0] ^= 8;
    EXPECT_FALSE(VerifyMerkleInclusion(5, 8, leaf, bad, root8).ok()) << i;
  }
  std::vector<std::string> shorter(incl.begin(), incl.end() - 1);
  EXPECT_FALSE(VerifyMerkleInclusion(5, 8, leaf, shorter, root8).ok());

  std::vector<std::string> cons = Hashes(kCtConsistency[2].proof);  // 6 -> 8
  ASSERT_TRUE(VerifyMerkleConsistency(6, 8, root6, root8, cons).ok());
  EXPECT_FALSE(VerifyMerkleConsistency(5, 8, root6, root8, cons).ok());
  EXPECT_FALSE(VerifyMerkleConsistency(6, 8, root8, root6, cons).ok());
  EXPECT_FALSE(VerifyMerkleConsistency(6, 8, root6, root8, {}).ok());
  EXPECT_FALSE(VerifyMerkleConsistency(8, 6, root8, root6, cons).ok());  // shrank
  EXPECT_FALSE(VerifyMerkleConsistency(6, 6, root6, root8, {}).ok());    // same size, fork
  for (size_t i = 0; i < cons.size(); ++i) {
    std::vector<std::string> bad = cons;
    bad[i][0] ^= 16;
    EXPECT_FALSE(VerifyMerkleConsistency(6, 8, root6, root8, bad).ok()) << i;
  }
}

// Every root and every proof of every tree up to 24 leaves, against the Python computation
// straight from the RFC's definitions (merkle_reference.py), and each proof verifies.
TEST(MerkleTest, AgreesWithIndependentPythonComputation) {
  constexpr int kLeaves = 24;
  testing::RunResult python = testing::RunCommand(
      {"/usr/bin/python3", testing::SourcePath("tests/common/merkle_reference.py"),
       absl::StrCat(kLeaves)});
  ASSERT_EQ(python.exit_code, 0) << python.stderr_text;

  std::vector<std::string> leaves;
  for (int i = 0; i < kLeaves; ++i) leaves.push_back(absl::StrCat("leaf-", i));
  MemoryTree tree(leaves);
  auto hex = [](const std::vector<std::string>& hashes) {
    return absl::StrJoin(hashes, ",", [](std::string* out, const std::string& h) {
      out->append(HexDigest(h));
    });
  };
  std::vector<std::string> lines;
  for (uint64_t n = 1; n <= kLeaves; ++n) {
    std::string root = *MerkleSubtreeHash(0, n, tree.Fn());
    lines.push_back(absl::StrCat("root ", n, " ", HexDigest(root)));
    for (uint64_t m = 0; m < n; ++m) {
      std::vector<std::string> proof = *MerkleInclusionProof(m, n, tree.Fn());
      EXPECT_TRUE(VerifyMerkleInclusion(m, n, MerkleLeafHash(leaves[m]), proof, root).ok());
      lines.push_back(absl::StrCat("incl ", m, " ", n, " ", hex(proof)));
    }
    for (uint64_t m = 1; m < n; ++m) {
      std::vector<std::string> proof = *MerkleConsistencyProof(m, n, tree.Fn());
      EXPECT_TRUE(
          VerifyMerkleConsistency(m, n, *MerkleSubtreeHash(0, m, tree.Fn()), root, proof).ok())
          << m << " -> " << n;
      lines.push_back(absl::StrCat("cons ", m, " ", n, " ", hex(proof)));
    }
  }
  EXPECT_EQ(absl::StrJoin(lines, "\n") + "\n", python.stdout_text);
}

}  // namespace
}  // namespace repro
