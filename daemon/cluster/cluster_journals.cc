#include "daemon/cluster/cluster_journals.h"

#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/names.h"
#include "common/signed_statements.h"
#include "common/status_macros.h"
#include "daemon/etcd/etcd_keys.h"
#include "daemon/store/chain.h"
#include "daemon/store/node_key.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr absl::Duration kDiscoverEvery = absl::Milliseconds(500);
constexpr absl::Duration kReconnectEvery = absl::Seconds(1);

void MarkBroken(v1::NodeJournalCheck* check, uint64_t seq, std::string problem) {
  check->set_intact(false);
  check->set_first_broken_seq(seq);
  check->set_problem(std::move(problem));
}

// Prefixes a peer's error with who answered it.
absl::Status PeerError(const grpc::Status& status, absl::string_view node,
                       absl::string_view address) {
  absl::Status error = FromGrpcStatus(status);
  return absl::Status(error.code(),
                      absl::StrCat("node ", node, " at ", address, ": ", error.message()));
}

}  // namespace

// The followers of one Replay with follow: their calls, to cancel them all at once.
struct ClusterJournals::FollowGroup {
  absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::set<grpc::ClientContext*> calls ABSL_GUARDED_BY(mu);

  // False when the group is stopping (do not start the call).
  bool Add(grpc::ClientContext* call) {
    absl::MutexLock lock(&mu);
    if (stopping) return false;
    calls.insert(call);
    return true;
  }
  void Remove(grpc::ClientContext* call) {
    absl::MutexLock lock(&mu);
    calls.erase(call);
  }
  // Waits `timeout`; true when the group is stopping.
  bool WaitForStop(absl::Duration timeout) {
    absl::MutexLock lock(&mu);
    return mu.AwaitWithTimeout(absl::Condition(&stopping), timeout);
  }
  void Stop() {
    absl::MutexLock lock(&mu);
    stopping = true;
    for (grpc::ClientContext* call : calls) call->TryCancel();
  }
};

std::vector<MirroredPrefix> ClusterJournals::MirroredPrefixes() {
  return {{std::string(etcd_keys::kNodes), &v1::NodeInfo::default_instance()}};
}

ClusterJournals::ClusterJournals(EtcdClient* etcd, EtcdMirror* mirror, Auditor* auditor,
                                 const Journal* journal, ClusterJournalsOptions options)
    : etcd_(etcd),
      mirror_(mirror),
      auditor_(auditor),
      journal_(journal),
      options_(std::move(options)) {}

std::optional<v1::NodeInfo> ClusterJournals::Registration(absl::string_view node) const {
  std::optional<MirrorRecord> registered = mirror_->Get(etcd_keys::Node(node));
  if (!registered.has_value()) return std::nullopt;
  return static_cast<const v1::NodeInfo&>(*registered->record);
}

absl::StatusOr<std::vector<ClusterJournals::Part>> ClusterJournals::Parts(
    absl::string_view job) const {
  // Heads change with every commit on every node, so they are read when needed rather than
  // mirrored by every node.
  etcdserverpb::RangeRequest heads;
  heads.set_key(etcd_keys::HeadsOf(job));
  heads.set_range_end(etcd_keys::PrefixEnd(heads.key()));
  absl::StatusOr<etcdserverpb::RangeResponse> published = etcd_->Range(heads);
  if (!published.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot find which nodes hold part of job ", job,
                                               ": ", published.status().message()));
  }
  std::map<std::string, Part> parts;
  parts[options_.node].node = options_.node;
  for (const mvccpb::KeyValue& kv : published->kvs()) {
    Part& part = parts[std::string(etcd_keys::LastPart(kv.key()))];
    part.node = std::string(etcd_keys::LastPart(kv.key()));
    ASSIGN_OR_RETURN(part.published, etcd_keys::Decode<v1::JournalHead>(kv.value(), kv.key()));
  }
  std::vector<Part> out;
  for (auto& [node, part] : parts) {
    part.registration = Registration(node);
    out.push_back(std::move(part));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<v1::Repro::Stub>> ClusterJournals::PeerStub(const Part& part) {
  if (!part.registration.has_value() || part.registration->advertise_addr().empty()) {
    return absl::UnavailableError(absl::StrCat(
        "node ", part.node, " is not registered in etcd: its reprod is stopped or cannot reach "
        "etcd"));
  }
  const std::string& address = part.registration->advertise_addr();
  absl::MutexLock lock(&mu_);
  std::shared_ptr<grpc::Channel>& channel = channels_[address];
  if (channel == nullptr) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);  // a restarted node is back quickly
    channel = grpc::CreateCustomChannel(
        address,
        options_.peer_credentials != nullptr ? options_.peer_credentials
                                             : grpc::InsecureChannelCredentials(),
        args);
  }
  return v1::Repro::NewStub(channel);
}

