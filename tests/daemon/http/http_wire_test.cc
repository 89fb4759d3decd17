#include "daemon/http/http_wire.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr size_t kMaxHead = 1024;
constexpr size_t kMaxBody = 100;

// Parses `head` as one complete request head; returns the HTTP status of the error, or 0.
int ParseStatus(const std::string& head, HttpRequest* request = nullptr,
                HttpRequestFraming* framing = nullptr) {
  HttpRequest scratch;
  absl::StatusOr<HttpRequestFraming> result =
      ParseRequestHead(head, kMaxBody, request != nullptr ? request : &scratch);
  if (!result.ok()) return HttpErrorStatus(result.status());
  if (framing != nullptr) *framing = *result;
  return 0;
}

TEST(FindRequestHeadTest, FindsTheEndAcrossCallsAndLineEndings) {
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
  size_t scanned = 0;
  for (size_t i = 1; i < request.size() - 4; ++i) {  // arriving byte by byte
    absl::StatusOr<size_t> end = FindRequestHead(request.substr(0, i), kMaxHead, &scanned);
    ASSERT_TRUE(end.ok());
    ASSERT_EQ(*end, 0u) << i;
  }
  EXPECT_EQ(*FindRequestHead(request, kMaxHead, &scanned), request.size() - 4);

  scanned = 0;
  EXPECT_EQ(*FindRequestHead("GET / HTTP/1.0\nA: b\n\nbody", kMaxHead, &scanned), 21u);
}

TEST(FindRequestHeadTest, RefusesOversizedHeads) {
  size_t scanned = 0;
  std::string long_line = "GET /" + std::string(kMaxHead, 'a');
  EXPECT_EQ(HttpErrorStatus(FindRequestHead(long_line, kMaxHead, &scanned).status()), 414);

  scanned = 0;
  std::string many_fields = "GET / HTTP/1.1\r\n";
  while (many_fields.size() <= kMaxHead) many_fields += "X-Filler: 0123456789\r\n";
  EXPECT_EQ(HttpErrorStatus(FindRequestHead(many_fields, kMaxHead, &scanned).status()), 431);

  scanned = 0;
  EXPECT_EQ(HttpErrorStatus(FindRequestHead(many_fields + "\r\n", kMaxHead, &scanned).status()),
            431);
}

TEST(ParseRequestHeadTest, ParsesRequestLineAndFields) {
  HttpRequest request;
  HttpRequestFraming framing;
  ASSERT_EQ(ParseStatus("POST /validate?timeout=10s HTTP/1.1\r\n"
                        "Host: reprod\r\n"
                        "Content-Type:  application/json \r\n"
                        "content-length: 12\r\n"
                        "X-Multi: a\r\nX-Multi: b\r\n\r\n",
                        &request, &framing),
            0);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/validate");
  EXPECT_EQ(request.query, "timeout=10s");
  EXPECT_EQ(request.headers.Get("CONTENT-TYPE").value_or(""), "application/json");
  EXPECT_THAT(request.headers.GetAll("x-multi"), ::testing::ElementsAre("a", "b"));
  EXPECT_FALSE(request.headers.Get("missing").has_value());
  EXPECT_EQ(framing.content_length, 12u);
  EXPECT_TRUE(framing.keep_alive);
  EXPECT_FALSE(framing.expect_continue);
}

TEST(ParseRequestHeadTest, KeepAliveFollowsVersionAndConnection) {
  HttpRequestFraming framing;
  ASSERT_EQ(ParseStatus("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", nullptr, &framing), 0);
  EXPECT_FALSE(framing.keep_alive);
  ASSERT_EQ(ParseStatus("GET / HTTP/1.0\r\n\r\n", nullptr, &framing), 0);
  EXPECT_FALSE(framing.keep_alive);
  ASSERT_EQ(ParseStatus("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", nullptr, &framing), 0);
  EXPECT_TRUE(framing.keep_alive);
  ASSERT_EQ(ParseStatus("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", nullptr, &framing), 0);
  EXPECT_FALSE(framing.keep_alive);
}

