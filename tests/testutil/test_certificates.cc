#include "tests/testutil/test_certificates.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/testutil/subprocess.h"
#include "tests/testutil/temp_dir.h"

namespace repro::testing {
namespace {

absl::Status RunAll(const std::vector<std::vector<std::string>>& commands) {
  for (const std::vector<std::string>& command : commands) {
    RunResult run = RunCommand(command);
    if (run.exit_code != 0) {
      return absl::InternalError(
          absl::StrCat(absl::StrJoin(command, " "), " failed: ", run.stderr_text));
    }
  }
  return absl::OkStatus();
}

// `openssl req` with a fresh P-256 key and `args`.
std::vector<std::string> NewKey(const std::vector<std::string>& args) {
  std::vector<std::string> command = {
      "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

}  // namespace

absl::StatusOr<TestKeyPair> MakeTestCa(const std::string& dir, const std::string& name) {
  TestKeyPair ca{absl::StrCat(dir, "/", name, ".crt"), absl::StrCat(dir, "/", name, ".key")};
  absl::Status made = RunAll({NewKey({"-x509", "-subj", absl::StrCat("/CN=", name, " test CA"),
                                      "-days", "1", "-keyout", ca.key, "-out", ca.cert})});
  if (!made.ok()) return made;
  return ca;
}

absl::StatusOr<TestKeyPair> MakeTestLeaf(const TestKeyPair& ca, const std::string& dir,
                                         const std::string& name, const std::string& cn,
                                         const std::string& sans) {
  TestKeyPair leaf{absl::StrCat(dir, "/", name, ".crt"), absl::StrCat(dir, "/", name, ".key")};
  const std::string csr = absl::StrCat(dir, "/", name, ".csr");
  const std::string extensions = absl::StrCat(dir, "/", name, ".ext");
  std::string ext = "extendedKeyUsage=serverAuth,clientAuth\n";
  if (!sans.empty()) absl::StrAppend(&ext, "subjectAltName=", sans, "\n");
  WriteFileOrDie(extensions, ext);
  absl::Status made =
      RunAll({NewKey({"-subj", absl::StrCat("/CN=", cn), "-keyout", leaf.key, "-out", csr}),
              {"openssl", "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
               "-CAcreateserial", "-days", "1", "-extfile", extensions, "-out", leaf.cert}});
  if (!made.ok()) return made;
  return leaf;
}

}  // namespace repro::testing
