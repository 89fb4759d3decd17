// Attester: reprod signs only statements it built itself, about subjects whose bytes it re-read.
#include "daemon/service/attester.h"

#include "absl/strings/escaping.h"
#include "client/cli/attestation.h"
#include "client/cli/dsse.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;
using testing::WriteFileOrDie;

class AttesterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = *NodeKey::LoadOrCreate(dir_.Path("node_key.pem"));
    provenance_.set_job("train-42");
    provenance_.set_journal_intact(true);
    v1::ProvenanceHead* head = provenance_.add_heads();
    head->set_node("n1");
    head->set_seq(3);
    head->set_hash(std::string(64, 'a'));
    v1::ProvenanceVersion* v = provenance_.mutable_pin()->add_versions();
    v->set_dataset("users");
    v->set_version("v1");
    v->set_digest(std::string(64, 'b'));
    WriteFileOrDie(dir_.Path("ckpt/model.pt"), "weights");
  }

  Attester MakeAttester() {
    return Attester([this](const std::string& job) -> absl::StatusOr<v1::Provenance> {
      asked_ = job;
      return provenance_;
    }, key_.get(), DefaultFileSystem(), "n1");
  }

  v1::SignAttestationRequest Request(const std::string& claimed_sha256) {
    v1::SignAttestationRequest request;
    request.set_job("train-42");
    request.set_format("in-toto");
    v1::AttestationSubject* s = request.add_subjects();
    s->set_name("ckpt/model.pt");
    s->set_path(dir_.Path("ckpt/model.pt"));
    s->set_sha256(claimed_sha256);
    return request;
  }

  TempDir dir_;
  std::unique_ptr<NodeKey> key_;
  v1::Provenance provenance_;
  std::string asked_;
};

TEST_F(AttesterTest, SignsItsOwnStatementAboutTheCheckedSubjects) {
  auto signed_ = MakeAttester().Sign(Request(Sha256Of("weights")));
  ASSERT_TRUE(signed_.ok()) << signed_.status();
  EXPECT_EQ(asked_, "train-42");
  auto envelope = cli::ParseEnvelope(signed_->envelope());
  ASSERT_TRUE(envelope.ok()) << envelope.status();
  EXPECT_EQ(envelope->payload_type, cli::kInTotoPayloadType);
  EXPECT_EQ(envelope->signatures[0].keyid, HexDigest(key_->public_key()));
  EXPECT_TRUE(cli::VerifyEnvelope(*envelope, {key_->public_key()}).ok());
  EXPECT_FALSE(cli::VerifyEnvelope(*envelope, {std::string(32, 'x')}).ok());

  nlohmann::json statement = nlohmann::json::parse(envelope->payload);
  EXPECT_EQ(statement["subject"][0]["digest"]["sha256"], HexDigest(Sha256Of("weights")));
  const auto& build = statement["predicate"]["buildDefinition"];
  EXPECT_EQ(build["externalParameters"]["job"], "train-42");
  EXPECT_EQ(build["resolvedDependencies"][0]["digest"]["sha256"], std::string(64, 'b'));
  const auto& byproducts = statement["predicate"]["runDetails"]["byproducts"];
  EXPECT_EQ(byproducts.back()["name"], "repro-subjects-check");
  EXPECT_EQ(byproducts.back()["annotations"]["checkedBy"], "n1");
}

TEST_F(AttesterTest, RefusesASubjectWhoseBytesDifferFromTheClaim) {
  auto signed_ = MakeAttester().Sign(Request(Sha256Of("other weights")));
  EXPECT_EQ(signed_.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(signed_.status().message(), HasSubstr(HexDigest(Sha256Of("other weights"))));
  // The file's real digest is not told: the caller may not be able to read the file.
  EXPECT_THAT(signed_.status().message(), Not(HasSubstr(HexDigest(Sha256Of("weights")))));
}

TEST_F(AttesterTest, RefusesUnreadableOrRelativeSubjectsAndBadFormats) {
  v1::SignAttestationRequest request = Request(Sha256Of("weights"));
  request.mutable_subjects(0)->set_path(dir_.Path("ckpt/missing.pt"));
  EXPECT_EQ(MakeAttester().Sign(request).status().code(), absl::StatusCode::kNotFound);
  request.mutable_subjects(0)->set_path("ckpt/model.pt");
  EXPECT_EQ(MakeAttester().Sign(request).status().code(), absl::StatusCode::kInvalidArgument);
  request = Request("short");
  EXPECT_EQ(MakeAttester().Sign(request).status().code(), absl::StatusCode::kInvalidArgument);
  request = Request(Sha256Of("weights"));
  request.set_format("openlineage");
  EXPECT_EQ(MakeAttester().Sign(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.set_format("repro");
  EXPECT_EQ(MakeAttester().Sign(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AttesterTest, RefusesAJournalThatIsNotIntact) {
  provenance_.set_journal_intact(false);
  auto signed_ = MakeAttester().Sign(Request(Sha256Of("weights")));
  EXPECT_EQ(signed_.status().code(), absl::StatusCode::kDataLoss);
}

TEST(DsseTest, PreAuthEncodingAsTheSpecDefinesIt) {
  EXPECT_EQ(cli::PreAuthEncoding("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  cli::DsseEnvelope envelope{"t", std::string("\0\xff", 2), {{"k", "sig"}}};
  auto parsed = cli::ParseEnvelope(cli::EnvelopeJson(envelope));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->payload, envelope.payload);
  EXPECT_EQ(parsed->signatures[0].sig, "sig");
  EXPECT_FALSE(cli::ParseEnvelope("{\"payloadType\":\"t\",\"payload\":\"!!\",\"signatures\":[]}").ok());
  EXPECT_FALSE(cli::ParseEnvelope("[]").ok());
}

}  // namespace
}  // namespace repro
