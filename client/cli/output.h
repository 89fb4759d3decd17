// Where reproctl's results go: text for people or JSON lines for scripts (--output), on the
// streams the caller gives (std::cout / std::cerr in main, string streams in tests).
//
//   Output out(OutputFormat::kJson, &std::cout, &std::cerr);
//   RETURN_IF_ERROR(out.Json(response));  // one line: {"pin":{"job":"j",...},"created":true}
#ifndef REPRO_CLIENT_CLI_OUTPUT_H_
#define REPRO_CLIENT_CLI_OUTPUT_H_

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace repro::cli {

enum class OutputFormat { kText, kJson };

// Parses "text" or "json"; INVALID_ARGUMENT otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text);

// Not thread-safe. The streams must outlive it.
class Output {
 public:
  Output(OutputFormat format, std::ostream* out, std::ostream* err)
      : format_(format), out_(out), err_(err) {}

  bool json() const { return format_ == OutputFormat::kJson; }

  // Writes `message` as one line of JSON in the protobuf JSON mapping (lowerCamelCase names,
  // 64-bit integers as strings, fields with default values included), except that bytes
  // (digests, hashes, keys, signatures) are lowercase hex (hex_json.h).
  // INTERNAL if the message cannot be converted.
  absl::Status Json(const google::protobuf::Message& message);
  // Writes `message` like Json(), but indented over several lines: a document for people and
  // files (`reproctl export`).
  absl::Status JsonDocument(const google::protobuf::Message& message);
  // Writes `text` to stdout as is.
  void Text(absl::string_view text);
  // Flushes stdout (between the entries of a followed stream).
  void Flush();

  std::ostream& out() { return *out_; }
  std::ostream& err() { return *err_; }

 private:
  absl::Status WriteJson(const google::protobuf::Message& message, bool indented);

  OutputFormat format_;
  std::ostream* out_;
  std::ostream* err_;
};

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_OUTPUT_H_
