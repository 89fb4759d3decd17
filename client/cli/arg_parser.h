// The command line parser of reproctl: flags mixed with positional words, as in
//
//   reproctl --addr unix:/tmp/r.sock pin job-7 user_ctr@v1 --seed=42
//   reproctl run --job job-7 -- python train.py --lr 0.1
//
// Flags are long only (`--name=value` or `--name value`; `-h` is `--help`); `--` ends the flags and
// everything after it is kept apart (the command of `reproctl run`). absl::flags does not fit here:
// it is process-global and knows nothing of subcommands.
//
//   ASSIGN_OR_RETURN(ParsedArgs args, ParseArgs(argv, kKnownFlags));
//   if (args.Bool("follow")) ...
#ifndef REPRO_CLIENT_CLI_ARG_PARSER_H_
#define REPRO_CLIENT_CLI_ARG_PARSER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace repro::cli {

enum class FlagKind {
  kBool,   // --name, --name=true|false
  kValue,  // --name=V or --name V; the last one counts (so aliases can be overridden)
  kList,   // like kValue, may repeat; every value is kept in order
};

// One known flag. A name means the same thing (and has the same kind) under every command.
struct FlagSpec {
  absl::string_view name;  // without the leading "--"
  FlagKind kind;
  absl::string_view value_name;  // for usage text, e.g. "N" in "--seed N"; empty for kBool
  absl::string_view help;
};

// The words of a command line, sorted into positional words and flag values.
struct ParsedArgs {
  std::vector<std::string> positional;  // in order, before "--"
  std::vector<std::string> after_dashdash;
  bool saw_dashdash = false;
  // Flag name -> values in command-line order (kBool flags hold "true" or "false").
  std::map<std::string, std::vector<std::string>, std::less<>> flags;

  // True when the flag was given at all (even as --name=false).
  bool Has(absl::string_view name) const { return flags.find(name) != flags.end(); }
  // The value of a kBool flag; false when absent.
  bool Bool(absl::string_view name) const;
  // The last value of a kValue / kList flag, or nullopt when absent.
  std::optional<std::string> Value(absl::string_view name) const;
  // Every value of a kList flag (empty when absent).
  std::vector<std::string> Values(absl::string_view name) const;
};

// Parses `args` (argv without the program name) against `known`. Returns INVALID_ARGUMENT for an
// unknown flag, a missing value or a bad boolean.
absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> known);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_ARG_PARSER_H_
