#include "daemon/http/http_wire.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace repro {
namespace {

// RFC 9110 token characters (method, field names).
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

// Field values: visible characters, obs-text, space and tab; never CR, LF, NUL or DEL.
bool IsFieldValue(absl::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u != '\t' && (u < 0x20 || u == 0x7f)) return false;
  }
  return true;
}

// Request targets: visible ASCII only.
bool IsTargetChars(absl::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

absl::string_view StripOws(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The comma-separated elements of every field named `name`, trimmed, empty ones dropped.
std::vector<absl::string_view> ListElements(const HttpHeaders& headers, absl::string_view name) {
  std::vector<absl::string_view> elements;
  for (absl::string_view value : headers.GetAll(name)) {
    for (absl::string_view element : absl::StrSplit(value, ',')) {
      element = StripOws(element);
      if (!element.empty()) elements.push_back(element);
    }
  }
  return elements;
}

// 1 for "HTTP/1.1", 0 for "HTTP/1.0".
absl::StatusOr<int> ParseVersion(absl::string_view version) {
  if (version == "HTTP/1.1") return 1;
  if (version == "HTTP/1.0") return 0;
  if (version.size() == 8 && absl::StartsWith(version, "HTTP/") &&
      absl::ascii_isdigit(version[5]) && version[6] == '.' && absl::ascii_isdigit(version[7])) {
    return HttpError(505, absl::StrCat("unsupported version ", version));
  }
  return HttpError(400, "malformed HTTP version in request line");
}

absl::Status ParseRequestLine(absl::string_view line, HttpRequest* request, int* minor_version) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3) return HttpError(400, "malformed request line");
  if (!IsHttpToken(parts[0])) return HttpError(400, "malformed method in request line");
  absl::string_view target = parts[1];
  if (target.empty() || target[0] != '/' || !IsTargetChars(target)) {
    return HttpError(400, "request target must be an absolute path (origin-form)");
  }
  absl::StatusOr<int> version = ParseVersion(parts[2]);
  if (!version.ok()) return version.status();
  *minor_version = *version;
  request->method = std::string(parts[0]);
  size_t question = target.find('?');
  request->path = std::string(target.substr(0, question));
  request->query =
      question == absl::string_view::npos ? "" : std::string(target.substr(question + 1));
  return absl::OkStatus();
}

absl::Status ParseField(absl::string_view line, HttpHeaders* headers) {
  if (line[0] == ' ' || line[0] == '\t') return HttpError(400, "obsolete header line folding");
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return HttpError(400, "header line without a colon");
  absl::string_view name = line.substr(0, colon);
  if (!IsHttpToken(name)) return HttpError(400, "malformed header field name");
  absl::string_view value = StripOws(line.substr(colon + 1));
  if (!IsFieldValue(value)) return HttpError(400, "control character in header field value");
  headers->Add(std::string(name), std::string(value));
  return absl::OkStatus();
}

absl::StatusOr<size_t> ParseContentLength(const HttpHeaders& headers, size_t max_body_bytes) {
  std::optional<uint64_t> length;
  for (absl::string_view element : ListElements(headers, "content-length")) {
    if (!std::all_of(element.begin(), element.end(), absl::ascii_isdigit)) {
      return HttpError(400, "malformed Content-Length");
    }
    uint64_t value = 0;
    if (element.size() > 18 || !absl::SimpleAtoi(element, &value)) {
      return HttpError(413, "Content-Length too large");
    }
    if (length && *length != value) return HttpError(400, "conflicting Content-Length values");
    length = value;
  }
  if (!length && headers.Has("content-length")) return HttpError(400, "empty Content-Length");
  if (length.value_or(0) > max_body_bytes) {
    return HttpError(
        413, absl::StrCat("body of ", *length, " bytes exceeds the limit of ", max_body_bytes));
  }
  return length.value_or(0);
}

bool IsFramingField(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "content-length") ||
         absl::EqualsIgnoreCase(name, "transfer-encoding") ||
         absl::EqualsIgnoreCase(name, "connection") || absl::EqualsIgnoreCase(name, "date");
}

}  // namespace

