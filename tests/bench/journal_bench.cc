// Durable journal appends per second through reprod's Record RPC with 1, 8 and 64 concurrent
// clients, against the same disk's raw rate of `write + fdatasync` in one thread, same run.
// Every Record is acknowledged only once its entry is on disk (WAL fdatasync), so appends/s
// above the fdatasync rate come from group commit.
//
// Each client has its own channel (its own connection), as separate client processes would;
// --shared_channel=true multiplexes every client on one connection instead. A client makes one
// call at a time; by default its calls are chained through gRPC's callback API, so the bench's
// own threads do not add a wake-up per call to the CPU the clients share with reprod on this
// machine (--sync_clients=true: one thread per client making blocking calls).
// Then the same clients record on RecordStream calls, one stream each (--streams=false: not),
// with up to --stream_window records unanswered per stream (1: one at a time, as above).
// CPU per operation (this process, and reprod for RPCs) is printed too: on this shared 2-core
// machine it varies less with other load than rates do.
//
//   journal_bench [--seconds=3] [--clients=1,8,64] [--shared_channel=false] [--sync_clients=false]
//                 [--streams=true] [--stream_window=1]
#include <fcntl.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "daemon/store/journal.h"
#include "tests/bench/bench_util.h"
#include "tests/testutil/http_client.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(double, seconds, 3, "seconds per measurement");
ABSL_FLAG(std::string, clients, "1,8,64", "concurrent client counts");
ABSL_FLAG(bool, shared_channel, false, "all clients on one channel (one connection)");
ABSL_FLAG(bool, sync_clients, false,
          "one thread per client making blocking calls, instead of gRPC's callback API");
ABSL_FLAG(bool, streams, true, "also measure RecordStream: each client's records on one stream");
ABSL_FLAG(int, stream_window, 1, "records a stream client may have unanswered (1: one at a time)");

namespace repro::bench {
namespace {

// write(64 bytes) + fdatasync in one thread: the rate a journal without group commit could reach.
double FdatasyncRate(const std::string& path, double seconds) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  char record[64] = {0};
  uint64_t ops = 0;
  double elapsed = TimeSeconds([&] {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (write(fd, record, sizeof(record)) != sizeof(record) || fdatasync(fd) != 0) exit(1);
      ++ops;
    }
  });
  close(fd);
  return static_cast<double>(ops) / elapsed;
}

// Appends per second, their latency, and CPU microseconds per append.
struct AppendRun : ConcurrentRun {
  double own_cpu_us = 0;     // this process
  double server_cpu_us = 0;  // reprod (RPC runs only)
};

// Runs `measure` and charges the CPU this process and `server` (when not 0) used meanwhile to
// the operations it did.
AppendRun Charged(double seconds, pid_t server, const std::function<ConcurrentRun()>& measure) {
  const double own_before = ProcessCpuSeconds(getpid());
  const double server_before = server != 0 ? ProcessCpuSeconds(server) : 0;
  AppendRun run;
  static_cast<ConcurrentRun&>(run) = measure();
  const double ops = std::max(1.0, run.per_second * seconds);
  run.own_cpu_us = (ProcessCpuSeconds(getpid()) - own_before) * 1e6 / ops;
  if (server != 0) run.server_cpu_us = (ProcessCpuSeconds(server) - server_before) * 1e6 / ops;
  return run;
}

// RunConcurrently(threads, seconds, op), Charged.
AppendRun MeasuredRun(int threads, double seconds, pid_t server,
                      const std::function<bool(int thread, uint64_t i)>& op) {
  return Charged(seconds, server, [&] { return RunConcurrently(threads, seconds, op); });
}

// A one-fact entry; the value names the appender.
v1::Fact StepFact(int thread, uint64_t i) {
  v1::Fact fact;
  fact.set_key("step");
  fact.set_value(absl::StrCat(thread, ":", i));
  return fact;
}

// One client's Record calls through gRPC's callback API, one at a time: each call's completion
// starts the next until `stop`. No thread of the bench waits per call, so the bench's own CPU per
// call is gRPC's client cost, not a thread wake-up per call. Two contexts alternate, so a call's
// context is never destroyed from its own completion.
class RecordChain {
 public:
  RecordChain(v1::Repro::Stub* stub, int client, const std::atomic<bool>* stop,
              absl::BlockingCounter* ended)
      : stub_(stub), client_(client), stop_(stop), ended_(ended) {
    request_.set_job("bench");
  }

