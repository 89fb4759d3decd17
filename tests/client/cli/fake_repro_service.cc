#include "tests/client/cli/fake_repro_service.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <cstdlib>
#include <iostream>

#include "absl/time/clock.h"

namespace repro::cli {

grpc::Status FakeReproService::Begin() {
  ++calls;
  if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
  return error;
}

grpc::Status FakeReproService::RegisterVersion(
    grpc::ServerContext*, const v1::RegisterVersionRequest* request,
    grpc::ServerWriter<v1::RegisterVersionResponse>* writer) {
  last_register = *request;
  grpc::Status status = Begin();
  for (const v1::RegisterVersionResponse& response : register_stream) writer->Write(response);
  return status;
}

grpc::Status FakeReproService::GetVersion(grpc::ServerContext*,
                                          const v1::GetVersionRequest* request,
                                          v1::GetVersionResponse* response) {
  last_get_version = *request;
  *response = get_version;
  return Begin();
}

grpc::Status FakeReproService::ListVersions(grpc::ServerContext*,
                                            const v1::ListVersionsRequest* request,
                                            v1::ListVersionsResponse* response) {
  last_list_versions = *request;
  *response = list_versions;
  return Begin();
}

grpc::Status FakeReproService::Pin(grpc::ServerContext*, const v1::PinRequest* request,
                                   v1::PinResponse* response) {
  last_pin = *request;
  *response = pin;
  return Begin();
}

grpc::Status FakeReproService::GetPin(grpc::ServerContext*, const v1::GetPinRequest* request,
                                      v1::GetPinResponse* response) {
  last_get_pin = *request;
  *response = get_pin;
  return Begin();
}

grpc::Status FakeReproService::ListPins(grpc::ServerContext*, const v1::ListPinsRequest*,
                                        v1::ListPinsResponse* response) {
  *response = list_pins;
  return Begin();
}

grpc::Status FakeReproService::Admit(grpc::ServerContext*, const v1::AdmitRequest* request,
                                     v1::AdmitResponse* response) {
  last_admit = *request;
  *response = admit;
  return Begin();
}

grpc::Status FakeReproService::Record(grpc::ServerContext*, const v1::RecordRequest* request,
                                      v1::RecordResponse* response) {
  last_record = *request;
  *response = record;
  return Begin();
}

grpc::Status FakeReproService::Replay(grpc::ServerContext* context,
                                      const v1::ReplayRequest* request,
                                      grpc::ServerWriter<v1::ReplayResponse>* writer) {
  last_replay = *request;
  grpc::Status status = Begin();
  for (const v1::ReplayResponse& response : replay) writer->Write(response);
  if (!status.ok() || !request->follow()) return status;
  following = true;
  while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
  following = false;
  return grpc::Status::CANCELLED;
}

grpc::Status FakeReproService::VerifyJournal(grpc::ServerContext*,
                                             const v1::VerifyJournalRequest* request,
                                             v1::VerifyJournalResponse* response) {
  last_verify = *request;
  *response = verify;
  return Begin();
}

grpc::Status FakeReproService::GetNodeInfo(grpc::ServerContext*, const v1::GetNodeInfoRequest*,
                                           v1::NodeInfo* response) {
  *response = node;
  return Begin();
}

FakeReproServer::FakeReproServer() : address_("unix:" + dir_.Path("reprod.sock")) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address_, grpc::InsecureServerCredentials());
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    std::cerr << "cannot start the fake reprod on " << address_ << "\n";
    std::abort();
  }
}

FakeReproServer::~FakeReproServer() { server_->Shutdown(absl::ToChronoTime(absl::Now())); }

}  // namespace repro::cli
