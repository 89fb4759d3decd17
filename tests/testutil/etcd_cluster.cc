#include "tests/testutil/etcd_cluster.h"

#include <signal.h>

#include <filesystem>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "tests/testutil/temp_dir.h"

namespace repro::testing {

EtcdCluster::EtcdCluster(std::string work_dir, int members, EtcdTls tls)
    : work_dir_(std::move(work_dir)), tls_(std::move(tls)) {
  std::vector<std::string> peers;
  for (int i = 0; i < members; ++i) {
    Member member;
    member.name = absl::StrCat("m", i + 1);
    member.client_port = PickFreePort();
    member.peer_port = PickFreePort();
    peers.push_back(absl::StrCat(member.name, "=http://127.0.0.1:", member.peer_port));
    members_.push_back(std::move(member));
  }
  initial_cluster_ = absl::StrJoin(peers, ",");
}

EtcdCluster::~EtcdCluster() { KillAll(); }

std::string EtcdCluster::Endpoint(int i) const {
  return absl::StrCat("127.0.0.1:", members_[i].client_port);
}

std::string EtcdCluster::EndpointList() const {
  std::vector<std::string> all;
  for (int i = 0; i < size(); ++i) all.push_back(Endpoint(i));
  return absl::StrJoin(all, ",");
}

std::string EtcdCluster::Log(int i) const {
  std::string path = absl::StrCat(work_dir_, "/", members_[i].name, ".log");
  if (!std::filesystem::exists(path)) return "";
  std::string text = ReadFileOrDie(path);
  constexpr size_t kTail = 4000;
  return text.size() > kTail ? text.substr(text.size() - kTail) : text;
}

void EtcdCluster::Spawn(int i) {
  Member& m = members_[i];
  std::filesystem::create_directories(work_dir_);
  std::string client =
      absl::StrCat(tls_.cert.empty() ? "http" : "https", "://127.0.0.1:", m.client_port);
  std::string peer = absl::StrCat("http://127.0.0.1:", m.peer_port);
  std::vector<std::string> argv = {
      "/usr/bin/etcd", "--name", m.name, "--data-dir", absl::StrCat(work_dir_, "/", m.name),
      "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls",
      peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", initial_cluster_,
      "--initial-cluster-state", "new", "--initial-cluster-token", "repro-test",
      "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap",
      "--log-level", "warn"};
  if (!tls_.cert.empty()) {
    argv.insert(argv.end(), {"--cert-file", tls_.cert, "--key-file", tls_.key});
  }
  m.process = Process::Spawn(argv, {}, absl::StrCat(work_dir_, "/", m.name, ".log"));
}

absl::Status EtcdCluster::WaitServing(int i, absl::Time deadline) const {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!tls_.cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFileOrDie(tls_.ca);
    credentials = grpc::SslCredentials(ssl);
  }
  auto stub = etcdserverpb::KV::NewStub(grpc::CreateChannel(Endpoint(i), credentials));
  grpc::Status last;
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
    context.set_wait_for_ready(true);
    etcdserverpb::RangeRequest request;
    request.set_key("/health");
    etcdserverpb::RangeResponse response;
    last = stub->Range(&context, request, &response);  // linearizable: needs a leader
    if (last.ok()) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("etcd member ", members_[i].name, " at ",
                                                  Endpoint(i), " did not serve: ",
                                                  last.error_message(), "\nlog:\n", Log(i)));
}

absl::Status EtcdCluster::Start(absl::Duration timeout) {
  for (int i = 0; i < size(); ++i) Spawn(i);
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < size(); ++i) {
    absl::Status serving = WaitServing(i, deadline);
    if (!serving.ok()) return serving;
  }
  return absl::OkStatus();
}

void EtcdCluster::Kill(int i) { members_[i].process.Kill(SIGKILL); }

void EtcdCluster::KillAll() {
  for (int i = 0; i < size(); ++i) Kill(i);
}

absl::Status EtcdCluster::Restart(int i, absl::Duration timeout) {
  if (!members_[i].process.running()) Spawn(i);
  return WaitServing(i, absl::Now() + timeout);
}

absl::Status EtcdCluster::RestartAll(absl::Duration timeout) {
  for (int i = 0; i < size(); ++i) {
    if (!members_[i].process.running()) Spawn(i);
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < size(); ++i) {
    absl::Status serving = WaitServing(i, deadline);
    if (!serving.ok()) return serving;
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::RestartAllWaitingWithEtcdctl(absl::Duration timeout) {
  for (int i = 0; i < size(); ++i) {
    if (!members_[i].process.running()) Spawn(i);
  }
  const absl::Time deadline = absl::Now() + timeout;
  RunResult health;
  while (absl::Now() < deadline) {
    health = Ctl({"endpoint", "health"});
    if (health.exit_code == 0) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("etcd did not become healthy: ",
                                                  health.stdout_text, health.stderr_text));
}

RunResult EtcdCluster::Ctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"/usr/bin/etcdctl", "--endpoints=" + EndpointList()};
  if (!tls_.cert.empty()) argv.push_back("--cacert=" + tls_.ca);
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, {.env = {{"ETCDCTL_API", "3"}}, .timeout = absl::Seconds(30)});
}

}  // namespace repro::testing
