#include "daemon/service/repro_service.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "client/cli/provenance.h"
#include "common/grpc_status.h"
#include "common/names.h"
#include "common/status_macros.h"
#include "daemon/service/record_stream.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr size_t kReplayPageSize = 1024;
constexpr absl::Duration kFollowPoll = absl::Seconds(1);

// Stores the value of `result` into *out and returns the converted status: the shape of every
// unary method.
template <typename T, typename Out>
grpc::Status Answer(absl::StatusOr<T> result, Out* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

template <typename T>
grpc::Status Answer(absl::StatusOr<std::vector<T>> result,
                    google::protobuf::RepeatedPtrField<T>* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (T& item : *result) *out->Add() = std::move(item);
  return grpc::Status::OK;
}

}  // namespace

namespace {

// One of the places of a capped kind of streaming call (ReproServiceParts::max_streams,
// max_register_streams), held for the life of the call.
class StreamSlot {
 public:
  StreamSlot(std::atomic<int>* open, int max, Gauge* gauge) : open_(open), gauge_(gauge) {
    const int before = open_->fetch_add(1);  // counted even without a cap (max <= 0)
    held_ = max <= 0 || before < max;
    if (!held_) {
      open_->fetch_sub(1);
    } else {
      gauge_->Add(1);
    }
  }
  ~StreamSlot() {
    if (!held_) return;
    open_->fetch_sub(1);
    gauge_->Add(-1);
  }
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;
  bool held() const { return held_; }

 private:
  std::atomic<int>* const open_;
  Gauge* const gauge_;
  bool held_ = false;
};

}  // namespace

ReproService::ReproService(ReproServiceParts parts)
    : parts_(std::move(parts)),
      attester_([this](const std::string& job) { return CollectProvenance(job); }, parts_.node_key,
                parts_.fs, parts_.journal == nullptr ? "" : parts_.journal->node()) {
  Metrics* metrics = parts_.metrics != nullptr ? parts_.metrics : &own_metrics_;
  streams_open_ =
      metrics->GetGauge("repro_grpc_streams", "Following Replay streams open (journal --follow).");
  streams_refused_ =
      metrics->GetCounter("repro_grpc_streams_refused_total",
                          "Following Replay streams refused: --max_streams were open.");
  register_streams_open_ =
      metrics->GetGauge("repro_grpc_register_streams", "RegisterVersion calls running.");
  register_streams_refused_ = metrics->GetCounter(
      "repro_grpc_register_streams_refused_total",
      "RegisterVersion calls refused: --max_register_streams were running.");
}

absl::Status ReproService::AuthorizeJobWrite(absl::string_view action, const Identity& caller,
                                             absl::string_view job) {
  absl::StatusOr<v1::Pin> pin = parts_.pins->Get(job);
  if (absl::IsNotFound(pin.status())) return parts_.auth->CheckAuthenticated(action, caller);
  RETURN_IF_ERROR(pin.status());
  return parts_.auth->CheckJobWrite(action, caller, job, pin->owner());
}

absl::Status ReproService::AuthorizeJobRead(absl::string_view action,
                                            grpc::ServerContext* context, absl::string_view job) {
  RETURN_IF_ERROR(ValidateJobId(job));
  Identity caller = parts_.identities->Of(*context);
  absl::StatusOr<v1::Pin> pin = parts_.pins->Get(job);
  if (absl::IsNotFound(pin.status())) {
    if (parts_.auth->RoleOf(caller) != Role::kUser) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat("job ", job, " has no pin"));
  }
  RETURN_IF_ERROR(pin.status());
  return parts_.auth->CheckJobRead(action, caller, job, pin->owner());
}