  void Start() { Call(); }

  bool failed() const { return failed_; }
  const std::vector<double>& latencies_ms() const { return latencies_ms_; }

 private:
  void Call() {
    std::unique_ptr<grpc::ClientContext>& context = contexts_[calls_ % 2];
    context = std::make_unique<grpc::ClientContext>();
    request_.clear_facts();
    *request_.add_facts() = StepFact(client_, calls_);
    const double started = NowNs();
    stub_->async()->Record(context.get(), &request_, &response_,
                           [this, started](grpc::Status status) {
                             latencies_ms_.push_back((NowNs() - started) / 1e6);
                             ++calls_;
                             failed_ = !status.ok();
                             if (failed_ || stop_->load()) {
                               ended_->DecrementCount();
                             } else {
                               Call();
                             }
                           });
  }

  v1::Repro::Stub* const stub_;
  const int client_;
  const std::atomic<bool>* const stop_;
  absl::BlockingCounter* const ended_;
  std::unique_ptr<grpc::ClientContext> contexts_[2];
  v1::RecordRequest request_;
  v1::RecordResponse response_;
  uint64_t calls_ = 0;
  bool failed_ = false;
  std::vector<double> latencies_ms_;
};

// One client's records on one RecordStream, with up to --stream_window of them unanswered (1:
// one at a time, like RecordChain), until `stop`; then the client half-closes and, once every
// record is answered, the stream ends.
class RecordStreamChain final
    : public grpc::ClientBidiReactor<v1::RecordRequest, v1::RecordResponse> {
 public:
  RecordStreamChain(v1::Repro::Stub* stub, int client, const std::atomic<bool>* stop,
                    absl::BlockingCounter* ended)
      : stub_(stub),
        client_(client),
        window_(std::max(1, absl::GetFlag(FLAGS_stream_window))),
        stop_(stop),
        ended_(ended) {
    request_.set_job("bench");
  }

  void Start() {
    stub_->async()->RecordStream(&context_, this);
    StartRead(&response_);
    Next next;
    {
      absl::MutexLock lock(&mu_);
      next = Decide();
    }
    Act(next);
    StartCall();
  }

  bool failed() const { return failed_; }
  const std::vector<double>& latencies_ms() const { return latencies_ms_; }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    Next next;
    {
      absl::MutexLock lock(&mu_);
      latencies_ms_.push_back((NowNs() - sent_at_.front()) / 1e6);
      sent_at_.pop_front();
      next = Decide();
    }
    Act(next);
    StartRead(&response_);
  }

  void OnWriteDone(bool ok) override {
    Next next;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) return;
      next = Decide();
    }
    Act(next);
  }

  void OnDone(const grpc::Status& status) override {
    failed_ = !status.ok();
    ended_->DecrementCount();
  }

 private:
  enum class Next { kNothing, kSend, kWritesDone };

  // One write at a time; a new record while fewer than window_ are unanswered.
  Next Decide() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || closed_) return Next::kNothing;
    if (stop_->load()) {
      closed_ = true;
      return Next::kWritesDone;
    }
    if (sent_at_.size() >= static_cast<size_t>(window_)) return Next::kNothing;
    writing_ = true;
    request_.clear_facts();
    *request_.add_facts() = StepFact(client_, sent_);
    ++sent_;
    sent_at_.push_back(NowNs());
    return Next::kSend;
  }

  void Act(Next next) {
    if (next == Next::kSend) StartWrite(&request_);
    if (next == Next::kWritesDone) StartWritesDone();
  }

  v1::Repro::Stub* const stub_;
  const int client_;
  const int window_;
  const std::atomic<bool>* const stop_;
  absl::BlockingCounter* const ended_;
  grpc::ClientContext context_;
  v1::RecordRequest request_;
  v1::RecordResponse response_;
  bool failed_ = false;
  absl::Mutex mu_;
  std::vector<double> latencies_ms_ ABSL_GUARDED_BY(mu_);
  std::deque<double> sent_at_ ABSL_GUARDED_BY(mu_);  // of the unanswered records, in order
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// `clients` chains (RecordChain or RecordStreamChain) at once for `seconds`.
template <typename Chain>
ConcurrentRun ChainedRecords(const std::vector<std::unique_ptr<v1::Repro::Stub>>& stubs,
                             double seconds) {
  std::atomic<bool> stop{false};
  absl::BlockingCounter ended(static_cast<int>(stubs.size()));
  std::vector<std::unique_ptr<Chain>> chains;
  for (size_t c = 0; c < stubs.size(); ++c) {
    chains.push_back(std::make_unique<Chain>(stubs[c].get(), static_cast<int>(c), &stop, &ended));
  }
  const double start = NowNs();
  for (const std::unique_ptr<Chain>& chain : chains) chain->Start();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  ended.Wait();
  const double elapsed = (NowNs() - start) / 1e9;
  std::vector<double> latencies;
  for (const std::unique_ptr<Chain>& chain : chains) {
    if (chain->failed()) {
      fprintf(stderr, "bench: Record failed\n");
      exit(1);
    }
    latencies.insert(latencies.end(), chain->latencies_ms().begin(), chain->latencies_ms().end());
  }
  return {static_cast<double>(latencies.size()) / elapsed, Percentile(latencies, 50),
          Percentile(latencies, 99)};
}

