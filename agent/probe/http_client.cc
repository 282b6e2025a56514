#include "agent/probe/http_client.h"

#include <curl/curl.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace switchboard::agent {
namespace {

struct Sink {
  std::string* body;
  size_t limit;
  bool overflow = false;
};

size_t Write(char* data, size_t size, size_t nmemb, void* user) {
  Sink* sink = static_cast<Sink*>(user);
  const size_t n = size * nmemb;
  if (sink->body->size() + n > sink->limit) {
    sink->overflow = true;
    return 0;  // Aborts the transfer.
  }
  sink->body->append(data, n);
  return n;
}

}  // namespace

CurlHttpClient::CurlHttpClient(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpResponse CurlHttpClient::Get(const std::string& url, absl::Duration timeout) {
  HttpResponse out;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    out.error = "curl_easy_init failed";
    return out;
  }
  Sink sink{&out.body, max_body_bytes_};
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(timeout));
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // Thread safety.
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "switchboard-agent");
  const absl::Time start = absl::Now();
  CURLcode rc = curl_easy_perform(curl);
  out.latency = absl::Now() - start;
  if (rc == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    out.status = static_cast<int>(status);
  } else if (sink.overflow) {
    out.error = absl::StrCat("response body over ", max_body_bytes_, " bytes");
    out.body.clear();
  } else {
    out.error = curl_easy_strerror(rc);
    out.body.clear();
  }
  curl_easy_cleanup(curl);
  return out;
}

}  // namespace switchboard::agent
