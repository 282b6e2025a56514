// A throwaway certificate authority for tests, made with Debian's openssl command line.
#ifndef SWITCHBOARD_TESTS_INTEGRATION_TEST_CA_H_
#define SWITCHBOARD_TESTS_INTEGRATION_TEST_CA_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace switchboard::testing {

struct CertFiles {
  std::string cert;  // PEM certificate.
  std::string key;   // PEM private key (unencrypted).
};

class TestCa {
 public:
  // Creates a CA (P-256 key, self-signed, one day) named `name` under `dir`.
  static absl::StatusOr<TestCa> Create(const std::string& dir, const std::string& name);

  // Issues a certificate for `sans` (openssl syntax: "DNS:n1", "URI:spiffe://d/node/n1",
  // "IP:127.0.0.1"), usable by servers and clients; files DIR/NAME-LEAF.{crt,key}.
  absl::StatusOr<CertFiles> Issue(const std::string& leaf, const std::vector<std::string>& sans) const;

  const std::string& cert() const { return files_.cert; }

 private:
  std::string dir_, name_;
  CertFiles files_;
};

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_TESTS_INTEGRATION_TEST_CA_H_
