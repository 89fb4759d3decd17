#include "client/cli/arg_parser.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace repro::cli {
namespace {

const FlagSpec* FindFlag(absl::Span<const FlagSpec> known, absl::string_view name) {
  for (const FlagSpec& spec : known) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

absl::StatusOr<std::string> ParseBool(absl::string_view name, absl::string_view value) {
  if (value == "true" || value == "1" || value == "yes") return std::string("true");
  if (value == "false" || value == "0" || value == "no") return std::string("false");
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, " takes true or false, not \"", value, "\""));
}

}  // namespace

bool ParsedArgs::Bool(absl::string_view name) const {
  std::optional<std::string> value = Value(name);
  return value.has_value() && *value == "true";
}

std::optional<std::string> ParsedArgs::Value(absl::string_view name) const {
  auto it = flags.find(name);
  if (it == flags.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::Values(absl::string_view name) const {
  auto it = flags.find(name);
  return it == flags.end() ? std::vector<std::string>() : it->second;
}

absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> known) {
  ParsedArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      out.saw_dashdash = true;
      out.after_dashdash.assign(args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "-h") arg = "--help";
    if (arg.size() < 2 || arg[0] != '-') {  // "-" alone is a word too (stdin, by convention)
      out.positional.emplace_back(arg);
      continue;
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag ", arg, " (flags are long: --name=value)"));
    }
    absl::string_view name = arg;
    std::optional<absl::string_view> inline_value;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    const FlagSpec* spec = FindFlag(known, name);
    if (spec == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));

    std::string value;
    if (spec->kind == FlagKind::kBool) {
      if (inline_value.has_value()) {
        absl::StatusOr<std::string> parsed = ParseBool(name, *inline_value);
        if (!parsed.ok()) return parsed.status();
        value = *std::move(parsed);
      } else {
        value = "true";
      }
    } else if (inline_value.has_value()) {
      value = std::string(*inline_value);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " needs a value (--", name, " ", spec->value_name, ")"));
    }

    std::vector<std::string>& values = out.flags[std::string(name)];
    if (spec->kind != FlagKind::kList) values.clear();
    values.push_back(std::move(value));
  }
  return out;
}

}  // namespace repro::cli
