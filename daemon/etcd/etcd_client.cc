#include "daemon/etcd/etcd_client.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"

namespace repro {
namespace {

constexpr absl::Duration kFirstPassBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxPassBackoff = absl::Milliseconds(500);

// "host:port" from an etcd client URL. `tls`: whether --etcd_tls_ca is given.
absl::StatusOr<std::string> ParseEndpoint(absl::string_view endpoint, bool tls) {
  absl::string_view address = endpoint;
  if (absl::ConsumePrefix(&address, "https://") && !tls) {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd endpoint ", endpoint, ": TLS to etcd needs --etcd_tls_ca"));
  }
  absl::ConsumePrefix(&address, "http://");
  absl::ConsumeSuffix(&address, "/");
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd endpoint \"", endpoint, "\" is not host:port (e.g. 10.0.0.1:2379)"));
  }
  return std::string(address);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  // Reconnect quickly when a member comes back (gRPC's default backoff grows to 2 minutes).
  // (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at its default: despite its name it is the least
  // time a connection attempt is given, 20 s, and a short one fails attempts that are slow to be
  // polled, see ReconnectIfFailed.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Notice a dead peer on a quiet watch stream. etcd refuses pings more often than every 5 s
  // and pings without an open call.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 * 1024 * 1024);
  // Each endpoint has its own connection, so failing over really changes the member.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, std::move(credentials), args);
}

// gRPC keeps a channel whose connection failed in TRANSIENT_FAILURE until it has connected
// again, and a call without wait-for-ready fails on it at once, without driving that
// reconnection: only a thread waiting on some gRPC work polls the sockets (in a process without
// a gRPC server, gRPC's backup poller every 5 s). A reconnection takes several polls (TCP, then
// etcd's HTTP/2 settings), so a client could fail for tens of seconds after its member came
// back. This asks for a new attempt at once and waits for it, polling, until `deadline`.
void ReconnectIfFailed(grpc::Channel& channel, absl::Time deadline) {
  if (channel.GetState(/*try_to_connect=*/true) != GRPC_CHANNEL_TRANSIENT_FAILURE) return;
  grpc::experimental::ChannelResetConnectionBackoff(&channel);
  channel.WaitForConnected(absl::ToChronoTime(deadline));
}

std::string DescribeError(const grpc::Status& status) {
  return status.error_message().empty() ? absl::StrCat("gRPC code ", status.error_code())
                                        : status.error_message();
}

}  // namespace

bool IsEtcdRetryable(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return true;
    default:
      // A member that lost its leader or is shutting down.
      return absl::StrContains(status.error_message(), "etcdserver: no leader") ||
             absl::StrContains(status.error_message(), "etcdserver: leader changed") ||
             absl::StrContains(status.error_message(), "etcdserver: request timed out");
  }
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdClientOptions options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("cluster mode needs at least one etcd endpoint");
  }
  std::vector<std::string> addresses;
  for (const std::string& endpoint : options.endpoints) {
    absl::StatusOr<std::string> address = ParseEndpoint(endpoint, options.security.tls());
    if (!address.ok()) return address.status();
    addresses.push_back(*std::move(address));
  }
  absl::StatusOr<std::shared_ptr<EtcdTokenSource>> tokens =
      EtcdTokenSource::Create(options.security);
  if (!tokens.ok()) return tokens.status();
  for (const std::string& address : addresses) {  // reject unreadable TLS files now
    absl::Status credentials = EtcdChannelCredentials(options.security, *tokens, address).status();
    if (!credentials.ok()) return credentials;
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(std::move(options), std::move(addresses), *std::move(tokens)));
}

EtcdClient::EtcdClient(EtcdClientOptions options, std::vector<std::string> addresses,
                       std::shared_ptr<EtcdTokenSource> tokens)
    : options_(std::move(options)), addresses_(std::move(addresses)), tokens_(std::move(tokens)) {
  for (const std::string& address : addresses_) {
    Channel channel;
    channel.address = address;
    channel.channel =
        MakeChannel(address, *EtcdChannelCredentials(options_.security, tokens_, address));
    channel.kv = etcdserverpb::KV::NewStub(channel.channel);
    channel.lease = etcdserverpb::Lease::NewStub(channel.channel);
    channels_.push_back(std::move(channel));
  }
}

std::string EtcdClient::Describe() const { return absl::StrJoin(addresses_, ","); }

absl::Status EtcdClient::CheckLogin() {
  if (tokens_ == nullptr) return absl::OkStatus();
  for (const std::string& address : addresses_) {
    absl::StatusOr<std::string> token = tokens_->Token(address);
    if (token.ok()) return absl::OkStatus();
    if (absl::IsUnavailable(token.status()) || absl::IsDeadlineExceeded(token.status())) {
      continue;  // this member is down: ask the next
    }
    return absl::UnauthenticatedError(
        absl::StrCat(token.status().message(), " (check --etcd_user=", options_.security.user,
                     " and --etcd_password_file=", options_.security.password_file,
                     ", and that etcd's authentication is on)"));
  }
  return absl::OkStatus();
}

