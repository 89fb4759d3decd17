// EtcdCluster: a real N-member etcd cluster (Debian's /usr/bin/etcd) on loopback, for tests of
// cluster mode. Members can be killed and restarted one by one or all at once.
//
//   TempDir dir;
//   EtcdCluster etcd(dir.Path("etcd"));
//   ASSERT_TRUE(etcd.Start().ok());
//   ReprodOptions node{.extra_flags = {"--etcd_endpoints=" + etcd.EndpointList()}};
//   etcd.Kill(0);                       // SIGKILL member 0
//   ASSERT_TRUE(etcd.Restart(0).ok());  // same data dir: it rejoins
//   RunResult keys = etcd.Ctl({"get", "--prefix", "/repro/", "--keys-only"});
//
// Members run with fsync on (etcd 3.4 cannot turn it off) and etcd's default raft timings
// (heartbeat 100 ms, election 1 s): shorter ones make elections flap on a loaded 2-core CI
// machine. A cluster starts and elects a leader in a second or two.
#ifndef REPRO_TESTS_TESTUTIL_ETCD_CLUSTER_H_
#define REPRO_TESTS_TESTUTIL_ETCD_CLUSTER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/testutil/subprocess.h"

namespace repro::testing {

// TLS on the members' client URLs (peers stay plaintext on loopback): PEM files of the CA that
// signed `cert` (SAN IP:127.0.0.1) and of the members' certificate and key.
struct EtcdTls {
  std::string ca;
  std::string cert;
  std::string key;
};

// Not thread-safe.
class EtcdCluster {
 public:
  // Data and logs live under `work_dir`, which must outlive this object. With `tls.cert`, clients
  // connect over TLS (Ctl too).
  explicit EtcdCluster(std::string work_dir, int members = 3, EtcdTls tls = {});
  ~EtcdCluster();  // kills every member
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Starts every member and waits until the cluster serves linearizable reads.
  absl::Status Start(absl::Duration timeout = absl::Seconds(30));
  // SIGKILLs member `i`.
  void Kill(int i);
  void KillAll();
  // Starts member `i` again on its data dir and waits until it serves (with the cluster).
  absl::Status Restart(int i, absl::Duration timeout = absl::Seconds(30));
  // Starts every stopped member and waits until the cluster serves.
  absl::Status RestartAll(absl::Duration timeout = absl::Seconds(30));
  // The same, waiting with etcdctl in another process: this process makes no gRPC call meanwhile,
  // so a test sees what its own clients do by themselves (a gRPC call waiting here would drive
  // every channel of the process).
  absl::Status RestartAllWaitingWithEtcdctl(absl::Duration timeout = absl::Seconds(30));

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:port" of member `i`'s client URL.
  std::string Endpoint(int i) const;
  // Every member's endpoint, comma-separated: the value of --etcd_endpoints.
  std::string EndpointList() const;
  // Runs `ETCDCTL_API=3 etcdctl --endpoints=<all> args...`.
  RunResult Ctl(const std::vector<std::string>& args) const;
  // The end of member `i`'s log, for failure messages.
  std::string Log(int i) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    Process process;
  };
  void Spawn(int i);
  // Waits until member `i` answers a linearizable read.
  absl::Status WaitServing(int i, absl::Time deadline) const;

  const std::string work_dir_;
  const EtcdTls tls_;
  std::vector<Member> members_;
  std::string initial_cluster_;
};

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_ETCD_CLUSTER_H_
