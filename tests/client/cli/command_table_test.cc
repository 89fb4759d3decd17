#include "client/cli/command_table.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const FlagSpec* Find(absl::string_view name) {
  for (const FlagSpec& flag : AllFlags()) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

TEST(CommandTableTest, TableIsConsistent) {
  std::set<std::string> names;
  for (const Command& command : Commands()) {
    EXPECT_TRUE(names.insert(std::string(command.name)).second) << command.name;
    EXPECT_NE(command.run, nullptr) << command.name;
    EXPECT_FALSE(command.summary.empty()) << command.name;
    EXPECT_LE(command.min_operands, command.max_operands) << command.name;
    for (absl::string_view form : absl::StrSplit(command.usage, '\n')) {
      EXPECT_TRUE(absl::StartsWith(form, command.name)) << form;
    }
    for (absl::string_view flag : command.flags) {
      ASSERT_NE(Find(flag), nullptr) << command.name << " --" << flag;
      EXPECT_FALSE(IsGlobalFlag(flag)) << command.name << " --" << flag;
    }
  }
  std::set<std::string> flags;
  for (const FlagSpec& flag : AllFlags()) {
    EXPECT_TRUE(flags.insert(std::string(flag.name)).second) << flag.name;
    EXPECT_EQ(flag.kind == FlagKind::kBool, flag.value_name.empty()) << flag.name;
  }
  for (const char* global :
       {"addr", "output", "timeout", "tls_ca", "tls_cert", "tls_key", "help"}) {
    EXPECT_TRUE(IsGlobalFlag(global)) << global;
  }
  EXPECT_FALSE(IsGlobalFlag("seed"));
}

TEST(CommandTableTest, TheContractsVerbsAreThere) {
  for (const char* name : {"version add", "version show", "version list", "pin", "pin show",
                           "pin list", "admit", "record", "journal", "verify", "node", "help"}) {
    std::vector<std::string> words = absl::StrSplit(name, ' ');
    absl::StatusOr<ResolvedCommand> resolved = ResolveCommand(words);
    ASSERT_TRUE(resolved.ok()) << name;
    EXPECT_EQ(resolved->command->name, name);
    EXPECT_EQ(resolved->words, words.size());
  }
}

TEST(CommandTableTest, LongestMatchWins) {
  std::vector<std::string> show = {"pin", "show", "j"};
  EXPECT_EQ(ResolveCommand(show)->command->name, "pin show");
  std::vector<std::string> pin = {"pin", "j", "d@v"};
  absl::StatusOr<ResolvedCommand> resolved = ResolveCommand(pin);
  EXPECT_EQ(resolved->command->name, "pin");
  EXPECT_EQ(resolved->words, 1u);
}

TEST(CommandTableTest, ResolveErrors) {
  EXPECT_THAT(ResolveCommand({}).status().message(), HasSubstr("usage: no command"));
  std::vector<std::string> unknown = {"frob"};
  EXPECT_THAT(ResolveCommand(unknown).status().message(), HasSubstr("unknown command \"frob\""));
  std::vector<std::string> group = {"version"};
  EXPECT_THAT(ResolveCommand(group).status().message(),
              HasSubstr("reproctl version needs one of: add, show, list"));
  std::vector<std::string> bad_sub = {"version", "remove"};
  EXPECT_THAT(ResolveCommand(bad_sub).status().message(), HasSubstr("(not \"remove\")"));
}

TEST(CommandTableTest, UsageLine) {
  std::vector<std::string> pin = {"pin"};
  EXPECT_EQ(UsageLine(*ResolveCommand(pin)->command),
            "reproctl pin JOB DATASET@VERSION... [--seed N] | reproctl pin JOB --like OTHER_JOB");
}

TEST(CommandTableTest, Help) {
  std::string general = GeneralHelp();
  for (const Command& command : Commands()) {
    EXPECT_THAT(general, HasSubstr(std::string(command.summary)));
  }
  EXPECT_THAT(general, HasSubstr("--addr ADDR"));
  EXPECT_THAT(general, HasSubstr("exit codes"));
  EXPECT_THAT(general, Not(HasSubstr("re-read the pinned data")));  // in `help verify`

  std::vector<std::string> pin = {"pin"};
  absl::StatusOr<std::string> help = HelpFor(pin);
  ASSERT_TRUE(help.ok());
  EXPECT_THAT(*help, HasSubstr("usage: reproctl pin JOB --like OTHER_JOB"));
  EXPECT_THAT(*help, HasSubstr("usage: reproctl pin show JOB"));
  EXPECT_THAT(*help, HasSubstr("usage: reproctl pin list"));
  EXPECT_THAT(*help, HasSubstr("--seed N"));

  std::vector<std::string> verify = {"verify"};
  EXPECT_THAT(*HelpFor(verify), HasSubstr("--rehash"));
  std::vector<std::string> nothing = {"frob"};
  EXPECT_EQ(HelpFor(nothing).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*HelpFor({}), general);
}

}  // namespace
}  // namespace repro::cli
