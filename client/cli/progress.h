// The live progress line of `reproctl version add` on a terminal:
//
//   hashing  120/1234 files  1.2 GiB/12.3 GiB  345.6 MiB/s  100 cached
//
// redrawn in place with '\r' at most every kRedrawInterval, and wiped when hashing ends.
//
//   ProgressLine line(&std::cerr, absl::Now());
//   for (...) line.Update(progress, absl::Now());
//   line.Clear();
#ifndef REPRO_CLIENT_CLI_PROGRESS_H_
#define REPRO_CLIENT_CLI_PROGRESS_H_

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "repro/v1/repro.pb.h"

namespace repro::cli {

// The text of one progress line after `elapsed` time (no '\r', no newline). files_total 0 means the
// directory walk is still running and shows as "?".
std::string FormatProgress(const v1::RegisterProgress& progress, absl::Duration elapsed);

// Draws FormatProgress lines over each other on a terminal. Not thread-safe.
class ProgressLine {
 public:
  static constexpr absl::Duration kRedrawInterval = absl::Milliseconds(100);

  // `out` must outlive this object; `start` is when the work began (for the rate).
  ProgressLine(std::ostream* out, absl::Time start) : out_(out), start_(start) {}
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // Redraws the line for `progress` at time `now`, unless the last draw was less than
  // kRedrawInterval ago.
  void Update(const v1::RegisterProgress& progress, absl::Time now);
  // Wipes the line, leaving the cursor at the start of an empty line. No-op when nothing was drawn.
  void Clear();

 private:
  std::ostream* out_;
  absl::Time start_;
  std::optional<absl::Time> last_draw_;
  size_t width_ = 0;  // of the line on screen
};

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_PROGRESS_H_