// Record RPCs (or, with `streams`, records on RecordStreams) on one job through reprod at `addr`;
// reprod's CPU is read from `reprod_pid`.
AppendRun Appends(const std::string& addr, pid_t reprod_pid, int clients, double seconds,
                  bool streams) {
  std::vector<std::unique_ptr<v1::Repro::Stub>> stubs;
  std::shared_ptr<grpc::Channel> shared;
  for (int c = 0; c < clients; ++c) {
    std::shared_ptr<grpc::Channel> channel = shared;
    if (channel == nullptr) {
      // Channels with equal arguments share one connection unless each has its own pool.
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      channel = grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
      if (absl::GetFlag(FLAGS_shared_channel)) shared = channel;
    }
    stubs.push_back(v1::Repro::NewStub(channel));
  }
  if (absl::GetFlag(FLAGS_sync_clients) && !streams) {
    return MeasuredRun(clients, seconds, reprod_pid, [&](int c, uint64_t i) {
      v1::RecordRequest request;
      request.set_job("bench");
      *request.add_facts() = StepFact(c, i);
      grpc::ClientContext context;
      v1::RecordResponse response;
      return stubs[c]->Record(&context, request, &response).ok();
    });
  }
  if (streams) {
    return Charged(seconds, reprod_pid,
                   [&] { return ChainedRecords<RecordStreamChain>(stubs, seconds); });
  }
  return Charged(seconds, reprod_pid, [&] { return ChainedRecords<RecordChain>(stubs, seconds); });
}

// The journal engine alone: Journal::Append on one job of a RocksStore in `dir`, no gRPC. Shows
// what group commit does for the disk, apart from RPC overhead.
// With `head_log`, every signed head is also logged in the node's head log (as reprod does).
AppendRun EngineAppends(const std::string& dir, int threads, double seconds, bool head_log) {
  auto store = RocksStore::Open({.data_dir = dir});
  auto key = NodeKey::LoadOrCreate(dir + "/key.pem");
  if (!store.ok() || !key.ok()) exit(1);
  auto log = HeadLog::Open(store->get(), "bench", key->get());
  if (!log.ok()) exit(1);
  Journal journal(store->get(), {.node = "bench",
                                 .key = key->get(),
                                 .head_log = head_log ? log->get() : nullptr});
  return MeasuredRun(threads, seconds, /*server=*/0, [&](int t, uint64_t i) {
    JournalItem item;
    *item.entry.mutable_record()->add_facts() = StepFact(t, i);
    return journal.Append("bench", {std::move(item)}).ok();
  });
}

struct JournalCounters {
  double entries = 0;
  double commits = 0;
};

