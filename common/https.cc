#include "common/https.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "CivetServer.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/host_port.h"
#include "common/log.h"

namespace switchboard {

struct HttpsCertificate::Pair {
  X509* leaf = nullptr;
  STACK_OF(X509) * chain = nullptr;  // The certificates after the leaf; may be empty.
  EVP_PKEY* key = nullptr;
  ~Pair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {

// The pair in the two PEM texts, or what is wrong with them (naming the files only).
absl::StatusOr<std::shared_ptr<const HttpsCertificate::Pair>> ParsePair(const std::string& cert_path,
                                                                        const std::string& cert_text,
                                                                        const std::string& key_path,
                                                                        const std::string& key_text) {
  auto pair = std::make_shared<HttpsCertificate::Pair>();
  BIO* bio = BIO_new_mem_buf(cert_text.data(), static_cast<int>(cert_text.size()));
  pair->leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  pair->chain = sk_X509_new_null();
  while (pair->leaf != nullptr) {
    X509* next = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (next == nullptr) break;
    sk_X509_push(pair->chain, next);
  }
  BIO_free(bio);
  ERR_clear_error();  // The read past the last certificate leaves an error queued.
  if (pair->leaf == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-cert ", cert_path, ": no PEM certificate in the file"));
  }
  bio = BIO_new_mem_buf(key_text.data(), static_cast<int>(key_text.size()));
  pair->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  if (pair->key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-key ", key_path, ": no unencrypted PEM private key"));
  }
  if (X509_check_private_key(pair->leaf, pair->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key ", key_path, " does not match the certificate in --tls-cert ", cert_path));
  }
  return std::shared_ptr<const HttpsCertificate::Pair>(std::move(pair));
}

}  // namespace

HttpsCertificate::HttpsCertificate(std::string cert_path, std::string key_path, absl::Duration reload_interval,
                                   const Clock* clock)
    : cert_path_(std::move(cert_path)),
      key_path_(std::move(key_path)),
      reload_interval_(reload_interval),
      clock_(clock) {}

HttpsCertificate::~HttpsCertificate() = default;

absl::StatusOr<std::shared_ptr<HttpsCertificate>> HttpsCertificate::Load(const std::string& cert_path,
                                                                         const std::string& key_path,
                                                                         absl::Duration reload_interval,
                                                                         const Clock* clock) {
  absl::StatusOr<std::string> cert_text = ReadWholeFile(cert_path, "--tls-cert");
  if (!cert_text.ok()) return cert_text.status();
  absl::StatusOr<std::string> key_text = ReadWholeFile(key_path, "--tls-key");
  if (!key_text.ok()) return key_text.status();
  absl::StatusOr<std::shared_ptr<const Pair>> pair = ParsePair(cert_path, *cert_text, key_path, *key_text);
  if (!pair.ok()) return pair.status();
  std::shared_ptr<HttpsCertificate> certificate(new HttpsCertificate(cert_path, key_path, reload_interval, clock));
  MutexLock lock(&certificate->mu_);
  certificate->pair_ = std::move(*pair);
  certificate->cert_text_ = std::move(*cert_text);
  certificate->key_text_ = std::move(*key_text);
  certificate->last_read_ = clock->MonotonicNow();
  return certificate;
}

absl::Status HttpsCertificate::MaybeReload() {
  {
    MutexLock lock(&mu_);
    const absl::Time now = clock_->MonotonicNow();
    if (now - last_read_ < reload_interval_) return absl::OkStatus();
    last_read_ = now;
  }
  absl::StatusOr<std::string> cert_text = ReadWholeFile(cert_path_, "--tls-cert");
  absl::StatusOr<std::string> key_text = ReadWholeFile(key_path_, "--tls-key");
  if (!cert_text.ok() || !key_text.ok()) {
    return absl::UnavailableError(absl::StrCat("--tls-cert ", cert_path_, " or --tls-key ", key_path_,
                                               ": cannot read; serving the one in force"));
  }
  {
    MutexLock lock(&mu_);
    if (*cert_text == cert_text_ && *key_text == key_text_) return absl::OkStatus();
    // Remembered even when invalid, so a bad pair is reported once, not every interval.
    cert_text_ = *cert_text;
    key_text_ = *key_text;
  }
  absl::StatusOr<std::shared_ptr<const Pair>> pair = ParsePair(cert_path_, *cert_text, key_path_, *key_text);
  if (!pair.ok()) {
    // Usual mid-rotation (the certificate renamed into place before its key): the next
    // read sees the pair whole.
    SB_LOG(WARNING) << "HTTPS certificate not reloaded, serving the one in force: " << pair.status().message();
    return pair.status();
  }
  SB_LOG(INFO) << "HTTPS certificate reloaded from " << cert_path_;
  MutexLock lock(&mu_);
  pair_ = std::move(*pair);
  return absl::OkStatus();
}

std::shared_ptr<const HttpsCertificate::Pair> HttpsCertificate::Current() {
  (void)MaybeReload();  // Logged there.
  MutexLock lock(&mu_);
  return pair_;
}

void HttpsCertificate::InstallOn(void* ssl_ctx) {
  SSL_CTX_set_cert_cb(static_cast<SSL_CTX*>(ssl_ctx), &HttpsCertificate::CertificateCallback, this);
}

int HttpsCertificate::CertificateCallback(SSL* ssl, void* arg) {
  std::shared_ptr<const Pair> pair = static_cast<HttpsCertificate*>(arg)->Current();
  // SSL_use_* take their own references; SSL_set1_chain copies the stack and references
  // its certificates.
  if (SSL_use_certificate(ssl, pair->leaf) != 1 || SSL_use_PrivateKey(ssl, pair->key) != 1 ||
      SSL_set1_chain(ssl, pair->chain) != 1) {
    return 0;  // Fails this handshake only.
  }
  return 1;
}

// Relays TLS connections on a public address to a plain TCP port on loopback. One
// accept thread; one thread per connection (at most kMaxConnections at once, counting
// ended ones not yet joined; more are closed at accept). Blocking sockets with timeouts: a peer that stalls a handshake
// or goes quiet is dropped after kIdleTimeout.
class TlsFront {
 public:
  static constexpr size_t kMaxConnections = 64;
  static constexpr int kIdleTimeoutSeconds = 60;

  static absl::StatusOr<std::unique_ptr<TlsFront>> Start(const std::string& listen, int backend_port,
                                                         std::shared_ptr<HttpsCertificate> certificate,
                                                         const std::string& client_ca) {
    absl::StatusOr<HostPort> hp = ParseHostPort(listen);
    if (!hp.ok()) return hp.status();
    std::unique_ptr<TlsFront> front(new TlsFront(backend_port, std::move(certificate)));
    front->ctx_ = SSL_CTX_new(TLS_server_method());
    if (front->ctx_ == nullptr) return absl::InternalError("cannot create a TLS context");
    SSL_CTX_set_min_proto_version(front->ctx_, TLS1_2_VERSION);
    front->certificate_->InstallOn(front->ctx_);
    if (!client_ca.empty()) {
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca.c_str());  // Sent to clients as hints.
      if (names == nullptr || SSL_CTX_load_verify_locations(front->ctx_, client_ca.c_str(), nullptr) != 1) {
        if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
        ERR_clear_error();
        return absl::InvalidArgumentError(absl::StrCat("--client-ca ", client_ca, ": no readable PEM certificate"));
      }
      SSL_CTX_set_client_CA_list(front->ctx_, names);  // Takes ownership.
      SSL_CTX_set_verify(front->ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string host = hp->host.empty() ? "0.0.0.0" : hp->host;
    if (getaddrinfo(host.c_str(), std::to_string(hp->port).c_str(), &hints, &found) != 0 || found == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", host));
    }
    front->listen_fd_ = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (front->listen_fd_ >= 0) setsockopt(front->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const bool bound = front->listen_fd_ >= 0 && bind(front->listen_fd_, found->ai_addr, found->ai_addrlen) == 0 &&
                       ::listen(front->listen_fd_, 64) == 0;
    freeaddrinfo(found);
    if (!bound) return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, ": ", strerror(errno)));
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    getsockname(front->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    front->port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                                    : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (pipe2(front->wake_, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
    front->acceptor_ = std::thread([f = front.get()] { f->AcceptLoop(); });
    return front;
  }

  ~TlsFront() {
    if (acceptor_.joinable()) {
      const char byte = 0;
      (void)!write(wake_[1], &byte, 1);
      acceptor_.join();
    }
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // Wakes every relay.
    }
    for (auto& [id, relay] : relays_) relay.join();
    for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
      if (fd >= 0) close(fd);
    }
    SSL_CTX_free(ctx_);
  }

  int port() const { return port_; }

 private:
  TlsFront(int backend_port, std::shared_ptr<HttpsCertificate> certificate)
      : backend_port_(backend_port), certificate_(std::move(certificate)) {}

  void AcceptLoop() {
    while (true) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::vector<int> finished;
      {
        MutexLock lock(&mu_);
        finished.swap(finished_);
      }
      for (int id : finished) {  // Joined here, so that no thread outlives this object.
        relays_[id].join();
        relays_.erase(id);
      }
      if (relays_.size() >= kMaxConnections) {
        close(client);
        continue;
      }
      {
        MutexLock lock(&mu_);
        open_fds_.insert(client);
      }
      const int id = next_id_++;
      relays_[id] = std::thread([this, client, id] { Relay(client, id); });
    }
  }

  // One connection: handshake, connect to the backend, copy both ways until either
  // side closes. Ends by unregistering itself (the destructor waits for that).
  void Relay(int client, int id) {
    timeval timeout{kIdleTimeoutSeconds, 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    int backend = -1;
    SSL* ssl = SSL_new(ctx_);
    if (ssl != nullptr && SSL_set_fd(ssl, client) == 1 && SSL_accept(ssl) == 1) {
      backend = ConnectBackend();
      if (backend >= 0) Copy(ssl, client, backend);
    }
    ERR_clear_error();
    if (ssl != nullptr) SSL_free(ssl);
    MutexLock lock(&mu_);
    open_fds_.erase(client);
    if (backend >= 0) {
      open_fds_.erase(backend);
      close(backend);
    }
    close(client);
    finished_.push_back(id);
  }

  int ConnectBackend() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(backend_port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return -1;
    }
    MutexLock lock(&mu_);
    if (stopping_) {
      close(fd);
      return -1;
    }
    open_fds_.insert(fd);
    return fd;
  }

  static bool WriteAll(int fd, const char* data, size_t size) {
    while (size > 0) {
      const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
      if (n <= 0) return false;
      data += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }

  static void Copy(SSL* ssl, int client, int backend) {
    char buf[16384];
    while (true) {
      if (SSL_pending(ssl) == 0) {
        pollfd fds[2] = {{client, POLLIN, 0}, {backend, POLLIN, 0}};
        const int ready = poll(fds, 2, kIdleTimeoutSeconds * 1000);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return;  // Idle past the timeout, or an error.
        if (fds[1].revents != 0) {
          const ssize_t n = recv(backend, buf, sizeof(buf), 0);
          if (n <= 0 || SSL_write(ssl, buf, static_cast<int>(n)) != n) return;
          continue;
        }
        if (fds[0].revents == 0) continue;
      }
      const int n = SSL_read(ssl, buf, sizeof(buf));
      if (n <= 0 || !WriteAll(backend, buf, static_cast<size_t>(n))) return;
    }
  }

  const int backend_port_;
  const std::shared_ptr<HttpsCertificate> certificate_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread acceptor_;
  // The relay threads by id; only the accept thread (then the destructor) touches it.
  std::map<int, std::thread> relays_;
  int next_id_ = 0;
  Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int> open_fds_ ABSL_GUARDED_BY(mu_);     // Of the relays in progress.
  std::vector<int> finished_ ABSL_GUARDED_BY(mu_);  // Relays that ended, to join.
};

HttpServer::HttpServer() = default;
HttpServer::~HttpServer() {
  front.reset();
  exposer.reset();
}

int HttpServer::exposer_port() const {
  const std::vector<int> ports = exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

int HttpServer::port() const { return front != nullptr ? front->port() : exposer_port(); }

absl::StatusOr<std::unique_ptr<HttpServer>> MakeHttpServer(const std::string& listen, size_t num_threads,
                                                           const CivetCallbacks* callbacks,
                                                           std::shared_ptr<HttpsCertificate> certificate,
                                                           const std::string& client_ca) {
  auto server = std::make_unique<HttpServer>();
  CivetCallbacks all;  // Zeroed by its constructor.
  if (callbacks != nullptr) all = *callbacks;
  // Behind a TLS front, civetweb takes only the front's connections, on loopback.
  const std::string ports = certificate != nullptr ? "127.0.0.1:0" : listen;
  std::vector<std::string> options = {"listening_ports", ports, "num_threads", std::to_string(num_threads)};
  try {
    server->exposer = std::make_unique<prometheus::Exposer>(options, &all);
  } catch (const std::exception& e) {
    return absl::UnavailableError(e.what());
  }
  if (certificate != nullptr) {
    absl::StatusOr<std::unique_ptr<TlsFront>> front =
        TlsFront::Start(listen, server->exposer_port(), std::move(certificate), client_ca);
    if (!front.ok()) return front.status();
    server->front = std::move(*front);
  }
  return server;
}

}  // namespace switchboard
