#include "client/cli/cli.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/cli/arg_parser.h"
#include "client/cli/command.h"
#include "client/cli/command_table.h"
#include "client/cli/exit_code.h"
#include "client/cli/format.h"
#include "client/cli/output.h"
#include "client/cli/repro_client.h"
#include "common/status_macros.h"

namespace repro::cli {
namespace {

// `status` with "usage: " in front of its message, once.
absl::Status AsUsage(const absl::Status& status) {
  if (status.ok() || absl::StartsWith(status.message(), "usage: ")) return status;
  return absl::Status(status.code(), absl::StrCat("usage: ", status.message()));
}

// The text of `reproctl ... --help`: for the command the words name, or the group, or everything.
std::string HelpText(absl::Span<const std::string> positional) {
  for (size_t n = std::min<size_t>(positional.size(), 2); n > 0; --n) {
    absl::StatusOr<std::string> help = HelpFor(positional.first(n));
    if (help.ok()) return *help;
  }
  return GeneralHelp();
}

absl::StatusOr<ConnectOptions> GetConnectOptions(const ParsedArgs& args, const Environment& env) {
  ConnectOptions options;
  if (std::optional<std::string> addr = args.Value("addr")) {
    options.address = *addr;
  } else if (env.repro_addr.has_value()) {
    options.address = *env.repro_addr;
  }
  options.tls_ca = args.Value("tls_ca").value_or("");
  options.tls_cert = args.Value("tls_cert").value_or("");
  options.tls_key = args.Value("tls_key").value_or("");
  if (std::optional<std::string> timeout = args.Value("timeout")) {
    ASSIGN_OR_RETURN(options.timeout, ParseTimeout(*timeout));
    options.timeout_given = true;
  }
  return options;
}

// Resolves, checks and runs the command of `args`. Failures are statuses; see RunCli.
absl::StatusOr<ExitCode> Run(const ParsedArgs& args, const Environment& env) {
  if (args.Bool("help")) {
    *env.out << HelpText(args.positional);
    return kExitOk;
  }
  ASSIGN_OR_RETURN(ResolvedCommand resolved, ResolveCommand(args.positional));
  const Command& command = *resolved.command;

  for (const auto& [name, values] : args.flags) {
    if (!IsGlobalFlag(name) &&
        std::find(command.flags.begin(), command.flags.end(), name) == command.flags.end()) {
      return CommandUsageError(command, absl::StrCat("--", name, " does not apply here"));
    }
  }
  std::vector<std::string> operands(args.positional.begin() + resolved.words,
                                    args.positional.end());
  std::vector<std::string> command_line;
  if (command.takes_command_line) {
    command_line = args.after_dashdash;
    if (command_line.empty()) return CommandUsageError(command, "no command after --");
  } else {
    operands.insert(operands.end(), args.after_dashdash.begin(), args.after_dashdash.end());
  }
  if (operands.size() < command.min_operands) {
    return CommandUsageError(command, "missing arguments");
  }
  if (operands.size() > command.max_operands) {
    return CommandUsageError(command, absl::StrCat("unexpected argument \"",
                                                   OneLine(operands[command.max_operands]), "\""));
  }

  absl::StatusOr<OutputFormat> format = ParseOutputFormat(args.Value("output").value_or("text"));
  if (!format.ok()) return AsUsage(format.status());
  absl::StatusOr<ConnectOptions> options = GetConnectOptions(args, env);
  if (!options.ok()) return AsUsage(options.status());
  std::unique_ptr<ReproClient> client;
  if (command.needs_daemon) {
    absl::StatusOr<std::unique_ptr<ReproClient>> connected = ReproClient::Connect(*options);
    if (!connected.ok()) {
      bool bad_flags = connected.status().code() == absl::StatusCode::kInvalidArgument;
      return bad_flags ? AsUsage(connected.status()) : connected.status();
    }
    client = *std::move(connected);
  }
  Output output(*format, env.out, env.err);
  Invocation invocation(&command, &args, std::move(operands), std::move(command_line), &output,
                        client.get(), &env);
  return command.run(invocation);
}

}  // namespace

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text) {
  absl::Duration timeout;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds) && !absl::StrContains(text, "inf") &&
      !absl::StrContains(text, "nan")) {
    timeout = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &timeout)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout takes a duration such as 30s, 2m or inf, not \"", text, "\""));
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must be more than zero (inf: no deadline)");
  }
  return timeout;
}

int RunCli(absl::Span<const std::string> args, const Environment& env) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, AllFlags());
  absl::StatusOr<ExitCode> result = parsed.ok() ? Run(*parsed, env) : AsUsage(parsed.status());
  if (result.ok()) return *result;
  std::string message = OneLine(result.status().message());
  if (message.empty()) message = absl::StatusCodeToString(result.status().code());
  *env.err << "reproctl: " << message << '\n';
  env.err->flush();
  return ExitCodeForStatus(result.status());
}

}  // namespace repro::cli
