#include "daemon/cluster/head_publisher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/etcd/etcd_keys.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr absl::Duration kFirstRetry = absl::Milliseconds(100);
constexpr absl::Duration kMaxRetry = absl::Seconds(2);
constexpr int kCasAttempts = 3;
// Publishing rounds are at least this far apart; heads queued meanwhile go out together.
constexpr absl::Duration kPublishInterval = absl::Milliseconds(50);
// Heads per transaction (etcd allows 128 operations per transaction by default).
constexpr size_t kBatchHeads = 64;

// Keeps the newer of `head` and what `pending` holds for its job.
void Enqueue(absl::flat_hash_map<std::string, v1::JournalHead>& pending, v1::JournalHead head) {
  auto [it, inserted] = pending.try_emplace(head.job(), head);
  if (!inserted && it->second.seq() < head.seq()) it->second = std::move(head);
}

}  // namespace

HeadPublisher::HeadPublisher(EtcdClient* etcd, std::string node)
    : etcd_(etcd), node_(std::move(node)) {}

HeadPublisher::~HeadPublisher() { Stop(); }

void HeadPublisher::Start(const Journal* journal) {
  thread_ = std::thread([this, journal] { Run(journal); });
}

void HeadPublisher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void HeadPublisher::Publish(std::vector<v1::JournalHead> heads) {
  absl::MutexLock lock(&mu_);
  for (v1::JournalHead& head : heads) Enqueue(pending_, std::move(head));
}

