// EtcdClient and EtcdMirror against a real single-member etcd: failover past dead endpoints,
// clear errors when nothing serves, and a mirror that catches up after an outage.
#include "daemon/etcd/etcd_client.h"

#include "absl/time/clock.h"
#include "daemon/etcd/etcd_keys.h"
#include "daemon/etcd/etcd_mirror.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/etcd_cluster.h"
#include "tests/testutil/subprocess.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = etcd_.Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  std::unique_ptr<EtcdClient> Client(std::vector<std::string> endpoints) {
    auto client = EtcdClient::Create({.endpoints = std::move(endpoints)});
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  absl::Status Put(EtcdClient& client, const std::string& key, const std::string& value) {
    etcdserverpb::PutRequest put;
    put.set_key(key);
    put.set_value(value);
    return client.Put(put).status();
  }

  std::string Dead() { return absl::StrCat("127.0.0.1:", testing::PickFreePort()); }

  testing::TempDir dir_;
  testing::EtcdCluster etcd_{dir_.Path("etcd"), 1};
};

TEST_F(EtcdClientTest, MalformedEndpointsAreRefused) {
  for (const char* bad : {"", "nohost", "host:0", "host:99999", "https://10.0.0.1:2379"}) {
    EXPECT_EQ(EtcdClient::Create({.endpoints = {bad}}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(EtcdClient::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(EtcdClient::Create({.endpoints = {"http://10.0.0.1:2379/"}}).ok());
}

TEST_F(EtcdClientTest, FailsOverPastDeadEndpoints) {
  auto client = Client({Dead(), Dead(), etcd_.Endpoint(0)});
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(Put(*client, "/t/k", "v").ok());
  // The endpoint that answered is tried first from now on.
  EXPECT_EQ(client->PreferredEndpoint().address, etcd_.Endpoint(0));
  etcdserverpb::RangeRequest get;
  get.set_key("/t/k");
  auto got = client->Range(get);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "v");
}

TEST_F(EtcdClientTest, NothingServingIsUnavailableNamingEveryEndpointQuickly) {
  const std::string dead = Dead();
  auto client = Client({dead, etcd_.Endpoint(0)});
  ASSERT_NE(client, nullptr);
  etcd_.KillAll();
  const absl::Time start = absl::Now();
  absl::Status status = Put(*client, "/t/k", "v");
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));  // refused connections do not wait
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("etcd is unreachable"));
  EXPECT_THAT(status.message(), HasSubstr(dead));
  EXPECT_THAT(status.message(), HasSubstr(etcd_.Endpoint(0)));
  // Nothing else in this process drives gRPC's sockets meanwhile: the client itself must
  // reconnect (it failed for 20-30 s when it waited for gRPC's background reconnection).
  ASSERT_TRUE(etcd_.RestartAllWaitingWithEtcdctl().ok());
  absl::Status put = Put(*client, "/t/k", "v");
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       !put.ok() && absl::Now() < deadline; put = Put(*client, "/t/k", "v")) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(put.ok()) << put;
}

