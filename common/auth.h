// Who may do what: pure decisions over a caller's identity, and the admin token table.
//
// A caller is what the transport proved about a peer (the SANs of a verified client
// certificate) plus the bearer token it presented, already matched against the token
// table. Decisions are pure functions of (caller, access, config) that return their
// reason; the gRPC adapters (controlplane/service) only gather the caller and turn a
// refusal into a status.
#ifndef SWITCHBOARD_COMMON_AUTH_H_
#define SWITCHBOARD_COMMON_AUTH_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace switchboard {

enum class Role { kNone = 0, kRead = 1, kAdmin = 2 };
const char* RoleName(Role role);

struct Caller {
  // SANs of the client certificate the TLS handshake verified (empty: none presented, or
  // a plaintext connection).
  std::vector<std::string> dns_sans;
  std::vector<std::string> uri_sans;
  bool token_presented = false;  // An `authorization: Bearer` header was sent.
  std::string token_name;        // The matching token's name; empty when none matched.
  Role token_role = Role::kNone;

  bool has_certificate() const { return !dns_sans.empty() || !uri_sans.empty(); }
  bool has_valid_token() const { return !token_name.empty(); }
  // How events and logs name the caller: "token:NAME", "cert:SAN" or "anonymous". Never
  // the token itself.
  std::string Describe() const;
};

// What a call needs.
enum class Access {
  kRead,       // Admin reads: status, explain, history, events, clients.
  kWrite,      // Admin writes: drain, undrain, scale, reload.
  kSubscribe,  // Subscribers: native Subscribe, xDS ADS, the picker.
};

// --subscriber-auth: what a subscriber must present.
enum class SubscriberAuth { kNone, kCertificate, kToken, kCertificateOrToken };
absl::StatusOr<SubscriberAuth> ParseSubscriberAuth(absl::string_view text);  // none|cert|token|cert-or-token

struct AuthConfig {
  // Admin tokens are configured (--admin-tokens). Without them the admin API is open to
  // every caller when `open_admin_without_tokens` (plaintext, --insecure: as before) and
  // closed otherwise.
  bool tokens_configured = false;
  bool open_admin_without_tokens = false;
  SubscriberAuth subscriber_auth = SubscriberAuth::kNone;
};

struct AuthDecision {
  bool allowed = false;
  absl::StatusCode code = absl::StatusCode::kOk;  // kUnauthenticated or kPermissionDenied when refused.
  std::string reason;
};

AuthDecision Authorize(const Caller& caller, Access access, const AuthConfig& config);

// Whether `caller` may speak for node `node_id` (an agent's Hello). With
// `require_certificate` (the control plane has --client-ca), the certificate must carry
// a DNS SAN equal to the node id or a URI SAN spiffe://DOMAIN/node/NODE_ID (any trust
// domain the CA signs for); without it, every caller may (plaintext: no identities).
AuthDecision CheckAgentIdentity(const Caller& caller, absl::string_view node_id, bool require_certificate);

// One entry of --admin-tokens.
struct AdminToken {
  std::string name;
  Role role = Role::kNone;
  std::string sha256_hex;  // Lower-case hex SHA-256 of the token.
};

// The admin tokens, from YAML: a list of {name: NAME, role: read|admin, sha256: HEX}.
class TokenTable {
 public:
  // A bad file (missing field, unknown role, not 64 hex digits, duplicate name or hash)
  // is an InvalidArgument naming the entry; hashes are never echoed.
  static absl::StatusOr<TokenTable> Parse(const std::string& yaml, const std::string& source);
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The entry whose hash is the SHA-256 of `token`, or null.
  const AdminToken* Find(absl::string_view token) const;
  size_t size() const { return tokens_.size(); }

 private:
  std::vector<AdminToken> tokens_;
};

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_AUTH_H_