bool IsHttpToken(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

absl::StatusOr<size_t> FindRequestHead(absl::string_view buffer, size_t max_header_bytes,
                                       size_t* scanned) {
  size_t end = 0;
  for (size_t pos = *scanned; (pos = buffer.find('\n', pos)) != absl::string_view::npos; ++pos) {
    // The head ends with an empty line: "\n\n" or "\n\r\n".
    if ((pos >= 1 && buffer[pos - 1] == '\n') ||
        (pos >= 2 && buffer[pos - 1] == '\r' && buffer[pos - 2] == '\n')) {
      end = pos + 1;
      break;
    }
  }
  *scanned = buffer.size();
  if (end == 0 && buffer.size() <= max_header_bytes) return 0;
  if (end == 0 || end > max_header_bytes) {
    size_t line_end = buffer.find('\n');
    if (line_end == absl::string_view::npos || line_end > max_header_bytes) {
      return HttpError(414, absl::StrCat("request line longer than ", max_header_bytes, " bytes"));
    }
    return HttpError(431, absl::StrCat("request head longer than ", max_header_bytes, " bytes"));
  }
  return end;
}

absl::StatusOr<HttpRequestFraming> ParseRequestHead(absl::string_view head, size_t max_body_bytes,
                                                    HttpRequest* request) {
  std::vector<absl::string_view> lines = absl::StrSplit(head, '\n');
  for (absl::string_view& line : lines) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  }
  if (lines.empty() || lines[0].empty()) return HttpError(400, "missing request line");
  int minor_version = 1;
  absl::Status status = ParseRequestLine(lines[0], request, &minor_version);
  if (!status.ok()) return status;
  for (size_t i = 1; i < lines.size() && !lines[i].empty(); ++i) {
    status = ParseField(lines[i], &request->headers);
    if (!status.ok()) return status;
  }

  const HttpHeaders& headers = request->headers;
  HttpRequestFraming framing;
  if (headers.Has("transfer-encoding")) {
    return headers.Has("content-length")
               ? HttpError(400, "both Transfer-Encoding and Content-Length")
               : HttpError(411, "chunked request bodies are not supported; send Content-Length");
  }
  absl::StatusOr<size_t> length = ParseContentLength(headers, max_body_bytes);
  if (!length.ok()) return length.status();
  framing.content_length = *length;

  bool close = false;
  bool keep_alive = false;
  for (absl::string_view option : ListElements(headers, "connection")) {
    close |= absl::EqualsIgnoreCase(option, "close");
    keep_alive |= absl::EqualsIgnoreCase(option, "keep-alive");
  }
  framing.keep_alive = !close && (minor_version == 1 || keep_alive);

  for (absl::string_view expectation : ListElements(headers, "expect")) {
    if (!absl::EqualsIgnoreCase(expectation, "100-continue")) {
      return HttpError(417, absl::StrCat("unsupported expectation ", expectation));
    }
    // HTTP/1.0 clients do not understand 100 Continue (RFC 9110 section 10.1.1).
    framing.expect_continue = minor_version == 1;
  }
  return framing;
}

std::string SerializeResponse(const HttpResponse& response, bool keep_alive, bool head_only) {
  const bool valid = response.status >= 200 && response.status <= 599;
  const int status = valid ? response.status : 500;
  const bool has_body = status != 204 && status != 304;
  const absl::string_view body = valid && has_body ? absl::string_view(response.body) : "";

  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", HttpReasonPhrase(status), "\r\n");
  absl::StrAppend(&out, "Date: ",
                  absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::Now(), absl::UTCTimeZone()),
                  "\r\n");
  if (valid && !response.content_type.empty() && IsFieldValue(response.content_type)) {
    absl::StrAppend(&out, "Content-Type: ", response.content_type, "\r\n");
  }
  if (has_body) absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n");
  absl::StrAppend(&out, "Connection: ", keep_alive ? "keep-alive" : "close", "\r\n");
  if (valid) {
    for (const auto& [name, value] : response.headers.fields()) {
      if (IsHttpToken(name) && IsFieldValue(value) && !IsFramingField(name)) {
        absl::StrAppend(&out, name, ": ", value, "\r\n");
      }
    }
  }
  out += "\r\n";
  if (!head_only) absl::StrAppend(&out, body);
  return out;
}

}  // namespace repro