bool HeadPublisher::WaitUntilPublished(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_.empty() && !busy_; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

bool HeadPublisher::AddMove(const v1::JournalHead& head, const InEtcd& now,
                            etcdserverpb::TxnRequest* txn) const {
  if (now.exists && now.seq >= head.seq()) {
    if (now.seq > head.seq() || now.hash != head.hash()) {
      spdlog::error(
          "etcd holds this node's head of job {} at entry {}, but the local journal's head is "
          "entry {}{}; not overwriting it: run `reproctl verify {}`",
          head.job(), now.seq, head.seq(), now.seq == head.seq() ? " with another hash" : "",
          head.job());
    }
    return false;
  }
  const std::string key = etcd_keys::Head(head.job(), node_);
  if (now.exists) {
    CompareUnchanged(key, now.mod_revision, txn);
  } else {
    CompareAbsent(key, txn);
  }
  etcdserverpb::PutRequest* put = txn->add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(etcd_keys::Encode(head));
  return true;
}

absl::Status HeadPublisher::Learn(const std::vector<v1::JournalHead>& heads) {
  etcdserverpb::TxnRequest reads;  // no compares: the ranges always run
  std::vector<std::string> jobs;
  for (const v1::JournalHead& head : heads) {
    if (known_.contains(head.job())) continue;
    reads.add_success()->mutable_request_range()->set_key(etcd_keys::Head(head.job(), node_));
    jobs.push_back(head.job());
  }
  if (jobs.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(etcdserverpb::TxnResponse response, etcd_->Txn(reads));
  for (size_t i = 0; i < jobs.size() && static_cast<int>(i) < response.responses_size(); ++i) {
    InEtcd now;
    const etcdserverpb::RangeResponse& range = response.responses(i).response_range();
    if (range.kvs_size() == 1) {
      ASSIGN_OR_RETURN(v1::JournalHead head,
                       etcd_keys::Decode<v1::JournalHead>(range.kvs(0).value(),
                                                          range.kvs(0).key()));
      now = {true, head.seq(), head.hash(), range.kvs(0).mod_revision()};
    }
    known_[jobs[i]] = std::move(now);
  }
  return absl::OkStatus();
}

absl::Status HeadPublisher::PublishOne(const v1::JournalHead& head) {
  const std::string key = etcd_keys::Head(head.job(), node_);
  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    RETURN_IF_ERROR(Learn({head}));
    InEtcd& now = known_[head.job()];
    etcdserverpb::TxnRequest txn;
    if (!AddMove(head, now, &txn)) return absl::OkStatus();
    ASSIGN_OR_RETURN(etcdserverpb::TxnResponse response, etcd_->Txn(txn));
    if (response.succeeded()) {
      now = {true, head.seq(), head.hash(), response.header().revision()};
      return absl::OkStatus();
    }
    known_.erase(head.job());  // changed behind our back: read it again
  }
  return absl::AbortedError(absl::StrCat("etcd key ", key, " kept changing while publishing"));
}

absl::Status HeadPublisher::PublishBatch(const std::vector<v1::JournalHead>& heads) {
  RETURN_IF_ERROR(Learn(heads));
  etcdserverpb::TxnRequest txn;
  std::vector<const v1::JournalHead*> moved;
  for (const v1::JournalHead& head : heads) {
    if (AddMove(head, known_[head.job()], &txn)) moved.push_back(&head);
  }
  if (moved.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(etcdserverpb::TxnResponse response, etcd_->Txn(txn));
  for (const v1::JournalHead* head : moved) {
    if (response.succeeded()) {
      known_[head->job()] = {true, head->seq(), head->hash(), response.header().revision()};
    } else {
      known_.erase(head->job());
    }
  }
  if (!response.succeeded()) {
    for (const v1::JournalHead* head : moved) RETURN_IF_ERROR(PublishOne(*head));
  }
  return absl::OkStatus();
}

void HeadPublisher::QueueUnpublished(const Journal* journal) {
  absl::StatusOr<std::vector<std::string>> jobs = journal->ListJobs();
  if (!jobs.ok()) {
    spdlog::error("cannot list journals to publish their heads: {}", jobs.status().ToString());
    return;
  }
  std::vector<v1::JournalHead> heads;
  for (const std::string& job : *jobs) {
    absl::StatusOr<v1::JournalHead> head = journal->Head(job);
    if (head.ok()) heads.push_back(*std::move(head));  // a damaged journal is verify's business
  }
  Publish(std::move(heads));
}

void HeadPublisher::Run(const Journal* journal) {
  QueueUnpublished(journal);
  absl::Duration retry = kFirstRetry;
  bool failing = false;
  while (true) {
    std::vector<v1::JournalHead> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !pending_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      for (auto& [job, head] : pending_) batch.push_back(std::move(head));
      pending_.clear();
      busy_ = true;
    }
    // One transaction per kBatchHeads heads; what could not be published is queued again.
    absl::Status unavailable;
    std::vector<v1::JournalHead> unpublished;
    for (size_t first = 0; first < batch.size(); first += kBatchHeads) {
      std::vector<v1::JournalHead> part(
          batch.begin() + first, batch.begin() + std::min(batch.size(), first + kBatchHeads));
      absl::Status status = unavailable.ok() ? PublishBatch(part) : unavailable;
      if (absl::IsUnavailable(status)) {
        unavailable = status;
        for (v1::JournalHead& head : part) unpublished.push_back(std::move(head));
      } else if (!status.ok()) {
        spdlog::warn("cannot publish journal heads: {}", status.ToString());
      }
    }
    absl::MutexLock lock(&mu_);
    busy_ = false;
    for (v1::JournalHead& head : unpublished) Enqueue(pending_, std::move(head));
    if (unavailable.ok()) {
      if (failing) spdlog::info("journal heads published to etcd again");
      failing = false;
      retry = kFirstRetry;
      // Heads of busy journals coalesce meanwhile: a bounded write rate to etcd per node.
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), kPublishInterval);
      continue;
    }
    if (!failing) {
      spdlog::warn("cannot publish {} journal heads, retrying: {}", pending_.size(),
                   std::string(unavailable.message()));
    }
    failing = true;
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), retry);
    retry = std::min(retry * 2, kMaxRetry);
  }
}

}  // namespace repro
