// An HttpClient that serves canned answers by path (and can fail on demand), for adapter
// tests: real llama-server captures, hand-written shapes, garbage, connection errors.
// POSTs are counted apart.
#ifndef SWITCHBOARD_TESTS_AGENT_PROBE_FAKE_HTTP_CLIENT_H_
#define SWITCHBOARD_TESTS_AGENT_PROBE_FAKE_HTTP_CLIENT_H_

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "agent/probe/http_client.h"
#include "common/mutex.h"
#include "gtest/gtest.h"

namespace switchboard::agent {

class FakeHttpClient final : public HttpClient {
 public:
  void Set(const std::string& path, int status, std::string body) {
    MutexLock lock(&mu_);
    answers_[path] = {status, std::move(body), "", absl::Milliseconds(1)};
  }
  void SetError(const std::string& path, std::string error) {
    MutexLock lock(&mu_);
    answers_[path] = {0, "", std::move(error), absl::Milliseconds(1)};
  }
  // Loads a `curl -i` record: status from the first line, body after the blank line.
  void SetFromCapture(const std::string& path, const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) ADD_FAILURE() << "no capture file " << file;
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    int status = 0;
    size_t sp = text.find(' ');
    if (sp != std::string::npos) (void)absl::SimpleAtoi(text.substr(sp + 1, 3), &status);
    size_t body = text.find("\r\n\r\n");
    size_t skip = 4;
    if (body == std::string::npos) {
      body = text.find("\n\n");
      skip = 2;
    }
    Set(path, status, body == std::string::npos ? "" : text.substr(body + skip));
  }
  HttpResponse Get(const std::string& url, absl::Duration) override {
    MutexLock lock(&mu_);
    ++calls_;
    return Answer(url);
  }
  // POSTs are answered like GETs, by path; the last body is kept.
  HttpResponse Post(const std::string& url, const std::string& body, absl::Duration) override {
    MutexLock lock(&mu_);
    ++posts_;
    last_post_body_ = body;
    return Answer(url);
  }
  int calls() const {
    MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable Mutex mu_;
  std::map<std::string, HttpResponse> answers_;
  HttpResponse Answer(const std::string& url) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [path, answer] : answers_) {
      if (absl::EndsWith(url, path)) return answer;
    }
    return {404, R"({"error":{"code":404,"message":"File Not Found","type":"not_found_error"}})", "",
            absl::Milliseconds(1)};
  }

  int calls_ = 0;  // GETs.
  int posts_ = 0;
  std::string last_post_body_;

 public:
  int posts() const {
    MutexLock lock(&mu_);
    return posts_;
  }
  std::string last_post_body() const {
    MutexLock lock(&mu_);
    return last_post_body_;
  }
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_TESTS_AGENT_PROBE_FAKE_HTTP_CLIENT_H_
