// LostItems: the one place that counts journal items reprod accepted from a process but did not
// write (a failed commit, a full queue). Whatever must follow a loss (a metric today; a `gap`
// journal entry later) hangs off OnLost.
//
//   LostItems lost(&metrics, [](absl::string_view job, absl::string_view kind, size_t n) {...});
//   journal->AppendAsync(job, std::move(items), lost.Watch(job, items));  // before the move
//   lost.OnLost(job, "loaded", 1);  // a report dropped before it became journal items
//
// Thread-safe.
#ifndef REPRO_DAEMON_STORE_LOST_ITEMS_H_
#define REPRO_DAEMON_STORE_LOST_ITEMS_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/journal.h"

namespace repro {

class LostItems {
 public:
  // Called for every loss, on the thread that noticed it; must return quickly.
  using Hook = std::function<void(absl::string_view job, absl::string_view kind, size_t count)>;

  // `metrics` may be null (not exported); it must outlive this object.
  explicit LostItems(Metrics* metrics, Hook hook = nullptr);

  // Counts `count` items of `kind` (a JournalEntry kind name such as "data_open", or "loaded" for a
  // report dropped before it was described) of `job` as lost, and calls the hook. Logs a warning
  // unless `quiet` (for a caller that rate-limits its own log lines).
  void OnLost(absl::string_view job, absl::string_view kind, size_t count, bool quiet = false);

  // A JournalDone for AppendAsync(job, items) that reports each of `items` as lost, by kind, when
  // the append fails. Call it before `items` is moved away. `quiet`: as for OnLost.
  JournalDone Watch(absl::string_view job, const std::vector<JournalItem>& items,
                    bool quiet = false);

 private:
  Metrics own_metrics_;  // used when no registry is given
  Counter* const lost_;
  const Hook hook_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_LOST_ITEMS_H_
