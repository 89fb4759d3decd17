#include "daemon/cluster/node_presence.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "daemon/etcd/etcd_keys.h"
#include "spdlog/spdlog.h"

namespace repro {

NodePresence::NodePresence(EtcdClient* etcd, v1::NodeInfo record, absl::Duration ttl)
    : etcd_(etcd), record_(std::move(record)), ttl_(ttl) {}

NodePresence::~NodePresence() { Stop(); }

absl::Status NodePresence::Register() {
  const std::string key = etcd_keys::Node(record_.node());
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(ttl_)));
  ASSIGN_OR_RETURN(etcdserverpb::LeaseGrantResponse lease, etcd_->LeaseGrant(grant));

  // Claim the name unless a node with another key holds it; our own earlier registration (a
  // restart within the TTL) is simply replaced.
  etcdserverpb::TxnRequest txn;
  CompareAbsent(key, &txn);
  etcdserverpb::PutRequest put;
  put.set_key(key);
  put.set_value(etcd_keys::Encode(record_));
  put.set_lease(lease.id());
  *txn.add_success()->mutable_request_put() = put;
  txn.add_failure()->mutable_request_range()->set_key(key);
  ASSIGN_OR_RETURN(etcdserverpb::TxnResponse claimed, etcd_->Txn(txn));
  if (!claimed.succeeded() && claimed.responses_size() == 1 &&
      claimed.responses(0).response_range().kvs_size() == 1) {
    absl::StatusOr<v1::NodeInfo> holder = etcd_keys::Decode<v1::NodeInfo>(
        claimed.responses(0).response_range().kvs(0).value(), key);
    if (holder.ok() && holder->public_key() != record_.public_key()) {
      etcdserverpb::LeaseRevokeRequest revoke;
      revoke.set_id(lease.id());
      etcd_->LeaseRevoke(revoke).IgnoreError();
      return absl::FailedPreconditionError(absl::StrCat(
          "node name ", record_.node(), " is in use by another reprod (at ",
          holder->advertise_addr(), ", with another node key); give this node its own "
          "--node_name, or wait up to ", absl::FormatDuration(ttl_),
          " if that reprod has just stopped"));
    }
    RETURN_IF_ERROR(etcd_->Put(put).status());
  }
  absl::MutexLock lock(&mu_);
  lease_ = lease.id();
  return absl::OkStatus();
}

absl::StatusOr<int64_t> NodePresence::KeepAliveOnce(int64_t lease) {
  EtcdClient::Endpoint endpoint = etcd_->PreferredEndpoint();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + etcd_->options().attempt_timeout));
  auto stream = etcdserverpb::Lease::NewStub(endpoint.channel)->LeaseKeepAlive(&context);
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseKeepAliveResponse response;
  bool answered = stream->Write(request) && stream->Read(&response);
  stream->WritesDone();
  context.TryCancel();
  grpc::Status finished = stream->Finish();
  if (!answered) {
    std::string error = finished.ok() ? "no answer" : finished.error_message();
    etcd_->StreamFailed(endpoint.index, error);
    return absl::UnavailableError(
        absl::StrCat("lease keep-alive at ", endpoint.address, ": ", error));
  }
  return response.ttl();
}

void NodePresence::Start() { thread_ = std::thread([this] { Run(); }); }

void NodePresence::Run() {
  const absl::Duration interval = ttl_ / 3;
  absl::Time last_renewed = absl::Now();
  while (true) {
    int64_t lease;
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) return;
      lease = lease_;
    }
    absl::Status status;
    if (lease == 0 || absl::Now() - last_renewed > ttl_) {
      status = Register();  // never registered, or the lease has surely expired meanwhile
    } else {
      absl::StatusOr<int64_t> remaining = KeepAliveOnce(lease);
      status = remaining.status();
      if (status.ok() && *remaining <= 0) status = Register();
    }
    if (status.ok()) {
      if (absl::Now() - last_renewed > interval * 2) {
        spdlog::info("node {} is registered in etcd again", record_.node());
      }
      last_renewed = absl::Now();
    } else if (absl::IsUnavailable(status)) {
      spdlog::debug("node registration: {}", status.ToString());
    } else {
      spdlog::warn("node registration: {}", status.ToString());
    }
  }
}

void NodePresence::Stop() {
  int64_t lease;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    lease = lease_;
  }
  if (thread_.joinable()) thread_.join();
  if (lease != 0) {
    etcdserverpb::LeaseRevokeRequest revoke;
    revoke.set_id(lease);
    etcd_->LeaseRevoke(revoke).IgnoreError();
  }
}

}  // namespace repro