absl::Status ClusterJournals::ReplayRemote(const Part& part, const v1::ReplayRequest& request,
                                           const Emit& emit, absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::unique_ptr<v1::Repro::Stub> stub, PeerStub(part));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  auto reader = stub->Replay(&context, request);
  v1::ReplayResponse response;
  while (reader->Read(&response)) {
    if (!emit(response)) {
      context.TryCancel();
      reader->Finish();
      return absl::OkStatus();
    }
  }
  grpc::Status finished = reader->Finish();
  if (finished.ok()) return absl::OkStatus();
  return PeerError(finished, part.node, part.registration->advertise_addr());
}

absl::Status ClusterJournals::Replay(const v1::ReplayRequest& request, const Emit& emit,
                                     const LocalReplay& local,
                                     const std::function<bool()>& stopped) {
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  if (request.follow()) return Follow(request, emit, local, stopped);
  bool gone = false;
  Emit emit_until_gone = [&](const v1::ReplayResponse& response) {
    gone = gone || !emit(response);
    return !gone;
  };
  v1::ReplayRequest part_request = request;
  part_request.set_local_only(true);
  absl::Status local_missing;
  bool known = false;
  std::vector<std::string> unread;
  ASSIGN_OR_RETURN(std::vector<Part> parts, Parts(request.job()));
  for (const Part& part : parts) {
    if (gone) return absl::OkStatus();
    absl::Status status = part.node == options_.node
                              ? local(part_request, emit_until_gone)
                              : ReplayRemote(part, part_request, emit_until_gone,
                                             options_.peer_timeout);
    if (absl::IsNotFound(status) && part.node == options_.node) {
      local_missing = status;
      continue;
    }
    known = true;
    if (!status.ok()) unread.push_back(std::string(status.message()));
  }
  if (!known) return local_missing;
  if (!unread.empty()) {
    return absl::UnavailableError(absl::StrCat("the part of job ", request.job(), " on ",
                                               unread.size(), " node(s) could not be read: ",
                                               absl::StrJoin(unread, "; ")));
  }
  return absl::OkStatus();
}

void ClusterJournals::FollowRemote(const std::string& node, v1::ReplayRequest request,
                                   const Emit& emit, FollowGroup* group) {
  request.set_local_only(true);
  do {
    Part part;
    part.node = node;
    part.registration = Registration(node);
    absl::StatusOr<std::unique_ptr<v1::Repro::Stub>> stub = PeerStub(part);
    if (!stub.ok()) continue;
    grpc::ClientContext context;
    if (!group->Add(&context)) return;
    auto reader = (*stub)->Replay(&context, request);
    v1::ReplayResponse response;
    bool client_gone = false;
    while (!client_gone && reader->Read(&response)) {
      request.set_since_seq(response.entry().seq());
      client_gone = !emit(response);
    }
    if (client_gone) context.TryCancel();
    grpc::Status finished = reader->Finish();
    group->Remove(&context);
    if (client_gone) return;
    if (!finished.ok()) {
      spdlog::debug("following job {} on node {}: {}", request.job(), node,
                    finished.error_message());
    }
  } while (!group->WaitForStop(kReconnectEvery));
}

