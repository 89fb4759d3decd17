#include "client/cli/command_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/format.h"
#include "client/cli/verbs.h"

namespace repro::cli {
namespace {

// Every command takes these, before or after its name.
constexpr FlagSpec kGlobalFlags[] = {
    {"addr", FlagKind::kValue, "ADDR",
     "reprod's address, unix:/path or host:port (default $REPRO_ADDR, else "
     "unix:/run/reprod/reprod.sock)"},
    {"output", FlagKind::kValue, "text|json",
     "text for people (default) or json: one JSON object per line, the reply or each item of a "
     "list (protobuf JSON mapping)"},
    {"timeout", FlagKind::kValue, "DURATION",
     "deadline of each call, e.g. 30s, 2m, inf (default 30s; `version add`, `verify --rehash` and "
     "`journal --follow` have none unless this is given)"},
    {"tls_ca", FlagKind::kValue, "FILE", "PEM CA that signed reprod's certificate (TLS over TCP)"},
    {"tls_cert", FlagKind::kValue, "FILE", "PEM client certificate for mTLS (with --tls_key)"},
    {"tls_key", FlagKind::kValue, "FILE", "PEM key of --tls_cert"},
    {"help", FlagKind::kBool, "", "show help (also -h)"},
};

// Flags of single commands; Command::flags names them. A name means the same under every command.
constexpr FlagSpec kCommandFlags[] = {
    {"files", FlagKind::kBool, "", "list every file instead of the summary"},
    {"seed", FlagKind::kValue, "N",
     "the job's seed (default: derived from the job and the data digests)"},
    {"like", FlagKind::kValue, "OTHER_JOB", "copy the versions and the seed of another job"},
    {"owner", FlagKind::kValue, "OWNER",
     "admins: pin for another identity (uid:1000, cert:NAME, k8s:NAMESPACE)"},
    {"follow", FlagKind::kBool, "", "keep printing new entries until interrupted (Ctrl-C)"},
    {"since", FlagKind::kValue, "SEQ", "only entries after sequence number SEQ"},
    {"rehash", FlagKind::kBool, "", "also re-read the pinned data and report drift"},
    {"against", FlagKind::kValue, "EXPORT.json",
     "an earlier `reproctl export` of the job: prove the journal only grew since (exit 4 on a "
     "rollback, a truncation or a deleted job); its node keys are then the trusted ones"},
    {"trusted_keys", FlagKind::kValue, "FILE",
     "lines \"NODE HEX_PUBLIC_KEY\": the node keys to check signatures against (default: the "
     "keys pinned on first use in ~/.config/repro/known_nodes)"},
    {"job", FlagKind::kValue, "JOB", "the job the command runs as"},
    {"mode", FlagKind::kValue, "record|enforce",
     "record (default): journal what the job reads; enforce: also refuse other versions and "
     "changed files"},
    {"pin", FlagKind::kList, "DATASET@VERSION",
     "pin the job first (repeat, or separate with commas, for several datasets)"},
    {"isolate", FlagKind::kBool, "",
     "run CMD in a private mount namespace where each pinned dataset root shows only the pinned "
     "version (under every alias; other versions absent in enforce mode), so that programs the "
     "shim cannot see read it too; needs root or user namespaces"},
    {"format", FlagKind::kValue, "repro|in-toto|runtime-trace|openlineage",
     "repro (default): repro's document; in-toto: SLSA Provenance v1 statement; runtime-trace: "
     "every file read; openlineage: START and COMPLETE RunEvents"},
    {"sign", FlagKind::kBool, "", "have reprod sign the statement with its node key (DSSE)"},
    {"subject", FlagKind::kList, "GLOB",
     "files the job wrote that the statement is about, e.g. 'ckpt/*.pt' (repeatable)"},
    {"public_key", FlagKind::kList, "HEX",
     "trust this raw Ed25519 key (64 hex digits; repeatable); default: the node's key"},
};

// One entry per verb: name, usage, summary, own flags, operand count (min, max), handler, and
// where needed needs_daemon / takes_command_line.
std::vector<Command>* MakeCommands() {
  // clang-format off
  return new std::vector<Command>{
      {"version add", "version add DATASET VERSION PATH",
       "hash every file under PATH and register it as DATASET@VERSION",
       {}, 3, 3, RunVersionAdd},
      {"version show", "version show DATASET@VERSION [--files]",
       "a version's digest, path and size, or its files",
       {"files"}, 1, 1, RunVersionShow},
      {"version list", "version list [DATASET]",
       "registered versions",
       {}, 0, 1, RunVersionList},
      {"pin", "pin JOB DATASET@VERSION... [--seed N]\npin JOB --like OTHER_JOB",
       "pin a job to data versions and a seed (the same pin again changes nothing)",
       {"seed", "like", "owner"}, 1, kAnyNumber, RunPin},
      {"pin show", "pin show JOB",
       "a job's pin",
       {}, 1, 1, RunPinShow},
      {"pin list", "pin list",
       "every pinned job",
       {}, 0, 0, RunPinList},
      {"admit", "admit JOB",
       "would a scheduler admit the job? (exit 3 and the reason if not)",
       {}, 1, 1, RunAdmit},
      {"record", "record JOB KEY=VALUE...",
       "journal custom facts: code commit, hyper-parameters",
       {}, 2, kAnyNumber, RunRecord},
      {"journal", "journal JOB [--follow] [--since SEQ]",
       "print a job's journal, oldest first",
       {"follow", "since"}, 1, 1, RunJournal},
      {"verify", "verify JOB [--rehash] [--against EXPORT.json] [--trusted_keys FILE]",
       "check a job's hash chain, signatures and head log here, against trusted node keys "
       "(exit 4 if broken, rolled back or drifted)",
       {"rehash", "against", "trusted_keys"}, 1, 1, RunVerify},
      {"diff", "diff JOB_A JOB_B",
       "what differs between two runs: data, seeds, libraries, GPU, ... (exit 1 if anything)",
       {}, 2, 2, RunDiff},
      {"export", "export JOB [--format FORMAT] [--sign] [--subject GLOB...]",
       "the run's provenance as one JSON document, to keep beside the model",
       {"format", "sign", "subject"}, 1, 1, RunExport},
      {"verify-export", "verify-export FILE [--public_key HEX...]",
       "check a signed export (DSSE envelope): signature and statement (exit 4 if bad)",
       {"public_key"}, 1, 1, RunVerifyExport},
      {"run",
       "run --job JOB [--mode record|enforce] [--pin DATASET@VERSION...] [--seed N] [--isolate] "
       "-- CMD...",
       "pin if asked, then run CMD under the shim: it reads the pinned data, its opens are "
       "journaled",
       {"job", "mode", "pin", "seed", "isolate"}, 0, 0, RunRun, /*needs_daemon=*/true,
       /*takes_command_line=*/true},
      {"node", "node",
       "this node's name, mode, public key and host",
       {}, 0, 0, RunNode},
      {"help", "help [COMMAND]",
       "show help",
       {}, 0, kAnyNumber, RunHelp, /*needs_daemon=*/false},
  };
  // clang-format on
}

std::vector<absl::string_view> Words(absl::string_view name) {
  return absl::StrSplit(name, ' ', absl::SkipEmpty());
}

// True when the first words of `words` are `prefix`.
template <typename A, typename B>
bool StartsWithWords(const A& words, const B& prefix) {
  if (prefix.size() > words.size()) return false;
  return std::equal(prefix.begin(), prefix.end(), words.begin());
}

std::vector<absl::string_view> Forms(const Command& command) {
  return absl::StrSplit(command.usage, '\n');
}

const FlagSpec* FindFlag(absl::string_view name) {
  for (const FlagSpec& flag : AllFlags()) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

std::string FlagUsage(const FlagSpec& flag) {
  return flag.value_name.empty() ? absl::StrCat("--", flag.name)
                                 : absl::StrCat("--", flag.name, " ", flag.value_name);
}

std::string FlagTable(absl::Span<const FlagSpec* const> flags) {
  Table table({"", ""});
  for (const FlagSpec* flag : flags) {
    table.AddRow({absl::StrCat("  ", FlagUsage(*flag)), std::string(flag->help)});
  }
  std::string rendered = table.Render();
  return rendered.substr(rendered.find('\n') + 1);  // drop the empty header
}

std::vector<const FlagSpec*> GlobalFlags() {
  std::vector<const FlagSpec*> out;
  for (const FlagSpec& flag : kGlobalFlags) out.push_back(&flag);
  return out;
}

// One help block for `command`: forms, summary, flags.
std::string CommandHelp(const Command& command) {
  std::string out;
  for (absl::string_view form : Forms(command)) {
    absl::StrAppend(&out, "usage: reproctl ", form, "\n");
  }
  absl::StrAppend(&out, "  ", command.summary, "\n");
  std::vector<const FlagSpec*> flags;
  for (absl::string_view name : command.flags) {
    if (const FlagSpec* flag = FindFlag(name); flag != nullptr) flags.push_back(flag);
  }
  if (!flags.empty()) absl::StrAppend(&out, FlagTable(flags));
  return out;
}

}  // namespace

absl::Span<const FlagSpec> AllFlags() {
  static const std::vector<FlagSpec>* const kAll = [] {
    auto* all = new std::vector<FlagSpec>(std::begin(kGlobalFlags), std::end(kGlobalFlags));
    all->insert(all->end(), std::begin(kCommandFlags), std::end(kCommandFlags));
    return all;
  }();
  return *kAll;
}

bool IsGlobalFlag(absl::string_view name) {
  for (const FlagSpec& flag : kGlobalFlags) {
    if (flag.name == name) return true;
  }
  return false;
}

const std::vector<Command>& Commands() {
  static const std::vector<Command>* const kCommands = MakeCommands();
  return *kCommands;
}

absl::StatusOr<ResolvedCommand> ResolveCommand(absl::Span<const std::string> positional) {
  if (positional.empty()) {
    return absl::InvalidArgumentError("usage: no command given; see 'reproctl help'");
  }
  const Command* best = nullptr;
  size_t best_words = 0;
  for (const Command& command : Commands()) {
    std::vector<absl::string_view> words = Words(command.name);
    if (words.size() > best_words && StartsWithWords(positional, words)) {
      best = &command;
      best_words = words.size();
    }
  }
  if (best != nullptr) return ResolvedCommand{best, best_words};

  // A group such as "version": name its subcommands.
  std::vector<std::string> subcommands;
  for (const Command& command : Commands()) {
    std::vector<absl::string_view> words = Words(command.name);
    if (words.size() > 1 && words[0] == positional[0]) subcommands.emplace_back(words[1]);
  }
  if (!subcommands.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "usage: reproctl ", positional[0], " needs one of: ", absl::StrJoin(subcommands, ", "),
        positional.size() > 1 ? absl::StrCat(" (not \"", positional[1], "\")") : ""));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("usage: unknown command \"", OneLine(positional[0]), "\"; see 'reproctl help'"));
}

