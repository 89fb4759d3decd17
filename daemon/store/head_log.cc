#include "daemon/store/head_log.h"

#include "absl/strings/str_cat.h"
#include "common/merkle.h"
#include "common/signed_statements.h"
#include "common/status_macros.h"

namespace repro {
namespace {

constexpr char kSizeKey[] = "s";

std::string SubtreeKey(int level, uint64_t index) {
  return absl::StrCat("n", std::string(1, static_cast<char>(level)), EncodeBigEndian64(index));
}

std::string LeafIndexKey(absl::string_view job, uint64_t seq) {
  return absl::StrCat("j", job, "/", EncodeBigEndian64(seq));
}

std::string RotationKey(uint64_t n) { return absl::StrCat("r", EncodeBigEndian64(n)); }

absl::StatusOr<uint64_t> ReadBigEndian(RocksStore* store, absl::string_view key,
                                       absl::string_view what) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, store->Get(Column::kHeadLog, key));
  if (!value.has_value()) return absl::NotFoundError(absl::StrCat(what, " is not in the head log"));
  if (value->size() != 8) return absl::DataLossError(absl::StrCat("head log: ", what, " is corrupt"));
  return DecodeBigEndian64(*value);
}

}  // namespace

absl::StatusOr<HeadLog::Frontier> HeadLog::LoadFrontier(RocksStore* store) {
  Frontier frontier;
  absl::StatusOr<uint64_t> size = ReadBigEndian(store, kSizeKey, "the tree size");
  if (!size.ok() && !absl::IsNotFound(size.status())) return size.status();
  frontier.size = size.value_or(0);
  // The compact range of `size` leaves: one complete subtree per set bit, largest first.
  uint64_t begin = 0;
  for (int level = 63; level >= 0; --level) {
    const uint64_t width = uint64_t{1} << level;
    if ((frontier.size & width) == 0) continue;
    ASSIGN_OR_RETURN(std::optional<std::string> hash,
                     store->Get(Column::kHeadLog, SubtreeKey(level, begin >> level)));
    if (!hash.has_value()) {
      return absl::DataLossError(absl::StrCat("head log of ", frontier.size,
                                              " leaves lacks its subtree at leaf ", begin));
    }
    frontier.subtrees.emplace_back(level, *std::move(hash));
    begin += width;
  }
  return frontier;
}

absl::StatusOr<std::unique_ptr<HeadLog>> HeadLog::Open(RocksStore* store, std::string node,
                                                       const NodeKey* key, Clock* clock) {
  const uint64_t generation = store->generation();
  ASSIGN_OR_RETURN(Frontier frontier, LoadFrontier(store));
  return std::unique_ptr<HeadLog>(new HeadLog(store, std::move(node), key, clock,
                                              std::move(frontier), generation));
}

