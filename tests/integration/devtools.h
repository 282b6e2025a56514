// A headless Chromium driven through the Chrome DevTools Protocol over
// --remote-debugging-pipe: the browser reads commands on its fd 3 and writes replies and
// events on its fd 4, each one JSON message ended by a NUL byte (no WebSocket needed).
// One page target, attached with flattened sessions. Single-threaded: a command's reply
// is awaited by reading the pipe, and every event read on the way is kept, so console
// messages and exceptions are seen in the order the browser sent them.
#ifndef SWITCHBOARD_TESTS_INTEGRATION_DEVTOOLS_H_
#define SWITCHBOARD_TESTS_INTEGRATION_DEVTOOLS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace switchboard::testing {

class DevToolsBrowser {
 public:
  // Starts `chromium` headless with a fresh profile in `profile_dir` and its stderr in
  // `log_path`, opens one blank page and enables the Runtime, Log and Page domains on it.
  static absl::StatusOr<std::unique_ptr<DevToolsBrowser>> Launch(const std::string& chromium,
                                                                 const std::string& profile_dir,
                                                                 const std::string& log_path, absl::Duration timeout);
  ~DevToolsBrowser();  // Closes the browser (Browser.close), SIGKILLs it if it lingers.

  DevToolsBrowser(const DevToolsBrowser&) = delete;
  DevToolsBrowser& operator=(const DevToolsBrowser&) = delete;

  // Sends `method` with `params` to the page (or to the browser when `to_browser`) and
  // returns the reply's "result"; a protocol error or no reply within `timeout` is an error.
  absl::StatusOr<nlohmann::json> Call(const std::string& method, nlohmann::json params, absl::Duration timeout,
                                      bool to_browser = false);
  // Navigates the page to `url` and waits for its load event.
  absl::Status Navigate(const std::string& url, absl::Duration timeout);
  // Evaluates `expression` in the page (awaiting a promise) and returns its value.
  absl::StatusOr<nlohmann::json> Evaluate(const std::string& expression, absl::Duration timeout);
  // A PNG of the page's viewport.
  absl::StatusOr<std::string> Screenshot(absl::Duration timeout);

  // What the page reported as a problem so far, one line each: console messages of
  // level warning or error, uncaught exceptions, and log entries (failed loads, CSP or
  // deprecation reports) of level warning or error.
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  DevToolsBrowser(pid_t pid, int to_browser_fd, int from_browser_fd)
      : pid_(pid), to_browser_fd_(to_browser_fd), from_browser_fd_(from_browser_fd) {}
  absl::Status Send(const nlohmann::json& message);
  // The next message from the browser, within `deadline`.
  absl::StatusOr<nlohmann::json> Read(absl::Time deadline);
  void Note(const nlohmann::json& event);

  pid_t pid_;
  int to_browser_fd_;
  int from_browser_fd_;
  std::string buffer_;
  int next_id_ = 1;
  std::string session_id_;
  std::vector<nlohmann::json> events_;  // Events read while waiting, for Navigate.
  std::vector<std::string> problems_;
};

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_TESTS_INTEGRATION_DEVTOOLS_H_
