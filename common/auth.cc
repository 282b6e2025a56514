#include "common/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "yaml-cpp/yaml.h"

namespace switchboard {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kAdmin:
      return "admin";
    case Role::kNone:
      break;
  }
  return "none";
}

std::string Caller::Describe() const {
  if (has_valid_token()) return absl::StrCat("token:", token_name);
  if (!uri_sans.empty()) return absl::StrCat("cert:", uri_sans.front());
  if (!dns_sans.empty()) return absl::StrCat("cert:", dns_sans.front());
  return "anonymous";
}

absl::StatusOr<SubscriberAuth> ParseSubscriberAuth(absl::string_view text) {
  if (text == "none") return SubscriberAuth::kNone;
  if (text == "cert") return SubscriberAuth::kCertificate;
  if (text == "token") return SubscriberAuth::kToken;
  if (text == "cert-or-token") return SubscriberAuth::kCertificateOrToken;
  return absl::InvalidArgumentError(
      absl::StrCat("--subscriber-auth: '", text, "' is not one of none, cert, token, cert-or-token"));
}

namespace {

AuthDecision Allow(std::string reason) { return {true, absl::StatusCode::kOk, std::move(reason)}; }
AuthDecision Deny(absl::StatusCode code, std::string reason) { return {false, code, std::move(reason)}; }

}  // namespace

AuthDecision Authorize(const Caller& caller, Access access, const AuthConfig& config) {
  if (caller.token_presented && !caller.has_valid_token()) {
    return Deny(absl::StatusCode::kUnauthenticated, "the bearer token matches no entry of --admin-tokens");
  }
  if (access == Access::kSubscribe) {
    switch (config.subscriber_auth) {
      case SubscriberAuth::kNone:
        return Allow("subscribers need no credentials (--subscriber-auth none)");
      case SubscriberAuth::kCertificate:
        if (caller.has_certificate()) return Allow(absl::StrCat("client certificate ", caller.Describe()));
        return Deny(absl::StatusCode::kUnauthenticated,
                    "subscribers must present a client certificate (--subscriber-auth cert)");
      case SubscriberAuth::kToken:
        if (caller.has_valid_token()) return Allow(absl::StrCat(caller.Describe(), " may subscribe"));
        return Deny(absl::StatusCode::kUnauthenticated,
                    "subscribers must present a bearer token (--subscriber-auth token)");
      case SubscriberAuth::kCertificateOrToken:
        if (caller.has_valid_token() || caller.has_certificate()) {
          return Allow(absl::StrCat(caller.Describe(), " may subscribe"));
        }
        return Deny(absl::StatusCode::kUnauthenticated,
                    "subscribers must present a client certificate or a bearer token (--subscriber-auth "
                    "cert-or-token)");
    }
  }
  if (!config.tokens_configured) {
    if (config.open_admin_without_tokens) return Allow("no --admin-tokens on a plaintext control plane: open");
    return Deny(absl::StatusCode::kPermissionDenied,
                "the admin API is closed: this control plane has no --admin-tokens");
  }
  if (!caller.has_valid_token()) {
    return Deny(absl::StatusCode::kUnauthenticated,
                "the admin API needs a bearer token ($SWITCHBOARD_TOKEN or sbctl --token-file)");
  }
  const Role needed = access == Access::kWrite ? Role::kAdmin : Role::kRead;
  if (caller.token_role < needed) {
    return Deny(absl::StatusCode::kPermissionDenied,
                absl::StrCat(caller.Describe(), " has role ", RoleName(caller.token_role), "; this call needs role ",
                             RoleName(needed)));
  }
  return Allow(absl::StrCat(caller.Describe(), " has role ", RoleName(caller.token_role)));
}

