// The HTTP/1.1 wire format as HttpServer speaks it: finding and parsing a request head, and
// writing a response. Pure functions over bytes, so every malformed input can be tested without a
// socket.
//
//   size_t scanned = 0;
//   ASSIGN_OR_RETURN(size_t head_size, FindRequestHead(buffer, 16 << 10, &scanned));
//   if (head_size == 0) { /* read more */ }
//   HttpRequest request;
//   ASSIGN_OR_RETURN(HttpRequestFraming framing,
//                    ParseRequestHead(buffer.substr(0, head_size), 1 << 20, &request));
//   ... read framing.content_length body bytes, run the handler ...
//   std::string bytes = SerializeResponse(response, framing.keep_alive, request.method == "HEAD");
//
// Accepted: HTTP/1.0 and HTTP/1.1, origin-form targets ("/path?query"), lines ending in CRLF or a
// bare LF, empty lines before the request line (the caller skips them), bodies framed by
// Content-Length. Refused: obsolete line folding, whitespace before a field's colon, control
// characters, conflicting Content-Length values, and any Transfer-Encoding (chunked request bodies
// are not supported: 411 Length Required, or 400 when Content-Length is also present).
#ifndef REPRO_DAEMON_HTTP_HTTP_WIRE_H_
#define REPRO_DAEMON_HTTP_HTTP_WIRE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/http/http_message.h"

namespace repro {

// What the server must do around the handler for one request.
struct HttpRequestFraming {
  size_t content_length = 0;     // body bytes that follow the head
  bool keep_alive = true;        // HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive
  bool expect_continue = false;  // "Expect: 100-continue": send 100 before reading the body
};

// True when `s` is a non-empty RFC 9110 token (a method, a field name).
bool IsHttpToken(absl::string_view s);

// The length of the request head at the start of `buffer` (request line, fields and the empty line
// that ends them), or 0 when its end has not arrived yet. `*scanned` must be 0 for a new head; it
// records progress so that a head arriving byte by byte is scanned once. Fails with
// HttpError(431) once the head is longer than `max_header_bytes`, HttpError(414) when already the
// request line is.
absl::StatusOr<size_t> FindRequestHead(absl::string_view buffer, size_t max_header_bytes,
                                       size_t* scanned);

// Parses a complete head (as delimited by FindRequestHead) into request->method, path, query and
// headers, and returns its framing. Fails with HttpError(): 400 malformed, 411 Transfer-Encoding,
// 413 Content-Length above `max_body_bytes`, 417 an expectation other than 100-continue, 505 a
// version other than HTTP/1.x.
absl::StatusOr<HttpRequestFraming> ParseRequestHead(absl::string_view head, size_t max_body_bytes,
                                                    HttpRequest* request);

// The bytes of `response`: status line, fields (Date, Content-Type, Content-Length, Connection,
// then response.headers) and body. `keep_alive` picks "Connection: keep-alive" or "close";
// `head_only` (answering HEAD) leaves the body out but keeps its Content-Length. A status outside
// 200..599 is written as 500 with an empty body; 204 and 304 carry no body.
std::string SerializeResponse(const HttpResponse& response, bool keep_alive, bool head_only);

}  // namespace repro

#endif  // REPRO_DAEMON_HTTP_HTTP_WIRE_H_
