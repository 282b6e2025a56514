// HTTP GET for probes (and POST for active checks). An interface so that adapter tests
// can serve canned bodies (including real captures) without a server.
#ifndef SWITCHBOARD_AGENT_PROBE_HTTP_CLIENT_H_
#define SWITCHBOARD_AGENT_PROBE_HTTP_CLIENT_H_

#include <string>

#include "absl/time/time.h"

namespace switchboard::agent {

struct HttpResponse {
  int status = 0;  // 0 when no HTTP answer arrived (see error).
  std::string body;
  std::string error;  // Transport error ("connection refused", "timeout"); empty if answered.
  absl::Duration latency;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Thread-safe. Never throws; bounded by `timeout` end to end.
  virtual HttpResponse Get(const std::string& url, absl::Duration timeout) = 0;
  // POSTs `body` as application/json; otherwise as Get.
  virtual HttpResponse Post(const std::string& url, const std::string& body, absl::Duration timeout) = 0;
};

// Plain HTTP/1.1 with cpp-httplib (inference servers are probed on loopback or a private
// network; TLS to them is not needed). Chosen over libcurl for the agent's memory goal:
// libcurl brings ~20 shared libraries (GnuTLS, Kerberos, LDAP, ...) that cost ~4 MiB of
// resident pages in every agent. Bodies above `max_body_bytes` are cut off and reported
// as an error, so a backend answering garbage cannot exhaust the agent's memory.
class PlainHttpClient final : public HttpClient {
 public:
  explicit PlainHttpClient(size_t max_body_bytes = 8 << 20) : max_body_bytes_(max_body_bytes) {}
  // `url`: http://HOST:PORT/PATH. The timeout bounds connecting, and each read and write.
  HttpResponse Get(const std::string& url, absl::Duration timeout) override;
  HttpResponse Post(const std::string& url, const std::string& body, absl::Duration timeout) override;

 private:
  // One request: GET, or POST when `post_body` is set.
  HttpResponse Request(const std::string& url, const std::string* post_body, absl::Duration timeout);

  const size_t max_body_bytes_;
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_PROBE_HTTP_CLIENT_H_