AuthDecision CheckAgentIdentity(const Caller& caller, absl::string_view node_id, bool require_certificate) {
  if (!require_certificate) return Allow("no --client-ca: agent identities are not checked");
  if (!caller.has_certificate()) {
    return Deny(absl::StatusCode::kPermissionDenied,
                absl::StrCat("node ", node_id, ": the agent presented no client certificate (--cert/--key)"));
  }
  for (const std::string& dns : caller.dns_sans) {
    if (dns == node_id) return Allow(absl::StrCat("certificate DNS SAN ", dns));
  }
  for (const std::string& uri : caller.uri_sans) {
    // spiffe://DOMAIN/node/NODE_ID, DOMAIN non-empty and without '/'.
    absl::string_view rest = uri;
    if (!absl::ConsumePrefix(&rest, "spiffe://")) continue;
    const size_t slash = rest.find('/');
    if (slash == 0 || slash == absl::string_view::npos) continue;
    if (rest.substr(slash) == absl::StrCat("/node/", node_id)) return Allow(absl::StrCat("certificate URI SAN ", uri));
  }
  std::string sans;
  for (const std::string& s : caller.dns_sans) absl::StrAppend(&sans, sans.empty() ? "" : ", ", "DNS:", s);
  for (const std::string& s : caller.uri_sans) absl::StrAppend(&sans, sans.empty() ? "" : ", ", "URI:", s);
  return Deny(absl::StatusCode::kPermissionDenied,
              absl::StrCat("node ", node_id, ": the agent's certificate (", sans.substr(0, 512),
                           ") names neither DNS:", node_id, " nor URI:spiffe://DOMAIN/node/", node_id));
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

absl::StatusOr<TokenTable> TokenTable::Parse(const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    // Only the position: a line of the file may hold a hash.
    return absl::InvalidArgumentError(absl::StrCat(source, ": not YAML (line ", e.mark.line + 1, ")"));
  }
  if (!root.IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": want a list of {name: NAME, role: read|admin, sha256: HEX}"));
  }
  TokenTable table;
  std::set<std::string> names, hashes;
  int index = 0;
  for (const YAML::Node& entry : root) {
    ++index;
    const std::string where = absl::StrCat(source, ": entry ", index);
    if (!entry.IsMap() || !entry["name"] || !entry["role"] || !entry["sha256"] || entry.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": want exactly name, role and sha256"));
    }
    AdminToken t;
    t.name = entry["name"].as<std::string>("");
    const std::string role = entry["role"].as<std::string>("");
    t.sha256_hex = absl::AsciiStrToLower(entry["sha256"].as<std::string>(""));
    if (t.name.empty() || t.name.size() > 128) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": name must be 1 to 128 characters"));
    }
    if (role == "read") {
      t.role = Role::kRead;
    } else if (role == "admin") {
      t.role = Role::kAdmin;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(where, " (", t.name, "): role must be read or admin"));
    }
    bool hex = t.sha256_hex.size() == 64;
    for (char c : t.sha256_hex) hex = hex && absl::ascii_isxdigit(static_cast<unsigned char>(c));
    if (!hex) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " (", t.name, "): sha256 must be 64 hex digits (printf %s TOKEN | sha256sum), not the token"));
    }
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": name ", t.name, " appears twice"));
    }
    if (!hashes.insert(t.sha256_hex).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, " (", t.name, "): the same token as an earlier entry"));
    }
    table.tokens_.push_back(std::move(t));
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--admin-tokens ", path, ": cannot read the file"));
  std::ostringstream text;
  text << in.rdbuf();
  return Parse(text.str(), absl::StrCat("--admin-tokens ", path));
}

const AdminToken* TokenTable::Find(absl::string_view token) const {
  if (token.empty()) return nullptr;
  const std::string hash = Sha256Hex(token);
  for (const AdminToken& t : tokens_) {
    // Constant time over the hash, so timing tells nothing about near misses.
    if (CRYPTO_memcmp(t.sha256_hex.data(), hash.data(), hash.size()) == 0) return &t;
  }
  return nullptr;
}

}  // namespace switchboard
