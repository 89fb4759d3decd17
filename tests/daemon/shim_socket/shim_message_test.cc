// The shim protocol on reprod's side: round trips, one test per rejection reason, and agreement
// with the shim's own C parser on PIN messages.
#include "daemon/shim_socket/shim_message.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern "C" {
#include "client/shim/pin_table.h"
}

namespace repro {
namespace {

using ::testing::HasSubstr;

ShimHello Hello() {
  ShimHello hello;
  hello.job = "job-1";
  hello.rank = 3;
  hello.claimed_pid = 42;
  hello.parent_pid = 41;
  hello.nonce = 99;
  hello.mode = ShimMode::kEnforce;
  hello.exe = "/usr/bin/python3.11";
  hello.argv = {"python3", "train.py", "--lr=0.1"};
  hello.report_seq = 12;
  hello.link = 2;
  return hello;
}

ShimOpen Open() {
  ShimOpen open;
  open.dataset = "ds";
  open.flags = REPRO_SHIM_OPEN_REDIRECTED;
  open.requested_path = "latest/a.csv";
  open.opened_path = "/ml/ds/v1/a.csv";
  open.has_stat = true;
  open.device = 1;
  open.inode = 2;
  open.size = 3;
  open.mtime_ns = 4;
  open.ctime_ns = 5;
  return open;
}

ShimReject Reason(const std::string& datagram) { return ParseShimRequest(datagram).reject; }

// A message with the given fields, built with the C writer (no validation).
std::string Raw(uint16_t type, const std::function<void(repro_shim_writer*)>& fields) {
  std::string buf(REPRO_SHIM_MAX_MESSAGE, '\0');
  repro_shim_writer w;
  repro_shim_writer_init(&w, reinterpret_cast<uint8_t*>(buf.data()), buf.size(), type, 1);
  fields(&w);
  buf.resize(repro_shim_finish(&w));
  return buf;
}

// A HELLO with its required fields, then what `extra` writes.
std::string RawHello(const std::function<void(repro_shim_writer*)>& extra) {
  return Raw(REPRO_SHIM_HELLO, [&](repro_shim_writer* w) {
    repro_shim_put_str(w, REPRO_SHIM_F_JOB, "job-1", 5);
    repro_shim_put_u64(w, REPRO_SHIM_F_RANK, 0);
    repro_shim_put_u64(w, REPRO_SHIM_F_PID, 10);
    repro_shim_put_u64(w, REPRO_SHIM_F_NONCE, 1);
    repro_shim_put_u64(w, REPRO_SHIM_F_MODE, REPRO_SHIM_MODE_RECORD);
    extra(w);
  });
}

TEST(ShimMessageTest, HelloRoundTrip) {
  ParsedShimRequest parsed = ParseShimRequest(EncodeShimHello(7, Hello()));
  ASSERT_EQ(parsed.reject, ShimReject::kNone) << parsed.detail;
  EXPECT_EQ(parsed.request.type, REPRO_SHIM_HELLO);
  EXPECT_EQ(parsed.request.request_id, 7u);
  const ShimHello& h = parsed.request.hello;
  EXPECT_EQ(h.job, "job-1");
  EXPECT_EQ(h.rank, 3);
  EXPECT_EQ(h.claimed_pid, 42);
  EXPECT_EQ(h.parent_pid, 41);
  EXPECT_EQ(h.nonce, 99u);
  EXPECT_EQ(h.mode, ShimMode::kEnforce);
  EXPECT_EQ(h.exe, "/usr/bin/python3.11");
  EXPECT_EQ(h.argv, Hello().argv);
  EXPECT_EQ(h.report_seq, 12u);
  EXPECT_EQ(h.link, 2u);
}

TEST(ShimMessageTest, HelloCarriesTheLauncherIdentity) {
  ShimHello hello = Hello();
  hello.launcher = {{"TORCHELASTIC_RUN_ID", "elastic-7"},
                    {"TORCHELASTIC_RESTART_COUNT", "1"},
                    {"SLURM_JOB_ID", "4242"},
                    {"REPRO_POD_UID", "5f0c6e2a-0000-4000-8000-000000000001"}};
  ParsedShimRequest parsed = ParseShimRequest(EncodeShimHello(7, hello));
  ASSERT_EQ(parsed.reject, ShimReject::kNone) << parsed.detail;
  EXPECT_EQ(parsed.request.hello.launcher, hello.launcher);

  auto with = [](std::vector<std::string> vars) {
    return RawHello([&](repro_shim_writer* w) {
      for (const std::string& v : vars) {
        repro_shim_put_str(w, REPRO_SHIM_F_LAUNCHER_VAR, v.data(), v.size());
      }
    });
  };
  EXPECT_EQ(Reason(with({"LOCAL_RANK=1", "WORLD_SIZE=8", "GROUP_RANK=0"})), ShimReject::kNone);
  EXPECT_EQ(Reason(with({"LOCAL_RANK="})), ShimReject::kNone);  // set but empty
  EXPECT_EQ(Reason(with({"PATH=/usr/bin"})), ShimReject::kBadValue);  // not a launcher variable
  EXPECT_EQ(Reason(with({"LOCAL_RANK=1", "LOCAL_RANK=2"})), ShimReject::kBadValue);
  EXPECT_EQ(Reason(with({"LOCAL_RANK"})), ShimReject::kBadValue);
}

TEST(ShimMessageTest, OpenRoundTrip) {
  ParsedShimRequest parsed = ParseShimRequest(EncodeShimOpen(0, Open()));
  ASSERT_EQ(parsed.reject, ShimReject::kNone) << parsed.detail;
  const ShimOpen& o = parsed.request.open;
  EXPECT_EQ(o.dataset, "ds");
  EXPECT_TRUE(o.redirected());
  EXPECT_FALSE(o.write());
  EXPECT_EQ(o.opened_path, "/ml/ds/v1/a.csv");
  EXPECT_TRUE(o.has_stat);
  EXPECT_EQ(o.ctime_ns, 5);
  ShimOpen bare = Open();
  bare.has_stat = false;
  EXPECT_FALSE(ParseShimRequest(EncodeShimOpen(0, bare)).request.open.has_stat);
}

TEST(ShimMessageTest, ViewUseRoundTripAndRange) {
  ShimOpen listed = Open();
  listed.has_stat = false;
  listed.view_use = REPRO_SHIM_VIEW_LIST;
  ParsedShimRequest parsed = ParseShimRequest(EncodeShimOpen(0, listed));
  ASSERT_EQ(parsed.reject, ShimReject::kNone) << parsed.detail;
  EXPECT_EQ(parsed.request.open.view_use, REPRO_SHIM_VIEW_LIST);
  EXPECT_EQ(ParseShimRequest(EncodeShimOpen(0, Open())).request.open.view_use, 0u);
  listed.view_use = REPRO_SHIM_VIEW_LAST + 1;
  EXPECT_EQ(Reason(EncodeShimOpen(0, listed)), ShimReject::kBadValue);
}

TEST(ShimMessageTest, RejectsBrokenFraming) {
  std::string good = EncodeShimHello(1, Hello());
  EXPECT_EQ(Reason(""), ShimReject::kTruncated);
  EXPECT_EQ(Reason(good.substr(0, 10)), ShimReject::kTruncated);
  EXPECT_EQ(Reason(good.substr(0, good.size() - 1)), ShimReject::kBadLength);
  EXPECT_EQ(Reason(good + "x"), ShimReject::kBadLength);
  EXPECT_EQ(Reason(std::string(REPRO_SHIM_MAX_MESSAGE + 1, 'x')), ShimReject::kOversized);
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_EQ(Reason(magic), ShimReject::kBadMagic);
  std::string version = good;
  version[4] = 2;
  EXPECT_EQ(Reason(version), ShimReject::kBadVersion);
  std::string type = good;
  type[6] = REPRO_SHIM_PIN;  // reprod's own message type, not one a shim sends
  EXPECT_EQ(Reason(type), ShimReject::kUnknownType);
  EXPECT_EQ(Reason(std::string(64, '\xff')), ShimReject::kBadMagic);
}

TEST(ShimMessageTest, ADoorbellHasNoFields) {
  EXPECT_EQ(Reason(Raw(REPRO_SHIM_DOORBELL, [](repro_shim_writer*) {})), ShimReject::kNone);
  EXPECT_EQ(Reason(Raw(REPRO_SHIM_DOORBELL,
                       [](repro_shim_writer* w) { repro_shim_put_u64(w, REPRO_SHIM_F_RANK, 1); })),
            ShimReject::kUnknownField);
}

TEST(ShimMessageTest, RejectsBrokenFields) {
  std::string good = EncodeShimHello(1, Hello());
  std::string reserved = good;
  reserved[REPRO_SHIM_HEADER_SIZE + 2] = 1;  // reserved bits of the first field
  EXPECT_EQ(Reason(reserved), ShimReject::kMalformedField);
  std::string overlong = good;
  overlong[REPRO_SHIM_HEADER_SIZE + 6] = 0x7f;  // first field's size runs past the end
  EXPECT_EQ(Reason(overlong), ShimReject::kMalformedField);
  auto hello_with = RawHello;
  EXPECT_EQ(Reason(hello_with([](repro_shim_writer*) {})), ShimReject::kNone);
  EXPECT_EQ(Reason(hello_with([](repro_shim_writer* w) { repro_shim_put_u64(w, 999, 1); })),
            ShimReject::kUnknownField);
  EXPECT_EQ(Reason(hello_with([](repro_shim_writer* w) {
              repro_shim_put_u64(w, REPRO_SHIM_F_OPEN_FLAGS, 1);  // an OPEN tag in a HELLO
            })),
            ShimReject::kUnknownField);
  EXPECT_EQ(Reason(hello_with([](repro_shim_writer* w) { repro_shim_put_u64(w, REPRO_SHIM_F_RANK, 1); })),
            ShimReject::kDuplicateField);
  EXPECT_EQ(Reason(hello_with([](repro_shim_writer* w) {
              repro_shim_put_str(w, REPRO_SHIM_F_EXE, "a\0b", 3);
            })),
            ShimReject::kBadValue);
  EXPECT_EQ(Reason(hello_with([](repro_shim_writer* w) {
              repro_shim_put_str(w, REPRO_SHIM_F_PARENT_PID, "1234", 4);  // not 8 bytes
            })),
            ShimReject::kBadValue);
  EXPECT_EQ(Reason(Raw(REPRO_SHIM_HELLO,
                       [](repro_shim_writer* w) { repro_shim_put_str(w, REPRO_SHIM_F_JOB, "j", 1); })),
            ShimReject::kMissingField);
}

TEST(ShimMessageTest, RejectsBadValues) {
  ShimHello bad_job = Hello();
  bad_job.job = "no spaces allowed";
  EXPECT_EQ(Reason(EncodeShimHello(1, bad_job)), ShimReject::kBadValue);
  ShimHello bad_rank = Hello();
  bad_rank.rank = -1;
  EXPECT_EQ(Reason(EncodeShimHello(1, bad_rank)), ShimReject::kBadValue);
  ShimOpen relative = Open();
  relative.opened_path = "ml/ds/v1/a.csv";
  EXPECT_EQ(Reason(EncodeShimOpen(1, relative)), ShimReject::kBadValue);
  ShimOpen flags = Open();
  flags.flags = 1u << 10;
  EXPECT_EQ(Reason(EncodeShimOpen(1, flags)), ShimReject::kBadValue);
  ShimOpen dataset = Open();
  dataset.dataset = "../etc";
  EXPECT_EQ(Reason(EncodeShimOpen(1, dataset)), ShimReject::kBadValue);
  std::string partial_stat = Raw(REPRO_SHIM_OPEN, [](repro_shim_writer* w) {
    repro_shim_put_str(w, REPRO_SHIM_F_DATASET_NAME, "ds", 2);
    repro_shim_put_u64(w, REPRO_SHIM_F_OPEN_FLAGS, 0);
    repro_shim_put_str(w, REPRO_SHIM_F_REQUESTED_PATH, "a", 1);
    repro_shim_put_str(w, REPRO_SHIM_F_OPENED_PATH, "/a", 2);
    repro_shim_put_u64(w, REPRO_SHIM_F_SIZE, 1);
  });
  EXPECT_EQ(Reason(partial_stat), ShimReject::kMissingField);
}

ShimLoaded Loaded() {
  ShimLoaded loaded;
  loaded.libraries = {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/libz.so.1"};
  loaded.libc_version = "2.36";
  loaded.package_dirs = {"/usr/lib/python3/dist-packages/numpy",
                         "/x/site-packages/__pycache__/six.cpython-311.pyc"};
  return loaded;
}

// A LOADED message with the given fields, built with the C writer (no validation).
std::string RawLoaded(const std::function<void(repro_shim_writer*)>& fields) {
  return Raw(REPRO_SHIM_LOADED, fields);
}

TEST(ShimMessageTest, LoadedRoundTrip) {
  ParsedShimRequest parsed = ParseShimRequest(EncodeShimLoaded(0, Loaded()));
  ASSERT_EQ(parsed.reject, ShimReject::kNone) << parsed.detail;
  EXPECT_EQ(parsed.request.type, REPRO_SHIM_LOADED);
  EXPECT_EQ(parsed.request.request_id, 0u);
  const ShimLoaded& l = parsed.request.loaded;
  EXPECT_EQ(l.libraries, Loaded().libraries);
  EXPECT_EQ(l.libc_version, "2.36");
  EXPECT_EQ(l.package_dirs, Loaded().package_dirs);

  ParsedShimRequest empty = ParseShimRequest(EncodeShimLoaded(0, ShimLoaded()));
  ASSERT_EQ(empty.reject, ShimReject::kNone) << empty.detail;  // every field is optional
  EXPECT_TRUE(empty.request.loaded.libraries.empty());
  EXPECT_TRUE(empty.request.loaded.libc_version.empty());
}

TEST(ShimMessageTest, LoadedRepeatsUpToTheBound) {
  ShimLoaded many;
  for (size_t i = 0; i < kMaxShimLoadedEntries; ++i) many.libraries.push_back("/l");
  ParsedShimRequest parsed = ParseShimRequest(EncodeShimLoaded(0, many));
  ASSERT_EQ(parsed.reject, ShimReject::kNone) << parsed.detail;
  EXPECT_EQ(parsed.request.loaded.libraries.size(), kMaxShimLoadedEntries);
  many.libraries.push_back("/l");
  EXPECT_EQ(Reason(EncodeShimLoaded(0, many)), ShimReject::kDuplicateField);
  ShimLoaded dirs;
  for (size_t i = 0; i <= kMaxShimLoadedEntries; ++i) dirs.package_dirs.push_back("/p");
  EXPECT_EQ(Reason(EncodeShimLoaded(0, dirs)), ShimReject::kDuplicateField);
}

TEST(ShimMessageTest, LoadedRejectsBadValuesAndUnknownTags) {
  ShimLoaded relative = Loaded();
  relative.libraries.push_back("libfoo.so");
  EXPECT_EQ(Reason(EncodeShimLoaded(0, relative)), ShimReject::kBadValue);
  ShimLoaded relative_dir = Loaded();
  relative_dir.package_dirs = {"site-packages/numpy"};
  EXPECT_EQ(Reason(EncodeShimLoaded(0, relative_dir)), ShimReject::kBadValue);
  for (const char* version : {"2.36 ", "2.36\n", "$(id)", "x/y"}) {
    ShimLoaded bad = Loaded();
    bad.libc_version = version;
    EXPECT_EQ(Reason(EncodeShimLoaded(0, bad)), ShimReject::kBadValue) << version;
  }
  ShimLoaded long_version = Loaded();
  long_version.libc_version = std::string(kMaxShimLibcVersion + 1, '1');
  EXPECT_EQ(Reason(EncodeShimLoaded(0, long_version)), ShimReject::kBadValue);
  ShimLoaded ubuntu = Loaded();
  ubuntu.libc_version = "2.35-0ubuntu3.8";
  EXPECT_EQ(Reason(EncodeShimLoaded(0, ubuntu)), ShimReject::kNone);

  EXPECT_EQ(Reason(RawLoaded([](repro_shim_writer* w) {
              repro_shim_put_str(w, REPRO_SHIM_F_LIBRARY, "/a\0b", 4);  // NUL inside
            })),
            ShimReject::kBadValue);
  EXPECT_EQ(Reason(RawLoaded([](repro_shim_writer* w) {
              repro_shim_put_str(w, REPRO_SHIM_F_LIBRARY, "", 0);
            })),
            ShimReject::kBadValue);
  EXPECT_EQ(Reason(RawLoaded([](repro_shim_writer* w) {
              repro_shim_put_u64(w, REPRO_SHIM_F_LIBC_VERSION, 236);  // 8 bytes, not a version
            })),
            ShimReject::kBadValue);
  EXPECT_EQ(Reason(RawLoaded([](repro_shim_writer* w) {
              repro_shim_put_str(w, REPRO_SHIM_F_LIBC_VERSION, "2.36", 4);
              repro_shim_put_str(w, REPRO_SHIM_F_LIBC_VERSION, "2.37", 4);
            })),
            ShimReject::kDuplicateField);
  EXPECT_EQ(Reason(RawLoaded([](repro_shim_writer* w) { repro_shim_put_u64(w, 53, 1); })),
            ShimReject::kUnknownField);
  EXPECT_EQ(Reason(RawLoaded([](repro_shim_writer* w) {
              repro_shim_put_str(w, REPRO_SHIM_F_JOB, "job-1", 5);  // a HELLO tag
            })),
            ShimReject::kUnknownField);
  EXPECT_EQ(Reason(EncodeShimLoaded(0, Loaded()).substr(0, 30)), ShimReject::kBadLength);
}

TEST(ShimMessageTest, EveryReasonHasAName) {
  for (ShimReject reason : AllShimRejects()) {
    EXPECT_NE(ShimRejectName(reason), "none");
    EXPECT_NE(ShimRejectName(reason), "unknown");
  }
}

TEST(ShimMessageTest, ThePinIsWhatTheShimReads) {
  ShimPinReply reply;
  reply.seed = 11;
  reply.rank_seed = 12;
  reply.mode = ShimMode::kEnforce;
  reply.datasets.push_back({"users", "v7", "/ml/users", "snap-7", {"snap-6", "v8"}});
  std::string msg = EncodeShimPin(5, reply);
  auto pin = std::make_unique<shim_pin>();
  ASSERT_EQ(shim_pin_from_message(pin.get(), reinterpret_cast<const uint8_t*>(msg.data()),
                                  msg.size()),
            0);
  EXPECT_EQ(pin->seed, 11u);
  EXPECT_EQ(pin->rank_seed, 12u);
  EXPECT_EQ(pin->mode, REPRO_SHIM_MODE_ENFORCE);
  ASSERT_EQ(pin->count, 1u);
  EXPECT_STREQ(pin->datasets[0].pinned_path, "/ml/users/snap-7");
  EXPECT_EQ(pin->datasets[0].other_count, 2u);
}

TEST(ShimMessageTest, OversizedPinsLeaveOutOtherVersions) {
  ShimPinReply reply;
  ShimPinDataset d{"ds", "v1", "/ml/ds", "v1", {}};
  for (int i = 0; i < 1000; ++i) d.other_dirs.push_back(std::string(100, 'a' + i % 26) + std::to_string(i));
  reply.datasets.push_back(d);
  size_t omitted = 0;
  std::string msg = EncodeShimPin(5, reply, &omitted);
  ASSERT_FALSE(msg.empty());
  EXPECT_GT(omitted, 0u);
  EXPECT_LE(msg.size(), size_t{REPRO_SHIM_MAX_MESSAGE});
  auto pin = std::make_unique<shim_pin>();
  EXPECT_EQ(shim_pin_from_message(pin.get(), reinterpret_cast<const uint8_t*>(msg.data()),
                                  msg.size()),
            0);
  EXPECT_EQ(pin->datasets[0].other_count + omitted, 1000u);
}

TEST(ShimMessageTest, VerdictAndError) {
  std::string verdict = EncodeShimVerdict(9, v1::VERDICT_OTHER_VERSION, false, "why");
  repro_shim_header h;
  ASSERT_EQ(repro_shim_read_header(reinterpret_cast<const uint8_t*>(verdict.data()),
                                   verdict.size(), &h),
            REPRO_SHIM_HEADER_OK);
  EXPECT_EQ(h.type, REPRO_SHIM_VERDICT);
  EXPECT_EQ(h.request_id, 9u);
  EXPECT_THAT(EncodeShimError(3, "job x has no pin"), HasSubstr("job x has no pin"));
}

}  // namespace
}  // namespace repro
