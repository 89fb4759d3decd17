#include "daemon/etcd/etcd_mirror.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/etcd/etcd_keys.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr absl::Duration kFirstRetry = absl::Milliseconds(100);
constexpr absl::Duration kMaxRetry = absl::Seconds(1);
constexpr absl::Duration kProbeInterval = absl::Seconds(1);

}  // namespace

EtcdMirror::EtcdMirror(EtcdClient* etcd, std::vector<MirroredPrefix> prefixes)
    : etcd_(etcd), prefixes_(std::move(prefixes)), not_current_since_(absl::Now()) {}

EtcdMirror::~EtcdMirror() { Stop(); }

void EtcdMirror::Start() { thread_ = std::thread([this] { Run(); }); }

void EtcdMirror::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (watch_context_ != nullptr) watch_context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool EtcdMirror::WaitUntilCurrent(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&current_), timeout);
}

bool EtcdMirror::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

std::optional<MirrorRecord> EtcdMirror::Get(absl::string_view key) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = records_.find(key);
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, MirrorRecord>> EtcdMirror::List(
    absl::string_view prefix) const {
  std::vector<std::pair<std::string, MirrorRecord>> out;
  absl::ReaderMutexLock lock(&mu_);
  for (auto it = records_.lower_bound(prefix);
       it != records_.end() && absl::StartsWith(it->first, prefix); ++it) {
    out.emplace_back(it->first, it->second);
  }
  return out;
}

void EtcdMirror::Learn(const std::string& key,
                       std::shared_ptr<const google::protobuf::Message> record,
                       int64_t mod_revision) {
  absl::MutexLock lock(&mu_);
  Apply(key, std::move(record), mod_revision);
}

void EtcdMirror::Apply(const std::string& key,
                       std::shared_ptr<const google::protobuf::Message> record,
                       int64_t mod_revision) {
  auto it = records_.find(key);
  if (it != records_.end() && it->second.mod_revision > mod_revision) return;
  if (record == nullptr) {
    if (it != records_.end()) records_.erase(it);
    return;
  }
  records_[key] = MirrorRecord{std::move(record), mod_revision};
}

std::shared_ptr<const google::protobuf::Message> EtcdMirror::Decode(
    absl::string_view key, absl::string_view value) const {
  for (const MirroredPrefix& prefix : prefixes_) {
    if (!absl::StartsWith(key, prefix.prefix)) continue;
    std::shared_ptr<google::protobuf::Message> record(prefix.prototype->New());
    absl::Status status = etcd_keys::DecodeInto(value, key, record.get());
    if (!status.ok()) {
      spdlog::warn("ignoring etcd key {}: {}", std::string(key), status.ToString());
      return nullptr;
    }
    return record;
  }
  return nullptr;
}

absl::Status EtcdMirror::CheckAvailable() const {
  absl::Time not_current_since;
  {
    absl::MutexLock lock(&mu_);
    if (current_) return absl::OkStatus();
    not_current_since = not_current_since_;
  }
  // One probe at a time; callers arriving meanwhile wait for it and share its answer.
  absl::MutexLock lock(&probe_mu_);
  if (absl::Now() - probed_at_ < kProbeInterval) return probe_result_;
  etcdserverpb::RangeRequest probe;
  probe.set_key(std::string(etcd_keys::kRoot));
  probe.set_count_only(true);
  absl::Status status = etcd_->Range(probe).status();
  probed_at_ = absl::Now();
  probe_result_ =
      status.ok() ? absl::OkStatus()
                  : absl::UnavailableError(absl::StrCat(
                        "the cluster store is unreachable since ",
                        absl::FormatTime("%H:%M:%S", not_current_since, absl::LocalTimeZone()),
                        ": ", status.message()));
  return probe_result_;
}

std::string EtcdMirror::StatusText() const {
  absl::MutexLock lock(&mu_);
  if (current_) return absl::StrCat("watching etcd at ", watching_, " (revision ", revision_, ")");
  return absl::StrCat("not in sync with etcd (", etcd_->Describe(), ") since ",
                      absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", not_current_since_,
                                       absl::LocalTimeZone()),
                      ": ", last_error_);
}

