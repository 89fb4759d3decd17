#include "client/cli/address.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro::cli {
namespace {

TEST(AddressTest, UnixForms) {
  for (const char* text : {"unix:/run/reprod/reprod.sock", "unix:///tmp/x.sock", "unix:rel.sock"}) {
    absl::StatusOr<Address> addr = ParseAddress(text);
    ASSERT_TRUE(addr.ok()) << text << ": " << addr.status();
    EXPECT_EQ(addr->kind, Address::Kind::kUnix);
    EXPECT_EQ(addr->target, text);
    EXPECT_EQ(addr->text, text);
  }
}

TEST(AddressTest, TcpForms) {
  for (const char* text : {"localhost:7443", "10.0.0.7:1", "[::1]:65535", "node-a.example:80"}) {
    absl::StatusOr<Address> addr = ParseAddress(text);
    ASSERT_TRUE(addr.ok()) << text << ": " << addr.status();
    EXPECT_EQ(addr->kind, Address::Kind::kTcp);
    EXPECT_EQ(addr->target, text);
  }
}

TEST(AddressTest, DefaultParses) {
  absl::StatusOr<Address> addr = ParseAddress(kDefaultAddress);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr->kind, Address::Kind::kUnix);
}

TEST(AddressTest, Rejects) {
  for (const char* text : {"", "unix:", "unix://", "unix:///", "localhost", "host:", ":80",
                           "host:0", "host:65536", "host:http", "host:+80", "::1:80", "[::1]",
                           "[::1]80", "http://host:80", "a b:80", "unix-abstract:x"}) {
    absl::StatusOr<Address> addr = ParseAddress(text);
    EXPECT_EQ(addr.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << text << "\"";
  }
  EXPECT_THAT(ParseAddress("host").status().message(), ::testing::HasSubstr("unix:/path"));
}

}  // namespace
}  // namespace repro::cli
