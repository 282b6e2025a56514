#include "common/auth.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Caller WithToken(const std::string& name, Role role) {
  Caller c;
  c.token_presented = true;
  c.token_name = name;
  c.token_role = role;
  return c;
}

AuthConfig Tokens() {
  AuthConfig c;
  c.tokens_configured = true;
  return c;
}

TEST(AuthorizeTest, RolesGateReadsAndWrites) {
  const AuthConfig config = Tokens();
  EXPECT_FALSE(Authorize(Caller{}, Access::kRead, config).allowed);
  EXPECT_EQ(Authorize(Caller{}, Access::kWrite, config).code, absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Authorize(WithToken("v", Role::kRead), Access::kRead, config).allowed);
  const AuthDecision d = Authorize(WithToken("v", Role::kRead), Access::kWrite, config);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.code, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(d.reason, "token:v has role read; this call needs role admin");
  EXPECT_TRUE(Authorize(WithToken("o", Role::kAdmin), Access::kWrite, config).allowed);
  EXPECT_TRUE(Authorize(WithToken("o", Role::kAdmin), Access::kRead, config).allowed);
}

TEST(AuthorizeTest, UnknownTokenIsRefusedEvenWhereNoneIsNeeded) {
  Caller bad;
  bad.token_presented = true;
  AuthConfig open;
  open.open_admin_without_tokens = true;
  EXPECT_EQ(Authorize(bad, Access::kRead, open).code, absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(bad, Access::kSubscribe, open).code, absl::StatusCode::kUnauthenticated);
}

TEST(AuthorizeTest, WithoutTokensTheAdminApiIsOpenOnlyWhenPlaintext) {
  AuthConfig closed;
  EXPECT_FALSE(Authorize(Caller{}, Access::kRead, closed).allowed);
  EXPECT_THAT(Authorize(Caller{}, Access::kRead, closed).reason, HasSubstr("no --admin-tokens"));
  AuthConfig open;
  open.open_admin_without_tokens = true;
  EXPECT_TRUE(Authorize(Caller{}, Access::kWrite, open).allowed);
}

TEST(AuthorizeTest, SubscriberAuthModes) {
  Caller cert;
  cert.dns_sans = {"gw"};
  const Caller token = WithToken("v", Role::kRead);
  AuthConfig c;
  for (auto [mode, anonymous_ok, cert_ok, token_ok] : std::vector<std::tuple<SubscriberAuth, bool, bool, bool>>{
           {SubscriberAuth::kNone, true, true, true},
           {SubscriberAuth::kCertificate, false, true, false},
           {SubscriberAuth::kToken, false, false, true},
           {SubscriberAuth::kCertificateOrToken, false, true, true}}) {
    c.subscriber_auth = mode;
    EXPECT_EQ(Authorize(Caller{}, Access::kSubscribe, c).allowed, anonymous_ok);
    EXPECT_EQ(Authorize(cert, Access::kSubscribe, c).allowed, cert_ok);
    EXPECT_EQ(Authorize(token, Access::kSubscribe, c).allowed, token_ok);
  }
  EXPECT_FALSE(ParseSubscriberAuth("sometimes").ok());
  EXPECT_EQ(*ParseSubscriberAuth("cert-or-token"), SubscriberAuth::kCertificateOrToken);
}

TEST(CheckAgentIdentityTest, DnsOrSpiffeSanMustNameTheNode) {
  Caller dns;
  dns.dns_sans = {"other", "n1"};
  EXPECT_TRUE(CheckAgentIdentity(dns, "n1", true).allowed);
  EXPECT_FALSE(CheckAgentIdentity(dns, "n2", true).allowed);
  Caller spiffe;
  spiffe.uri_sans = {"spiffe://fleet.example/node/n1"};
  EXPECT_TRUE(CheckAgentIdentity(spiffe, "n1", true).allowed);
  EXPECT_FALSE(CheckAgentIdentity(spiffe, "n", true).allowed);
  EXPECT_FALSE(CheckAgentIdentity(spiffe, "n1x", true).allowed);
  Caller bad;
  bad.uri_sans = {"spiffe:///node/n1", "https://fleet.example/node/n1", "spiffe://d/x/node/n1"};
  EXPECT_FALSE(CheckAgentIdentity(bad, "n1", true).allowed);
  const AuthDecision none = CheckAgentIdentity(Caller{}, "n1", true);
  EXPECT_EQ(none.code, absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(none.reason, HasSubstr("no client certificate"));
  EXPECT_TRUE(CheckAgentIdentity(Caller{}, "n1", false).allowed);
}

TEST(TokenTableTest, ParsesAndFindsByHash) {
  const std::string yaml = "- name: viewer\n  role: read\n  sha256: " + Sha256Hex("s3cret") +
                           "\n- {name: ops, role: admin, sha256: " + Sha256Hex("t0ken") + "}\n";
  auto table = TokenTable::Parse(yaml, "tokens.yaml");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2u);
  ASSERT_NE(table->Find("s3cret"), nullptr);
  EXPECT_EQ(table->Find("s3cret")->role, Role::kRead);
  EXPECT_EQ(table->Find("t0ken")->name, "ops");
  EXPECT_EQ(table->Find("nope"), nullptr);
  EXPECT_EQ(table->Find(""), nullptr);
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenTableTest, BadFilesSayWhatIsWrongWithoutEchoingSecrets) {
  const std::string hash = Sha256Hex("x");
  for (const auto& [yaml, want] : std::vector<std::pair<std::string, std::string>>{
           {"name: a", "want a list"},
           {"- {name: a, role: root, sha256: " + hash + "}", "role must be read or admin"},
           {"- {name: a, role: read, sha256: my-plain-token}", "64 hex digits"},
           {"- {name: a, role: read}", "want exactly name, role and sha256"},
           {"- {name: a, role: read, sha256: " + hash + "}\n- {name: a, role: admin, sha256: " + Sha256Hex("y") + "}",
            "appears twice"},
           {"- {name: a, role: read, sha256: " + hash + "}\n- {name: b, role: admin, sha256: " + hash + "}",
            "same token"},
       }) {
    auto table = TokenTable::Parse(yaml, "t.yaml");
    ASSERT_FALSE(table.ok()) << yaml;
    EXPECT_THAT(table.status().message(), HasSubstr(want));
    EXPECT_THAT(table.status().message(), Not(HasSubstr("my-plain-token")));
    EXPECT_THAT(table.status().message(), Not(HasSubstr(hash)));
  }
}

}  // namespace
}  // namespace switchboard
