// TLS for every gRPC server and client of Switchboard, from one flags struct.
//
// Servers take --tls-cert, --tls-key and (for mTLS) --client-ca; clients take --ca,
// --cert and --key. Plaintext needs --insecure, which logs a warning at start; TLS flags
// and --insecure together are a usage error. Certificates and keys are watched on disk
// (gRPC's FileWatcherCertificateProvider) every --tls-reload-interval, so a rotated
// certificate is used by new connections without a restart; open connections keep the
// one they were made with.
//
// Key material is never logged: errors name the file and what is wrong with it, never
// its contents.
#ifndef SWITCHBOARD_COMMON_TLS_H_
#define SWITCHBOARD_COMMON_TLS_H_

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace switchboard {

struct TlsFlags {
  bool insecure = false;  // --insecure: plaintext (no TLS, no client identities).
  // Server side (every listening binary).
  std::string tls_cert;   // --tls-cert: PEM certificate chain served to clients.
  std::string tls_key;    // --tls-key: PEM private key of --tls-cert.
  std::string client_ca;  // --client-ca: PEM CA bundle; clients presenting a certificate must chain to it.
  // Client side (every binary that connects to a control plane).
  std::string ca;           // --ca: PEM CA bundle that the server's certificate must chain to (default: system roots).
  std::string cert;         // --cert: PEM client certificate (mTLS); with --key.
  std::string key;          // --key: PEM private key of --cert.
  std::string server_name;  // --tls-server-name: expected server name when it differs from the target's host.
  std::string reload_interval = "10s";  // --tls-reload-interval: how often files are re-read.
};

// Registers --insecure (once per app) and the server-side flags.
void AddServerTlsFlags(CLI::App& app, TlsFlags* flags);
// Registers --insecure (once per app) and the client-side flags.
void AddClientTlsFlags(CLI::App& app, TlsFlags* flags);

// Server credentials for `flags` (plaintext with --insecure, after a logged warning).
// Checks at once that each file is readable PEM and that the key matches the
// certificate, so a mistake fails the start with the file's name rather than every
// handshake later. With --client-ca, a client may present a certificate (it must chain
// to the CA, or the handshake fails); whether a caller needs one is decided per service.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsFlags& flags);

// Channel credentials for `flags` (plaintext with --insecure, after a logged warning
// unless `warn_if_insecure` is false: sbctl, whose every line of output a script may read).
// The server's certificate must chain to --ca (or the system roots) and name the host
// of the target (or --tls-server-name).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const TlsFlags& flags,
                                                                                 bool warn_if_insecure = true);

// Sets the credentials, server name override and bearer token (may be empty) that
// MakeChannel / MakeDedicatedChannel (common/net.h) use in this process from now on.
// Call once from main before any channel is made. Without a call, channels are plaintext
// (what in-process tests use).
absl::Status ConfigureClientChannels(const TlsFlags& flags, const std::string& bearer_token = "",
                                     bool warn_if_insecure = true);

// The reload interval of `flags` as a positive whole number of seconds (what gRPC's file
// watcher takes), or InvalidArgument naming the flag.
absl::StatusOr<unsigned> ReloadIntervalSeconds(const TlsFlags& flags);

// Reads a bearer token from `path` (surrounding whitespace dropped), or from
// $SWITCHBOARD_TOKEN when `path` is empty; "" when neither gives one. The token is never
// logged.
absl::StatusOr<std::string> ReadBearerToken(const std::string& path);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_TLS_H_
