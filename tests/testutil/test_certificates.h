// Certificates for tests of TLS and mTLS, made with the openssl command line: a CA, and leaf
// certificates it signs for servers (SAN DNS:localhost, IP:127.0.0.1) and clients (a CN, and SANs
// when given).
//
//   absl::StatusOr<TestKeyPair> ca = MakeTestCa(dir, "ca");
//   absl::StatusOr<TestKeyPair> server = MakeTestLeaf(*ca, dir, "server", "localhost",
//                                                     kLocalServerSans);
//   absl::StatusOr<TestKeyPair> client = MakeTestLeaf(*ca, dir, "alice", "alice", "");
#ifndef REPRO_TESTS_TESTUTIL_TEST_CERTIFICATES_H_
#define REPRO_TESTS_TESTUTIL_TEST_CERTIFICATES_H_

#include <string>

#include "absl/status/statusor.h"

namespace repro::testing {

struct TestKeyPair {
  std::string cert;  // PEM file paths
  std::string key;
};

inline constexpr char kLocalServerSans[] = "DNS:localhost,IP:127.0.0.1";

// A self-signed P-256 CA: DIR/NAME.crt and DIR/NAME.key.
absl::StatusOr<TestKeyPair> MakeTestCa(const std::string& dir, const std::string& name);

// A P-256 certificate signed by `ca` with subject CN=`cn`, for both server and client use, with
// subjectAltName `sans` ("DNS:a,IP:b"; empty: none): DIR/NAME.crt and DIR/NAME.key.
absl::StatusOr<TestKeyPair> MakeTestLeaf(const TestKeyPair& ca, const std::string& dir,
                                         const std::string& name, const std::string& cn,
                                         const std::string& sans);

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_TEST_CERTIFICATES_H_