absl::Status ClusterJournals::Follow(const v1::ReplayRequest& request, const Emit& emit,
                                     const LocalReplay& local,
                                     const std::function<bool()>& stopped) {
  absl::Mutex emit_mu;
  bool gone = false;
  Emit shared_emit = [&](const v1::ReplayResponse& response) {
    absl::MutexLock lock(&emit_mu);
    gone = gone || !emit(response);
    return !gone;
  };
  auto client_gone = [&] {
    absl::MutexLock lock(&emit_mu);
    return gone;
  };
  FollowGroup group;
  std::map<std::string, std::thread> followers;
  absl::Status local_status;
  followers[options_.node] = std::thread([&] {
    v1::ReplayRequest local_request = request;
    local_request.set_local_only(true);
    local_status = local(local_request, shared_emit);
  });
  while (!stopped() && !client_gone()) {
    absl::StatusOr<std::vector<Part>> parts = Parts(request.job());
    for (const Part& part : parts.ok() ? *parts : std::vector<Part>()) {
      if (followers.count(part.node) == 0) {
        followers[part.node] = std::thread(
            [this, node = part.node, &request, &shared_emit, &group] {
              FollowRemote(node, request, shared_emit, &group);
            });
      }
    }
    absl::SleepFor(kDiscoverEvery);
  }
  group.Stop();
  for (auto& [node, thread] : followers) thread.join();
  return absl::IsNotFound(local_status) ? absl::OkStatus() : local_status;
}

absl::StatusOr<v1::VerifyJournalResponse> ClusterJournals::VerifyPart(
    const Part& part, const v1::VerifyJournalRequest& request) {
  v1::VerifyJournalRequest part_request = request;
  part_request.set_local_only(true);
  if (part.node == options_.node) return auditor_->Verify(part_request);
  ASSIGN_OR_RETURN(std::unique_ptr<v1::Repro::Stub> stub, PeerStub(part));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.peer_timeout));
  v1::VerifyJournalResponse response;
  grpc::Status status = stub->VerifyJournal(&context, part_request, &response);
  if (!status.ok()) return PeerError(status, part.node, part.registration->advertise_addr());
  if (response.nodes_size() != 1) {
    return absl::InternalError(absl::StrCat("node ", part.node, " answered for ",
                                            response.nodes_size(), " nodes, not its own part"));
  }
  return response;
}

absl::StatusOr<v1::HeadLogProofResponse> ClusterJournals::ProveTreeGrowth(
    const std::string& node, uint64_t old_size, uint64_t tree_size, absl::Duration timeout) {
  v1::HeadLogProofRequest request;
  request.set_old_tree_size(old_size);
  request.set_tree_size(tree_size);
  if (node == options_.node) return auditor_->ProveHead(request);
  const Part part{.node = node, .registration = Registration(node)};
  ASSIGN_OR_RETURN(std::unique_ptr<v1::Repro::Stub> stub, PeerStub(part));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::HeadLogProofResponse response;
  grpc::Status status = stub->GetHeadLogProof(&context, request, &response);
  if (!status.ok()) return PeerError(status, node, part.registration->advertise_addr());
  return response;
}

absl::StatusOr<std::string> ClusterJournals::HashAt(const Part& part, absl::string_view job,
                                                    uint64_t seq) {
  if (part.node == options_.node) {
    ASSIGN_OR_RETURN(std::vector<StoredEntry> entries, journal_->Read(job, seq - 1, 1));
    if (entries.empty() || entries[0].seq != seq) {
      return absl::NotFoundError(absl::StrCat("entry ", seq, " is missing"));
    }
    return entries[0].hash;
  }
  v1::ReplayRequest request;
  request.set_job(std::string(job));
  request.set_since_seq(seq - 1);
  request.set_local_only(true);
  std::optional<v1::ReplayResponse> first;
  RETURN_IF_ERROR(ReplayRemote(
      part, request,
      [&first](const v1::ReplayResponse& response) {
        first = response;
        return false;  // one is enough
      },
      options_.peer_timeout));
  if (!first.has_value() || first->entry().seq() != seq) {
    return absl::NotFoundError(absl::StrCat("entry ", seq, " is missing"));
  }
  return first->hash();
}

