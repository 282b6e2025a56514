#include "agent/probe/http_client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/net.h"
#include "httplib.h"

namespace switchboard::agent {

HttpResponse PlainHttpClient::Get(const std::string& url, absl::Duration timeout) {
  return Request(url, nullptr, timeout);
}

HttpResponse PlainHttpClient::Post(const std::string& url, const std::string& body, absl::Duration timeout) {
  return Request(url, &body, timeout);
}

HttpResponse PlainHttpClient::Request(const std::string& url, const std::string* post_body, absl::Duration timeout) {
  HttpResponse out;
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://")) {
    out.error = "only http:// URLs are supported";
    return out;
  }
  const size_t slash = rest.find('/');
  const absl::string_view authority = rest.substr(0, slash);
  const std::string path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  absl::StatusOr<HostPort> hp = ParseHostPort(authority);
  if (!hp.ok() || hp->port == 0) {
    out.error = absl::StrCat("bad address '", authority, "'");
    return out;
  }
  httplib::Client client(hp->host, hp->port);
  const auto t = absl::ToChronoMicroseconds(timeout);
  client.set_connection_timeout(t);
  client.set_read_timeout(t);
  client.set_write_timeout(t);
  client.set_keep_alive(false);
  bool overflow = false;
  const SystemClock& real = *SystemClock::Get();  // Measures a real request.
  const absl::Time start = real.MonotonicNow();
  auto receive = [&](const char* data, size_t n) {
    if (out.body.size() + n > max_body_bytes_) {
      overflow = true;
      return false;  // Aborts the transfer.
    }
    out.body.append(data, n);
    return true;
  };
  // cpp-httplib has no streaming receiver for POST: that body arrives whole. Active checks
  // ask for one token, so it is small; the cap still applies.
  httplib::Result res = post_body == nullptr ? client.Get(path.c_str(), receive)
                                             : client.Post(path.c_str(), *post_body, "application/json");
  if (post_body != nullptr && res) {
    if (res->body.size() > max_body_bytes_) {
      overflow = true;
    } else {
      out.body = std::move(res->body);
    }
  }
  out.latency = real.MonotonicNow() - start;
  if (overflow) {
    out.body.clear();
    out.error = absl::StrCat("response body over ", max_body_bytes_, " bytes");
  } else if (!res) {
    out.body.clear();
    switch (res.error()) {
      case httplib::Error::Connection:
        out.error = "Couldn't connect to server";
        break;
      case httplib::Error::Read:
        out.error = "read failed or timed out";
        break;
      case httplib::Error::ConnectionTimeout:
        out.error = "connection timed out";
        break;
      default:
        out.error = httplib::to_string(res.error());
        break;
    }
  } else {
    out.status = res->status;
  }
  return out;
}

}  // namespace switchboard::agent
