// The request and response types that HttpServer handlers see, and the HTTP/1.1 status that a
// refusal carries inside an absl::Status.
//
//   HttpResponse Validate(const HttpRequest& request) {
//     std::optional<absl::string_view> type = request.headers.Get("content-type");
//     if (!type || *type != "application/json") {
//       return {415, "text/plain; charset=utf-8", "expected application/json\n"};
//     }
//     HttpResponse response{200, "application/json", Review(request.body)};
//     response.headers.Add("Cache-Control", "no-store");
//     return response;
//   }
#ifndef REPRO_DAEMON_HTTP_HTTP_MESSAGE_H_
#define REPRO_DAEMON_HTTP_HTTP_MESSAGE_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace repro {

// Header fields in arrival order; names compare case-insensitively. A value type: not
// thread-safe for concurrent mutation.
class HttpHeaders {
 public:
  using Field = std::pair<std::string, std::string>;

  void Add(std::string name, std::string value);
  // The value of the first field named `name`, or nullopt. The view lives as long as the field.
  std::optional<absl::string_view> Get(absl::string_view name) const;
  // Every value of fields named `name`, in order.
  std::vector<absl::string_view> GetAll(absl::string_view name) const;
  bool Has(absl::string_view name) const { return Get(name).has_value(); }

  const std::vector<Field>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

struct HttpRequest {
  std::string method;  // as sent, e.g. "POST" (methods are case-sensitive)
  std::string path;    // origin-form path as sent (not percent-decoded), without the query
  std::string query;   // what followed '?', without it; empty when there was none
  HttpHeaders headers;
  std::string body;  // exactly Content-Length bytes
  std::string peer;  // "127.0.0.1:41234" or "[::1]:41234"
};

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status, std::string content_type, std::string body)
      : status(status), content_type(std::move(content_type)), body(std::move(body)) {}

  int status = 200;  // 200..599; anything else is answered as 500
  std::string content_type = "text/plain; charset=utf-8";  // empty: no Content-Type field
  std::string body;
  // Extra fields. The server writes the framing fields itself (Content-Length, Connection,
  // Transfer-Encoding, Date) and drops them here, as well as any field with CR, LF or NUL.
  HttpHeaders headers;
};

// "Not Found" for 404, "Unknown" for codes it does not know.
absl::string_view HttpReasonPhrase(int status);

// An error that carries the HTTP status to answer with (400, 413, 431, ...) and a canonical code
// that fits it (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE, ...).
absl::Status HttpError(int http_status, absl::string_view message);
// The HTTP status carried by an HttpError(); for any other non-OK status, 400 when its code is
// INVALID_ARGUMENT and 500 otherwise.
int HttpErrorStatus(const absl::Status& status);

}  // namespace repro

#endif  // REPRO_DAEMON_HTTP_HTTP_MESSAGE_H_
