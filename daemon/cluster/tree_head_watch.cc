#include "daemon/cluster/tree_head_watch.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/merkle.h"
#include "common/sha256.h"
#include "common/signed_statements.h"
#include "common/status_macros.h"
#include "daemon/etcd/etcd_keys.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// True when `sth` names `node` and is signed by the key it carries.
bool SignedByItsNode(const std::string& node, const v1::SignedTreeHead& sth) {
  return sth.node() == node &&
         VerifyEd25519(sth.public_key(),
                       TreeHeadSigningBytes(sth.node(), sth.size(), sth.root(),
                                            sth.time_unix_nanos()),
                       sth.signature());
}

// True for errors that say the node could not be asked (down, restarting, partitioned, busy,
// not allowed or too old to answer), as opposed to a node that answered it cannot prove.
bool CouldNotAsk(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

std::string ShortRoot(const v1::SignedTreeHead& sth) {
  return HexDigest(sth.root()).substr(0, 12);
}

}  // namespace

TreeHeadWatch::TreeHeadWatch(EtcdClient* etcd, std::string node, const HeadLog* log,
                             ProveGrowth prove, Metrics* metrics, absl::Duration interval)
    : etcd_(etcd),
      node_(std::move(node)),
      log_(log),
      prove_(std::move(prove)),
      metrics_(metrics),
      interval_(interval) {}

TreeHeadWatch::~TreeHeadWatch() { Stop(); }

void TreeHeadWatch::Start() {
  thread_ = std::thread([this] {
    do {
      absl::Status round = RunOnce();
      if (!round.ok()) spdlog::debug("tree heads: {}", round.ToString());
    } while (!stop_.WaitForNotificationWithTimeout(interval_));
  });
}

void TreeHeadWatch::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

absl::Status TreeHeadWatch::RunOnce() {
  etcdserverpb::TxnRequest reads;  // no compares: both ranges always run
  for (absl::string_view prefix : {etcd_keys::kForks, etcd_keys::kTreeHeads}) {
    etcdserverpb::RangeRequest* range = reads.add_success()->mutable_request_range();
    range->set_key(std::string(prefix));
    range->set_range_end(etcd_keys::PrefixEnd(prefix));
  }
  absl::StatusOr<etcdserverpb::TxnResponse> got = etcd_->Txn(reads);
  if (!got.ok()) return got.status();
  if (got->responses_size() != 2) {
    return absl::InternalError(absl::StrCat("etcd answered ", got->responses_size(),
                                            " ranges for 2"));
  }
  Learn(got->responses(0).response_range());
  for (const mvccpb::KeyValue& kv : got->responses(1).response_range().kvs()) {
    const std::string node(etcd_keys::LastPart(kv.key()));
    if (Forked(node)) continue;
    v1::SignedTreeHead sth;
    if (!sth.ParseFromString(kv.value())) {
      ReportFork(MakeFork(node, "its published tree head is not a signed tree head", std::nullopt,
                          std::nullopt),
                 false);
      continue;
    }
    Check(node, sth);
  }
  RETURN_IF_ERROR(Record());
  v1::SignedTreeHead own = log_->SignedHead();
  {
    absl::MutexLock lock(&mu_);
    if (published_ && own.size() == published_size_) return absl::OkStatus();
  }
  etcdserverpb::PutRequest put;
  put.set_key(etcd_keys::TreeHead(node_));
  put.set_value(own.SerializeAsString());
  absl::StatusOr<etcdserverpb::PutResponse> written = etcd_->Put(put);
  if (!written.ok()) return written.status();
  absl::MutexLock lock(&mu_);
  published_ = true;
  published_size_ = own.size();
  return absl::OkStatus();
}