TEST_F(EtcdClientTest, MirrorFollowsWritesAndCatchesUpAfterAnOutage) {
  auto writer = Client({etcd_.Endpoint(0)});
  auto reader = Client({etcd_.Endpoint(0)});
  ASSERT_NE(writer, nullptr);
  v1::Pin pin;
  pin.set_job("before");
  ASSERT_TRUE(Put(*writer, etcd_keys::Pin("before"), etcd_keys::Encode(pin)).ok());
  ASSERT_TRUE(Put(*writer, "/repro/pins/broken", "not json").ok());
  EtcdMirror mirror(reader.get(), {{std::string(etcd_keys::kPins), &v1::Pin::default_instance()}});
  mirror.Start();
  ASSERT_TRUE(mirror.WaitUntilCurrent(absl::Seconds(10))) << mirror.StatusText();
  EXPECT_TRUE(mirror.Get(etcd_keys::Pin("before")).has_value());
  EXPECT_FALSE(mirror.Get("/repro/pins/broken").has_value());  // left out, logged
  EXPECT_TRUE(mirror.CheckAvailable().ok());

  etcd_.KillAll();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (mirror.current() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  absl::Status down = mirror.CheckAvailable();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(down.message(), HasSubstr(etcd_.Endpoint(0)));
  EXPECT_TRUE(mirror.Get(etcd_keys::Pin("before")).has_value());  // still served

  ASSERT_TRUE(etcd_.RestartAll().ok());
  pin.set_job("after");
  ASSERT_TRUE(Put(*writer, etcd_keys::Pin("after"), etcd_keys::Encode(pin)).ok());
  etcdserverpb::DeleteRangeRequest remove;
  remove.set_key(etcd_keys::Pin("before"));
  ASSERT_TRUE(writer->DeleteRange(remove).ok());
  ASSERT_TRUE(mirror.WaitUntilCurrent(absl::Seconds(10))) << mirror.StatusText();
  const absl::Time caught_up = absl::Now() + absl::Seconds(10);
  // The put and the delete are two revisions: the mirror may show the first before the second.
  while ((!mirror.Get(etcd_keys::Pin("after")).has_value() ||
          mirror.Get(etcd_keys::Pin("before")).has_value()) &&
         absl::Now() < caught_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(mirror.Get(etcd_keys::Pin("after")).has_value());
  EXPECT_FALSE(mirror.Get(etcd_keys::Pin("before")).has_value());
  EXPECT_EQ(mirror.List(etcd_keys::kPins).size(), 1u);
}

TEST_F(EtcdClientTest, LearnedRecordsNeverGoBackwards) {
  auto client = Client({etcd_.Endpoint(0)});
  EtcdMirror mirror(client.get(), {{std::string(etcd_keys::kPins), &v1::Pin::default_instance()}});
  auto pin = [](uint64_t seed) {
    auto p = std::make_shared<v1::Pin>();
    p->set_seed(seed);
    return p;
  };
  mirror.Learn("/repro/pins/j", pin(2), 20);
  mirror.Learn("/repro/pins/j", pin(1), 10);
  EXPECT_EQ(static_cast<const v1::Pin&>(*mirror.Get("/repro/pins/j")->record).seed(), 2u);
}

TEST(EtcdKeysTest, LayoutAndPrefixes) {
  EXPECT_EQ(etcd_keys::Version("ds", "v1"), "/repro/versions/ds/v1");
  EXPECT_EQ(etcd_keys::VersionsOf("ds"), "/repro/versions/ds/");
  EXPECT_EQ(etcd_keys::VersionsOf(""), "/repro/versions/");
  EXPECT_EQ(etcd_keys::Head("job", "node-a"), "/repro/heads/job/node-a");
  EXPECT_EQ(etcd_keys::Node("node-a"), "/repro/nodes/node-a");
  EXPECT_EQ(etcd_keys::LastPart("/repro/heads/job/node-a"), "node-a");
  EXPECT_EQ(etcd_keys::PrefixEnd("/repro/"), "/repro0");
  EXPECT_EQ(etcd_keys::PrefixEnd(std::string("a\xff", 2)), "b");
  uint32_t index = 0, count = 0;
  ASSERT_TRUE(etcd_keys::ParseManifestChunk(etcd_keys::ManifestChunk("/u/", 3, 12), &index,
                                            &count));
  EXPECT_EQ(index, 3u);
  EXPECT_EQ(count, 12u);
  EXPECT_FALSE(etcd_keys::ParseManifestChunk("/u/garbage", &index, &count));
  v1::Pin pin;
  pin.set_job("j");
  pin.set_seed(42);
  auto back = etcd_keys::Decode<v1::Pin>(etcd_keys::Encode(pin), "k");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->seed(), 42u);
  EXPECT_EQ(etcd_keys::Decode<v1::Pin>("{\"job\":\"j\",\"future\":1}", "k").status().code(),
            absl::StatusCode::kOk);  // newer writers may add fields
  EXPECT_EQ(etcd_keys::Decode<v1::Pin>("nope", "k").status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace repro
