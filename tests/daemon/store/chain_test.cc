#include "daemon/store/chain.h"

#include "common/sha256.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

TEST(ChainTest, GenesisIsThirtyTwoZeroBytes) {
  EXPECT_EQ(GenesisHash(), std::string(32, '\0'));
}

TEST(ChainTest, ChainHashIsSha256OfPrevAndPayload) {
  std::string prev = Sha256Of("prev");
  EXPECT_EQ(ChainHash(prev, "payload"), Sha256Of(prev + "payload"));
  // A known vector: SHA-256 of 32 zero bytes followed by "abc".
  EXPECT_EQ(HexDigest(ChainHash(GenesisHash(), "abc")),
            HexDigest(Sha256Of(std::string(32, '\0') + "abc")));
}

TEST(ChainTest, ChainDependsOnOrder) {
  std::string a = ChainHash(ChainHash(GenesisHash(), "1"), "2");
  std::string b = ChainHash(ChainHash(GenesisHash(), "2"), "1");
  EXPECT_NE(a, b);
}

TEST(ChainTest, JournalKeysSortBySequence) {
  EXPECT_LT(JournalKey("job", 1), JournalKey("job", 2));
  EXPECT_LT(JournalKey("job", 255), JournalKey("job", 256));
  EXPECT_LT(JournalKey("job", 65535), JournalKey("job", 1u << 20));
  EXPECT_EQ(JournalKey("job", 1).size(), 3u + 1 + 8);
  EXPECT_EQ(SeqFromJournalKey(JournalKey("job", 77), "job"), 77u);
  EXPECT_FALSE(SeqFromJournalKey(JournalKey("job", 77), "jo").has_value());
  EXPECT_FALSE(SeqFromJournalKey(JournalKey("job.b", 77), "job").has_value());
}

TEST(ChainTest, BigEndianRoundTrip) {
  for (uint64_t v : {0ULL, 1ULL, 0x0102030405060708ULL, ~0ULL}) {
    EXPECT_EQ(DecodeBigEndian64(EncodeBigEndian64(v)), v);
  }
  EXPECT_EQ(EncodeBigEndian64(0x0102030405060708ULL), "\x01\x02\x03\x04\x05\x06\x07\x08");
}

TEST(ChainTest, StoredEntryRoundTripAndTruncation) {
  std::string hash = Sha256Of("x");
  std::string value = EncodeStoredEntry(hash, "payload");
  absl::StatusOr<StoredEntryView> view = DecodeStoredEntry(value);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->hash, hash);
  EXPECT_EQ(view->payload, "payload");
  EXPECT_EQ(DecodeStoredEntry(value.substr(0, 31)).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ChainTest, HeadSigningBytesSeparateFields) {
  // "ab" + "c" and "a" + "bc" must not sign the same bytes.
  EXPECT_NE(HeadSigningBytes("ab", "c", 1, "h"), HeadSigningBytes("a", "bc", 1, "h"));
  EXPECT_NE(HeadSigningBytes("n", "j", 1, "h"), HeadSigningBytes("n", "j", 2, "h"));
}

}  // namespace
}  // namespace repro
