#include "daemon/http/http_message.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace repro {
namespace {

// RFC 9110 reason phrases of the codes this server and its handlers use.
constexpr struct {
  int status;
  const char* phrase;
} kReasonPhrases[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

// Payload key under which HttpError() stores the HTTP status.
constexpr char kHttpStatusPayload[] = "repro.dev/http-status";

absl::StatusCode CodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 411:
    case 417:
      return absl::StatusCode::kFailedPrecondition;
    case 413:
    case 414:
    case 431:
      return absl::StatusCode::kResourceExhausted;
    case 501:
    case 505:
      return absl::StatusCode::kUnimplemented;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return http_status < 500 ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kInternal;
  }
}

}  // namespace

void HttpHeaders::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

std::optional<absl::string_view> HttpHeaders::Get(absl::string_view name) const {
  for (const Field& field : fields_) {
    if (absl::EqualsIgnoreCase(field.first, name)) return field.second;
  }
  return std::nullopt;
}

std::vector<absl::string_view> HttpHeaders::GetAll(absl::string_view name) const {
  std::vector<absl::string_view> values;
  for (const Field& field : fields_) {
    if (absl::EqualsIgnoreCase(field.first, name)) values.push_back(field.second);
  }
  return values;
}

absl::string_view HttpReasonPhrase(int status) {
  for (const auto& [code, phrase] : kReasonPhrases) {
    if (code == status) return phrase;
  }
  return "Unknown";
}

absl::Status HttpError(int http_status, absl::string_view message) {
  absl::Status status(CodeForHttpStatus(http_status), message);
  status.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(http_status)));
  return status;
}

int HttpErrorStatus(const absl::Status& status) {
  auto payload = status.GetPayload(kHttpStatusPayload);
  int http_status = 0;
  if (payload && absl::SimpleAtoi(std::string(*payload), &http_status)) return http_status;
  return status.code() == absl::StatusCode::kInvalidArgument ? 400 : 500;
}

}  // namespace repro
