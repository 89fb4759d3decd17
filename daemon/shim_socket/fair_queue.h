// FairQueue: connections waiting for a worker, taken in turns by uid, and within a uid by job, so
// that neither one user's thousand busy connections nor one job's flood can push another user's
// or another job's one connection to the back. Two lanes: urgent work (a HELLO, or an open whose
// shim waits for its verdict) is taken before bulk reports, but while reports wait, every
// kUrgentPerBulk-th turn in a row goes to them, so a flood of urgent work delays reports and
// cannot starve them. Within a lane, uids take turns (round-robin), each uid's turn goes to its
// jobs in turn, and each job's own entries come out first-in first-out. A uid's jobs share its
// one turn: making more jobs gains a uid nothing.
//
//   FairQueue<ConnectionPtr> ready;
//   ready.Push(uid, "job-a", /*urgent=*/true, c);
//   while (!ready.empty()) Serve(ready.Pop());
//
// Or each lane served by its own threads (reprod's shim server: urgent work at normal priority,
// bulk reports at a lower one): PopLane(urgent), and Remove + Push to move an entry whose work
// became urgent.
//
// Not thread-safe: guard it with the caller's mutex.
#ifndef REPRO_DAEMON_SHIM_SOCKET_FAIR_QUEUE_H_
#define REPRO_DAEMON_SHIM_SOCKET_FAIR_QUEUE_H_

#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace repro {

template <typename T>
class FairQueue {
 public:
  // Urgent items taken in a row while bulk items wait, before one bulk item is.
  static constexpr int kUrgentPerBulk = 8;

  // Queues `item` of `job` (any name; "" for work not yet of a job, e.g. before a HELLO) for
  // `uid` in the urgent or the bulk lane.
  void Push(uid_t uid, const std::string& job, bool urgent, T item) {
    Lane& lane = lanes_[urgent ? 0 : 1];
    Jobs& jobs = lane.by_uid[uid];
    if (jobs.turns.empty()) lane.turns.push_back(uid);
    std::deque<T>& items = jobs.by_job[job];
    if (items.empty()) jobs.turns.push_back(job);
    items.push_back(std::move(item));
    ++size_;
  }
  // Queues `item` of `uid`'s one job: uids take turns, nothing more.
  void Push(uid_t uid, bool urgent, T item) { Push(uid, std::string(), urgent, std::move(item)); }

  // The next item: the urgent lane first, then the bulk lane (or the bulk lane, after
  // kUrgentPerBulk urgent items in a row while it waited); in a lane, the uid whose turn it is,
  // and of its jobs the one whose turn it is. Precondition: !empty().
  T Pop() {
    const bool bulk_waits = !lanes_[1].turns.empty();
    const bool take_bulk =
        bulk_waits && (lanes_[0].turns.empty() || urgent_in_a_row_ >= kUrgentPerBulk);
    urgent_in_a_row_ = take_bulk || !bulk_waits ? 0 : urgent_in_a_row_ + 1;
    return PopFrom(lanes_[take_bulk ? 1 : 0]);
  }

  // The next item of one lane, in its turns. Precondition: !LaneEmpty(urgent).
  T PopLane(bool urgent) { return PopFrom(lanes_[urgent ? 0 : 1]); }
  bool LaneEmpty(bool urgent) const { return lanes_[urgent ? 0 : 1].turns.empty(); }

  // Takes `item`, queued by Push(uid, job, urgent, item), out of its lane; false when it is not
  // there. Linear in the entries of that job.
  bool Remove(uid_t uid, const std::string& job, bool urgent, const T& item) {
    Lane& lane = lanes_[urgent ? 0 : 1];
    auto uid_it = lane.by_uid.find(uid);
    if (uid_it == lane.by_uid.end()) return false;
    Jobs& jobs = uid_it->second;
    auto job_it = jobs.by_job.find(job);
    if (job_it == jobs.by_job.end()) return false;
    std::deque<T>& items = job_it->second;
    auto it = std::find(items.begin(), items.end(), item);
    if (it == items.end()) return false;
    items.erase(it);
    --size_;
    if (!items.empty()) return true;
    jobs.by_job.erase(job_it);
    jobs.turns.erase(std::find(jobs.turns.begin(), jobs.turns.end(), job));
    if (jobs.turns.empty()) {
      lane.by_uid.erase(uid_it);
      lane.turns.erase(std::find(lane.turns.begin(), lane.turns.end(), uid));
    }
    return true;
  }

  bool empty() const { return size_ == 0; }
  // Entries queued for `uid`, of all its jobs, in both lanes.
  size_t SizeOf(uid_t uid) const {
    size_t n = 0;
    for (const Lane& lane : lanes_) {
      auto it = lane.by_uid.find(uid);
      if (it == lane.by_uid.end()) continue;
      for (const auto& [job, items] : it->second.by_job) n += items.size();
    }
    return n;
  }
  size_t size() const { return size_; }
  void Clear() {
    for (Lane& lane : lanes_) lane = Lane();
    size_ = 0;
    urgent_in_a_row_ = 0;
  }

 private:
  // One uid's entries in one lane.
  struct Jobs {
    std::deque<std::string> turns;  // jobs with queued items, in the order of their turns
    absl::flat_hash_map<std::string, std::deque<T>> by_job;
  };
  struct Lane {
    std::deque<uid_t> turns;  // uids with queued items, in the order of their turns
    absl::flat_hash_map<uid_t, Jobs> by_uid;
  };

  // The next item of `lane`: its uid whose turn it is, and of that uid's jobs the one whose turn
  // it is. Precondition: the lane is not empty.
  T PopFrom(Lane& lane) {
    const uid_t uid = lane.turns.front();
    lane.turns.pop_front();
    auto uid_it = lane.by_uid.find(uid);
    Jobs& jobs = uid_it->second;
    std::string job = std::move(jobs.turns.front());
    jobs.turns.pop_front();
    auto job_it = jobs.by_job.find(job);
    T item = std::move(job_it->second.front());
    job_it->second.pop_front();
    if (job_it->second.empty()) {
      jobs.by_job.erase(job_it);
    } else {
      jobs.turns.push_back(std::move(job));  // its next item waits for the uid's other jobs
    }
    if (jobs.turns.empty()) {
      lane.by_uid.erase(uid_it);
    } else {
      lane.turns.push_back(uid);  // its next item waits for every other uid's turn
    }
    --size_;
    return item;
  }

  Lane lanes_[2];  // urgent, bulk
  size_t size_ = 0;
  int urgent_in_a_row_ = 0;  // urgent items taken since the bulk lane last had its turn
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_FAIR_QUEUE_H_
