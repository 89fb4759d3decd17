// Pin latency (p50/p99) and Admit requests/s through reprod in embedded mode (RocksDB) and in
// cluster mode (a real 3-member etcd on loopback), same run; cluster figures are reported as
// ratios against embedded. A raw etcd create-if-absent transaction (what a cluster Pin adds) is
// measured too, for scale.
//
// A Pin is durable in both modes: embedded writes the pin with a synced RocksDB write; cluster
// mode commits it to etcd's raft log (fsync on a majority) — and both then journal it locally.
// Admit is served from memory in cluster mode (the watch-fed mirror).
//
//   cluster_bench [--seconds=3] [--admit_clients=8]
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "daemon/etcd/etcd_client.h"
#include "tests/bench/bench_util.h"
#include "tests/testutil/etcd_cluster.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(double, seconds, 3, "seconds per measurement");
ABSL_FLAG(int, admit_clients, 8, "concurrent Admit clients");

namespace repro::bench {
namespace {

struct ModeFigures {
  ConcurrentRun pins;    // one client pinning new jobs
  ConcurrentRun admits;  // admit_clients clients admitting one pinned job
};

// Registers a version on `reprod`, then measures Pin and Admit through its gRPC API.
ModeFigures Measure(const testing::ReprodProcess& reprod, const std::string& data_dir,
                    double seconds) {
  if (reprod.Ctl({"version", "add", "ds", "v1", data_dir}).exit_code != 0 ||
      reprod.Ctl({"pin", "admitted", "ds@v1"}).exit_code != 0) {
    fprintf(stderr, "cluster_bench: cannot register and pin\n");
    exit(1);
  }
  auto channel = grpc::CreateChannel(reprod.addr(), grpc::InsecureChannelCredentials());
  ModeFigures figures;
  auto pin_stub = v1::Repro::NewStub(channel);
  figures.pins = RunConcurrently(1, seconds, [&](int, uint64_t i) {
    v1::PinRequest request;
    request.set_job(absl::StrCat("job-", i));
    v1::VersionRef* ref = request.add_versions();
    ref->set_dataset("ds");
    ref->set_version("v1");
    grpc::ClientContext context;
    v1::PinResponse response;
    return pin_stub->Pin(&context, request, &response).ok();
  });
  const int clients = absl::GetFlag(FLAGS_admit_clients);
  std::vector<std::unique_ptr<v1::Repro::Stub>> stubs;
  for (int c = 0; c < clients; ++c) stubs.push_back(v1::Repro::NewStub(channel));
  figures.admits = RunConcurrently(clients, seconds, [&](int c, uint64_t) {
    v1::AdmitRequest request;
    request.set_job("admitted");
    grpc::ClientContext context;
    v1::AdmitResponse response;
    return stubs[c]->Admit(&context, request, &response).ok() && response.admitted();
  });
  return figures;
}

// Create-if-absent transactions straight to etcd through our client: the floor of a cluster Pin.
ConcurrentRun RawTxns(const testing::EtcdCluster& cluster, double seconds) {
  std::vector<std::string> endpoints;
  for (int i = 0; i < cluster.size(); ++i) endpoints.push_back(cluster.Endpoint(i));
  auto etcd = EtcdClient::Create({.endpoints = endpoints});
  if (!etcd.ok()) exit(1);
  return RunConcurrently(1, seconds, [&](int, uint64_t i) {
    const std::string key = absl::StrCat("/bench/txn-", i);
    etcdserverpb::TxnRequest txn;
    CompareAbsent(key, &txn);
    etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(std::string(200, 'p'));  // about a pin's size
    auto response = (*etcd)->Txn(txn);
    return response.ok() && response->succeeded();
  });
}

void Print(const std::string& mode, const ModeFigures& f, const ModeFigures* embedded) {
  Report(absl::StrCat("Pin latency p50, ", mode), f.pins.p50_ms, "ms",
         embedded ? embedded->pins.p50_ms : 0, "embedded");
  Report(absl::StrCat("Pin latency p99, ", mode), f.pins.p99_ms, "ms",
         embedded ? embedded->pins.p99_ms : 0, "embedded");
  Report(absl::StrCat("Admit, ", mode, ", ", absl::GetFlag(FLAGS_admit_clients), " clients"),
         f.admits.per_second, "req/s", embedded ? embedded->admits.per_second : 0, "embedded");
}

}  // namespace

int Main() {
  const double seconds = absl::GetFlag(FLAGS_seconds);
  testing::TempDir dir;
  testing::WriteFileOrDie(dir.Path("ml/ds/v1/a"), "a");
  testing::WriteFileOrDie(dir.Path("ml/ds/v1/b"), "b");
  printf("cluster_bench: %u cores, %.1f s per point, 3-member etcd on loopback\n",
         std::thread::hardware_concurrency(), seconds);

  ModeFigures embedded;
  {
    testing::ReprodProcess reprod(dir.Path("embedded"), {.extra_flags = {"--log_level=warn"}});
    if (!reprod.Start().ok()) return 1;
    embedded = Measure(reprod, dir.Path("ml/ds/v1"), seconds);
  }
  testing::EtcdCluster etcd(dir.Path("etcd"));
  if (absl::Status started = etcd.Start(); !started.ok()) {
    fprintf(stderr, "cluster_bench: %s\n", started.ToString().c_str());
    return 1;
  }
  ModeFigures cluster;
  {
    testing::ReprodProcess reprod(
        dir.Path("cluster"),
        {.extra_flags = {"--log_level=warn", "--etcd_endpoints=" + etcd.EndpointList(),
                         "--grpc_listen=unix:" + dir.Path("cluster/reprod.sock") +
                             ",127.0.0.1:0"}});
    if (!reprod.Start().ok()) return 1;
    cluster = Measure(reprod, dir.Path("ml/ds/v1"), seconds);
  }
  ConcurrentRun txns = RawTxns(etcd, seconds);

  Print("embedded", embedded, nullptr);
  Print("etcd", cluster, &embedded);
  Report("etcd create-if-absent txn p50 (floor)", txns.p50_ms, "ms", embedded.pins.p50_ms,
         "embedded Pin");
  return 0;
}

}  // namespace repro::bench
