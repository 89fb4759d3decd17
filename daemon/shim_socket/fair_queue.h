// FairQueue: connections waiting for a worker, taken in turns by uid so that one user's thousand
// busy connections cannot push another user's one connection to the back. Two lanes: urgent work
// (a HELLO, or an open whose shim waits for its verdict) is taken before bulk reports; within a
// lane, uids take turns (round-robin) and each uid's own entries come out first-in first-out.
//
//   FairQueue<ConnectionPtr> ready;
//   ready.Push(uid, /*urgent=*/true, c);
//   while (!ready.empty()) Serve(ready.Pop());
//
// Not thread-safe: guard it with the caller's mutex.
#ifndef REPRO_DAEMON_SHIM_SOCKET_FAIR_QUEUE_H_
#define REPRO_DAEMON_SHIM_SOCKET_FAIR_QUEUE_H_

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace repro {

template <typename T>
class FairQueue {
 public:
  // Queues `item` for `uid` in the urgent or the bulk lane.
  void Push(uid_t uid, bool urgent, T item) {
    Lane& lane = lanes_[urgent ? 0 : 1];
    std::deque<T>& items = lane.by_uid[uid];
    if (items.empty()) lane.turns.push_back(uid);
    items.push_back(std::move(item));
    ++size_;
  }

  // The next item: the urgent lane first, then the bulk lane; in a lane, the uid whose turn it is.
  // Precondition: !empty().
  T Pop() {
    Lane& lane = lanes_[0].turns.empty() ? lanes_[1] : lanes_[0];
    const uid_t uid = lane.turns.front();
    lane.turns.pop_front();
    auto it = lane.by_uid.find(uid);
    T item = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) {
      lane.by_uid.erase(it);
    } else {
      lane.turns.push_back(uid);  // its next item waits for every other uid's turn
    }
    --size_;
    return item;
  }

  bool empty() const { return size_ == 0; }
  // Entries queued for `uid`, in both lanes.
  size_t SizeOf(uid_t uid) const {
    size_t n = 0;
    for (const Lane& lane : lanes_) {
      auto it = lane.by_uid.find(uid);
      if (it != lane.by_uid.end()) n += it->second.size();
    }
    return n;
  }
  size_t size() const { return size_; }
  void Clear() {
    for (Lane& lane : lanes_) lane = Lane();
    size_ = 0;
  }

 private:
  struct Lane {
    std::deque<uid_t> turns;  // uids with queued items, in the order of their turns
    absl::flat_hash_map<uid_t, std::deque<T>> by_uid;
  };
  Lane lanes_[2];  // urgent, bulk
  size_t size_ = 0;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_FAIR_QUEUE_H_
