#include "tests/integration/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/net.h"
#include "httplib.h"

namespace switchboard::testing {

absl::Duration Scaled(absl::Duration d) {
  static const double factor = [] {
    const char* s = std::getenv("SWITCHBOARD_TEST_SLOWDOWN");
    double f = 1;
    return s != nullptr && absl::SimpleAtod(s, &f) && f >= 1 && f <= 100 ? f : 1.0;
  }();
  return d * factor;
}

bool SanitizerBuild() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

std::string BinDir() {
  const char* dir = std::getenv("SWITCHBOARD_BIN_DIR");
  return dir != nullptr ? dir : "build/bin";
}

namespace {

// In a forked child: replaces it with `path args...`; exits 127 if that fails.
[[noreturn]] void ExecOrDie(const std::string& path, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(path.c_str(), argv.data());
  _exit(127);
}

}  // namespace

std::vector<std::string> WithTransportDefaults(const std::string& binary, std::vector<std::string> args) {
  static const char* const kBinaries[] = {"switchboard-controlplane", "switchboard-agent",   "sbctl",
                                          "switchboard-sync",         "switchboard-loadgen", "switchboard-picker"};
  static const char* const kTransportFlags[] = {"--insecure", "--tls-cert", "--tls-key", "--client-ca",
                                                "--ca",       "--cert",     "--key"};
  bool ours = false;
  for (const char* b : kBinaries) ours = ours || binary == b;
  if (!ours) return args;
  for (const std::string& a : args) {
    for (const char* f : kTransportFlags) {
      if (a == f || absl::StartsWith(a, absl::StrCat(f, "="))) return args;
    }
  }
  args.insert(args.begin(), "--insecure");
  return args;
}

std::unique_ptr<Subprocess> Subprocess::Start(const std::string& binary, const std::vector<std::string>& given_args) {
  const std::vector<std::string> args = WithTransportDefaults(binary, given_args);
  int pipefd[2];
  if (pipe(pipefd) != 0) return nullptr;
  const std::string path = binary.rfind('/', 0) == 0 ? binary : BinDir() + "/" + binary;
  pid_t pid = fork();
  if (pid < 0) return nullptr;
  if (pid == 0) {
    // If the test process dies (a crash, a failed ASSERT in a fixture), its children
    // must not outlive it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    setenv("SWITCHBOARD_LOG_LEVEL", "warning", 0);
    ExecOrDie(path, args);
  }
  setpgid(pid, pid);  // Also here: the destructor may run before the child gets to it.
  close(pipefd[1]);
  return std::unique_ptr<Subprocess>(new Subprocess(pid, pipefd[0]));
}

Subprocess::~Subprocess() {
  kill(-group_, SIGKILL);  // ESRCH when the group has gone: nothing to do.
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait();
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

absl::StatusOr<std::string> Subprocess::WaitForLine(const std::string& prefix, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + Scaled(timeout);
  while (true) {
    size_t nl;
    while ((nl = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (absl::StartsWith(line, prefix)) return line;
    }
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return absl::DeadlineExceededError(absl::StrCat("no '", prefix, "' line on stdout"));
    pollfd pfd{stdout_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left_ms)) <= 0) continue;
    char buf[4096];
    ssize_t n = read(stdout_fd_, buf, sizeof(buf));
    if (n <= 0) return absl::UnavailableError(absl::StrCat("process exited before printing '", prefix, "'"));
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<int> Subprocess::WaitForPort(const std::string& prefix, absl::Duration timeout) {
  absl::StatusOr<std::string> line = WaitForLine(prefix, timeout);
  if (!line.ok()) return line.status();
  int port;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(*line).substr(prefix.size())), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("not a port: ", *line));
  }
  return port;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int Subprocess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::pair<int, std::string> RunToExit(const std::string& binary, const std::vector<std::string>& given_args,
                                      absl::Duration timeout) {
  const std::vector<std::string> args = WithTransportDefaults(binary, given_args);
  int pipefd[2];
  if (pipe(pipefd) != 0) return {-1, "pipe failed"};
  const std::string path = binary.rfind('/', 0) == 0 ? binary : BinDir() + "/" + binary;
  pid_t pid = fork();
  if (pid < 0) return {-1, "fork failed"};
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    dup2(pipefd[1], STDOUT_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    ExecOrDie(path, args);
  }
  setpgid(pid, pid);
  close(pipefd[1]);
  const absl::Time deadline = absl::Now() + Scaled(timeout);
  std::string out;
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) {
      kill(-pid, SIGKILL);  // With what it started, which may hold the output open.
      kill(pid, SIGKILL);
      break;
    }
    pollfd pfd{pipefd[0], POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left_ms)) <= 0) continue;
    char buf[512];
    const ssize_t n = read(pipefd[0], buf, sizeof(buf));
    if (n <= 0) break;  // EOF: the program (and anything it started) closed its output.
    out.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return {WEXITSTATUS(status), out};
  if (WIFSIGNALED(status)) return {128 + WTERMSIG(status), out};
  return {-1, out};
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout, absl::Duration poll) {
  const absl::Time deadline = absl::Now() + Scaled(timeout);
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    // A poll interval between checks of a condition, not a guess at how long work takes.
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(poll));
  }
}