void TreeHeadWatch::Check(const std::string& node, const v1::SignedTreeHead& sth) {
  std::optional<v1::SignedTreeHead> before;
  {
    absl::MutexLock lock(&mu_);
    auto it = seen_.find(node);
    if (it != seen_.end()) before = it->second;
  }
  if (!SignedByItsNode(node, sth)) {
    ReportFork(MakeFork(node, "its published tree head is not signed by the key it names", before,
                        sth),
               false);
    return;
  }
  if (!before.has_value()) {
    absl::MutexLock lock(&mu_);
    seen_.emplace(node, sth);
    return;
  }
  if (sth.size() == before->size() && sth.root() == before->root()) return;
  absl::StatusOr<std::optional<v1::TreeHeadFork>> fork = Contradiction(node, *before, sth);
  if (!fork.ok()) {
    // Not a fork: a node that is down, restarting or cut off cannot answer, and a fork is
    // reported on evidence only. The last proven tree head stays the reference, and the next
    // round asks again (up to whatever the node has published by then).
    bool first;
    {
      absl::MutexLock lock(&mu_);
      first = unreachable_.insert(node).second;
    }
    if (first) {
      spdlog::warn("tree heads: cannot prove yet that node {}'s tree of size {} extends the one "
                   "of size {}: {}; asking again",
                   node, sth.size(), before->size(), fork.status().ToString());
    }
    return;
  }
  if (fork->has_value()) {
    ReportFork(**std::move(fork), false);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    unreachable_.erase(node);
    v1::SignedTreeHead& seen = seen_[node];
    if (seen.size() < sth.size()) seen = sth;
  }
  metrics_
      ->GetCounter("repro_cluster_tree_head_growths_proven_total",
                   "Larger tree heads of a node taken once the node proved (RFC 6962 consistency) "
                   "that they extend the one seen before.",
                   {{"node", node}})
      ->Increment();
}

absl::StatusOr<std::optional<v1::TreeHeadFork>> TreeHeadWatch::Contradiction(
    const std::string& node, const v1::SignedTreeHead& earlier,
    const v1::SignedTreeHead& later) const {
  if (later.size() == earlier.size()) {
    if (later.root() == earlier.root()) return std::nullopt;
    return MakeFork(node,
                    absl::StrCat("two different roots for a tree of size ", later.size(), " (",
                                 ShortRoot(earlier), ", now ", ShortRoot(later), ")"),
                    earlier, later);
  }
  if (later.size() < earlier.size()) {
    return MakeFork(node,
                    absl::StrCat("it published a tree of size ", later.size(),
                                 " after one of size ", earlier.size(),
                                 ": its head log was rolled back"),
                    earlier, later);
  }
  if (earlier.size() == 0) return std::nullopt;  // every tree extends the empty one
  absl::StatusOr<v1::HeadLogProofResponse> proof = prove_(node, earlier.size(), later.size());
  if (!proof.ok() && CouldNotAsk(proof.status())) return proof.status();
  if (!proof.ok()) {
    return MakeFork(node,
                    absl::StrCat("it refused to prove that its tree of size ", later.size(),
                                 " extends the one of size ", earlier.size(),
                                 " it published before: ", proof.status().message()),
                    earlier, later);
  }
  const v1::SignedTreeHead& now = proof->tree_head();
  if (now.size() < later.size() && SignedByItsNode(node, now)) {
    return MakeFork(node,
                    absl::StrCat("it signed a tree of size ", now.size(),
                                 " after publishing one of size ", later.size(),
                                 ": its head log was rolled back"),
                    later, now);
  }
  const std::vector<std::string> path(proof->consistency().begin(), proof->consistency().end());
  absl::Status consistent =
      VerifyMerkleConsistency(earlier.size(), later.size(), earlier.root(), later.root(), path);
  if (consistent.ok()) return std::nullopt;
  return MakeFork(node,
                  absl::StrCat("its tree of size ", later.size(), " does not extend the one of "
                               "size ", earlier.size(), " it published before (root ",
                               ShortRoot(earlier), "): its history was rewritten"),
                  earlier, later);
}

v1::TreeHeadFork TreeHeadWatch::MakeFork(const std::string& node, std::string problem,
                                         const std::optional<v1::SignedTreeHead>& earlier,
                                         const std::optional<v1::SignedTreeHead>& later) const {
  v1::TreeHeadFork fork;
  fork.set_node(node);
  fork.set_problem(std::move(problem));
  if (earlier.has_value()) *fork.mutable_earlier() = *earlier;
  if (later.has_value()) *fork.mutable_later() = *later;
  fork.set_found_by(node_);
  fork.set_found_unix_nanos(absl::ToUnixNanos(absl::Now()));
  return fork;
}

