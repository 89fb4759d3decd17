// EtcdMirror: an in-memory copy of some etcd key prefixes, kept current by Watch, so reads of
// pins, versions, heads and nodes never wait for etcd.
//
//   EtcdMirror mirror(etcd, {{"/repro/pins/", &v1::Pin::default_instance()}});
//   mirror.Start();
//   if (std::optional<MirrorRecord> r = mirror.Get("/repro/pins/train-42")) {
//     const auto& pin = static_cast<const v1::Pin&>(*r->record);
//   }
//
// How it stays current: a Range of every prefix at one revision R, then one Watch stream (with
// etcd's "hasleader" requirement, so a member cut off from its cluster ends the stream) with a
// watcher per prefix from R+1. When the stream ends — member killed, network, compaction — the
// mirror is marked not current, and it lists again and watches again, with backoff, until it
// succeeds; so a node that was cut off or restarted catches up by itself.
#ifndef REPRO_DAEMON_ETCD_ETCD_MIRROR_H_
#define REPRO_DAEMON_ETCD_ETCD_MIRROR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/etcd/etcd_client.h"
#include "google/protobuf/message.h"

namespace repro {

struct MirroredPrefix {
  std::string prefix;
  // Values under `prefix` are etcd_keys::Encode-d records of this type (a default instance; not
  // owned). Values that do not decode are left out of the mirror and logged.
  const google::protobuf::Message* prototype = nullptr;
};

struct MirrorRecord {
  std::shared_ptr<const google::protobuf::Message> record;  // of its prefix's prototype type
  int64_t mod_revision = 0;
};

// Thread-safe.
class EtcdMirror {
 public:
  // `etcd` is not owned and must outlive the mirror.
  EtcdMirror(EtcdClient* etcd, std::vector<MirroredPrefix> prefixes);
  ~EtcdMirror();
  EtcdMirror(const EtcdMirror&) = delete;
  EtcdMirror& operator=(const EtcdMirror&) = delete;

  // Starts following etcd in a background thread. Call once.
  void Start();
  // Ends the watch and joins the thread. Idempotent.
  void Stop();
  // Waits until the mirror is current (true) or `timeout` passes (false).
  bool WaitUntilCurrent(absl::Duration timeout) const;

  // The record at `key` if the mirror holds it. A miss means "not in the mirror": the key may
  // have been written a moment ago on another node, or the mirror may not be current.
  std::optional<MirrorRecord> Get(absl::string_view key) const;
  // Every mirrored record whose key starts with `prefix` (which must lie within a mirrored
  // prefix), in key order.
  std::vector<std::pair<std::string, MirrorRecord>> List(absl::string_view prefix) const;
  // Adds a record this node just wrote or read from etcd (at `mod_revision`), so reads on this
  // node see it before the watch delivers it. Older than what the mirror holds: ignored.
  void Learn(const std::string& key, std::shared_ptr<const google::protobuf::Message> record,
             int64_t mod_revision);

  // OK while the mirror is current. Otherwise asks etcd directly (a linearizable read, at most
  // once a second; concurrent callers share one probe), so a watch moving to another member does
  // not count as an outage: OK when etcd answers, else UNAVAILABLE saying which endpoints failed
  // and since when. While etcd is partitioned away a probe can take the client's call budget.
  absl::Status CheckAvailable() const;
  bool current() const;
  // One line for operators: "watching etcd at ... (revision N)" or why not.
  std::string StatusText() const;

 private:
  // Lists every prefix and follows the watch until it ends; returns why it ended.
  absl::Status SyncAndWatch();
  // Replaces the mirror's content with a fresh listing at `revision`.
  absl::Status Relist(int64_t* revision);
  // Applies one PUT (record != null) or DELETE at `mod_revision`.
  void Apply(const std::string& key, std::shared_ptr<const google::protobuf::Message> record,
             int64_t mod_revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The decoded value of `key`, or null (logged) when it does not decode.
  std::shared_ptr<const google::protobuf::Message> Decode(absl::string_view key,
                                                          absl::string_view value) const;
  void Run();

  EtcdClient* const etcd_;
  const std::vector<MirroredPrefix> prefixes_;

  mutable absl::Mutex mu_;
  std::map<std::string, MirrorRecord, std::less<>> records_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool current_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time not_current_since_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_) = "not started";
  std::string watching_ ABSL_GUARDED_BY(mu_);      // endpoint of the live watch
  grpc::ClientContext* watch_context_ ABSL_GUARDED_BY(mu_) = nullptr;  // to cancel it
  std::thread thread_;

  mutable absl::Mutex probe_mu_;  // held during CheckAvailable's direct probe of etcd
  mutable absl::Time probed_at_ ABSL_GUARDED_BY(probe_mu_) = absl::InfinitePast();
  mutable absl::Status probe_result_ ABSL_GUARDED_BY(probe_mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_ETCD_ETCD_MIRROR_H_
