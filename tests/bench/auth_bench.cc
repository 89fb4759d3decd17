// What authorization costs: Admit and Record latency (p50, p99) over gRPC on a Unix socket, through
// the service with its checks (ReproService: caller identity from SO_PEERCRED, the job's owner,
// the Authorizer) against the same two methods as they were before the checks, served by the
// same process from the same stores, measured alternately in one run.
//
//   auth_bench [--seconds=3] [--rounds=2]
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "daemon/auth/authorizer.h"
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
    const char* rpc = record ? "Record" : "Admit";
    std::vector<double> before_p50, before_p99, after_p50, after_p99;
    for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
      ConcurrentRun b = Measure(before.get(), record, seconds);
      ConcurrentRun a = Measure(after.get(), record, seconds);
      before_p50.push_back(b.p50_ms);
      before_p99.push_back(b.p99_ms);
      after_p50.push_back(a.p50_ms);
      after_p99.push_back(a.p99_ms);
    }
    const double b50 = Percentile(before_p50, 50), b99 = Percentile(before_p99, 50);
    Report(absl::StrCat(rpc, " p50 before checks"), b50, "ms");
    Report(absl::StrCat(rpc, " p50 with checks"), Percentile(after_p50, 50), "ms", b50, "before");
    Report(absl::StrCat(rpc, " p99 before checks"), b99, "ms");
    Report(absl::StrCat(rpc, " p99 with checks"), Percentile(after_p99, 50), "ms", b99, "before");
  }
  checked_server->Shutdown(absl::Seconds(1));
  unchecked_server->Shutdown(absl::Seconds(1));
  return 0;
}

}  // namespace repro::bench
