// A scriptable repro.v1.Repro for reproctl's tests, served in-process on a Unix socket.
//
//   FakeReproServer server;
//   server.service().admit.set_admitted(true);
//   RunCli({"--addr", server.address(), "admit", "j"}, env);
//   EXPECT_EQ(server.service().last_admit.job(), "j");
#ifndef REPRO_TESTS_CLIENT_CLI_FAKE_REPRO_SERVICE_H_
#define REPRO_TESTS_CLIENT_CLI_FAKE_REPRO_SERVICE_H_

#include <grpcpp/server.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "repro/v1/repro.grpc.pb.h"
#include "tests/testutil/temp_dir.h"

namespace repro::cli {

// Replies with what the test put in its fields and keeps the last request of each RPC. The test
// sets fields only while no call is in flight (RunCli returns after its call ended).
class FakeReproService final : public v1::Repro::Service {
 public:
  // When not OK, every RPC fails with it (streams after sending their messages).
  grpc::Status error = grpc::Status::OK;
  // Every RPC sleeps this long first.
  absl::Duration delay = absl::ZeroDuration();

  std::vector<v1::RegisterVersionResponse> register_stream;
  v1::GetVersionResponse get_version;
  v1::ListVersionsResponse list_versions;
  v1::PinResponse pin;
  v1::GetPinResponse get_pin;
  v1::ListPinsResponse list_pins;
  v1::AdmitResponse admit;
  v1::RecordResponse record;
  std::vector<v1::ReplayResponse> replay;  // with follow, then waits for the client to cancel
  v1::VerifyJournalResponse verify;
  v1::NodeInfo node;

  v1::RegisterVersionRequest last_register;
  v1::GetVersionRequest last_get_version;
  v1::ListVersionsRequest last_list_versions;
  v1::PinRequest last_pin;
  v1::GetPinRequest last_get_pin;
  v1::AdmitRequest last_admit;
  v1::RecordRequest last_record;
  v1::ReplayRequest last_replay;
  v1::VerifyJournalRequest last_verify;
  std::atomic<int> calls{0};
  // True while a follow Replay waits for the client to go away.
  std::atomic<bool> following{false};

  grpc::Status RegisterVersion(grpc::ServerContext* context,
                               const v1::RegisterVersionRequest* request,
                               grpc::ServerWriter<v1::RegisterVersionResponse>* writer) override;
  grpc::Status GetVersion(grpc::ServerContext*, const v1::GetVersionRequest* request,
                          v1::GetVersionResponse* response) override;
  grpc::Status ListVersions(grpc::ServerContext*, const v1::ListVersionsRequest* request,
                            v1::ListVersionsResponse* response) override;
  grpc::Status Pin(grpc::ServerContext*, const v1::PinRequest* request,
                   v1::PinResponse* response) override;
  grpc::Status GetPin(grpc::ServerContext*, const v1::GetPinRequest* request,
                      v1::GetPinResponse* response) override;
  grpc::Status ListPins(grpc::ServerContext*, const v1::ListPinsRequest* request,
                        v1::ListPinsResponse* response) override;
  grpc::Status Admit(grpc::ServerContext*, const v1::AdmitRequest* request,
                     v1::AdmitResponse* response) override;
  grpc::Status Record(grpc::ServerContext*, const v1::RecordRequest* request,
                      v1::RecordResponse* response) override;
  grpc::Status Replay(grpc::ServerContext* context, const v1::ReplayRequest* request,
                      grpc::ServerWriter<v1::ReplayResponse>* writer) override;
  grpc::Status VerifyJournal(grpc::ServerContext*, const v1::VerifyJournalRequest* request,
                             v1::VerifyJournalResponse* response) override;
  grpc::Status GetNodeInfo(grpc::ServerContext*, const v1::GetNodeInfoRequest* request,
                           v1::NodeInfo* response) override;

 private:
  // Counts the call, sleeps `delay`, returns `error`.
  grpc::Status Begin();
};

// FakeReproService listening on a fresh Unix socket. Not thread-safe.
class FakeReproServer {
 public:
  FakeReproServer();
  ~FakeReproServer();

  FakeReproService& service() { return service_; }
  // "unix:/tmp/.../reprod.sock"
  const std::string& address() const { return address_; }

 private:
  testing::TempDir dir_;
  std::string address_;
  FakeReproService service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace repro::cli

#endif  // REPRO_TESTS_CLIENT_CLI_FAKE_REPRO_SERVICE_H_
