// Fuzzes the HTTP/1.1 request head parser behind the webhook and /metrics (daemon/http/http_wire):
// the input is what a client sends on a connection.
#include <string>

#include "daemon/http/http_message.h"
#include "daemon/http/http_wire.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

constexpr size_t kMaxHeaderBytes = 16 << 10;
constexpr size_t kMaxBodyBytes = 1 << 20;

}  // namespace

REPRO_FUZZ_TARGET(http_request) {
  using repro::fuzz::FuzzCheck;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  // Scanned whole, and again as if the bytes arrived in two reads: both must agree.
  size_t scanned = 0;
  absl::StatusOr<size_t> head_size = repro::FindRequestHead(input, kMaxHeaderBytes, &scanned);
  size_t split_scanned = 0;
  absl::StatusOr<size_t> first = repro::FindRequestHead(input.substr(0, size / 2),
                                                        kMaxHeaderBytes, &split_scanned);
  if (first.ok() && *first == 0) {
    absl::StatusOr<size_t> second = repro::FindRequestHead(input, kMaxHeaderBytes, &split_scanned);
    FuzzCheck(second.ok() == head_size.ok(), "incremental head scan disagrees (status)");
    if (second.ok()) FuzzCheck(*second == *head_size, "incremental head scan disagrees (size)");
  }
  if (!head_size.ok() || *head_size == 0) return 0;
  FuzzCheck(*head_size <= input.size(), "head longer than the input");

  repro::HttpRequest request;
  absl::StatusOr<repro::HttpRequestFraming> framing =
      repro::ParseRequestHead(input.substr(0, *head_size), kMaxBodyBytes, &request);
  if (!framing.ok()) {
    int status = repro::HttpErrorStatus(framing.status());
    FuzzCheck(status >= 400 && status <= 599, "a refusal that is not a 4xx/5xx");
    return 0;
  }
  FuzzCheck(framing->content_length <= kMaxBodyBytes, "body above the limit accepted");
  FuzzCheck(repro::IsHttpToken(request.method), "a method that is not a token");
  for (const auto& [name, value] : request.headers.fields()) {
    FuzzCheck(repro::IsHttpToken(name), "a field name that is not a token");
  }
  // Answer it as the server would, echoing the path into a header the serializer must sanitize.
  repro::HttpResponse response(200, "text/plain", request.path);
  response.headers.Add("X-Path", request.path);
  std::string bytes = repro::SerializeResponse(response, framing->keep_alive,
                                               request.method == "HEAD");
  FuzzCheck(bytes.rfind("HTTP/1.1 200 ", 0) == 0, "a response without its status line");
  return 0;
}