Subscriber::Subscriber(const std::string& target, std::vector<std::string> pools)
    : stub_(v1::DiscoveryService::NewStub(MakeChannel(target))) {
  // Wait for the channel to connect rather than fail fast: a control plane still busy with
  // its first agents (slow under sanitizers) may miss the first connection attempt, and
  // this stream does not reconnect.
  context_.set_wait_for_ready(true);
  stream_ = stub_->Subscribe(&context_);
  v1::SubscribeRequest req;
  req.set_subscriber_id("integration-test");
  for (const std::string& p : pools) req.add_pools(p);
  stream_->Write(req);
  reader_ = std::thread([this] {
    v1::Assignment a;
    while (stream_->Read(&a)) {
      v1::SubscribeRequest ack;
      ack.set_version_info(a.version());
      ack.set_response_nonce(a.nonce());
      stream_->Write(ack);
      MutexLock lock(&mu_);
      latest_[a.pool()] = a;
      seen_[a.pool()].push_back(a);
      ++received_;
    }
  });
}

Subscriber::~Subscriber() {
  context_.TryCancel();
  reader_.join();
  stream_->Finish();
}

bool Subscriber::WaitFor(const std::string& pool, const std::function<bool(const v1::Assignment&)>& pred,
                         absl::Duration timeout, v1::Assignment* out) {
  MutexLock lock(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = latest_.find(pool);
    return it != latest_.end() && pred(it->second);
  };
  bool ok = mu_.AwaitWithTimeout(Condition(&holds), Scaled(timeout));
  if (out != nullptr) {
    auto it = latest_.find(pool);
    *out = it == latest_.end() ? v1::Assignment() : it->second;
  }
  return ok;
}

int Subscriber::received() const {
  MutexLock lock(&mu_);
  return received_;
}

std::vector<v1::Assignment> Subscriber::Seen(const std::string& pool) const {
  MutexLock lock(&mu_);
  auto it = seen_.find(pool);
  return it == seen_.end() ? std::vector<v1::Assignment>() : it->second;
}

void SendChatCompletions(int port, int n, int max_tokens, std::vector<std::thread>* threads, int prompt_chars,
                         std::atomic<int>* in_flight) {
  const std::string prompt = prompt_chars > 0 ? std::string(prompt_chars, 'x') : "tell me a story";
  const std::string body =
      absl::StrCat(R"({"messages":[{"role":"user","content":")", prompt, R"("}],"max_tokens":)", max_tokens, "}");
  for (int i = 0; i < n; ++i) {
    if (in_flight != nullptr) ++*in_flight;
    threads->emplace_back([port, body, in_flight] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(std::chrono::seconds(300));
      client.Post("/v1/chat/completions", body, "application/json");
      if (in_flight != nullptr) --*in_flight;
    });
  }
}

std::pair<int, std::string> RunSbctl(const std::string& target, const std::string& args) {
  // sbctl's own per-call deadline (default 5s) scales like every other deadline here.
  const std::string timeout = absl::StrCat(absl::ToInt64Milliseconds(Scaled(absl::Seconds(5))), "ms");
  std::string command = BinDir() + "/sbctl";
  for (const std::string& a : WithTransportDefaults("sbctl", {"--timeout", timeout, "--controlplane", target})) {
    absl::StrAppend(&command, " ", a);
  }
  FILE* p = popen((command + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

int WeightOf(const v1::Assignment& a, const std::string& address) {
  for (const auto& ep : a.endpoints()) {
    if (ep.address() == address) return static_cast<int>(ep.weight());
  }
  return -1;
}

}  // namespace switchboard::testing