EtcdClient::Endpoint EtcdClient::PreferredEndpoint() const {
  absl::MutexLock lock(&mu_);
  const Channel& channel = channels_[preferred_];
  return {preferred_, channel.address, channel.channel};
}

void EtcdClient::StreamFailed(size_t index, const std::string& error) {
  absl::MutexLock lock(&mu_);
  if (preferred_ == index) preferred_ = (index + 1) % channels_.size();
}

absl::Status EtcdClient::CallWithFailover(absl::string_view what, const Attempt& attempt) {
  const absl::Time deadline = absl::Now() + options_.call_timeout;
  size_t start;
  {
    absl::MutexLock lock(&mu_);
    start = preferred_;
  }
  std::vector<std::string> errors(channels_.size());
  absl::Duration backoff = kFirstPassBackoff;
  while (true) {
    bool member_answered = false;  // worth another pass: a member is up but could not serve
    for (size_t k = 0; k < channels_.size(); ++k) {
      const size_t i = (start + k) % channels_.size();
      const absl::Time now = absl::Now();
      if (now >= deadline) break;
      ReconnectIfFailed(*channels_[i].channel, std::min(deadline, now + options_.reconnect_wait));
      grpc::ClientContext context;
      context.set_deadline(
          absl::ToChronoTime(std::min(deadline, absl::Now() + options_.attempt_timeout)));
      grpc::Status status = attempt(channels_[i], &context);
      if (status.ok()) {
        absl::MutexLock lock(&mu_);
        preferred_ = i;
        return absl::OkStatus();
      }
      if (tokens_ != nullptr && IsEtcdTokenRefused(status)) {
        tokens_->Forget();  // expired: the retry authenticates again
        member_answered = true;
        errors[i] = DescribeError(status);
        continue;
      }
      if (!IsEtcdRetryable(status)) {
        absl::Status error = FromGrpcStatus(status);
        return absl::Status(error.code(), absl::StrCat("etcd ", what, " at ", channels_[i].address,
                                                       ": ", error.message()));
      }
      errors[i] = DescribeError(status);
      member_answered = member_answered ||
                        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                        absl::StrContains(status.error_message(), "etcdserver:");
    }
    if (!member_answered || absl::Now() + backoff >= deadline) break;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, kMaxPassBackoff);
  }
  std::vector<std::string> parts;
  for (size_t i = 0; i < channels_.size(); ++i) {
    parts.push_back(absl::StrCat(channels_[i].address, " (",
                                 errors[i].empty() ? "not tried: out of time" : errors[i], ")"));
  }
  return absl::UnavailableError(absl::StrCat("etcd is unreachable for ", what, ": ",
                                             absl::StrJoin(parts, "; ")));
}

template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> EtcdClient::Unary(
    absl::string_view what, std::unique_ptr<Stub> Channel::*stub,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  Response response;
  absl::Status status = CallWithFailover(what, [&](Channel& c, grpc::ClientContext* context) {
    return ((*(c.*stub)).*method)(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::Range(
    const etcdserverpb::RangeRequest& request) {
  return Unary("range", &Channel::kv, &etcdserverpb::KV::Stub::Range, request);
}

absl::StatusOr<etcdserverpb::PutResponse> EtcdClient::Put(const etcdserverpb::PutRequest& request) {
  return Unary("put", &Channel::kv, &etcdserverpb::KV::Stub::Put, request);
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> EtcdClient::DeleteRange(
    const etcdserverpb::DeleteRangeRequest& request) {
  return Unary("delete", &Channel::kv, &etcdserverpb::KV::Stub::DeleteRange, request);
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::Txn(const etcdserverpb::TxnRequest& request) {
  return Unary("txn", &Channel::kv, &etcdserverpb::KV::Stub::Txn, request);
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> EtcdClient::LeaseGrant(
    const etcdserverpb::LeaseGrantRequest& request) {
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> response =
      Unary("lease grant", &Channel::lease, &etcdserverpb::Lease::Stub::LeaseGrant, request);
  if (response.ok() && !response->error().empty()) {
    return absl::UnavailableError(absl::StrCat("etcd lease grant: ", response->error()));
  }
  return response;
}

absl::StatusOr<etcdserverpb::LeaseRevokeResponse> EtcdClient::LeaseRevoke(
    const etcdserverpb::LeaseRevokeRequest& request) {
  return Unary("lease revoke", &Channel::lease, &etcdserverpb::Lease::Stub::LeaseRevoke, request);
}

void CompareAbsent(absl::string_view key, etcdserverpb::TxnRequest* txn) {
  etcdserverpb::Compare* absent = txn->add_compare();
  absent->set_key(std::string(key));
  absent->set_target(etcdserverpb::Compare::CREATE);
  absent->set_result(etcdserverpb::Compare::EQUAL);
  absent->set_create_revision(0);
}

void CompareUnchanged(absl::string_view key, int64_t mod_revision, etcdserverpb::TxnRequest* txn) {
  etcdserverpb::Compare* unchanged = txn->add_compare();
  unchanged->set_key(std::string(key));
  unchanged->set_target(etcdserverpb::Compare::MOD);
  unchanged->set_result(etcdserverpb::Compare::EQUAL);
  unchanged->set_mod_revision(mod_revision);
}

}  // namespace repro
