#include "tests/integration/devtools.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace switchboard::testing {
namespace {

using nlohmann::json;

// Levels the page reports that a clean page must not produce.
bool IsProblemLevel(const std::string& level) { return level == "error" || level == "warning"; }

}  // namespace

absl::StatusOr<std::unique_ptr<DevToolsBrowser>> DevToolsBrowser::Launch(const std::string& chromium,
                                                                         const std::string& profile_dir,
                                                                         const std::string& log_path,
                                                                         absl::Duration timeout) {
  int to_browser[2], from_browser[2];
  if (pipe2(to_browser, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (pipe2(from_browser, O_CLOEXEC) != 0) {
    close(to_browser[0]);
    close(to_browser[1]);
    return absl::InternalError("pipe failed");
  }
  const std::vector<std::string> args = {chromium,
                                         "--headless",
                                         "--no-sandbox",
                                         "--disable-gpu",
                                         "--no-first-run",
                                         "--hide-scrollbars",
                                         "--window-size=1400,900",
                                         "--remote-debugging-pipe",
                                         absl::StrCat("--user-data-dir=", profile_dir),
                                         "about:blank"};
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Move both ends above 3 and 4 first so that the dup2s below cannot clobber them.
    const int in = fcntl(to_browser[0], F_DUPFD_CLOEXEC, 10);
    const int out = fcntl(from_browser[1], F_DUPFD_CLOEXEC, 10);
    if (in < 0 || out < 0 || dup2(in, 3) < 0 || dup2(out, 4) < 0) _exit(126);
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(chromium.c_str(), argv.data());
    _exit(127);
  }
  close(to_browser[0]);
  close(from_browser[1]);
  std::unique_ptr<DevToolsBrowser> browser(new DevToolsBrowser(pid, to_browser[1], from_browser[0]));

  // The page chromium opened on about:blank; attach to it with a flattened session.
  absl::StatusOr<json> targets = browser->Call("Target.getTargets", json::object(), timeout, /*to_browser=*/true);
  if (!targets.ok()) return targets.status();
  std::string target_id;
  for (const json& t : (*targets)["targetInfos"]) {
    if (t.value("type", "") == "page") target_id = t.value("targetId", "");
  }
  if (target_id.empty()) {
    absl::StatusOr<json> created =
        browser->Call("Target.createTarget", {{"url", "about:blank"}}, timeout, /*to_browser=*/true);
    if (!created.ok()) return created.status();
    target_id = (*created).value("targetId", "");
  }
  absl::StatusOr<json> attached = browser->Call("Target.attachToTarget", {{"targetId", target_id}, {"flatten", true}},
                                                timeout, /*to_browser=*/true);
  if (!attached.ok()) return attached.status();
  browser->session_id_ = (*attached).value("sessionId", "");
  for (const char* domain : {"Runtime.enable", "Log.enable", "Page.enable"}) {
    absl::StatusOr<json> enabled = browser->Call(domain, json::object(), timeout);
    if (!enabled.ok()) return enabled.status();
  }
  return browser;
}

DevToolsBrowser::~DevToolsBrowser() {
  if (pid_ > 0) {
    // Browser.close lets chromium exit on its own; the kill covers one that hangs.
    (void)Call("Browser.close", json::object(), absl::Seconds(5), /*to_browser=*/true);
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  close(to_browser_fd_);
  close(from_browser_fd_);
}

absl::Status DevToolsBrowser::Send(const json& message) {
  std::string bytes = message.dump();
  bytes.push_back('\0');
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = write(to_browser_fd_, bytes.data() + sent, bytes.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("the browser closed its DevTools pipe");
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<json> DevToolsBrowser::Read(absl::Time deadline) {
  while (true) {
    const size_t end = buffer_.find('\0');
    if (end != std::string::npos) {
      json message = json::parse(buffer_.substr(0, end), nullptr, /*allow_exceptions=*/false);
      buffer_.erase(0, end + 1);
      if (message.is_discarded()) return absl::DataLossError("the browser sent a message that is not JSON");
      return message;
    }
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return absl::DeadlineExceededError("no message from the browser in time");
    pollfd pfd{from_browser_fd_, POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>(left_ms));
    if (ready < 0 && errno != EINTR) return absl::InternalError("poll failed");
    if (ready <= 0) continue;
    char buf[65536];
    const ssize_t n = read(from_browser_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("the browser closed its DevTools pipe (did it start?)");
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

void DevToolsBrowser::Note(const json& event) {
  const std::string method = event.value("method", "");
  const json& params = event.contains("params") ? event["params"] : json::object();
  if (method == "Runtime.consoleAPICalled") {
    const std::string type = params.value("type", "");
    if (type == "error" || type == "warning" || type == "assert") {
      std::string text = absl::StrCat("console.", type, ":");
      for (const json& arg : params.value("args", json::array())) {
        absl::StrAppend(&text, " ", arg.contains("value") ? arg["value"].dump() : arg.value("description", "?"));
      }
      problems_.push_back(text);
    }
  } else if (method == "Runtime.exceptionThrown") {
    const json& details = params.value("exceptionDetails", json::object());
    problems_.push_back(absl::StrCat("uncaught: ", details.contains("exception")
                                                       ? details["exception"].value("description", "")
                                                       : details.value("text", "")));
  } else if (method == "Log.entryAdded") {
    const json& entry = params.value("entry", json::object());
    if (IsProblemLevel(entry.value("level", ""))) {
      problems_.push_back(absl::StrCat("log ", entry.value("source", ""), " ", entry.value("level", ""), ": ",
                                       entry.value("text", ""), " ", entry.value("url", "")));
    }
  }
  events_.push_back(event);
}

absl::StatusOr<json> DevToolsBrowser::Call(const std::string& method, json params, absl::Duration timeout,
                                           bool to_browser) {
  const int id = next_id_++;
  json message = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!to_browser) message["sessionId"] = session_id_;
  if (absl::Status sent = Send(message); !sent.ok()) return sent;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<json> reply = Read(deadline);
    if (!reply.ok()) return absl::Status(reply.status().code(), absl::StrCat(method, ": ", reply.status().message()));
    if (!reply->contains("id")) {
      Note(*reply);
      continue;
    }
    if ((*reply)["id"] != id) continue;  // The reply to an earlier call that timed out.
    if (reply->contains("error")) {
      return absl::FailedPreconditionError(absl::StrCat(method, ": ", (*reply)["error"].dump()));
    }
    return reply->value("result", json::object());
  }
}

absl::Status DevToolsBrowser::Navigate(const std::string& url, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  events_.clear();
  absl::StatusOr<json> navigated = Call("Page.navigate", {{"url", url}}, timeout);
  if (!navigated.ok()) return navigated.status();
  if (navigated->contains("errorText")) {
    return absl::UnavailableError(absl::StrCat("navigating to ", url, ": ", (*navigated)["errorText"].dump()));
  }
  size_t seen = 0;
  while (true) {
    for (; seen < events_.size(); ++seen) {
      if (events_[seen].value("method", "") == "Page.loadEventFired") return absl::OkStatus();
    }
    absl::StatusOr<json> event = Read(deadline);
    if (!event.ok())
      return absl::Status(event.status().code(), absl::StrCat("loading ", url, ": ", event.status().message()));
    if (!event->contains("id")) Note(*event);
  }
}

absl::StatusOr<json> DevToolsBrowser::Evaluate(const std::string& expression, absl::Duration timeout) {
  absl::StatusOr<json> result =
      Call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}}, timeout);
  if (!result.ok()) return result.status();
  if (result->contains("exceptionDetails")) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluating ", expression, ": ", (*result)["exceptionDetails"].dump()));
  }
  return (*result)["result"].value("value", json());
}

absl::StatusOr<std::string> DevToolsBrowser::Screenshot(absl::Duration timeout) {
  absl::StatusOr<json> shot = Call("Page.captureScreenshot", {{"format", "png"}}, timeout);
  if (!shot.ok()) return shot.status();
  std::string png;
  if (!absl::Base64Unescape(shot->value("data", ""), &png)) return absl::DataLossError("screenshot is not base64");
  return png;
}

}  // namespace switchboard::testing