// The daemon's own journal counters, from its Prometheus endpoint.
JournalCounters ReadCounters(int port) {
  JournalCounters out;
  auto response = testing::HttpFetch({.port = port}, "GET", "/metrics");
  if (!response.ok()) return out;
  for (absl::string_view line : absl::StrSplit(response->body, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 2) continue;
    if (parts[0] == "repro_journal_entries_total") absl::SimpleAtod(parts[1], &out.entries);
    if (parts[0] == "repro_journal_commits_total") absl::SimpleAtod(parts[1], &out.commits);
  }
  return out;
}

}  // namespace

int Main() {
  // As reprod's main does (Debian's abseil checks lock order on every lock otherwise): the
  // engine and the clients measured here run without that debug check, like reprod.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  testing::TempDir dir;
  const double seconds = absl::GetFlag(FLAGS_seconds);
  testing::WriteFileOrDie(dir.Path("ml/ds/v1/a"), "a");
  const int metrics_port = testing::PickFreePort();
  testing::ReprodProcess reprod(
      dir.Path("node"), {.extra_flags = {absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port),
                                         "--log_level=warn"}});
  if (!reprod.Start().ok()) return 1;
  if (reprod.Ctl({"version", "add", "ds", "v1", dir.Path("ml/ds/v1")}).exit_code != 0 ||
      reprod.Ctl({"pin", "bench", "ds@v1"}).exit_code != 0) {
    return 1;
  }
  double fsyncs = FdatasyncRate(dir.Path("node/data/fsync-probe"), seconds);
  printf("journal_bench: %u cores, %.1f s per point, data dir %s\n",
         std::thread::hardware_concurrency(), seconds, reprod.data_dir().c_str());
  Report("write+fdatasync, 1 thread (baseline)", fsyncs, "ops/s");
  std::vector<int> counts;
  for (absl::string_view n : absl::StrSplit(absl::GetFlag(FLAGS_clients), ',')) {
    int clients = 0;
    if (!absl::SimpleAtoi(n, &clients) || clients <= 0) return 1;
    counts.push_back(clients);
  }
  std::map<int, double> engine;  // appends/s with heads logged, as reprod journals, by threads
  for (int threads : counts) {
    const std::string label =
        absl::StrCat("journal engine in-process, ", threads, " thread", threads > 1 ? "s" : "");
    AppendRun before = EngineAppends(dir.Path(absl::StrCat("engine-nolog-", threads)), threads,
                                     seconds, /*head_log=*/false);
    Report(label + ", no head log", before.per_second, "ops/s", fsyncs, "fdatasync");
    printf("  latency p50 %.2f ms, p99 %.2f ms; CPU %.1f us per append\n", before.p50_ms,
           before.p99_ms, before.own_cpu_us);
    AppendRun run = EngineAppends(dir.Path(absl::StrCat("engine-", threads)), threads, seconds,
                                  /*head_log=*/true);
    Report(label + ", heads logged", run.per_second, "ops/s", before.per_second,
           "no head log");
    printf("  latency p50 %.2f ms, p99 %.2f ms; CPU %.1f us per append\n", run.p50_ms,
           run.p99_ms, run.own_cpu_us);
    engine[threads] = run.per_second;
  }
  std::vector<bool> kinds = {false};  // Record calls; then RecordStream
  if (absl::GetFlag(FLAGS_streams)) kinds.push_back(true);
  for (bool streams : kinds) {
    for (int clients : counts) {
      JournalCounters before = ReadCounters(metrics_port);
      AppendRun run = Appends(reprod.addr(), reprod.pid(), clients, seconds, streams);
      JournalCounters after = ReadCounters(metrics_port);
      const std::string label =
          absl::StrCat(streams ? "RecordStream via gRPC, " : "Record RPC via gRPC, ", clients,
                       " client", clients > 1 ? "s" : "");
      Report(label, run.per_second, "ops/s", fsyncs, "fdatasync");
      Report(label, run.per_second, "ops/s", engine[clients],
             absl::StrCat("engine, ", clients, " thread", clients > 1 ? "s" : ""));
      printf("  latency p50 %.2f ms, p99 %.2f ms; %.1f entries per synced commit; CPU per record "
             "%.1f us reprod + %.1f us clients\n",
             run.p50_ms, run.p99_ms,
             (after.entries - before.entries) / std::max(1.0, after.commits - before.commits),
             run.server_cpu_us, run.own_cpu_us);
    }
  }
  return 0;
}

}  // namespace repro::bench
