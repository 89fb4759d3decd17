#include "client/cli/output.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "client/cli/hex_json.h"
#include "common/status_macros.h"

namespace repro::cli {

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text) {
  if (text == "text") return OutputFormat::kText;
  if (text == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--output must be text or json, not \"", text, "\""));
}

absl::Status Output::Json(const google::protobuf::Message& message) {
  return WriteJson(message, /*indented=*/false);
}

absl::Status Output::JsonDocument(const google::protobuf::Message& message) {
  return WriteJson(message, /*indented=*/true);
}

absl::Status Output::WriteJson(const google::protobuf::Message& message, bool indented) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = indented;
  options.always_print_primitive_fields = true;
  ASSIGN_OR_RETURN(std::string json, MessageToHexJson(message, options));
  if (!json.empty() && json.back() == '\n') json.pop_back();  // indented output ends in one
  *out_ << json << '\n';
  return absl::OkStatus();
}

void Output::Text(absl::string_view text) { *out_ << text; }

void Output::Flush() { out_->flush(); }

}  // namespace repro::cli
