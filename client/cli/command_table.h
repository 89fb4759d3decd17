// reproctl's command table: every verb and flag in one place, and the help text made from it.
// Adding a verb is one Command entry in command_table.cc plus its handler (verbs.h); a new flag
// is one FlagSpec entry.
//
//   ASSIGN_OR_RETURN(ResolvedCommand resolved, ResolveCommand(args.positional));
//   resolved.command->run(invocation);
#ifndef REPRO_CLIENT_CLI_COMMAND_TABLE_H_
#define REPRO_CLIENT_CLI_COMMAND_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/cli/arg_parser.h"
#include "client/cli/command.h"

namespace repro::cli {

// Every flag: the global ones first, then those of single commands.
absl::Span<const FlagSpec> AllFlags();
// True for flags every command takes (--addr, --output, ...).
bool IsGlobalFlag(absl::string_view name);

// The command table, in the order of `reproctl help`.
const std::vector<Command>& Commands();

struct ResolvedCommand {
  const Command* command;
  size_t words;  // how many leading positional words name it
};

// The command named by the leading words of `positional` (the longest match, so "pin show J" is
// `pin show`, and "pin J d@v" is `pin`). INVALID_ARGUMENT ("usage: ...") for no command, an
// unknown one, or a group without its subcommand ("version").
absl::StatusOr<ResolvedCommand> ResolveCommand(absl::Span<const std::string> positional);

// "reproctl pin JOB DATASET@VERSION... [--seed N] | reproctl pin JOB --like OTHER_JOB".
std::string UsageLine(const Command& command);

// The whole help: commands, global flags, exit codes.
std::string GeneralHelp();
// Help for the commands named by `words` ("pin" covers pin, pin show and pin list); the general
// help when `words` is empty. INVALID_ARGUMENT for words that name no command.
absl::StatusOr<std::string> HelpFor(absl::Span<const std::string> words);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_COMMAND_TABLE_H_