void TreeHeadWatch::Learn(const etcdserverpb::RangeResponse& recorded) {
  for (const mvccpb::KeyValue& kv : recorded.kvs()) {
    const std::string node(etcd_keys::LastPart(kv.key()));
    if (Forked(node)) continue;
    {
      absl::MutexLock lock(&mu_);
      auto it = turned_down_.find(kv.key());
      if (it != turned_down_.end() && it->second == kv.mod_revision()) continue;
    }
    absl::StatusOr<v1::TreeHeadFork> fork =
        etcd_keys::Decode<v1::TreeHeadFork>(kv.value(), kv.key());
    absl::Status holds = fork.ok() ? RecheckRecord(node, *fork) : fork.status();
    if (!holds.ok()) {
      spdlog::warn("tree heads: the fork record {} in etcd does not hold: {}", kv.key(),
                   std::string(holds.message()));
      absl::MutexLock lock(&mu_);
      turned_down_[kv.key()] = kv.mod_revision();
      continue;
    }
    ReportFork(*std::move(fork), true);
  }
}

absl::Status TreeHeadWatch::RecheckRecord(const std::string& node,
                                          const v1::TreeHeadFork& fork) const {
  // Anyone who may write to etcd could write a record, and every signed tree head is public
  // there, so a record counts only when its two heads, both signed by the node it accuses, still
  // contradict each other here.
  if (fork.node() != node || !fork.has_earlier() || !fork.has_later() ||
      !SignedByItsNode(node, fork.earlier()) || !SignedByItsNode(node, fork.later())) {
    return absl::InvalidArgumentError(
        absl::StrCat("it does not hold two tree heads signed by node ", node));
  }
  if (fork.later().size() < fork.earlier().size() &&
      fork.later().time_unix_nanos() < fork.earlier().time_unix_nanos()) {
    return absl::InvalidArgumentError("its smaller tree was signed before the larger one");
  }
  absl::StatusOr<std::optional<v1::TreeHeadFork>> again =
      Contradiction(node, fork.earlier(), fork.later());
  // A node that cannot be asked leaves the record standing: the evidence was checked by the
  // node that wrote it, and a forked node that went away is the one to keep reporting.
  if (again.ok() && !again->has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("node ", node, " proves that its later tree extends the earlier one"));
  }
  return absl::OkStatus();
}

absl::Status TreeHeadWatch::Record() {
  std::vector<v1::TreeHeadFork> pending;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& node : unrecorded_) pending.push_back(forks_.at(node));
  }
  for (const v1::TreeHeadFork& fork : pending) {
    const std::string key = etcd_keys::Fork(fork.node());
    etcdserverpb::TxnRequest txn;
    CompareAbsent(key, &txn);  // the first finder's evidence stays
    etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(etcd_keys::Encode(fork));
    absl::StatusOr<etcdserverpb::TxnResponse> written = etcd_->Txn(txn);
    if (!written.ok()) return written.status();  // the next round tries again
    absl::MutexLock lock(&mu_);
    unrecorded_.erase(fork.node());
  }
  return absl::OkStatus();
}

void TreeHeadWatch::ReportFork(v1::TreeHeadFork fork, bool recorded) {
  const std::string node = fork.node();
  {
    absl::MutexLock lock(&mu_);
    if (!forks_.emplace(node, fork).second) return;  // reported once per node
    if (!recorded) unrecorded_.insert(node);
  }
  if (recorded) {
    spdlog::error("fork: node {} shows two histories (recorded in etcd by node {}): {}", node,
                  fork.found_by(), fork.problem());
  } else {
    spdlog::error("fork: node {} shows two histories: {}", node, fork.problem());
  }
  metrics_
      ->GetCounter("repro_cluster_tree_head_forks_total",
                   "Nodes whose published signed tree heads contradict each other (a fork or "
                   "rollback of their head log).",
                   {{"node", node}})
      ->Increment();
}

bool TreeHeadWatch::Forked(const std::string& node) const {
  absl::MutexLock lock(&mu_);
  return forks_.count(node) > 0;
}

std::string TreeHeadWatch::ForkOf(const std::string& node) const {
  absl::MutexLock lock(&mu_);
  auto it = forks_.find(node);
  return it == forks_.end() ? "" : it->second.problem();
}

std::vector<std::string> TreeHeadWatch::Forks() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [node, fork] : forks_) {
    out.push_back(absl::StrCat(node, ": ", fork.problem(),
                               fork.found_by() == node_ || fork.found_by().empty()
                                   ? ""
                                   : absl::StrCat(" (found by ", fork.found_by(), ")")));
  }
  return out;
}

}  // namespace repro
