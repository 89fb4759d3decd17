#include "daemon/cluster/tree_head_watch.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/signed_statements.h"
#include "daemon/etcd/etcd_keys.h"
#include "spdlog/spdlog.h"

namespace repro {

TreeHeadWatch::TreeHeadWatch(EtcdClient* etcd, std::string node, const HeadLog* log,
                             Metrics* metrics, absl::Duration interval)
    : etcd_(etcd), node_(std::move(node)), log_(log), metrics_(metrics), interval_(interval) {}

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
  etcdserverpb::RangeRequest range;
  range.set_key(std::string(etcd_keys::kTreeHeads));
  range.set_range_end(etcd_keys::PrefixEnd(etcd_keys::kTreeHeads));
  absl::StatusOr<etcdserverpb::RangeResponse> got = etcd_->Range(range);
  if (!got.ok()) return got.status();
  for (const mvccpb::KeyValue& kv : got->kvs()) {
    const std::string node(etcd_keys::LastPart(kv.key()));
    v1::SignedTreeHead sth;
    if (!sth.ParseFromString(kv.value())) {
      ReportFork(node, "its published tree head is not a signed tree head");
      continue;
    }
    Check(node, sth);
  }
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
  if (sth.node() != node || !VerifyEd25519(sth.public_key(),
                                           TreeHeadSigningBytes(sth.node(), sth.size(), sth.root(),
                                                                sth.time_unix_nanos()),
                                           sth.signature())) {
    ReportFork(node, "its published tree head is not signed by the key it names");
    return;
  }
  std::string problem;
  {
    absl::MutexLock lock(&mu_);
    auto it = seen_.find(node);
    if (it == seen_.end()) {
      seen_.emplace(node, sth);
      return;
    }
    const v1::SignedTreeHead& before = it->second;
    if (sth.size() == before.size() && sth.root() != before.root()) {
      problem = absl::StrCat("two different roots for a tree of size ", sth.size(), " (",
                             HexDigest(before.root()).substr(0, 12), ", now ",
                             HexDigest(sth.root()).substr(0, 12), ")");
    } else if (sth.size() < before.size()) {
      problem = absl::StrCat("it published a tree of size ", sth.size(), " after one of size ",
                             before.size(), ": its head log was rolled back");
    } else if (sth.size() > before.size()) {
      it->second = sth;  // grew (consistency is not proven here)
    }
  }
  if (!problem.empty()) ReportFork(node, problem);
}

void TreeHeadWatch::ReportFork(const std::string& node, const std::string& problem) {
  {
    absl::MutexLock lock(&mu_);
    if (!forks_.emplace(node, problem).second) return;  // reported once per node
  }
  spdlog::error("fork: node {} shows two histories: {}", node, problem);
  metrics_
      ->GetCounter("repro_cluster_tree_head_forks_total",
                   "Nodes whose published signed tree heads contradict each other (a fork or "
                   "rollback of their head log).",
                   {{"node", node}})
      ->Increment();
}

std::string TreeHeadWatch::ForkOf(const std::string& node) const {
  absl::MutexLock lock(&mu_);
  auto it = forks_.find(node);
  return it == forks_.end() ? "" : it->second;
}

std::vector<std::string> TreeHeadWatch::Forks() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [node, problem] : forks_) out.push_back(absl::StrCat(node, ": ", problem));
  return out;
}

}  // namespace repro
