#include "common/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/log.h"
#include "common/net.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace switchboard {

namespace {

void AddInsecureFlag(CLI::App& app, TlsFlags* flags) {
  if (app.get_option_no_throw("--insecure") != nullptr) return;
  app.add_flag("--insecure", flags->insecure,
               "plaintext gRPC: no TLS, no client identities (logs a warning; see docs/security.md)");
}

void AddReloadFlag(CLI::App& app, TlsFlags* flags) {
  if (app.get_option_no_throw("--tls-reload-interval") != nullptr) return;
  app.add_option("--tls-reload-interval", flags->reload_interval,
                 "re-read certificate, key and CA files this often (rotation without restart)")
      ->capture_default_str();
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr MemBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free);
}

// Checks that `cert_path` holds a PEM certificate and, when `key_path` is set, that it
// holds the matching PEM private key. Messages name files, never their contents.
absl::Status CheckPemFiles(const std::string& cert_path, const char* cert_flag, const std::string& key_path,
                           const char* key_flag) {
  absl::StatusOr<std::string> cert_pem = ReadWholeFile(cert_path, cert_flag);
  if (!cert_pem.ok()) return cert_pem.status();
  BioPtr cert_bio = MemBio(*cert_pem);
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(cert_flag, " ", cert_path, ": no PEM certificate in the file"));
  }
  if (key_path.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> key_pem = ReadWholeFile(key_path, key_flag);
  if (!key_pem.ok()) return key_pem.status();
  BioPtr key_bio = MemBio(*key_pem);
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_flag, " ", key_path, ": no unencrypted PEM private key in the file"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_flag, " ", key_path, " is not the private key of ", cert_flag, " ", cert_path));
  }
  return absl::OkStatus();
}

}  // namespace

void AddServerTlsFlags(CLI::App& app, TlsFlags* flags) {
  AddInsecureFlag(app, flags);
  app.add_option("--tls-cert", flags->tls_cert, "PEM certificate chain this server presents (with --tls-key)");
  app.add_option("--tls-key", flags->tls_key, "PEM private key of --tls-cert");
  app.add_option("--client-ca", flags->client_ca,
                 "PEM CA bundle for client certificates (mTLS): agents must present one naming their node id");
  AddReloadFlag(app, flags);
}

void AddClientTlsFlags(CLI::App& app, TlsFlags* flags) {
  AddInsecureFlag(app, flags);
  app.add_option("--ca", flags->ca,
                 "PEM CA bundle the control plane's certificate must chain to (default: system roots)");
  app.add_option("--cert", flags->cert, "PEM client certificate for mTLS (with --key)");
  app.add_option("--key", flags->key, "PEM private key of --cert");
  app.add_option("--tls-server-name", flags->server_name,
                 "name the control plane's certificate must carry, when not the host of the address dialled");
  AddReloadFlag(app, flags);
}

absl::StatusOr<unsigned> ReloadIntervalSeconds(const TlsFlags& flags) {
  absl::Duration d;
  if (!absl::ParseDuration(flags.reload_interval, &d) || d < absl::Seconds(1) || d > absl::Hours(24)) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-reload-interval: '", flags.reload_interval,
                                                   "' is not a duration between 1s and 24h (examples: 10s, 5m)"));
  }
  return static_cast<unsigned>(std::ceil(absl::ToDoubleSeconds(d)));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsFlags& flags) {
  const bool any_tls = !flags.tls_cert.empty() || !flags.tls_key.empty() || !flags.client_ca.empty();
  if (flags.insecure) {
    if (any_tls) {
      return absl::InvalidArgumentError("--insecure cannot be combined with --tls-cert, --tls-key or --client-ca");
    }
    SB_LOG(WARNING) << "--insecure: serving plaintext gRPC; anyone who can reach this port can read the traffic "
                       "and claim any identity (see docs/security.md)";
    return grpc::InsecureServerCredentials();
  }
  if (flags.tls_cert.empty() || flags.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs --tls-cert and --tls-key (and --client-ca for client certificates); pass --insecure to serve "
        "plaintext instead");
  }
  absl::StatusOr<unsigned> interval = ReloadIntervalSeconds(flags);
  if (!interval.ok()) return interval.status();
  if (absl::Status s = CheckPemFiles(flags.tls_cert, "--tls-cert", flags.tls_key, "--tls-key"); !s.ok()) return s;
  if (!flags.client_ca.empty()) {
    if (absl::Status s = CheckPemFiles(flags.client_ca, "--client-ca", "", ""); !s.ok()) return s;
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(flags.tls_key, flags.tls_cert,
                                                                                       flags.client_ca, *interval);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (flags.client_ca.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    // Requested, verified when presented, not required at the handshake: subscribers and
    // sbctl may authenticate with a token instead; each service decides what it needs.
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const TlsFlags& flags,
                                                                                 bool warn_if_insecure) {
  const bool any_tls = !flags.ca.empty() || !flags.cert.empty() || !flags.key.empty() || !flags.server_name.empty();
  if (flags.insecure) {
    if (any_tls) {
      return absl::InvalidArgumentError("--insecure cannot be combined with --ca, --cert, --key or --tls-server-name");
    }
    if (warn_if_insecure) {
      SB_LOG(WARNING) << "--insecure: plaintext gRPC to the control plane; the connection is neither private nor "
                         "authenticated (see docs/security.md)";
    }
    return grpc::InsecureChannelCredentials();
  }
  if (flags.cert.empty() != flags.key.empty()) {
    return absl::InvalidArgumentError("--cert and --key go together (a client certificate and its private key)");
  }
  absl::StatusOr<unsigned> interval = ReloadIntervalSeconds(flags);
  if (!interval.ok()) return interval.status();
  if (!flags.cert.empty()) {
    if (absl::Status s = CheckPemFiles(flags.cert, "--cert", flags.key, "--key"); !s.ok()) return s;
  }
  if (!flags.ca.empty()) {
    if (absl::Status s = CheckPemFiles(flags.ca, "--ca", "", ""); !s.ok()) return s;
  }
  grpc::experimental::TlsChannelCredentialsOptions options;
  if (!flags.ca.empty() || !flags.cert.empty()) {
    options.set_certificate_provider(std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        flags.key, flags.cert, flags.ca, *interval));
    if (!flags.ca.empty()) options.watch_root_certs();  // Else gRPC's default roots.
    if (!flags.cert.empty()) options.watch_identity_key_cert_pairs();
  }
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

absl::Status ConfigureClientChannels(const TlsFlags& flags, const std::string& bearer_token, bool warn_if_insecure) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(flags, warn_if_insecure);
  if (!credentials.ok()) return credentials.status();
  if (flags.insecure && !bearer_token.empty()) {
    SB_LOG(WARNING) << "sending a bearer token over plaintext (--insecure): anyone on the path can read it";
  }
  SetClientChannelDefaults(*credentials, flags.server_name, bearer_token);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadBearerToken(const std::string& path) {
  std::string token;
  if (!path.empty()) {
    absl::StatusOr<std::string> text = ReadWholeFile(path, "--token-file");
    if (!text.ok()) return text.status();
    token = std::string(absl::StripAsciiWhitespace(*text));
    if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("--token-file ", path, ": the file is empty"));
  } else if (const char* env = std::getenv("SWITCHBOARD_TOKEN"); env != nullptr) {
    token = std::string(absl::StripAsciiWhitespace(env));
  }
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError("the bearer token has a character that cannot go in a header");
    }
  }
  return token;
}

}  // namespace switchboard