absl::Status EtcdMirror::Relist(int64_t* revision) {
  std::map<std::string, MirrorRecord, std::less<>> fresh;
  int64_t at = 0;
  for (const MirroredPrefix& prefix : prefixes_) {
    etcdserverpb::RangeRequest range;
    range.set_key(prefix.prefix);
    range.set_range_end(etcd_keys::PrefixEnd(prefix.prefix));
    range.set_revision(at);  // the first listing picks the revision, the others use it
    absl::StatusOr<etcdserverpb::RangeResponse> listed = etcd_->Range(range);
    if (!listed.ok()) return listed.status();
    if (at == 0) at = listed->header().revision();
    for (const mvccpb::KeyValue& kv : listed->kvs()) {
      std::shared_ptr<const google::protobuf::Message> record = Decode(kv.key(), kv.value());
      if (record != nullptr) fresh[kv.key()] = MirrorRecord{std::move(record), kv.mod_revision()};
    }
  }
  absl::MutexLock lock(&mu_);
  // Keep what this node learned after the listing's revision.
  for (auto& [key, record] : records_) {
    if (record.mod_revision > at) fresh[key] = record;
  }
  records_ = std::move(fresh);
  revision_ = std::max(revision_, at);
  *revision = at;
  return absl::OkStatus();
}

absl::Status EtcdMirror::SyncAndWatch() {
  int64_t revision = 0;
  absl::Status listed = Relist(&revision);
  if (!listed.ok()) return listed;

  EtcdClient::Endpoint endpoint = etcd_->PreferredEndpoint();
  grpc::ClientContext context;
  context.AddMetadata("hasleader", "true");  // etcd ends the stream if the member loses quorum
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("stopping");
    watch_context_ = &context;
  }
  auto stream = etcdserverpb::Watch::NewStub(endpoint.channel)->Watch(&context);
  for (const MirroredPrefix& prefix : prefixes_) {
    etcdserverpb::WatchRequest request;
    etcdserverpb::WatchCreateRequest* create = request.mutable_create_request();
    create->set_key(prefix.prefix);
    create->set_range_end(etcd_keys::PrefixEnd(prefix.prefix));
    create->set_start_revision(revision + 1);
    create->set_progress_notify(true);
    if (!stream->Write(request)) break;
  }

  size_t created = 0;
  std::string ended = "the stream closed";
  etcdserverpb::WatchResponse response;
  while (stream->Read(&response)) {
    if (response.canceled() || response.compact_revision() != 0) {
      ended = response.compact_revision() != 0
                  ? absl::StrCat("history was compacted at revision ", response.compact_revision())
                  : absl::StrCat("the watch was canceled: ", response.cancel_reason());
      context.TryCancel();
      break;
    }
    std::vector<std::shared_ptr<const google::protobuf::Message>> decoded;  // null: deleted
    for (const mvccpb::Event& event : response.events()) {
      decoded.push_back(event.type() == mvccpb::Event::PUT
                            ? Decode(event.kv().key(), event.kv().value())
                            : nullptr);
    }
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < response.events_size(); ++i) {
      Apply(response.events(i).kv().key(), std::move(decoded[i]),
            response.events(i).kv().mod_revision());
    }
    revision_ = std::max(revision_, response.header().revision());
    if (response.created() && ++created == prefixes_.size()) {
      current_ = true;
      watching_ = endpoint.address;
      spdlog::info("cluster store: watching etcd at {} from revision {}", endpoint.address,
                   revision + 1);
    }
  }
  grpc::Status finished = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    watch_context_ = nullptr;
    if (stopping_) return absl::CancelledError("stopping");
  }
  if (!finished.ok()) ended = finished.error_message();
  etcd_->StreamFailed(endpoint.index, ended);
  return absl::UnavailableError(absl::StrCat("watch on ", endpoint.address, " ended: ", ended));
}

void EtcdMirror::Run() {
  absl::Duration retry = kFirstRetry;
  while (true) {
    absl::Status ended = SyncAndWatch();
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (current_) {
      current_ = false;
      not_current_since_ = absl::Now();
      retry = kFirstRetry;
      spdlog::warn("cluster store: {}; catching up", std::string(ended.message()));
    }
    last_error_ = std::string(ended.message());
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), retry);
    if (stopping_) return;
    retry = std::min(retry * 2, kMaxRetry);
  }
}

}  // namespace repro
