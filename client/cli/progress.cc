#include "client/cli/progress.h"

#include "absl/strings/str_cat.h"
#include "client/cli/format.h"

namespace repro::cli {

std::string FormatProgress(const v1::RegisterProgress& p, absl::Duration elapsed) {
  std::string files_total = p.files_total() == 0 ? "?" : absl::StrCat(p.files_total());
  std::string bytes_total = p.bytes_total() == 0 ? "?" : FormatBytes(p.bytes_total());
  double seconds = absl::ToDoubleSeconds(elapsed);
  std::string rate = seconds > 0 ? absl::StrCat(FormatBytes(static_cast<uint64_t>(
                                                    static_cast<double>(p.bytes_done()) / seconds)),
                                                "/s")
                                 : "-";
  return absl::StrCat("hashing  ", p.files_done(), "/", files_total, " files  ",
                      FormatBytes(p.bytes_done()), "/", bytes_total, "  ", rate, "  ",
                      p.files_cached(), " cached");
}

void ProgressLine::Update(const v1::RegisterProgress& progress, absl::Time now) {
  if (last_draw_.has_value() && now - *last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  std::string line = FormatProgress(progress, now - start_);
  size_t width = line.size();
  // Pad over the rest of a longer previous line instead of relying on terminal escapes.
  if (width < width_) line.append(width_ - width, ' ');
  width_ = width;
  *out_ << '\r' << line << std::flush;
}

void ProgressLine::Clear() {
  if (!last_draw_.has_value()) return;
  *out_ << '\r' << std::string(width_, ' ') << '\r' << std::flush;
  last_draw_.reset();
  width_ = 0;
}

}  // namespace repro::cli
