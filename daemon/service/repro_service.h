// ReproService: the gRPC glue of repro.v1.Repro. Each method validates nothing itself: it asks
// the Authorizer whether the caller (CallerIdentities) may make the call, hands the request to the
// part that owns the logic and converts the absl::Status it gets back with ToGrpcStatus
// (common/grpc_status.h), the one place where statuses change type.
#ifndef REPRO_DAEMON_SERVICE_REPRO_SERVICE_H_
#define REPRO_DAEMON_SERVICE_REPRO_SERVICE_H_

#include <atomic>
#include <functional>

#include "daemon/auth/authorizer.h"
#include "daemon/cluster/cluster_journals.h"
#include "daemon/metrics/metrics.h"
#include "daemon/os/file_system.h"
#include "daemon/quota/quotas.h"
#include "daemon/registry/auditor.h"
#include "daemon/registry/fact_recorder.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/registry/version_registry.h"
#include "daemon/service/attester.h"
#include "daemon/service/caller_identity.h"
#include "daemon/store/journal.h"
#include "daemon/store/node_key.h"
#include "repro/v1/repro.grpc.pb.h"

namespace repro {

// The parts the service delegates to; none is owned, all must outlive the service.
struct ReproServiceParts {
  VersionRegistry* versions = nullptr;
  PinRegistry* pins = nullptr;
  FactRecorder* facts = nullptr;
  Auditor* auditor = nullptr;
  Journal* journal = nullptr;
  // Cluster mode: Replay and VerifyJournal cover every node's part (unless local_only).
  // Null in embedded mode.
  ClusterJournals* cluster = nullptr;
  std::function<absl::StatusOr<v1::NodeInfo>()> node_info;
  // Signs attestations (SignAttestation); subjects are re-hashed through `fs`.
  const NodeKey* node_key = nullptr;
  FileSystem* fs = nullptr;
  Authorizer* auth = nullptr;
  CallerIdentities* identities = nullptr;
  Quotas* quotas = nullptr;    // may be null: Record is bounded by the message size only
  Metrics* metrics = nullptr;  // may be null: the stream counters are not exported
  // Following Replay streams (journal --follow) open at once; more are refused with
  // RESOURCE_EXHAUSTED, so they never take every gRPC thread from unary calls and health checks.
  // 0: no cap.
  int max_streams = 64;
  // RegisterVersion calls running at once (each walks and hashes a tree on threads of its own,
  // and streams its progress); more are refused with RESOURCE_EXHAUSTED. 0: no cap.
  int max_register_streams = 8;
};

// Thread-safe (gRPC calls methods from many threads). Record and RecordStream use gRPC's callback
// API: the handler queues the entry in the journal's group commit and returns, and the journal's
// committing thread answers once the entry is durable, so no gRPC thread waits on the disk per
// call and 64 concurrent Records need no 64 blocked threads (RecordStream: record_stream.h). The
// other methods are sync.
class ReproService final
    : public v1::Repro::WithCallbackMethod_Record<
          v1::Repro::WithCallbackMethod_RecordStream<v1::Repro::Service>> {
 public:
  explicit ReproService(ReproServiceParts parts);

  // Ends streaming calls (Replay with follow) promptly; call before shutting the server down.
  void BeginShutdown() { shutting_down_ = true; }

  grpc::Status RegisterVersion(grpc::ServerContext* context,
                               const v1::RegisterVersionRequest* request,
                               grpc::ServerWriter<v1::RegisterVersionResponse>* writer) override;
  grpc::Status GetVersion(grpc::ServerContext* context, const v1::GetVersionRequest* request,
                          v1::GetVersionResponse* response) override;
  grpc::Status ListVersions(grpc::ServerContext* context, const v1::ListVersionsRequest* request,
                            v1::ListVersionsResponse* response) override;
  grpc::Status Pin(grpc::ServerContext* context, const v1::PinRequest* request,
                   v1::PinResponse* response) override;
  grpc::Status GetPin(grpc::ServerContext* context, const v1::GetPinRequest* request,
                      v1::GetPinResponse* response) override;
  grpc::Status ListPins(grpc::ServerContext* context, const v1::ListPinsRequest* request,
                        v1::ListPinsResponse* response) override;
  grpc::Status Admit(grpc::ServerContext* context, const v1::AdmitRequest* request,
                     v1::AdmitResponse* response) override;
  grpc::ServerUnaryReactor* Record(grpc::CallbackServerContext* context,
                                   const v1::RecordRequest* request,
                                   v1::RecordResponse* response) override;
  grpc::ServerBidiReactor<v1::RecordRequest, v1::RecordResponse>* RecordStream(
      grpc::CallbackServerContext* context) override;
  grpc::Status Replay(grpc::ServerContext* context, const v1::ReplayRequest* request,
                      grpc::ServerWriter<v1::ReplayResponse>* writer) override;
  grpc::Status VerifyJournal(grpc::ServerContext* context,
                             const v1::VerifyJournalRequest* request,
                             v1::VerifyJournalResponse* response) override;
  grpc::Status GetNodeInfo(grpc::ServerContext* context, const v1::GetNodeInfoRequest* request,
                           v1::NodeInfo* response) override;
  grpc::Status SignAttestation(grpc::ServerContext* context,
                               const v1::SignAttestationRequest* request,
                               v1::SignAttestationResponse* response) override;
  grpc::Status GetHeadLogProof(grpc::ServerContext* context,
                               const v1::HeadLogProofRequest* request,
                               v1::HeadLogProofResponse* response) override;

 private:
  // Whether the caller of `context` may write to `job` (Record; Pin of a pinned job): its
  // owner or an admin. A job without a pin passes (the part then answers NOT_FOUND).
  absl::Status AuthorizeJobWrite(absl::string_view action, const Identity& caller,
                                 absl::string_view job);
  // Whether the caller of `context` may record `request` now (`action`: Record or RecordStream):
  // AuthorizeJobWrite, then quotas.
  absl::Status AdmitRecord(absl::string_view action, const grpc::CallbackServerContext& context,
                           const v1::RecordRequest& request);
  // Whether the caller may read `job`'s journal: its owner, an auditor or an admin. A job
  // without a pin is NOT_FOUND for users, and left to the part for auditors and admins.
  absl::Status AuthorizeJobRead(absl::string_view action, grpc::ServerContext* context,
                                absl::string_view job);

  // Streams this node's entries of `job` after `after_seq` to `emit`; with `follow`, waits for
  // more until the client cancels or the server shuts down.
  absl::Status StreamJournal(grpc::ServerContext* context, const v1::ReplayRequest& request,
                             const ClusterJournals::Emit& emit);

  // Every node's part of the job's journal (cluster mode, unless local_only), as Replay serves it.
  absl::Status ReplayParts(grpc::ServerContext* context, const v1::ReplayRequest& request,
                           const ClusterJournals::Emit& emit);
  // The job's provenance as `reproctl export` would build it: pin, verified heads, and the
  // entries they sign.
  absl::StatusOr<v1::Provenance> CollectProvenance(const std::string& job);

  const ReproServiceParts parts_;
  const Attester attester_;
  Metrics own_metrics_;  // used when parts_.metrics is null
  Gauge* streams_open_;
  Counter* streams_refused_;
  std::atomic<int> open_streams_{0};
  Gauge* register_streams_open_;
  Counter* register_streams_refused_;
  std::atomic<int> open_register_streams_{0};
  std::atomic<bool> shutting_down_{false};
};

}  // namespace repro

#endif  // REPRO_DAEMON_SERVICE_REPRO_SERVICE_H_
