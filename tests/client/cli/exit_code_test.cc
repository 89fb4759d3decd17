#include "client/cli/exit_code.h"

#include "gtest/gtest.h"

namespace repro::cli {
namespace {

TEST(ExitCodeTest, ValuesAreTheContract) {
  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitError, 1);
  EXPECT_EQ(kExitConflict, 2);
  EXPECT_EQ(kExitRefused, 3);
  EXPECT_EQ(kExitTampered, 4);
  EXPECT_EQ(kExitNotFound, 5);
  EXPECT_EQ(kExitPermissionDenied, 6);
}

TEST(ExitCodeTest, PermissionDeniedFromAnyRpc) {
  for (const char* rpc : {"Pin", "Record", "RegisterVersion", "Replay", "VerifyJournal"}) {
    EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::PermissionDeniedError("x"), rpc)),
              kExitPermissionDenied)
        << rpc;
  }
  // Made on the client (an unreadable --tls_key): not reprod's refusal.
  EXPECT_EQ(ExitCodeForStatus(absl::PermissionDeniedError("x")), kExitError);
}

TEST(ExitCodeTest, NotFoundFromAnyRpc) {
  for (const char* rpc : {"GetPin", "Pin", "GetVersion", "Replay", "VerifyJournal"}) {
    EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::NotFoundError("x"), rpc)), kExitNotFound) << rpc;
  }
}

TEST(ExitCodeTest, ConflictsDependOnTheRpc) {
  EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::FailedPreconditionError("x"), "Pin")), kExitConflict);
  EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::AlreadyExistsError("x"), "RegisterVersion")),
            kExitConflict);
  EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::FailedPreconditionError("x"), "Record")), kExitError);
  EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::AlreadyExistsError("x"), "Pin")), kExitError);
  EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::FailedPreconditionError("x"), "RegisterVersion")),
            kExitError);
}

TEST(ExitCodeTest, EverythingElseIsOne) {
  EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::UnavailableError("x"), "Pin")), kExitError);
  EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::InvalidArgumentError("x"), "Pin")), kExitError);
  EXPECT_EQ(ExitCodeForStatus(TagRpc(absl::DeadlineExceededError("x"), "Pin")), kExitError);
  EXPECT_EQ(ExitCodeForStatus(absl::InvalidArgumentError("usage: x")), kExitError);
}

TEST(ExitCodeTest, ClientSideStatusesAreNeverMapped) {
  // A missing --tls_ca file is NOT_FOUND too, but not an unknown job.
  EXPECT_EQ(ExitCodeForStatus(absl::NotFoundError("cannot read --tls_ca")), kExitError);
  EXPECT_EQ(ExitCodeForStatus(absl::FailedPreconditionError("x")), kExitError);
}

TEST(ExitCodeTest, TagKeepsCodeAndMessageAndOk) {
  absl::Status tagged = TagRpc(absl::NotFoundError("job j has no pin"), "GetPin");
  EXPECT_EQ(tagged.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tagged.message(), "job j has no pin");
  EXPECT_TRUE(TagRpc(absl::OkStatus(), "Pin").ok());
}

}  // namespace
}  // namespace repro::cli
