#include "daemon/shim_socket/process_ends.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr uint64_t kWakeToken = 0;

std::string ProcessId(absl::string_view job, absl::string_view key) {
  return absl::StrCat(job, absl::string_view("\0", 1), key);
}

}  // namespace

int ProcessEnds::OpenPidfd(pid_t pid) {
  if (pid <= 0) return -1;
  // PIDFD_NONBLOCK is not needed (the fd is only polled); pidfds are always close-on-exec.
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

ProcessEnds::ProcessEnds(Options options, OnGone on_gone)
    : options_(options), on_gone_(std::move(on_gone)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    spdlog::error("shim socket: cannot watch process ends: {}", PosixError(errno, "").ToString());
    absl::MutexLock lock(&mu_);
    stopped_ = true;  // nothing is watched
    return;
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeToken;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  thread_ = std::thread([this] { Loop(); });
}

ProcessEnds::~ProcessEnds() {
  Stop();
  for (int fd : {epoll_fd_, wake_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void ProcessEnds::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (auto& [id, w] : watched_) {
    if (w.pidfd >= 0) close(w.pidfd);
  }
  watched_.clear();
  by_token_.clear();
}

void ProcessEnds::Connected(pid_t pid) {
  absl::MutexLock lock(&mu_);
  ++pids_[pid].open;
}

void ProcessEnds::Started(pid_t pid, absl::string_view job, absl::string_view key,
                          uint64_t link) {
  const std::string id = ProcessId(job, key);
  absl::MutexLock lock(&mu_);
  auto watched = watched_.find(id);
  if (watched != watched_.end() && watched->second.link < link) Unwatch(id);  // it came back
  auto state = pids_.find(pid);
  if (state == pids_.end()) return;  // not connected: not called so
  uint64_t& latest = state->second.latest_link[id];
  latest = std::max(latest, link);
}

void ProcessEnds::Disconnected(End end) {
  absl::MutexLock lock(&mu_);
  auto pid = pids_.find(end.pid);
  if (pid == pids_.end() || stopped_) {
    if (end.pidfd >= 0) close(end.pidfd);
    return;
  }
  if (!end.job.empty()) {
    const std::string id = ProcessId(end.job, end.key);
    auto latest = pid->second.latest_link.find(id);
    const bool last = latest == pid->second.latest_link.end() || end.link >= latest->second;
    if (last && !end.counted) {
      Watch(id, end);
    } else if (last) {
      Unwatch(id);  // an older connection's end, handled before this one
    }
  }
  if (end.pidfd >= 0) close(end.pidfd);  // not taken by Watch
  if (--pid->second.open == 0) pids_.erase(pid);
}

void ProcessEnds::Watch(const std::string& id, End& end) {
  auto existing = watched_.find(id);
  if (existing != watched_.end()) {
    if (existing->second.link > end.link) return;
    Unwatch(id);
  }
  Watched w;
  w.gone = Gone{.job = end.job, .key = end.key, .pid = end.pid, .made = end.made};
  w.uid = end.uid;
  w.link = end.link;
  w.token = next_token_++;
  if (end.pidfd >= 0) {
    size_t& of_uid = pidfds_per_uid_[end.uid];
    if (pidfds_ >= options_.max_watched || of_uid >= options_.max_watched_per_uid) {
      ++over_cap_;
      if ((over_cap_ & (over_cap_ - 1)) == 0) {  // logged the 1st, 2nd, 4th, 8th... time
        spdlog::warn("shim socket: {} processes (of uid {}: {}) watched for their end; pid {} is "
                     "taken as ended now ({} so far)",
                     pidfds_, end.uid, of_uid, end.pid, over_cap_);
      }
      w.gone_at = absl::InfinitePast();  // due at once, whatever connections its pid holds
    } else {
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u64 = w.token;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, end.pidfd, &event) == 0) {
        w.pidfd = end.pidfd;
        end.pidfd = -1;
        ++pidfds_;
        ++of_uid;
      }
    }
    if (of_uid == 0) pidfds_per_uid_.erase(end.uid);
  }
  if (w.pidfd < 0 && !w.gone_at) w.gone_at = absl::Now();  // nothing to watch: gone now
  // A pidfd joins the epoll set the thread waits on; a process already due needs its timer.
  const bool due = w.gone_at.has_value();
  by_token_[w.token] = id;
  watched_[id] = std::move(w);
  if (due) Wake();
}

void ProcessEnds::Unwatch(const std::string& id) {
  auto w = watched_.find(id);
  if (w == watched_.end()) return;
  if (w->second.pidfd >= 0) {
    close(w->second.pidfd);  // closing removes it from epoll
    --pidfds_;
    auto of_uid = pidfds_per_uid_.find(w->second.uid);
    if (of_uid != pidfds_per_uid_.end() && --of_uid->second == 0) pidfds_per_uid_.erase(of_uid);
  }
  by_token_.erase(w->second.token);
  watched_.erase(w);
}

size_t ProcessEnds::watched() const {
  absl::MutexLock lock(&mu_);
  return watched_.size();
}

void ProcessEnds::Wake() {
  if (wake_fd_ < 0) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

std::vector<ProcessEnds::Gone> ProcessEnds::TakeDue(absl::Time now, absl::Time* next) {
  std::vector<Gone> due;
  std::vector<std::string> done;
  *next = absl::InfiniteFuture();
  for (auto& [id, w] : watched_) {
    if (!w.gone_at) continue;
    if (now < *w.gone_at + options_.settle) {
      *next = std::min(*next, *w.gone_at + options_.settle);
      continue;
    }
    auto pid = pids_.find(w.gone.pid);
    if (w.gone.pid != 0 && *w.gone_at != absl::InfinitePast() && pid != pids_.end() &&
        pid->second.open > 0) {
      w.gone_at = now;  // a connection it made may still say more: look again later
      *next = std::min(*next, now + options_.settle);
      continue;
    }
    due.push_back(w.gone);
    done.push_back(id);
  }
  for (const std::string& id : done) Unwatch(id);
  return due;
}

void ProcessEnds::Loop() {
  epoll_event events[64];
  for (;;) {
    std::vector<Gone> due;
    absl::Time next;
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
      due = TakeDue(absl::Now(), &next);
    }
    for (const Gone& gone : due) on_gone_(gone);
    int timeout_ms = -1;
    if (next != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(
          std::clamp<int64_t>(absl::ToInt64Milliseconds(next - absl::Now()) + 1, 0, 60000));
    }
    const int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("shim socket: watching process ends failed: {}",
                    PosixError(errno, "epoll_wait").ToString());
      return;
    }
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < n; ++i) {
      const uint64_t token = events[i].data.u64;
      if (token == kWakeToken) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof(count));
        continue;
      }
      auto id = by_token_.find(token);
      if (id == by_token_.end()) continue;  // unwatched meanwhile
      Watched& w = watched_[id->second];
      w.gone_at = absl::Now();  // the process exited
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.pidfd, nullptr);
    }
  }
}

}  // namespace repro