absl::Status HeadLog::Rederive(uint64_t generation) {
  {
    absl::MutexLock lock(&mu_);
    if (generation_ == generation) return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(Frontier frontier, LoadFrontier(store_));
  absl::MutexLock lock(&mu_);
  frontier_ = std::move(frontier);
  generation_ = generation;
  return absl::OkStatus();
}

// The caller holds a RocksStore::Lease (Stage is part of the journal's group commit).
HeadLog::Frontier HeadLog::Stage(const std::vector<LoggedHead>& heads,
                                 rocksdb::WriteBatch* batch) const {
  Frontier next;
  {
    absl::MutexLock lock(&mu_);
    next = frontier_;
  }
  rocksdb::ColumnFamilyHandle* column = store_->handle(Column::kHeadLog);
  for (const LoggedHead& head : heads) {
    const uint64_t index = next.size++;
    batch->Put(column, LeafIndexKey(head.job, head.seq), EncodeBigEndian64(index));
    std::string hash = MerkleLeafHash(head.signing_bytes);
    int level = 0;
    batch->Put(column, SubtreeKey(0, index), hash);
    // Merge equal-sized subtrees at the right edge: each merge completes a stored subtree.
    while (!next.subtrees.empty() && next.subtrees.back().first == level) {
      hash = MerkleNodeHash(next.subtrees.back().second, hash);
      next.subtrees.pop_back();
      ++level;
      batch->Put(column, SubtreeKey(level, index >> level), hash);
    }
    next.subtrees.emplace_back(level, std::move(hash));
  }
  if (!heads.empty()) batch->Put(column, kSizeKey, EncodeBigEndian64(next.size));
  return next;
}

void HeadLog::Apply(Frontier frontier) {
  absl::MutexLock lock(&mu_);
  frontier_ = std::move(frontier);
}

uint64_t HeadLog::size() const {
  absl::MutexLock lock(&mu_);
  return frontier_.size;
}

std::string HeadLog::Root(const Frontier& frontier) {
  if (frontier.subtrees.empty()) return MerkleEmptyRoot();
  std::string root = frontier.subtrees.back().second;
  for (size_t i = frontier.subtrees.size() - 1; i-- > 0;) {
    root = MerkleNodeHash(frontier.subtrees[i].second, root);
  }
  return root;
}

v1::SignedTreeHead HeadLog::SignedHead() const {
  Frontier frontier;
  {
    absl::MutexLock lock(&mu_);
    frontier = frontier_;
  }
  v1::SignedTreeHead out;
  out.set_node(node_);
  out.set_size(frontier.size);
  out.set_root(Root(frontier));
  out.set_time_unix_nanos(absl::ToUnixNanos(clock_->Now()));
  out.set_signature(
      key_->Sign(TreeHeadSigningBytes(node_, out.size(), out.root(), out.time_unix_nanos())));
  out.set_public_key(key_->public_key());
  return out;
}

absl::StatusOr<std::string> HeadLog::CompleteSubtree(int level, uint64_t index) const {
  ASSIGN_OR_RETURN(std::optional<std::string> hash,
                   store_->Get(Column::kHeadLog, SubtreeKey(level, index)));
  if (!hash.has_value()) {
    return absl::DataLossError(
        absl::StrCat("head log lacks its subtree of level ", level, " at ", index));
  }
  return *std::move(hash);
}

absl::StatusOr<uint64_t> HeadLog::LeafIndex(absl::string_view job, uint64_t seq) const {
  return ReadBigEndian(store_, LeafIndexKey(job, seq),
                       absl::StrCat("the head of job ", job, " at entry ", seq));
}

absl::StatusOr<v1::HeadLogInclusion> HeadLog::ProveHead(absl::string_view job, uint64_t seq,
                                                        uint64_t tree_size) const {
  ASSIGN_OR_RETURN(uint64_t index, LeafIndex(job, seq));
  if (tree_size > size()) return absl::InvalidArgumentError("the tree is not that large yet");
  ASSIGN_OR_RETURN(std::vector<std::string> path,
                   MerkleInclusionProof(index, tree_size, [this](int level, uint64_t i) {
                     return CompleteSubtree(level, i);
                   }));
  v1::HeadLogInclusion out;
  out.set_leaf_index(index);
  for (std::string& hash : path) out.add_path(std::move(hash));
  return out;
}

absl::StatusOr<std::vector<std::string>> HeadLog::ProveConsistency(uint64_t old_size,
                                                                   uint64_t new_size) const {
  if (new_size > size()) {
    return absl::InvalidArgumentError(absl::StrCat("the head log of node ", node_, " has ",
                                                   size(), " leaves, not ", new_size));
  }
  return MerkleConsistencyProof(old_size, new_size, [this](int level, uint64_t i) {
    return CompleteSubtree(level, i);
  });
}

absl::StatusOr<std::string> HeadLog::RootAt(uint64_t size) const {
  if (size == 0 || size > this->size()) {
    return absl::InvalidArgumentError(absl::StrCat("no tree of ", size, " leaves in the head log"));
  }
  return MerkleSubtreeHash(0, size, [this](int level, uint64_t i) {
    return CompleteSubtree(level, i);
  });
}

absl::StatusOr<v1::KeyRotation> HeadLog::AddRotation(const NodeKey& old_key) {
  ASSIGN_OR_RETURN(std::vector<v1::KeyRotation> rotations, Rotations());
  v1::KeyRotation rotation;
  rotation.set_node(node_);
  rotation.set_old_public_key(old_key.public_key());
  rotation.set_new_public_key(key_->public_key());
  rotation.set_signature(
      old_key.Sign(KeyRotationSigningBytes(node_, old_key.public_key(), key_->public_key())));
  RocksStore::Lease lease(store_);
  RETURN_IF_ERROR(lease.status());
  rocksdb::WriteBatch batch;
  batch.Put(store_->handle(Column::kHeadLog), RotationKey(rotations.size()),
            rotation.SerializeAsString());
  bool corrupt = false;
  RETURN_IF_ERROR(store_->ScanPrefix(
      Column::kJournalHeads, "", [&](absl::string_view job, absl::string_view value) {
        v1::JournalHead head;
        corrupt = !head.ParseFromArray(value.data(), static_cast<int>(value.size()));
        if (corrupt) return false;
        head.set_signature(key_->Sign(HeadSigningBytes(node_, job, head.seq(), head.hash())));
        batch.Put(store_->handle(Column::kJournalHeads), ToSlice(job), head.SerializeAsString());
        return true;
      }));
  if (corrupt) return absl::DataLossError("a stored journal head is corrupt");
  RETURN_IF_ERROR(store_->WriteDurable(&batch));
  return rotation;
}

absl::StatusOr<std::vector<v1::KeyRotation>> HeadLog::Rotations() const {
  std::vector<v1::KeyRotation> out;
  bool corrupt = false;
  RETURN_IF_ERROR(store_->ScanPrefix(Column::kHeadLog, "r",
                                     [&](absl::string_view, absl::string_view value) {
                                       out.emplace_back();
                                       corrupt = !out.back().ParseFromArray(
                                           value.data(), static_cast<int>(value.size()));
                                       return !corrupt;
                                     }));
  if (corrupt) return absl::DataLossError("a stored key rotation is corrupt");
  return out;
}

}  // namespace repro
