// HeadLog: the node's append-only RFC 6962 Merkle tree of every journal head it signed, across
// all jobs (the anchors: Certificate Transparency, Trillian, Rekor). Its signed tree head and
// proofs let an auditor who trusts only the node's key prove that today's journal extends what
// was exported earlier: a rollback or a deleted job would need a tree that does not extend the
// exported one, and a consistency proof then fails.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<HeadLog> log, HeadLog::Open(store, "node-a", key));
//   Journal journal(store, {.node = "node-a", .key = key, .head_log = log.get()});
//   v1::SignedTreeHead sth = log->SignedHead();
//   ASSIGN_OR_RETURN(v1::HeadLogInclusion proof, log->ProveHead("job-1", 7, sth.size()));
//
// Leaf data = HeadSigningBytes(node, job, seq, hash) (common/signed_statements.h): exactly what
// the head's signature covers. The journal appends the heads of one group commit as leaves in
// the same RocksDB write batch as the entries (Stage, then Apply once the batch is durable), so
// the log costs a few hashes and puts per group, not per entry.
//
// Storage (column head_log):
//   "n" u8(level) be64(index)      -> hash of the complete subtree of 2^level leaves at index
//   "s"                            -> be64(number of leaves)
//   "j" job "/" be64(seq)          -> be64(leaf index of that head)
//   "r" be64(n)                    -> KeyRotation n (oldest first)
#ifndef REPRO_DAEMON_STORE_HEAD_LOG_H_
#define REPRO_DAEMON_STORE_HEAD_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/os/clock.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/repro.pb.h"
#include "rocksdb/write_batch.h"

namespace repro {

// One signed head to log.
struct LoggedHead {
  std::string job;
  uint64_t seq = 0;
  std::string signing_bytes;  // HeadSigningBytes(node, job, seq, hash): the leaf data
};

// Thread-safe. Stage/Apply must be called by one thread at a time (the journal's group-commit
// leader); proofs and signed heads may be asked for concurrently.
class HeadLog {
 public:
  // The complete subtrees covering the tree, left to right (the "compact range").
  struct Frontier {
    uint64_t size = 0;
    std::vector<std::pair<int, std::string>> subtrees;  // (level, hash), largest first
  };

  // Loads the log of `store`. `store`, `key` and `clock` are not owned and must outlive it.
  // DATA_LOSS when a stored subtree hash is missing.
  static absl::StatusOr<std::unique_ptr<HeadLog>> Open(RocksStore* store, std::string node,
                                                       const NodeKey* key,
                                                       Clock* clock = DefaultClock());

  // Adds `heads` as leaves to `batch` and returns the tree they make; nothing changes here until
  // Apply(that tree) after `batch` was durably written.
  Frontier Stage(const std::vector<LoggedHead>& heads, rocksdb::WriteBatch* batch) const;
  void Apply(Frontier frontier);
  // Reloads the tree from the store when it was reopened (RocksStore::generation()) since it
  // was loaded: a reopen may bring back leaves of a write that failed. Called by the group-commit
  // leader, under a RocksStore::Lease of `generation`, before Stage.
  absl::Status Rederive(uint64_t generation);

  uint64_t size() const;
  // The current tree, signed now by the node's key.
  v1::SignedTreeHead SignedHead() const;

  // The leaf index of the head of `job` at `seq`; NOT_FOUND when it was never logged.
  absl::StatusOr<uint64_t> LeafIndex(absl::string_view job, uint64_t seq) const;
  // The inclusion proof of the head of `job` at `seq` in the tree of `tree_size` leaves.
  absl::StatusOr<v1::HeadLogInclusion> ProveHead(absl::string_view job, uint64_t seq,
                                                 uint64_t tree_size) const;
  // RFC 6962 PROOF(old_size, tree of new_size). INVALID_ARGUMENT unless 0 < old <= new <= size().
  absl::StatusOr<std::vector<std::string>> ProveConsistency(uint64_t old_size,
                                                            uint64_t new_size) const;

  // The root of the tree of the first `size` leaves (0 < size <= size()), from the store.
  absl::StatusOr<std::string> RootAt(uint64_t size) const;

  // Stores a rotation statement (signed by `old_key`, naming this log's key) and returns it.
  // In the same write, re-signs every job's current journal head with this log's key (same seq
  // and hash, so the leaves logged for them still hold), so the journal verifies with the new
  // key at once. Call before a Journal on the same store is built (it caches heads).
  absl::StatusOr<v1::KeyRotation> AddRotation(const NodeKey& old_key);
  // Every stored rotation, oldest first.
  absl::StatusOr<std::vector<v1::KeyRotation>> Rotations() const;

  // The root of `frontier` (MerkleEmptyRoot() for an empty tree).
  static std::string Root(const Frontier& frontier);

 private:
  HeadLog(RocksStore* store, std::string node, const NodeKey* key, Clock* clock,
          Frontier frontier, uint64_t generation)
      : store_(store), node_(std::move(node)), key_(key), clock_(clock),
        frontier_(std::move(frontier)), generation_(generation) {}

  static absl::StatusOr<Frontier> LoadFrontier(RocksStore* store);

  absl::StatusOr<std::string> CompleteSubtree(int level, uint64_t index) const;

  RocksStore* const store_;
  const std::string node_;
  const NodeKey* const key_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  Frontier frontier_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_);  // the store's generation frontier_ was loaded from
};

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_HEAD_LOG_H_
