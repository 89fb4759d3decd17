// The Authorizer's decisions (roles, owners, readable trees) and the mode-bit rules of MayRead,
// on real files with real owners (the test runs as root and chowns them).
#include "daemon/auth/authorizer.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/auth/file_access.h"
#include "daemon/auth/peer_credentials.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFileOrDie;

constexpr uid_t kAlice = 41001;
constexpr uid_t kBob = 41002;
constexpr gid_t kTeam = 41100;
constexpr gid_t kAdmins = 41200;
constexpr gid_t kAuditors = 41300;

Identity Alice() { return Identity::Unix(kAlice, kAlice, {kAlice}); }
Identity Bob() { return Identity::Unix(kBob, kBob, {kBob, kTeam}); }

class AuthorizerTest : public ::testing::Test {
 protected:
  AuthorizerTest()
      : auth_({.admin_group = kAdmins,
               .auditor_group = kAuditors,
               .admin_identities = {"ci-admin"},
               .auditor_identities = {"auditor"},
               .metrics = &metrics_}) {}

  Metrics metrics_;
  Authorizer auth_;
};

TEST_F(AuthorizerTest, Roles) {
  EXPECT_EQ(auth_.RoleOf(Identity::Unix(0, 0, {})), Role::kAdmin);
  EXPECT_EQ(auth_.RoleOf(Identity::Unix(kAlice, kAlice, {kAdmins})), Role::kAdmin);
  EXPECT_EQ(auth_.RoleOf(Identity::Unix(kAlice, kAuditors, {})), Role::kAuditor);
  EXPECT_EQ(auth_.RoleOf(Alice()), Role::kUser);
  EXPECT_EQ(auth_.RoleOf(Identity::Certificate("ci-admin")), Role::kAdmin);
  EXPECT_EQ(auth_.RoleOf(Identity::Certificate("auditor")), Role::kAuditor);
  EXPECT_EQ(auth_.RoleOf(Identity::Certificate("ci")), Role::kUser);
  EXPECT_EQ(auth_.RoleOf(Identity()), Role::kUser);
}

TEST_F(AuthorizerTest, JobsAreWrittenByTheirOwnerOrAnAdmin) {
  const std::string owner = Alice().Owner();
  EXPECT_EQ(owner, "uid:41001");
  EXPECT_TRUE(auth_.CheckJobWrite("Record", Alice(), "j", owner).ok());
  EXPECT_TRUE(auth_.CheckJobWrite("Record", Identity::Unix(0, 0, {}), "j", owner).ok());
  absl::Status bob = auth_.CheckJobWrite("Record", Bob(), "j", owner);
  EXPECT_TRUE(absl::IsPermissionDenied(bob)) << bob;
  EXPECT_THAT(bob.message(), HasSubstr("belongs to uid:41001"));
  // An auditor reads but does not write; a pin without an owner is the admins' only.
  Identity auditor = Identity::Certificate("auditor");
  EXPECT_FALSE(auth_.CheckJobWrite("Record", auditor, "j", owner).ok());
  EXPECT_TRUE(auth_.CheckJobRead("Replay", auditor, "j", owner).ok());
  EXPECT_FALSE(auth_.CheckJobRead("Replay", Bob(), "j", owner).ok());
  EXPECT_FALSE(auth_.CheckJobWrite("Record", Alice(), "j", "").ok());
  // The same name as a certificate is not the uid.
  EXPECT_FALSE(auth_.CheckJobWrite("Pin", Identity::Certificate("41001"), "j", owner).ok());
  EXPECT_FALSE(auth_.CheckAuthenticated("Pin", Identity()).ok());
  EXPECT_THAT(metrics_.RenderPrometheus(),
              HasSubstr("repro_denied_total{reason=\"not_owner\",rpc=\"Record\"} 3"));
}

class FileAccessTest : public ::testing::Test {
 protected:
  // dir_/d/f with owner `uid`, group `gid` and the given modes.
  std::string Make(mode_t dir_mode, mode_t file_mode, uid_t uid, gid_t gid) {
    chmod(dir_.path().c_str(), 0755);
    std::string file = dir_.Path("d/f");
    WriteFileOrDie(file, "x");
    chown(dir_.Path("d").c_str(), uid, gid);
    chown(file.c_str(), uid, gid);
    chmod(dir_.Path("d").c_str(), dir_mode);
    chmod(file.c_str(), file_mode);
    return file;
  }
  TempDir dir_;
};

TEST_F(FileAccessTest, OwnerGroupAndOtherBits) {
  std::string f = Make(0750, 0640, kAlice, kTeam);
  EXPECT_TRUE(MayRead(Alice(), f));
  EXPECT_TRUE(MayRead(Bob(), f));  // by his supplementary group
  EXPECT_FALSE(MayRead(Identity::Unix(65534, 65534, {}), f));
  EXPECT_TRUE(MayRead(Identity::Unix(0, 0, {}), f));
  EXPECT_FALSE(MayRead(Identity::Certificate("x"), f));
}

TEST_F(FileAccessTest, EveryDirectoryOnThePathMustBeSearchable) {
  std::string f = Make(0700, 0644, 0, 0);  // a world-readable file in a root-only directory
  EXPECT_FALSE(MayRead(Alice(), f));
  absl::Status tree = CheckTreeReadable(Alice(), dir_.Path("d"));
  EXPECT_TRUE(absl::IsPermissionDenied(tree)) << tree;
  chmod(dir_.Path("d").c_str(), 0755);
  EXPECT_TRUE(MayRead(Alice(), f));
  EXPECT_TRUE(CheckTreeReadable(Alice(), dir_.Path("d")).ok());
  chmod(f.c_str(), 0600);
  EXPECT_THAT(CheckTreeReadable(Alice(), dir_.Path("d")).message(), HasSubstr(f));
}

TEST(PeerCredentialsTest, UnixSocketPairGivesOurOwnIds) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  pid_t pid = 0;
  absl::StatusOr<Identity> peer = UnixPeerIdentity(fds[0], &pid);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->uid, getuid());
  EXPECT_EQ(peer->gid, getgid());
  EXPECT_EQ(pid, getpid());
  close(fds[0]);
  close(fds[1]);
}

TEST(PeerCredentialsTest, Loopback) {
  EXPECT_TRUE(IsLoopbackAddress("ipv4:127.0.0.1:5000"));
  EXPECT_TRUE(IsLoopbackAddress("ipv6:[::1]:5000"));
  EXPECT_TRUE(IsLoopbackAddress("ipv6:%5B::1%5D:5000"));  // as gRPC writes a peer
  EXPECT_FALSE(IsLoopbackAddress("ipv6:%5B::2%5D:5000"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:7070"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:7070"));
  EXPECT_FALSE(IsLoopbackAddress("ipv4:10.0.0.7:5000"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:7070"));
}

}  // namespace
}  // namespace repro
