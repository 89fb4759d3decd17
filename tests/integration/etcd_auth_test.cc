// reprod in cluster mode against a real etcd with TLS on its client port and `auth enable`:
// reprod authenticates as the user of a role limited to /repro/ (the role README and deploy/k8s
// describe) and works; an etcd user without that role cannot write /repro/pins/.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/etcd_cluster.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"
#include "tests/testutil/test_certificates.h"

namespace repro::testing {
namespace {

using ::testing::HasSubstr;

class EtcdAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestKeyPair> ca = MakeTestCa(dir_.path(), "etcd-ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    absl::StatusOr<TestKeyPair> server =
        MakeTestLeaf(*ca, dir_.path(), "etcd", "etcd", kLocalServerSans);
    ASSERT_TRUE(server.ok()) << server.status();
    ca_ = ca->cert;
    etcd_ = std::make_unique<EtcdCluster>(dir_.Path("etcd"), 1,
                                          EtcdTls{ca->cert, server->cert, server->key});
    absl::Status started = etcd_->Start();
    ASSERT_TRUE(started.ok()) << started;
    // The setup README "Cluster mode" documents.
    for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
             {"user", "add", "root", "--new-user-password=root-pw"},
             {"user", "grant-role", "root", "root"},
             {"role", "add", "repro"},
             {"role", "grant-permission", "repro", "--prefix=true", "readwrite", "/repro/"},
             {"user", "add", "reprod", "--new-user-password=reprod-pw"},
             {"user", "grant-role", "reprod", "repro"},
             {"user", "add", "intruder", "--new-user-password=intruder-pw"},
             {"auth", "enable"}}) {
      RunResult r = etcd_->Ctl(step);
      ASSERT_EQ(r.exit_code, 0) << step[0] << " " << step[1] << ": " << r.stderr_text;
    }
    WriteFileOrDie(dir_.Path("reprod.password"), "reprod-pw\n");
    WriteFileOrDie(dir_.Path("ml/ds/v1/a.csv"), "1,2\n");
  }

  std::unique_ptr<ReprodProcess> StartReprod(const std::string& password_file) {
    const std::string work = dir_.Path("node");
    auto reprod = std::make_unique<ReprodProcess>(
        work, ReprodOptions{.extra_flags = {"--etcd_endpoints=" + etcd_->EndpointList(),
                                            absl::StrCat("--grpc_listen=unix:", work,
                                                         "/reprod.sock,127.0.0.1:0"),
                                            "--etcd_tls_ca=" + ca_, "--etcd_user=reprod",
                                            "--etcd_password_file=" + password_file}});
    absl::Status started = reprod->Start();
    EXPECT_TRUE(started.ok()) << started;
    return started.ok() ? std::move(reprod) : nullptr;
  }

  TempDir dir_;
  std::string ca_;
  std::unique_ptr<EtcdCluster> etcd_;
};

TEST_F(EtcdAuthTest, ReprodWorksWithItsRoleAndOthersCannotWritePins) {
  std::unique_ptr<ReprodProcess> reprod = StartReprod(dir_.Path("reprod.password"));
  ASSERT_NE(reprod, nullptr);
  RunResult add = reprod->Ctl({"version", "add", "ds", "v1", dir_.Path("ml/ds/v1")});
  ASSERT_EQ(add.exit_code, 0) << add.stderr_text << reprod->log();
  RunResult pin = reprod->Ctl({"pin", "job-e", "ds@v1"});
  ASSERT_EQ(pin.exit_code, 0) << pin.stderr_text;
  RunResult keys =
      etcd_->Ctl({"--user=root:root-pw", "get", "--prefix", "/repro/pins/", "--keys-only"});
  EXPECT_THAT(keys.stdout_text, HasSubstr("job-e"));

  RunResult intruder = etcd_->Ctl({"--user=intruder:intruder-pw", "put", "/repro/pins/job-x", "x"});
  EXPECT_NE(intruder.exit_code, 0);
  EXPECT_THAT(intruder.stderr_text, HasSubstr("permission denied"));
  RunResult anonymous = etcd_->Ctl({"put", "/repro/pins/job-x", "x"});
  EXPECT_NE(anonymous.exit_code, 0);
  // reprod's role stops at /repro/.
  RunResult outside = etcd_->Ctl({"--user=reprod:reprod-pw", "put", "/other", "x"});
  EXPECT_NE(outside.exit_code, 0);
}

TEST_F(EtcdAuthTest, AWrongPasswordStopsReprodWithOneClearError) {
  WriteFileOrDie(dir_.Path("wrong.password"), "not-the-password\n");
  const std::string work = dir_.Path("node");
  ReprodProcess probe(work);
  std::vector<std::string> argv = probe.Command();
  for (const std::string& flag :
       {"--etcd_endpoints=" + etcd_->EndpointList(), "--etcd_tls_ca=" + ca_,
        absl::StrCat("--grpc_listen=unix:", work, "/reprod.sock,127.0.0.1:0"),
        std::string("--etcd_user=reprod"), "--etcd_password_file=" + dir_.Path("wrong.password")}) {
    argv.push_back(flag);
  }
  // Generous: the point is that it ends by itself, not how fast.
  RunResult run = RunCommand(argv, {.timeout = absl::Seconds(120)});
  EXPECT_FALSE(run.timed_out) << "reprod kept running with a wrong etcd password";
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(run.exit_code, 1);
  // One line: what etcd said, and the flags to check.
  EXPECT_THAT(run.stderr_text, HasSubstr("reprod: etcd authentication as reprod"));
  EXPECT_THAT(run.stderr_text, HasSubstr("authentication failed"));
  EXPECT_THAT(run.stderr_text, HasSubstr("--etcd_password_file="));
  EXPECT_EQ(std::count(run.stderr_text.begin(), run.stderr_text.end(), '\n'), 1)
      << run.stderr_text;
}

}  // namespace
}  // namespace repro::testing
