// RecordStreamReactor: serves one RecordStream call (proto/repro/v1/repro.proto): each request on
// the stream is admitted and journaled like a Record call, and answered, in request order, once
// its entry is durable. A stream pays gRPC's per-call work (call objects, headers, status) once,
// not per record, which is most of what a Record costs on a busy node (README, Performance).
//
//   grpc::ServerBidiReactor<...>* RecordStream(grpc::CallbackServerContext* context) override {
//     return new RecordStreamReactor([=](const v1::RecordRequest& r) { return Admit(*context, r); },
//                                    facts);
//   }
//
// Up to `max_in_flight` requests are read ahead of their answers (the journal's group commit takes
// them together); beyond, reading waits. The first request that fails (not admitted, invalid, not
// written) ends the stream with its status after the answers of the requests before it: those
// are durable; requests sent after it may or may not have been journaled, and none is read after
// the failure is known. The reactor deletes itself when the call is done and no journal
// completion is outstanding.
//
// Thread-safe: gRPC's reactions and the journal's completions come from different threads.
#ifndef REPRO_DAEMON_SERVICE_RECORD_STREAM_H_
#define REPRO_DAEMON_SERVICE_RECORD_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/registry/fact_recorder.h"
#include "grpcpp/grpcpp.h"
#include "repro/v1/repro.grpc.pb.h"

namespace repro {

class RecordStreamReactor final
    : public grpc::ServerBidiReactor<v1::RecordRequest, v1::RecordResponse> {
 public:
  // Whether a request may be recorded now (the caller's right to the job, quotas).
  using Admit = std::function<absl::Status(const v1::RecordRequest&)>;

  // `facts` is not owned and must outlive the call. Starts reading.
  RecordStreamReactor(Admit admit, FactRecorder* facts, size_t max_in_flight = 64);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What to start on the stream, decided under mu_ and done outside it.
  struct Next {
    bool read = false;
    bool write = false;
    std::optional<grpc::Status> finish;
  };

  // A request's journal completion, for the request read as number `index`.
  void Recorded(uint64_t index, absl::StatusOr<uint64_t> seq);
  // The next operations the state allows; marks them started.
  Next Decide() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Start(const Next& next);
  // Drops one reference (the call's, or a journal completion's); the last deletes this.
  void Unref();

  const Admit admit_;
  FactRecorder* const facts_;
  const size_t max_in_flight_;

  v1::RecordRequest request_;    // filled by the read in progress; used by OnReadDone only
  v1::RecordResponse response_;  // the write in progress

  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = true;  // a read (or OnReadDone) is in progress
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // the first failure: nothing more is read
  // Outcome of each request not yet answered, in request order (nullopt: not durable yet);
  // the front is request number `answered_`.
  std::deque<std::optional<absl::StatusOr<uint64_t>>> outcomes_ ABSL_GUARDED_BY(mu_);
  uint64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  // the call's, until OnDone; one per journal completion
};

}  // namespace repro

#endif  // REPRO_DAEMON_SERVICE_RECORD_STREAM_H_
