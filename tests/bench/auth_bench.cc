// What authorization costs: Admit and Record latency (p50, p99) over gRPC on a Unix socket, through
// the service with its checks (ReproService: caller identity from SO_PEERCRED, the job's owner,
// the Authorizer) against the same two methods as they were before the checks, served by the
// same process from the same stores, measured alternately in one run. Then the same checked calls
// over plain loopback TCP, where each call's caller is found by its connection's address pair
// (LoopbackTcpPeerIdentity), against the Unix socket; and one such lookup against one read of the
// kernel's socket table as text (/proc/net/tcp and tcp6, as identd does).
//
//   auth_bench [--seconds=3] [--rounds=2]
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "daemon/auth/authorizer.h"
#include "daemon/auth/peer_credentials.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/hashing/tree_hasher.h"
#include "daemon/os/clock.h"
#include "daemon/os/file_system.h"
#include "daemon/pin_store/rocks_pin_store.h"
#include "daemon/registry/fact_recorder.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/registry/version_registry.h"
#include "daemon/service/grpc_server.h"
#include "daemon/service/repro_service.h"
#include "daemon/store/journal.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
#include "tests/bench/bench_util.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(double, seconds, 3, "seconds per measurement");
ABSL_FLAG(int, rounds, 2, "alternating rounds of before and after");

namespace repro::bench {
namespace {

// Admit and Record as ReproService served them before authorization: straight to the parts.
class UncheckedService final : public v1::Repro::Service {
 public:
  UncheckedService(PinRegistry* pins, FactRecorder* facts) : pins_(pins), facts_(facts) {}
  grpc::Status Admit(grpc::ServerContext*, const v1::AdmitRequest* request,
                     v1::AdmitResponse* response) override {
    absl::StatusOr<v1::AdmitResponse> result = pins_->Admit(request->job());
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }
  grpc::Status Record(grpc::ServerContext*, const v1::RecordRequest* request,
                      v1::RecordResponse* response) override {
    absl::StatusOr<uint64_t> seq = facts_->Record(*request);
    if (!seq.ok()) return ToGrpcStatus(seq.status());
    response->set_seq(*seq);
    return grpc::Status::OK;
  }

 private:
  PinRegistry* const pins_;
  FactRecorder* const facts_;
};

template <typename T>
T OrDie(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) {
    fprintf(stderr, "%s: %s\n", what, value.status().ToString().c_str());
    exit(1);
  }
  return *std::move(value);
}

ConcurrentRun Measure(v1::Repro::Stub* stub, bool record, double seconds) {
  return RunConcurrently(1, seconds, [&](int, uint64_t i) {
    grpc::ClientContext context;
    if (record) {
      v1::RecordRequest request;
      request.set_job("bench-job");
      v1::Fact* fact = request.add_facts();
      fact->set_key("step");
      fact->set_value(absl::StrCat(i));
      v1::RecordResponse response;
      return stub->Record(&context, request, &response).ok();
    }
    v1::AdmitRequest request;
    request.set_job("bench-job");
    v1::AdmitResponse response;
    return stub->Admit(&context, request, &response).ok() && response.admitted();
  });
}

// Latency of `rpc` through `a` and `b`, measured alternately; reported with b against a.
void Compare(const char* rpc, bool record, v1::Repro::Stub* a, const std::string& a_name,
             v1::Repro::Stub* b, const std::string& b_name, double seconds) {
  std::vector<double> a_p50, a_p99, b_p50, b_p99;
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    ConcurrentRun first = Measure(a, record, seconds);
    ConcurrentRun second = Measure(b, record, seconds);
    a_p50.push_back(first.p50_ms);
    a_p99.push_back(first.p99_ms);
    b_p50.push_back(second.p50_ms);
    b_p99.push_back(second.p99_ms);
  }
  const double p50 = Percentile(a_p50, 50), p99 = Percentile(a_p99, 50);
  Report(absl::StrCat(rpc, " p50 ", a_name), p50, "ms");
  Report(absl::StrCat(rpc, " p50 ", b_name), Percentile(b_p50, 50), "ms", p50, a_name);
  Report(absl::StrCat(rpc, " p99 ", a_name), p99, "ms");
  Report(absl::StrCat(rpc, " p99 ", b_name), Percentile(b_p99, 50), "ms", p99, a_name);
}

// A plain TCP connection to `endpoint` ("127.0.0.1:PORT"), left open; the gRPC peer URI the
// server sees for it.
absl::StatusOr<std::string> ConnectTo(const std::string& endpoint) {
  const size_t colon = endpoint.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1))));
  inet_pton(AF_INET, endpoint.substr(0, colon).c_str(), &to.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return absl::UnavailableError(absl::StrCat("connect to ", endpoint, ": ", strerror(errno)));
  }
  return absl::StrCat("ipv4:127.0.0.1:", ntohs(local.sin_port));
}

