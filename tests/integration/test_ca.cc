#include "tests/integration/test_ca.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace switchboard::testing {

namespace {

absl::Status Run(const std::string& command) {
  const std::string quiet = absl::StrCat(command, " >/dev/null 2>&1");
  if (std::system(quiet.c_str()) != 0) return absl::InternalError(absl::StrCat("failed: ", command));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestCa> TestCa::Create(const std::string& dir, const std::string& name) {
  TestCa ca;
  ca.dir_ = dir;
  ca.name_ = name;
  ca.files_ = {absl::StrCat(dir, "/", name, ".crt"), absl::StrCat(dir, "/", name, ".key")};
  if (absl::Status s =
          Run(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes",
                           " -days 1 -subj /CN=", name, " -keyout ", ca.files_.key, " -out ", ca.files_.cert));
      !s.ok()) {
    return s;
  }
  return ca;
}

absl::StatusOr<CertFiles> TestCa::Issue(const std::string& leaf, const std::vector<std::string>& sans) const {
  const std::string base = absl::StrCat(dir_, "/", name_, "-", leaf);
  CertFiles out{base + ".crt", base + ".key"};
  std::ofstream(base + ".ext") << "subjectAltName=" << absl::StrJoin(sans, ",") << "\n"
                               << "extendedKeyUsage=serverAuth,clientAuth\n"
                               << "basicConstraints=CA:FALSE\n";
  if (absl::Status s = Run(absl::StrCat("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes",
                                        " -subj /CN=", leaf, " -keyout ", out.key, " -out ", base, ".csr"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Run(absl::StrCat("openssl x509 -req -days 1 -in ", base, ".csr -CA ", files_.cert, " -CAkey ",
                                        files_.key, " -CAcreateserial -extfile ", base, ".ext -out ", out.cert));
      !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace switchboard::testing
