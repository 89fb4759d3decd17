#include "client/cli/format.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/sha256.h"

namespace repro::cli {

std::string FormatBytes(uint64_t bytes, absl::string_view separator) {
  static constexpr absl::string_view kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrCat(bytes, separator, "B");
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  // Round first, so 1048575 bytes reads "1.0 MiB", not "1024.0 KiB".
  while (std::round(value * 10) / 10 >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f%s%s", value, separator, kUnits[unit]);
}

std::string FullDigest(absl::string_view digest) {
  return digest.empty() ? "-" : HexDigest(digest);
}

std::string ShortDigest(absl::string_view digest) {
  if (digest.empty()) return "-";
  std::string hex = HexDigest(digest.substr(0, (kShortDigestLength + 1) / 2));
  return hex.substr(0, kShortDigestLength);
}

std::string FormatTime(const google::protobuf::Timestamp& time, bool millis) {
  if (time.seconds() == 0 && time.nanos() == 0) return "-";
  int64_t nanos = std::clamp<int64_t>(time.nanos(), 0, 999'999'999);
  absl::Time t = absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(nanos);
  return absl::FormatTime(millis ? "%Y-%m-%dT%H:%M:%E3SZ" : "%Y-%m-%dT%H:%M:%SZ", t,
                          absl::UTCTimeZone());
}

std::string FormatSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  if (seconds < 10) return absl::StrFormat("%.2fs", seconds);
  if (seconds < 60) return absl::StrFormat("%.1fs", seconds);
  auto whole = static_cast<uint64_t>(seconds);
  if (whole < 3600) return absl::StrFormat("%dm%02ds", whole / 60, whole % 60);
  return absl::StrFormat("%dh%02dm", whole / 3600, whole / 60 % 60);
}

std::string QuoteIfNeeded(absl::string_view s) {
  bool plain = !s.empty();
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f || c == '"' || c == '=' || c == '\\') plain = false;
  }
  if (plain) return std::string(s);
  return absl::StrCat("\"", absl::CHexEscape(s), "\"");
}

std::string OneLine(absl::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (absl::ascii_iscntrl(c)) c = ' ';
  }
  return out;
}

Table::Table(std::vector<std::string> header) : right_(header.size(), false) {
  rows_.push_back(std::move(header));
}

void Table::AlignRight(size_t column) {
  if (column < right_.size()) right_[column] = true;
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(right_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> width(right_.size(), 0);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      std::string pad(width[i] - row[i].size(), ' ');
      absl::StrAppend(&line, right_[i] ? pad : "", row[i], right_[i] ? "" : pad);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

void KeyValueBlock::Add(std::string key, std::string value) {
  lines_.emplace_back(std::move(key), std::move(value));
}

std::string KeyValueBlock::Render() const {
  size_t width = 0;
  for (const auto& [key, value] : lines_) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : lines_) {
    std::string line = absl::StrCat(key, std::string(width - key.size() + 2, ' '), value);
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace repro::cli