grpc::Status ReproService::RegisterVersion(
    grpc::ServerContext* context, const v1::RegisterVersionRequest* request,
    grpc::ServerWriter<v1::RegisterVersionResponse>* writer) {
  absl::Status allowed = parts_.auth->CheckRegister("RegisterVersion",
                                                    parts_.identities->Of(*context),
                                                    request->path());
  if (!allowed.ok() && !absl::IsNotFound(allowed)) return ToGrpcStatus(allowed);
  StreamSlot slot(&open_register_streams_, parts_.max_register_streams, register_streams_open_);
  if (!slot.held()) {
    register_streams_refused_->Increment();
    return ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
        parts_.max_register_streams, " RegisterVersion calls are running on node ",
        parts_.journal->node(), " (--max_register_streams); retry once one has finished")));
  }
  RegisterCallbacks callbacks;
  callbacks.progress = [writer](const v1::RegisterProgress& progress) {
    v1::RegisterVersionResponse response;
    *response.mutable_progress() = progress;
    writer->Write(response);
  };
  callbacks.cancelled = [this, context] { return context->IsCancelled() || shutting_down_; };
  absl::StatusOr<v1::RegisterResult> result = parts_.versions->Register(*request, callbacks);
  if (!result.ok()) {
    spdlog::info("register {}@{} from {}: {}", request->dataset(), request->version(),
                 request->path(), result.status().ToString());
    return ToGrpcStatus(result.status());
  }
  spdlog::info("registered {}@{} ({} files, {} hashed, {} cached, {:.2f}s){}", request->dataset(),
               request->version(), result->version().file_count(), result->files_hashed(),
               result->files_cached(), result->seconds(), result->created() ? "" : " (unchanged)");
  v1::RegisterVersionResponse response;
  *response.mutable_result() = *std::move(result);
  writer->Write(response);
  return grpc::Status::OK;
}

grpc::Status ReproService::GetVersion(grpc::ServerContext*, const v1::GetVersionRequest* request,
                                      v1::GetVersionResponse* response) {
  grpc::Status status = Answer(parts_.versions->Get(request->ref().dataset(), request->ref().version()),
                               response->mutable_version());
  if (!status.ok() || !request->include_files()) return status;
  return Answer(parts_.versions->GetManifest(request->ref().dataset(), request->ref().version()),
                response->mutable_manifest());
}

grpc::Status ReproService::ListVersions(grpc::ServerContext*,
                                        const v1::ListVersionsRequest* request,
                                        v1::ListVersionsResponse* response) {
  return Answer(parts_.versions->List(request->dataset()), response->mutable_versions());
}

grpc::Status ReproService::Pin(grpc::ServerContext* context, const v1::PinRequest* request,
                               v1::PinResponse* response) {
  Identity caller = parts_.identities->Of(*context);
  absl::Status allowed = AuthorizeJobWrite("Pin", caller, request->job());
  std::string owner = caller.Owner();
  if (allowed.ok() && !request->owner().empty()) {  // on behalf of another identity
    allowed = ValidateOwner(request->owner());
    if (allowed.ok()) allowed = parts_.auth->CheckAdmin("Pin", caller);
    owner = request->owner();
  }
  if (!allowed.ok()) return ToGrpcStatus(allowed);
  absl::StatusOr<v1::PinResponse> result = parts_.pins->Pin(*request, owner);
  if (result.ok() && !result->created()) {  // another caller may have pinned it meanwhile
    allowed = parts_.auth->CheckJobWrite("Pin", caller, request->job(), result->pin().owner());
    if (!allowed.ok()) return ToGrpcStatus(allowed);
  }
  if (result.ok() && result->created()) {
    spdlog::info("pinned {} to {}", request->job(), DescribePin(result->pin()));
  }
  return Answer(std::move(result), response);
}

grpc::Status ReproService::GetPin(grpc::ServerContext*, const v1::GetPinRequest* request,
                                  v1::GetPinResponse* response) {
  return Answer(parts_.pins->Get(request->job()), response->mutable_pin());
}

grpc::Status ReproService::ListPins(grpc::ServerContext*, const v1::ListPinsRequest*,
                                    v1::ListPinsResponse* response) {
  return Answer(parts_.pins->List(), response->mutable_pins());
}

grpc::Status ReproService::Admit(grpc::ServerContext*, const v1::AdmitRequest* request,
                                 v1::AdmitResponse* response) {
  absl::StatusOr<v1::AdmitResponse> result = parts_.pins->Admit(request->job());
  if (result.ok() && !result->admitted()) {
    spdlog::info("refused job {}: {}", request->job(), result->reason());
  }
  return Answer(std::move(result), response);
}

