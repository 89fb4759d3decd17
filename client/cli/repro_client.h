// reproctl's connection to reprod: one channel, and the one place where a call is made, given
// its deadline and turned into an absl::Status that knows its RPC (for the exit code) and says
// "cannot reach reprod at ADDR" when the daemon is not there.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<ReproClient> client, ReproClient::Connect(options));
//   v1::GetPinRequest request;
//   request.set_job("train-42");
//   ASSIGN_OR_RETURN(v1::GetPinResponse pin, client->Call(kGetPin, request));
//
// RPCs are named by descriptors (kGetPin, kReplay, ...) that pair the method with its name.
#ifndef REPRO_CLIENT_CLI_REPRO_CLIENT_H_
#define REPRO_CLIENT_CLI_REPRO_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli/address.h"
#include "client/cli/interrupt.h"
#include "repro/v1/repro.grpc.pb.h"

namespace repro::cli {

using Stub = v1::Repro::Stub;

// A unary RPC of repro.v1.Repro.
template <typename Request, typename Response>
struct UnaryRpc {
  absl::string_view name;
  grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*);
};

// A server-streaming RPC of repro.v1.Repro.
template <typename Request, typename Response>
struct StreamRpc {
  using ResponseType = Response;
  absl::string_view name;
  std::unique_ptr<grpc::ClientReader<Response>> (Stub::*method)(grpc::ClientContext*,
                                                                const Request&);
};

inline constexpr StreamRpc<v1::RegisterVersionRequest, v1::RegisterVersionResponse>
    kRegisterVersion{"RegisterVersion", &Stub::RegisterVersion};
inline constexpr UnaryRpc<v1::GetVersionRequest, v1::GetVersionResponse> kGetVersion{
    "GetVersion", &Stub::GetVersion};
inline constexpr UnaryRpc<v1::ListVersionsRequest, v1::ListVersionsResponse> kListVersions{
    "ListVersions", &Stub::ListVersions};
inline constexpr UnaryRpc<v1::PinRequest, v1::PinResponse> kPin{"Pin", &Stub::Pin};
inline constexpr UnaryRpc<v1::GetPinRequest, v1::GetPinResponse> kGetPin{"GetPin", &Stub::GetPin};
inline constexpr UnaryRpc<v1::ListPinsRequest, v1::ListPinsResponse> kListPins{"ListPins",
                                                                               &Stub::ListPins};
inline constexpr UnaryRpc<v1::AdmitRequest, v1::AdmitResponse> kAdmit{"Admit", &Stub::Admit};
inline constexpr UnaryRpc<v1::RecordRequest, v1::RecordResponse> kRecord{"Record", &Stub::Record};
inline constexpr StreamRpc<v1::ReplayRequest, v1::ReplayResponse> kReplay{"Replay", &Stub::Replay};
inline constexpr UnaryRpc<v1::VerifyJournalRequest, v1::VerifyJournalResponse> kVerifyJournal{
    "VerifyJournal", &Stub::VerifyJournal};
inline constexpr UnaryRpc<v1::GetNodeInfoRequest, v1::NodeInfo> kGetNodeInfo{"GetNodeInfo",
                                                                             &Stub::GetNodeInfo};
inline constexpr UnaryRpc<v1::SignAttestationRequest, v1::SignAttestationResponse>
    kSignAttestation{"SignAttestation", &Stub::SignAttestation};

inline constexpr UnaryRpc<v1::HeadLogProofRequest, v1::HeadLogProofResponse> kGetHeadLogProof{
    "GetHeadLogProof", &Stub::GetHeadLogProof};

inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(30);

struct ConnectOptions {
  std::string address = std::string(kDefaultAddress);
  // PEM files for TCP addresses: the CA that signed reprod's certificate (turns TLS on), and this
  // client's certificate and key (mTLS). Empty: not given.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // The deadline of ordinary calls. Long-running calls have none unless `timeout_given`.
  absl::Duration timeout = kDefaultTimeout;
  bool timeout_given = false;
};

// Which deadline a call gets.
enum class CallLength {
  kShort,  // ConnectOptions::timeout
  kLong,   // none unless --timeout was given (version add, journal --follow)
};

// Thread-compatible: one call at a time per object is the expected use.
class ReproClient {
 public:
  // Makes the channel (connection happens on the first call). INVALID_ARGUMENT for a bad
  // address or TLS flags that do not fit it; NOT_FOUND / PERMISSION_DENIED for unreadable PEM
  // files.
  static absl::StatusOr<std::unique_ptr<ReproClient>> Connect(const ConnectOptions& options);

  // Calls `rpc`. A failure comes back tagged with the RPC (see exit_code.h); when the daemon
  // could not be reached it is UNAVAILABLE "cannot reach reprod at ADDR: ...".
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(const UnaryRpc<Request, Response>& rpc, const Request& request,
                                CallLength length = CallLength::kShort) {
    grpc::ClientContext context;
    SetDeadline(&context, length);
    Response response;
    grpc::Status status = (stub_.get()->*rpc.method)(&context, request, &response);
    if (!status.ok()) return Failure(rpc.name, status);
    return response;
  }

  // Calls `rpc` and hands every streamed message to `on_message`; a non-OK status from it
  // cancels the call and is returned. With `interrupt`, SIGINT/SIGTERM cancel the call and it
  // returns OK (the caller asked to stop). Failures are reported as by Call().
  template <typename Request, typename Response>
  absl::Status Stream(
      const StreamRpc<Request, Response>& rpc, const Request& request,
      // Not deduced from here: lambdas convert.
      absl::FunctionRef<absl::Status(const typename StreamRpc<Request, Response>::ResponseType&)>
          on_message,
      CallLength length, InterruptGuard* interrupt = nullptr) {
    grpc::ClientContext context;
    SetDeadline(&context, length);
    if (interrupt != nullptr) interrupt->Watch(&context);
    std::unique_ptr<grpc::ClientReader<Response>> reader =
        (stub_.get()->*rpc.method)(&context, request);
    absl::Status handled = absl::OkStatus();
    Response response;
    while (handled.ok() && reader->Read(&response)) handled = on_message(response);
    if (!handled.ok()) context.TryCancel();
    grpc::Status status = reader->Finish();
    if (interrupt != nullptr) interrupt->Watch(nullptr);
    if (!handled.ok()) return handled;
    if (interrupt != nullptr && interrupt->interrupted()) return absl::OkStatus();
    if (!status.ok()) return Failure(rpc.name, status);
    return absl::OkStatus();
  }

  const Address& address() const { return address_; }

 private:
  ReproClient(Address address, const ConnectOptions& options,
              std::shared_ptr<grpc::Channel> channel);

  void SetDeadline(grpc::ClientContext* context, CallLength length) const;
  // The status for a failed call of `rpc` (see Call()).
  absl::Status Failure(absl::string_view rpc, const grpc::Status& status) const;

  Address address_;
  ConnectOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_REPRO_CLIENT_H_
