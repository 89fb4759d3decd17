// CallerIdentities behind real gRPC servers: a loopback TCP caller (IPv4 and IPv6) is the uid
// owning its socket, also while other servers share the identities and after one of them stops.
#include "daemon/service/caller_identity.h"

#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/service/grpc_server.h"
#include "gtest/gtest.h"
#include "repro/v1/repro.grpc.pb.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

// Answers GetNodeInfo with the caller's owner string in `node`.
class WhoCalls final : public v1::Repro::Service {
 public:
  explicit WhoCalls(CallerIdentities* identities) : identities_(identities) {}
  grpc::Status GetNodeInfo(grpc::ServerContext* context, const v1::GetNodeInfoRequest*,
                           v1::NodeInfo* response) override {
    response->set_node(identities_->Of(*context).Owner());
    return grpc::Status::OK;
  }

 private:
  CallerIdentities* identities_;
};

std::string CallerAt(const std::string& endpoint) {
  auto stub = v1::Repro::NewStub(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::NodeInfo info;
  grpc::Status status = stub->GetNodeInfo(&context, v1::GetNodeInfoRequest(), &info);
  EXPECT_TRUE(status.ok()) << endpoint << ": " << status.error_message();
  return info.node();
}

std::unique_ptr<GrpcServer> Serve(std::vector<std::string> listen, CallerIdentities* identities,
                                  grpc::Service* service) {
  GrpcServerOptions options;
  options.listen = std::move(listen);
  options.identities = identities;
  absl::StatusOr<std::unique_ptr<GrpcServer>> server = GrpcServer::Start(options, {service});
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(CallerIdentitiesTest, LoopbackTcpCallersAreTheirSocketsOwnerBesideOtherServers) {
  testing::TempDir dir;
  CallerIdentities identities;
  WhoCalls service(&identities);
  std::unique_ptr<GrpcServer> tcp = Serve({"127.0.0.1:0", "[::1]:0"}, &identities, &service);
  ASSERT_NE(tcp, nullptr);
  const std::string self = absl::StrCat("uid:", geteuid());
  for (const std::string& endpoint : tcp->endpoints()) EXPECT_EQ(CallerAt(endpoint), self);

  // Another server on the same identities (as reprod's CSI socket) neither hides nor, when it
  // stops, removes this one's endpoints.
  WhoCalls other_service(&identities);
  std::unique_ptr<GrpcServer> other =
      Serve({"unix:" + dir.Path("other.sock")}, &identities, &other_service);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(CallerAt("unix:" + dir.Path("other.sock")), self);
  EXPECT_EQ(CallerAt(tcp->endpoints().front()), self);
  other->Shutdown(absl::ZeroDuration());
  for (const std::string& endpoint : tcp->endpoints()) EXPECT_EQ(CallerAt(endpoint), self);
}

}  // namespace
}  // namespace repro
