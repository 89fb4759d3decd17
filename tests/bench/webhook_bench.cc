// Admission reviews per second and their latency through reprod's Kubernetes webhook, over HTTPS
// keep-alive connections (one per client), for /validate (a pinned Pod: Admit reads the pin and
// checks its versions) and /mutate (the shim's JSON Patch), against the same server answering
// GET /healthz on the same connections, same run: the ratio is the cost of admission itself
// (JSON parsing, the verdict, the answer) over TLS and HTTP framing.
//
//   webhook_bench [--seconds=3] [--clients=1,8]
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/bench/bench_util.h"
#include "tests/testutil/admission_reviews.h"
#include "tests/testutil/http_client.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(double, seconds, 3, "seconds per measurement");
ABSL_FLAG(std::string, clients, "1,8", "concurrent client counts");

namespace repro::bench {
namespace {

struct Workload {
  std::string name;
  std::string method;
  std::string path;
  std::string body;
};

// `workload` on `clients` keep-alive HTTPS connections; every answer must be 200.
ConcurrentRun Run(const testing::HttpClientOptions& options, const Workload& workload, int clients,
                  double seconds) {
  std::vector<std::unique_ptr<testing::HttpTestClient>> connections;
  for (int c = 0; c < clients; ++c) {
    auto client = testing::HttpTestClient::Connect(options);
    if (!client.ok()) {
      fprintf(stderr, "webhook_bench: %s\n", client.status().ToString().c_str());
      exit(1);
    }
    connections.push_back(*std::move(client));
  }
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"}};
  return RunConcurrently(clients, seconds, [&](int c, uint64_t) {
    auto response = connections[c]->Request(workload.method, workload.path, workload.body, headers);
    return response.ok() && response->status == 200;
  });
}

}  // namespace

int Main() {
  testing::TempDir dir;
  const double seconds = absl::GetFlag(FLAGS_seconds);
  auto certs = testing::MakeWebhookCertificates(dir.path());
  if (!certs.ok()) {
    fprintf(stderr, "webhook_bench: %s\n", certs.status().ToString().c_str());
    return 1;
  }
  const int port = testing::PickFreePort();
  testing::ReprodProcess reprod(
      dir.Path("node"), {.extra_flags = {absl::StrCat("--webhook_listen=127.0.0.1:", port),
                                         "--webhook_tls_cert=" + certs->cert,
                                         "--webhook_tls_key=" + certs->key, "--log_level=warn"}});
  if (!reprod.Start().ok()) return 1;
  testing::WriteFileOrDie(dir.Path("ml/ds/v1/a"), "a");
  if (reprod.Ctl({"version", "add", "ds", "v1", dir.Path("ml/ds/v1")}).exit_code != 0 ||
      reprod.Ctl({"pin", "bench", "ds@v1", "--owner", "k8s:ml"}).exit_code != 0) {
    return 1;
  }
  const std::string review = testing::AdmissionReviewFor(testing::TrainingPod("bench"), "u").dump();
  const std::vector<Workload> workloads = {
      {"GET /healthz (baseline)", "GET", "/healthz", ""},
      {"POST /validate, pinned Pod", "POST", "/validate", review},
      {"POST /mutate, labelled Pod", "POST", "/mutate", review}};
  std::vector<int> counts;
  for (absl::string_view n : absl::StrSplit(absl::GetFlag(FLAGS_clients), ',')) {
    int clients = 0;
    if (!absl::SimpleAtoi(n, &clients) || clients <= 0) return 1;
    counts.push_back(clients);
  }
  const testing::HttpClientOptions options{.port = port, .ca_file = certs->ca};
  // Wait until the webhook answers (it starts after the gRPC server that Start() waited for).
  for (int i = 0; i < 200 && !testing::HttpTestClient::Connect(options).ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  printf(
      "webhook_bench: %u cores, %.1f s per point, HTTPS keep-alive, "
      "review of %zu bytes\n",
      std::thread::hardware_concurrency(), seconds, review.size());
  for (int clients : counts) {
    double baseline = 0;
    for (const Workload& workload : workloads) {
      ConcurrentRun run = Run(options, workload, clients, seconds);
      if (baseline == 0) baseline = run.per_second;
      Report(absl::StrCat(workload.name, ", ", clients, " client", clients > 1 ? "s" : ""),
             run.per_second, "req/s", &workload == &workloads[0] ? 0 : baseline, "/healthz");
      printf("  latency p50 %.2f ms, p99 %.2f ms\n", run.p50_ms, run.p99_ms);
    }
  }
  return 0;
}

}  // namespace repro::bench
