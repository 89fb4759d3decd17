// NodePresence: announces this node in etcd under /repro/nodes/<node> — its gRPC address and the
// public key that signs its journal heads — attached to a lease that reprod keeps alive, so
// auditors find the live nodes and the key is gone soon after the node is.
//
//   NodePresence presence(etcd, record);  // record: node, advertise_addr, public_key, ...
//   RETURN_IF_ERROR(presence.Register());  // FAILED_PRECONDITION: the name is taken
//   presence.Start();                     // keep-alive; re-registers after an outage
//   ...
//   presence.Stop();                      // revokes the lease: the node disappears now
#ifndef REPRO_DAEMON_CLUSTER_NODE_PRESENCE_H_
#define REPRO_DAEMON_CLUSTER_NODE_PRESENCE_H_

#include <cstdint>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/etcd/etcd_client.h"
#include "repro/v1/repro.pb.h"

namespace repro {

// Thread-safe.
class NodePresence {
 public:
  // `etcd` is not owned and must outlive this object. `record.node` names the key.
  NodePresence(EtcdClient* etcd, v1::NodeInfo record, absl::Duration ttl = absl::Seconds(10));
  ~NodePresence();
  NodePresence(const NodePresence&) = delete;
  NodePresence& operator=(const NodePresence&) = delete;

  // Writes the record under a new lease. FAILED_PRECONDITION when a live node with another
  // public key holds the name (two reprods must not share a node name); UNAVAILABLE when etcd
  // cannot be reached (Start keeps trying).
  absl::Status Register();
  // Keeps the lease alive in a background thread and registers again whenever it was lost.
  void Start();
  // Stops the thread and revokes the lease (best effort). Idempotent.
  void Stop();

 private:
  // One keep-alive of `lease`; the remaining TTL, <= 0 when the lease is gone.
  absl::StatusOr<int64_t> KeepAliveOnce(int64_t lease);
  void Run();

  EtcdClient* const etcd_;
  const v1::NodeInfo record_;
  const absl::Duration ttl_;

  absl::Mutex mu_;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not registered
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_CLUSTER_NODE_PRESENCE_H_