grpc::ServerUnaryReactor* ReproService::Record(grpc::CallbackServerContext* context,
                                               const v1::RecordRequest* request,
                                               v1::RecordResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status admitted = AdmitRecord("Record", *context, *request);
  if (!admitted.ok()) {
    reactor->Finish(ToGrpcStatus(admitted));
    return reactor;
  }
  // `request` and `response` live until the reactor is finished.
  parts_.facts->RecordAsync(*request, [reactor, response](absl::StatusOr<uint64_t> seq) {
    if (!seq.ok()) {
      reactor->Finish(ToGrpcStatus(seq.status()));
      return;
    }
    response->set_seq(*seq);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerBidiReactor<v1::RecordRequest, v1::RecordResponse>* ReproService::RecordStream(
    grpc::CallbackServerContext* context) {
  // `context` lives until the reactor is done.
  return new RecordStreamReactor(
      [this, context](const v1::RecordRequest& request) {
        return AdmitRecord("RecordStream", *context, request);
      },
      parts_.facts);
}

absl::Status ReproService::AdmitRecord(absl::string_view action,
                                       const grpc::CallbackServerContext& context,
                                       const v1::RecordRequest& request) {
  const Identity caller = parts_.identities->Of(context);
  RETURN_IF_ERROR(AuthorizeJobWrite(action, caller, request.job()));
  if (parts_.quotas == nullptr) return absl::OkStatus();
  absl::StatusOr<v1::JournalHead> head = parts_.journal->Head(request.job());
  return parts_.quotas->AdmitRecord(caller.Owner(), request.job(), request.ByteSizeLong(),
                                    head.ok() ? head->seq() : 0);
}

absl::Status ReproService::StreamJournal(grpc::ServerContext* context,
                                         const v1::ReplayRequest& request,
                                         const ClusterJournals::Emit& emit) {
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  absl::Status known = parts_.journal->Head(request.job()).status();
  if (absl::IsNotFound(known)) known = parts_.pins->Get(request.job()).status();
  if (absl::IsNotFound(known)) {
    return absl::NotFoundError(absl::StrCat("job ", request.job(), " is unknown on node ",
                                            parts_.journal->node()));
  }
  uint64_t after = request.since_seq();
  while (true) {
    ASSIGN_OR_RETURN(std::vector<StoredEntry> page,
                     parts_.journal->Read(request.job(), after, kReplayPageSize));
    for (const StoredEntry& stored : page) {
      v1::ReplayResponse response;
      if (!response.mutable_entry()->ParseFromString(stored.payload)) {
        return absl::DataLossError(absl::StrCat("entry ", stored.seq, " of job ", request.job(),
                                                " is corrupt; run `reproctl verify ",
                                                request.job(), "`"));
      }
      response.set_hash(stored.hash);
      response.set_payload(stored.payload);
      if (!emit(response)) return absl::OkStatus();  // the client went away
      after = stored.seq;
    }
    if (page.size() == kReplayPageSize) continue;
    if (!request.follow()) return absl::OkStatus();
    while (!parts_.journal->WaitForEntriesAfter(request.job(), after, kFollowPoll)) {
      if (context == nullptr || context->IsCancelled()) return absl::OkStatus();
      if (shutting_down_) {
        return absl::UnavailableError(
            absl::StrCat("reprod on node ", parts_.journal->node(), " is shutting down"));
      }
    }
  }
}

absl::Status ReproService::ReplayParts(grpc::ServerContext* context,
                                       const v1::ReplayRequest& request,
                                       const ClusterJournals::Emit& emit) {
  if (parts_.cluster == nullptr || request.local_only()) {
    return StreamJournal(context, request, emit);
  }
  return parts_.cluster->Replay(
      request, emit,
      [this, context](const v1::ReplayRequest& part, const ClusterJournals::Emit& part_emit) {
        return StreamJournal(context, part, part_emit);
      },
      [this, context] {
        return (context != nullptr && context->IsCancelled()) || shutting_down_;
      });
}

grpc::Status ReproService::Replay(grpc::ServerContext* context, const v1::ReplayRequest* request,
                                  grpc::ServerWriter<v1::ReplayResponse>* writer) {
  absl::Status allowed = AuthorizeJobRead("Replay", context, request->job());
  if (!allowed.ok()) return ToGrpcStatus(allowed);
  // Only following streams are capped: they last until the client leaves; a plain Replay
  // (journal, verify, export, diff) ends once it has sent what is there.
  std::optional<StreamSlot> slot;
  if (request->follow()) slot.emplace(&open_streams_, parts_.max_streams, streams_open_);
  if (slot.has_value() && !slot->held()) {
    streams_refused_->Increment();
    return ToGrpcStatus(absl::ResourceExhaustedError(
        absl::StrCat(parts_.max_streams, " following journal streams are open on node ",
                     parts_.journal->node(), " (--max_streams); close one or retry later")));
  }
  ClusterJournals::Emit emit = [writer](const v1::ReplayResponse& r) { return writer->Write(r); };
  return ToGrpcStatus(ReplayParts(context, *request, emit));
}

absl::StatusOr<v1::Provenance> ReproService::CollectProvenance(const std::string& job) {
  cli::ProvenanceBuilder builder(job);
  ASSIGN_OR_RETURN(v1::Pin pin, parts_.pins->Get(job));
  builder.SetPin(pin);
  v1::VerifyJournalRequest verify;
  verify.set_job(job);
  ASSIGN_OR_RETURN(v1::VerifyJournalResponse verified,
                   parts_.cluster != nullptr ? parts_.cluster->Verify(verify)
                                             : parts_.auditor->Verify(verify));
  builder.SetVerified(verified);
  v1::ReplayRequest replay;
  replay.set_job(job);
  RETURN_IF_ERROR(ReplayParts(/*context=*/nullptr, replay, [&builder](const v1::ReplayResponse& r) {
    builder.Add(r.entry(), r.hash());
    return true;
  }));
  return builder.Build();
}

grpc::Status ReproService::SignAttestation(grpc::ServerContext* context,
                                           const v1::SignAttestationRequest* request,
                                           v1::SignAttestationResponse* response) {
  absl::Status allowed = AuthorizeJobRead("SignAttestation", context, request->job());
  if (!allowed.ok()) return ToGrpcStatus(allowed);
  if (parts_.node_key == nullptr || parts_.fs == nullptr) {
    return ToGrpcStatus(absl::UnimplementedError("this reprod has no node key to sign with"));
  }
  absl::StatusOr<v1::SignAttestationResponse> result = attester_.Sign(*request);
  if (result.ok()) spdlog::info("signed a {} statement for job {}", request->format(), request->job());
  return Answer(std::move(result), response);
}

grpc::Status ReproService::VerifyJournal(grpc::ServerContext* context,
                                         const v1::VerifyJournalRequest* request,
                                         v1::VerifyJournalResponse* response) {
  absl::Status allowed = AuthorizeJobRead("VerifyJournal", context, request->job());
  if (!allowed.ok()) return ToGrpcStatus(allowed);
  if (parts_.cluster != nullptr && !request->local_only()) {
    return Answer(parts_.cluster->Verify(*request), response);
  }
  return Answer(parts_.auditor->Verify(*request), response);
}

grpc::Status ReproService::GetHeadLogProof(grpc::ServerContext* context,
                                           const v1::HeadLogProofRequest* request,
                                           v1::HeadLogProofResponse* response) {
  // Without a job the answer is the node's tree head and a consistency proof: public (the tree
  // heads are in etcd for all to read), so any caller may ask.
  if (!request->job().empty()) {
    absl::Status allowed = AuthorizeJobRead("GetHeadLogProof", context, request->job());
    if (!allowed.ok()) return ToGrpcStatus(allowed);
  }
  return Answer(parts_.auditor->ProveHead(*request), response);
}

grpc::Status ReproService::GetNodeInfo(grpc::ServerContext*, const v1::GetNodeInfoRequest*,
                                       v1::NodeInfo* response) {
  return Answer(parts_.node_info(), response);
}

}  // namespace repro