std::string UsageLine(const Command& command) {
  std::vector<std::string> forms;
  for (absl::string_view form : Forms(command)) forms.push_back(absl::StrCat("reproctl ", form));
  return absl::StrJoin(forms, " | ");
}

std::string GeneralHelp() {
  Table commands({"", ""});
  for (const Command& command : Commands()) {
    std::vector<absl::string_view> forms = Forms(command);
    for (size_t i = 0; i < forms.size(); ++i) {
      commands.AddRow({absl::StrCat("  ", forms[i]), i == 0 ? std::string(command.summary) : ""});
    }
  }
  std::string command_lines = commands.Render();
  return absl::StrCat(
      "reproctl: the command line of reprod, which makes training jobs reproducible\n\n",
      "usage: reproctl [FLAGS] COMMAND [ARGS...] [FLAGS]\n\n", "commands:\n",
      command_lines.substr(command_lines.find('\n') + 1), "\nflags for every command:\n",
      FlagTable(GlobalFlags()),
      "\nexit codes: 0 ok, 1 usage or other error, 2 conflicting pin or version content,\n"
      "  3 admission refused, 4 journal broken or data drifted, 5 unknown job or version,\n"
      "  6 permission denied by reprod (the reason is on stderr)\n\n"
      "'reproctl help COMMAND' shows a command's own flags. '--' ends the flags.\n");
}

absl::StatusOr<std::string> HelpFor(absl::Span<const std::string> words) {
  if (words.empty()) return GeneralHelp();
  std::vector<std::string> blocks;
  for (const Command& command : Commands()) {
    if (StartsWithWords(Words(command.name), words)) blocks.push_back(CommandHelp(command));
  }
  if (blocks.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "usage: no command \"", OneLine(absl::StrJoin(words, " ")), "\"; see 'reproctl help'"));
  }
  return absl::StrCat(absl::StrJoin(blocks, "\n"),
                      "\nFlags for every command (--addr, --output, ...): 'reproctl help'.\n");
}

absl::StatusOr<ExitCode> RunHelp(Invocation& inv) {
  ASSIGN_OR_RETURN(std::string help, HelpFor(inv.operands()));
  inv.output().Text(help);
  return kExitOk;
}

}  // namespace repro::cli