void ClusterJournals::CrossCheck(const Part& part, absl::string_view job,
                                 v1::NodeJournalCheck* check) {
  const std::string& key = part.node == options_.node ? journal_->public_key()
                           : part.registration.has_value() ? part.registration->public_key()
                                                           : check->head().public_key();
  const v1::JournalHead& head = check->head();
  if (head.public_key() != key ||
      !NodeKey::Verify(key, HeadSigningBytes(part.node, job, head.seq(), head.hash()),
                       head.signature())) {
    MarkBroken(check, head.seq(),
               "its head is not signed with the key the node published in etcd");
    return;
  }
  if (!part.published.has_value()) return;  // not published yet (etcd was unreachable)
  const v1::JournalHead& published = *part.published;
  // Published before a rotation, it may be signed by an older key that the node's own rotation
  // statements lead from to its key.
  const std::string& signer = published.public_key().empty() ? key : published.public_key();
  const std::vector<v1::KeyRotation> rotations(check->rotations().begin(),
                                               check->rotations().end());
  if (!KeysRotatedTo(part.node, {signer}, rotations).count(key) ||
      !NodeKey::Verify(signer,
                       HeadSigningBytes(part.node, job, published.seq(), published.hash()),
                       published.signature())) {
    MarkBroken(check, published.seq(),
               absl::StrCat("the head it published in etcd (entry ", published.seq(),
                            ") is not signed with its key: its journal or key was replaced"));
    return;
  }
  if (check->entries() < published.seq()) {
    MarkBroken(check, check->entries() + 1,
               absl::StrCat("it holds ", check->entries(), " entries but published its head at "
                            "entry ", published.seq(), " in etcd: entries were dropped"));
    return;
  }
  absl::StatusOr<std::string> hash = HashAt(part, job, published.seq());
  if (!hash.ok()) {
    MarkBroken(check, published.seq(),
               absl::StrCat("cannot read entry ", published.seq(), " to compare it with the head "
                            "published in etcd: ", hash.status().message()));
  } else if (*hash != published.hash()) {
    MarkBroken(check, published.seq(),
               absl::StrCat("entry ", published.seq(), " differs from the head published in "
                            "etcd: the journal was rewritten"));
  }
}

absl::StatusOr<v1::VerifyJournalResponse> ClusterJournals::Verify(
    const v1::VerifyJournalRequest& request) {
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  v1::VerifyJournalResponse response;
  response.set_intact(true);
  ASSIGN_OR_RETURN(std::vector<Part> parts, Parts(request.job()));
  for (const Part& part : parts) {
    absl::StatusOr<v1::VerifyJournalResponse> verdict = VerifyPart(part, request);
    v1::NodeJournalCheck check;
    check.set_node(part.node);
    if (absl::IsNotFound(verdict.status()) && !part.published.has_value()) {
      continue;  // this node never held a part
    }
    if (absl::IsNotFound(verdict.status())) {
      MarkBroken(&check, 1,
                 absl::StrCat("it published its head at entry ", part.published->seq(),
                              " in etcd but holds no journal of the job: its part was deleted"));
      *check.mutable_head() = *part.published;
    } else if (!verdict.ok()) {
      MarkBroken(&check, 0, absl::StrCat("not verified: ", verdict.status().message()));
      if (part.published.has_value()) *check.mutable_head() = *part.published;
    } else {
      check = verdict->nodes(0);
      if (check.intact()) CrossCheck(part, request.job(), &check);
      const std::string fork = options_.fork_of ? options_.fork_of(part.node) : "";
      if (check.intact() && !fork.empty()) {
        MarkBroken(&check, 0, absl::StrCat("its head log shows two histories (a fork): ", fork));
      }
      response.set_rehashed(response.rehashed() || verdict->rehashed());
      response.set_files_rehashed(response.files_rehashed() + verdict->files_rehashed());
      for (v1::Drift& drift : *verdict->mutable_drift()) {
        if (part.node != options_.node) {
          drift.set_problem(absl::StrCat(drift.problem(), " (on node ", part.node, ")"));
        }
        *response.add_drift() = std::move(drift);
      }
    }
    response.set_intact(response.intact() && check.intact());
    *response.add_nodes() = std::move(check);
  }
  if (response.nodes_size() == 0) {
    return absl::NotFoundError(absl::StrCat("job ", request.job(),
                                            " has no journal on any node of the cluster"));
  }
  return response;
}

}  // namespace repro
