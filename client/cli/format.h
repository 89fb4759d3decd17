// Small text formatting pieces for reproctl's human output: sizes, digests, times, quoting,
// aligned tables and key/value blocks.
//
//   FormatBytes(1536)             -> "1.5 KiB"
//   ShortDigest(digest)           -> "9f86d081884c"
//   Table t({"DATASET", "FILES"}); t.AlignRight(1); t.AddRow({"user_ctr", "12"});
//   out << t.Render();            // "DATASET   FILES\nuser_ctr     12\n"
#ifndef REPRO_CLIENT_CLI_FORMAT_H_
#define REPRO_CLIENT_CLI_FORMAT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"

namespace repro::cli {

inline constexpr size_t kShortDigestLength = 12;

// Binary-prefixed size: "0 B", "1023 B", "1.0 KiB", "12.3 MiB", ... up to EiB. `separator` goes
// between number and unit ("" gives "1.5KiB", for key=value summaries).
std::string FormatBytes(uint64_t bytes, absl::string_view separator = " ");

// Lower-case hex of a raw digest; "-" for an empty one.
std::string FullDigest(absl::string_view digest);
// The first kShortDigestLength hex characters of a raw digest; "-" for an empty one.
std::string ShortDigest(absl::string_view digest);

// UTC RFC 3339 time ("2025-01-08T10:00:00Z", with .mmm when `millis`); "-" when unset.
std::string FormatTime(const google::protobuf::Timestamp& time, bool millis = false);

// Seconds as "0.42s", "12.3s", "3m05s", "2h01m".
std::string FormatSeconds(double seconds);

// `s` as is when it is a plain token; otherwise C-escaped in double quotes (empty, spaces, '"',
// '=', control or non-ASCII bytes), so key=value summaries stay one unambiguous line.
std::string QuoteIfNeeded(absl::string_view s);

// `s` with line breaks and other control characters replaced by spaces (one-line messages).
std::string OneLine(absl::string_view s);

// Columns aligned with two spaces between them; trailing spaces trimmed. Not thread-safe.
class Table {
 public:
  explicit Table(std::vector<std::string> header);

  // Right-aligns column `column` (numbers).
  void AlignRight(size_t column);
  // Adds a row; missing cells are empty, extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size() - 1; }

  // The header and the rows, one line each, every line ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
  std::vector<bool> right_;
};

// "key  value" lines with the values aligned. Not thread-safe.
class KeyValueBlock {
 public:
  void Add(std::string key, std::string value);
  std::string Render() const;

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_FORMAT_H_
