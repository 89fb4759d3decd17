#include "client/cli/command.h"

#include "absl/strings/str_cat.h"
#include "client/cli/command_table.h"

namespace repro::cli {

absl::Status CommandUsageError(const Command& command, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("usage: ", problem, "; expected: ", UsageLine(command)));
}

}  // namespace repro::cli
