// HTTPS for the HTTP servers of Switchboard (prometheus-cpp's Exposer, i.e. civetweb:
// /metrics and the dashboard), with the same --tls-cert and --tls-key as the gRPC port.
//
// Why not civetweb's own TLS: Debian 12's civetweb 1.15 loads libssl.so at run time and
// looks up SSL_get_peer_certificate, which OpenSSL 3 no longer exports (it is a macro for
// SSL_get1_peer_certificate there); civetweb keeps a null pointer and calls it on every
// HTTPS connection: the worker thread segfaults on the first handshake (seen with the
// `civetweb` binary itself and with prometheus-cpp's Exposer). So civetweb serves plain
// HTTP on an ephemeral loopback port, and a TLS front of our own (OpenSSL, linked the
// usual way) listens on the public address and relays each decrypted connection to it.
//
// The front asks an HttpsCertificate for the certificate on every handshake (OpenSSL's
// certificate callback), and the HttpsCertificate re-reads its two files when they
// changed, at most once per reload interval: a rotated certificate is served to new
// connections without a restart; open connections keep theirs.
//
// Key material is never logged: errors name the file and what is wrong with it.
#ifndef SWITCHBOARD_COMMON_HTTPS_H_
#define SWITCHBOARD_COMMON_HTTPS_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "prometheus/exposer.h"

struct CivetCallbacks;
struct ssl_st;  // OpenSSL's SSL.

namespace switchboard {

class HttpsCertificate {
 public:
  // Loads the PEM chain at `cert_path` and the PEM key at `key_path` now (an unreadable
  // file, a file without PEM, or a key that does not match the certificate fails the
  // call). `clock` must outlive this.
  static absl::StatusOr<std::shared_ptr<HttpsCertificate>> Load(const std::string& cert_path,
                                                                const std::string& key_path,
                                                                absl::Duration reload_interval,
                                                                const Clock* clock = SystemClock::Get());
  ~HttpsCertificate();
  HttpsCertificate(const HttpsCertificate&) = delete;
  HttpsCertificate& operator=(const HttpsCertificate&) = delete;

  // Re-reads both files when `reload_interval` has passed since the last read: when their
  // content changed and is a valid pair, it is served from now on; when not, the pair in
  // force stays and the error is logged once. Returns the error, or OK.
  absl::Status MaybeReload();

  // Makes the OpenSSL SSL_CTX `ssl_ctx` take its certificate from this object on every
  // handshake. This object must outlive the context.
  void InstallOn(void* ssl_ctx);

  struct Pair;  // The certificate chain and private key in force (OpenSSL objects).

 private:
  HttpsCertificate(std::string cert_path, std::string key_path, absl::Duration reload_interval, const Clock* clock);
  std::shared_ptr<const Pair> Current();
  static int CertificateCallback(::ssl_st* ssl, void* arg);

  const std::string cert_path_, key_path_;
  const absl::Duration reload_interval_;
  const Clock* const clock_;
  mutable Mutex mu_;
  std::shared_ptr<const Pair> pair_ ABSL_GUARDED_BY(mu_);
  std::string cert_text_ ABSL_GUARDED_BY(mu_), key_text_ ABSL_GUARDED_BY(mu_);  // As last read.
  absl::Time last_read_ ABSL_GUARDED_BY(mu_);                                   // Monotonic.
};

class TlsFront;

// An HTTP server for /metrics (and the control plane's dashboard): the Exposer, plain
// HTTP on `port()`, or, with a certificate, on a loopback port behind a TLS front that
// alone listens on `port()`.
struct HttpServer {
  HttpServer();
  ~HttpServer();  // The front first (no new connection reaches the Exposer), then the Exposer.
  std::unique_ptr<prometheus::Exposer> exposer;
  std::unique_ptr<TlsFront> front;  // Null: plain HTTP.

  int port() const;          // Where clients connect.
  int exposer_port() const;  // Where civetweb listens (what its callbacks see as the local port).
};

// Starts an HttpServer on `listen` (HOST:PORT, port 0 picks one) with `num_threads`
// civetweb threads and `callbacks` (may be null): HTTPS only (no plaintext on `listen`)
// when `certificate` is non-null. With `client_ca` too (a PEM CA bundle, read once here),
// every client must present a certificate that chains to it, or the handshake fails
// (mTLS). A port that cannot be bound, or a `client_ca` without a certificate in it, is
// an error (prometheus-cpp throws; this turns it into a status).
absl::StatusOr<std::unique_ptr<HttpServer>> MakeHttpServer(const std::string& listen, size_t num_threads,
                                                           const CivetCallbacks* callbacks,
                                                           std::shared_ptr<HttpsCertificate> certificate,
                                                           const std::string& client_ca = "");

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_HTTPS_H_