// Microseconds per call of `fn`, over `n` calls.
double MicrosEach(int n, const std::function<void()>& fn) {
  return TimeSeconds([&] {
           for (int i = 0; i < n; ++i) fn();
         }) /
         n * 1e6;
}

}  // namespace

int Main() {
  const double seconds = absl::GetFlag(FLAGS_seconds);
  testing::TempDir dir;
  testing::WriteFileOrDie(dir.Path("ml/ds/v1/a.csv"), "1,2\n");
  auto store = OrDie(RocksStore::Open({.data_dir = dir.Path("data")}), "open store");
  auto key = OrDie(NodeKey::LoadOrCreate(dir.Path("data/key.pem")), "node key");
  Journal journal(store.get(), {.node = "bench", .key = key.get()});
  HashCache cache(store.get());
  TreeHasher hasher(DefaultFileSystem(), &cache, 1);
  RocksPinStore pin_store(store.get());
  VersionRegistry versions(&pin_store, &hasher, DefaultFileSystem(), DefaultClock(), "bench");
  PinRegistry pins(&pin_store, &journal, DefaultFileSystem(), DefaultClock(), "bench");
  FactRecorder facts(&pins, &journal);
  v1::RegisterVersionRequest add;
  add.set_dataset("ds");
  add.set_version("v1");
  add.set_path(dir.Path("ml/ds/v1"));
  OrDie(versions.Register(add, {}), "register");
  v1::PinRequest pin;
  pin.set_job("bench-job");
  v1::VersionRef* ref = pin.add_versions();
  ref->set_dataset("ds");
  ref->set_version("v1");
  Identity self = Identity::Unix(getuid(), getgid(), {});
  OrDie(pins.Pin(pin, self.Owner()), "pin");

  Authorizer auth({});
  CallerIdentities identities;
  ReproServiceParts parts;
  parts.versions = &versions;
  parts.pins = &pins;
  parts.facts = &facts;
  parts.journal = &journal;
  parts.auth = &auth;
  parts.identities = &identities;
  ReproService checked(parts);
  UncheckedService unchecked(&pins, &facts);
  GrpcServerOptions options;
  options.identities = &identities;
  options.listen = {"unix:" + dir.Path("checked.sock")};
  auto checked_server = OrDie(GrpcServer::Start(options, {&checked}), "serve checked");
  options.listen = {"unix:" + dir.Path("unchecked.sock")};
  auto unchecked_server = OrDie(GrpcServer::Start(options, {&unchecked}), "serve unchecked");
  auto before = v1::Repro::NewStub(grpc::CreateChannel("unix:" + dir.Path("unchecked.sock"),
                                                       grpc::InsecureChannelCredentials()));
  auto after = v1::Repro::NewStub(
      grpc::CreateChannel("unix:" + dir.Path("checked.sock"), grpc::InsecureChannelCredentials()));

  for (bool record : {false, true}) {
    Compare(record ? "Record" : "Admit", record, before.get(), "before checks", after.get(),
            "with checks", seconds);
  }

  // Plain loopback TCP: the same checked service; a call's caller is looked up by its connection.
  options.listen = {"127.0.0.1:0"};
  auto tcp_server = OrDie(GrpcServer::Start(options, {&checked}), "serve checked over TCP");
  const std::string tcp_endpoint = tcp_server->endpoints().front();
  auto tcp = v1::Repro::NewStub(
      grpc::CreateChannel(tcp_endpoint, grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext context;
    v1::RecordRequest request;
    request.set_job("bench-job");
    v1::Fact* fact = request.add_facts();
    fact->set_key("probe");
    fact->set_value("tcp");
    v1::RecordResponse response;
    grpc::Status status = tcp->Record(&context, request, &response);
    if (!status.ok()) {  // the owner's Record is refused unless the caller was found
      fprintf(stderr, "Record over loopback TCP: %s\n", status.error_message().c_str());
      return 1;
    }
  }
  Compare("Record", true, after.get(), "Unix socket", tcp.get(), "loopback TCP", seconds);

  // One lookup of a live connection's owner against one read of the kernel's table as text.
  const std::string caller = OrDie(ConnectTo(tcp_endpoint), "connect");
  const double lookup = MicrosEach(2000, [&] {
    if (!LoopbackTcpPeerIdentity(caller, {tcp_endpoint}).ok()) exit(1);
  });
  const double table = MicrosEach(200, [] {
    for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
    }
  });
  Report("reading /proc/net/tcp and tcp6", table, "us");
  Report("caller lookup by address pair", lookup, "us", table, "the table read");
  tcp_server->Shutdown(absl::Seconds(1));
  checked_server->Shutdown(absl::Seconds(1));
  unchecked_server->Shutdown(absl::Seconds(1));
  return 0;
}

}  // namespace repro::bench
