// A reproctl verb: its entry in the command table (Command) and what its handler gets to work
// with (Invocation), including the one helper that calls an RPC and prints the reply.
//
//   absl::StatusOr<ExitCode> RunPinShow(Invocation& inv) {
//     v1::GetPinRequest request;
//     request.set_job(inv.operands()[0]);
//     RETURN_IF_ERROR(inv.CallAndPrint(kGetPin, request, [](const v1::GetPinResponse& r) {
//                          return FormatPin(r.pin());
//                        }).status());
//     return kExitOk;
//   }
#ifndef REPRO_CLIENT_CLI_COMMAND_H_
#define REPRO_CLIENT_CLI_COMMAND_H_

#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli/arg_parser.h"
#include "client/cli/environment.h"
#include "client/cli/exit_code.h"
#include "client/cli/output.h"
#include "client/cli/repro_client.h"
#include "common/status_macros.h"

namespace repro::cli {

class Invocation;

inline constexpr size_t kAnyNumber = std::numeric_limits<size_t>::max();

// One entry of the command table (command_table.cc).
struct Command {
  absl::string_view name;                // its words, e.g. "version add"
  absl::string_view usage;               // after "reproctl "; alternative forms on separate lines
  absl::string_view summary;             // one line for `reproctl help`
  std::vector<absl::string_view> flags;  // its own flags (names from the flag table)
  size_t min_operands = 0;               // words after the command name
  size_t max_operands = 0;               // kAnyNumber: no limit
  // Does the work. Returns the exit code for outcomes that are answers (0, 3 refused, 4 tampered)
  // and a status for failures (mapped by ExitCodeForStatus).
  absl::StatusOr<ExitCode> (*run)(Invocation& invocation) = nullptr;
  bool needs_daemon = true;  // false: runs without connecting (help)
  // true: the words after "--" are a command to run and go to Invocation::command_line();
  // false: they are operands too (`reproctl pin -- show d@v` pins a job named "show").
  bool takes_command_line = false;
};

// INVALID_ARGUMENT "usage: <problem>; expected: reproctl <usage of `command`>".
absl::Status CommandUsageError(const Command& command, absl::string_view problem);

// Everything a handler needs for one run of a command. Not thread-safe.
class Invocation {
 public:
  // `client` may be null for commands that do not need the daemon. All pointers must outlive
  // this object.
  Invocation(const Command* command, const ParsedArgs* args, std::vector<std::string> operands,
             std::vector<std::string> command_line, Output* output, ReproClient* client,
             const Environment* env)
      : command_(command),
        args_(args),
        operands_(std::move(operands)),
        command_line_(std::move(command_line)),
        output_(output),
        client_(client),
        env_(env) {}

  const Command& command() const { return *command_; }
  // The flags of the whole command line (global and the command's own).
  const ParsedArgs& args() const { return *args_; }
  // The words after the command name, their count checked against the table.
  const std::vector<std::string>& operands() const { return operands_; }
  // The words after "--" for commands with takes_command_line.
  const std::vector<std::string>& command_line() const { return command_line_; }
  Output& output() { return *output_; }
  // Precondition: the command has needs_daemon.
  ReproClient& client() { return *client_; }
  const Environment& env() const { return *env_; }

  // CommandUsageError for this command.
  absl::Status UsageError(absl::string_view problem) const {
    return CommandUsageError(*command_, problem);
  }

  // Prints `message`: one JSON line with --output json, else text(message).
  template <typename Message, typename TextFn>
  absl::Status Print(const Message& message, const TextFn& text) {
    if (output_->json()) return output_->Json(message);
    output_->Text(text(message));
    return absl::OkStatus();
  }

  // Calls `rpc` and prints the reply as Print() does. Returns the reply, or the call's failure.
  template <typename Request, typename Response, typename TextFn>
  absl::StatusOr<Response> CallAndPrint(const UnaryRpc<Request, Response>& rpc,
                                        const Request& request, const TextFn& text,
                                        CallLength length = CallLength::kShort) {
    ASSIGN_OR_RETURN(Response response, client().Call(rpc, request, length));
    RETURN_IF_ERROR(Print(response, text));
    return response;
  }

  // Like CallAndPrint for list replies: with --output json, one line per element of
  // items(response) instead of one for the whole reply.
  template <typename Request, typename Response, typename ItemsFn, typename TextFn>
  absl::StatusOr<Response> CallAndPrintEach(const UnaryRpc<Request, Response>& rpc,
                                            const Request& request, const ItemsFn& items,
                                            const TextFn& text) {
    ASSIGN_OR_RETURN(Response response, client().Call(rpc, request));
    if (!output_->json()) {
      output_->Text(text(response));
      return response;
    }
    for (const auto& item : items(response)) RETURN_IF_ERROR(output_->Json(item));
    return response;
  }

 private:
  const Command* command_;
  const ParsedArgs* args_;
  std::vector<std::string> operands_;
  std::vector<std::string> command_line_;
  Output* output_;
  ReproClient* client_;
  const Environment* env_;
};

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_COMMAND_H_
