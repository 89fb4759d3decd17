#include "daemon/store/lost_items.h"

#include <map>
#include <utility>

#include "spdlog/spdlog.h"

namespace repro {

LostItems::LostItems(Metrics* metrics, Hook hook)
    : lost_((metrics != nullptr ? metrics : &own_metrics_)
                ->GetCounter("repro_shim_journal_errors_total",
                             "Shim reports that could not be journaled.")),
      hook_(std::move(hook)) {}

void LostItems::OnLost(absl::string_view job, absl::string_view kind, size_t count, bool quiet) {
  if (count == 0) return;
  lost_->Increment(count);
  if (!quiet) {
    spdlog::warn("journal: {} {} item(s) of job {} were not journaled", count, std::string(kind),
                 std::string(job));
  }
  if (hook_) hook_(job, kind, count);
}

JournalDone LostItems::Watch(absl::string_view job, const std::vector<JournalItem>& items,
                             bool quiet) {
  std::map<std::string, size_t> kinds;  // kind name -> items
  for (const JournalItem& item : items) {
    const google::protobuf::FieldDescriptor* field =
        item.entry.GetDescriptor()->FindFieldByNumber(item.entry.kind_case());
    ++kinds[field != nullptr ? field->name() : "unknown"];
  }
  return [this, job = std::string(job), kinds = std::move(kinds),
          quiet](const absl::Status& status) {
    if (status.ok()) return;
    if (!quiet) spdlog::warn("journal: cannot journal for job {}: {}", job, status.ToString());
    for (const auto& [kind, count] : kinds) OnLost(job, kind, count, quiet);
  };
}

}  // namespace repro