TEST(ParseRequestHeadTest, ExpectContinue) {
  HttpRequestFraming framing;
  ASSERT_EQ(ParseStatus("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
                        nullptr, &framing),
            0);
  EXPECT_TRUE(framing.expect_continue);
  EXPECT_EQ(ParseStatus("PUT / HTTP/1.1\r\nExpect: teapot\r\n\r\n"), 417);
}

TEST(ParseRequestHeadTest, RefusesMalformedRequests) {
  for (const char* head : {
           "GET\r\n\r\n",
           "GET  / HTTP/1.1\r\n\r\n",
           "GET / HTTP/1.1 extra\r\n\r\n",
           "G(T / HTTP/1.1\r\n\r\n",
           "GET http://example.com/ HTTP/1.1\r\n\r\n",
           "GET * HTTP/1.1\r\n\r\n",
           "GET /a\x01 HTTP/1.1\r\n\r\n",
           "GET / HTTX/1.1\r\n\r\n",
           "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
           "GET / HTTP/1.1\r\nName : v\r\n\r\n",
           "GET / HTTP/1.1\r\n: v\r\n\r\n",
           "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
           "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
           "GET / HTTP/1.1\r\nA: \x7f\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       }) {
    EXPECT_EQ(ParseStatus(head), 400) << head;
  }
  EXPECT_EQ(ParseStatus(std::string("GET /\0 HTTP/1.1\r\n\r\n", 19)), 400);
}

TEST(ParseRequestHeadTest, RefusesWhatItDoesNotSupport) {
  EXPECT_EQ(ParseStatus("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
  EXPECT_EQ(ParseStatus("GET / HTTP/2.0\r\n\r\n"), 505);
  EXPECT_EQ(ParseStatus("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n"), 413);
  EXPECT_EQ(ParseStatus("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 413);
  EXPECT_EQ(ParseStatus("POST / HTTP/1.1\r\nContent-Length: 100\r\nContent-Length: 100\r\n\r\n"),
            0);
}

TEST(SerializeResponseTest, WritesFramingItself) {
  HttpResponse response{201, "application/json", "{}"};
  response.headers.Add("X-Ok", "yes");
  response.headers.Add("Content-Length", "999");
  response.headers.Add("X-Split", "a\r\nInjected: 1");
  response.headers.Add("Bad Name", "v");
  std::string bytes = SerializeResponse(response, /*keep_alive=*/true, /*head_only=*/false);
  EXPECT_THAT(bytes, StartsWith("HTTP/1.1 201 Created\r\nDate: "));
  EXPECT_THAT(bytes, HasSubstr("\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                               "Connection: keep-alive\r\nX-Ok: yes\r\n\r\n{}"));
  EXPECT_THAT(bytes, Not(HasSubstr("999")));
  EXPECT_THAT(bytes, Not(HasSubstr("Injected")));
  EXPECT_THAT(bytes, Not(HasSubstr("Bad Name")));
}

TEST(SerializeResponseTest, HeadNoContentAndInvalidStatus) {
  HttpResponse response{200, "text/plain", "hello"};
  std::string head = SerializeResponse(response, false, /*head_only=*/true);
  EXPECT_THAT(head, HasSubstr("Content-Length: 5\r\nConnection: close\r\n\r\n"));
  EXPECT_THAT(head, Not(HasSubstr("hello")));

  std::string no_content = SerializeResponse({204, "", "ignored"}, true, false);
  EXPECT_THAT(no_content, Not(HasSubstr("Content-Length")));
  EXPECT_THAT(no_content, Not(HasSubstr("ignored")));

  std::string invalid = SerializeResponse({42, "text/plain", "secret"}, true, false);
  EXPECT_THAT(invalid, StartsWith("HTTP/1.1 500 Internal Server Error\r\n"));
  EXPECT_THAT(invalid, Not(HasSubstr("secret")));
}

TEST(HttpErrorTest, CarriesTheHttpStatus) {
  absl::Status status = HttpError(431, "too big");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(HttpErrorStatus(status), 431);
  EXPECT_EQ(HttpErrorStatus(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpErrorStatus(absl::InternalError("x")), 500);
  EXPECT_EQ(HttpReasonPhrase(413), "Content Too Large");
}

}  // namespace
}  // namespace repro
