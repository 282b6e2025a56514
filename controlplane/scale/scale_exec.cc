#include "controlplane/scale/scale_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/log.h"

extern char** environ;

namespace switchboard::controlplane {
namespace {

constexpr size_t kOutputTail = 512;

std::string Tail(const std::string& s) {
  std::string t = s.size() > kOutputTail ? s.substr(s.size() - kOutputTail) : s;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitCommand(const std::string& command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : command) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word.push_back(c);
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  if (quote != 0) return absl::InvalidArgumentError(absl::StrCat("unclosed ", std::string(1, quote), " quote"));
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return absl::InvalidArgumentError("empty command");
  return words;
}

std::vector<std::string> ExpandCommand(const std::vector<std::string>& words, const std::string& pool,
                                       int32_t replicas) {
  std::vector<std::string> out;
  out.reserve(words.size());
  const std::string count = absl::StrCat(replicas);
  for (const std::string& w : words) out.push_back(absl::StrReplaceAll(w, {{"{pool}", pool}, {"{replicas}", count}}));
  return out;
}

ExecResult RunCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      absl::Duration timeout) {
  ExecResult result;
  // Everything the child needs is built before fork: after it, only async-signal-safe
  // calls (the control plane has many threads).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    result.detail = absl::StrCat("cannot create a pipe: ", std::strerror(errno));
    return result;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    result.detail = absl::StrCat("cannot fork: ", std::strerror(errno));
    close(out[0]);
    close(out[1]);
    return result;
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // The control plane blocks its stop signals.
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execvpe(args[0], args.data(), envp.data());
    static const char kMsg[] = "cannot execute the command\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  setpgid(pid, pid);  // Also in the parent: whichever runs first.
  close(out[1]);
  // Debian 12's <sys/pidfd.h> lacks extern "C" for C++: the system call directly.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const absl::Time deadline = absl::Now() + timeout;
  std::string output;
  bool exited = false, eof = false, timed_out = false;
  while (!exited || !eof) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = !exited;
      break;
    }
    pollfd fds[2] = {{eof ? -1 : out[0], POLLIN, 0}, {exited ? -1 : pidfd, POLLIN, 0}};
    const int n = poll(fds, 2, static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left))));
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) {
      char buf[4096];
      const ssize_t r = read(out[0], buf, sizeof(buf));
      if (r <= 0) {
        eof = true;
      } else {
        output.append(buf, static_cast<size_t>(r));
        if (output.size() > 4 * kOutputTail) output.erase(0, output.size() - kOutputTail);
      }
    }
    if (pidfd < 0 || fds[1].revents != 0) exited = true;  // Without a pidfd, waitpid below.
  }
  if (timed_out) kill(-pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (pidfd >= 0) close(pidfd);
  close(out[0]);
  if (timed_out) {
    result.detail = absl::StrCat("timed out after ", absl::FormatDuration(timeout), " (killed)");
  } else if (WIFEXITED(status)) {
    result.ok = WEXITSTATUS(status) == 0;
    result.detail = absl::StrCat("exit ", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    result.detail = absl::StrCat("killed by signal ", WTERMSIG(status));
  }
  const std::string tail = Tail(output);
  if (!tail.empty()) absl::StrAppend(&result.detail, ": ", tail);
  return result;
}

absl::StatusOr<std::unique_ptr<ScaleExecutor>> ScaleExecutor::Create(ScaleExecOptions options, SnapshotStore* store,
                                                                     ConfigSource config, EventSink events,
                                                                     Clock wall) {
  absl::StatusOr<std::vector<std::string>> words = SplitCommand(options.command);
  if (!words.ok()) return absl::InvalidArgumentError(absl::StrCat("--scale-exec: ", words.status().message()));
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--scale-exec-timeout must be positive");
  }
  std::unique_ptr<ScaleExecutor> e(new ScaleExecutor(std::move(options), std::move(*words), store, std::move(config),
                                                     std::move(events), std::move(wall)));
  ScaleExecutor* self = e.get();
  e->watcher_id_ = store->AddWatcher([self] { self->OnPublish(); });
  self->OnPublish();  // What is published already.
  return e;
}

ScaleExecutor::ScaleExecutor(ScaleExecOptions options, std::vector<std::string> words, SnapshotStore* store,
                             ConfigSource config, EventSink events, Clock wall)
    : options_(std::move(options)),
      words_(std::move(words)),
      store_(store),
      config_(std::move(config)),
      events_(std::move(events)),
      wall_(std::move(wall)) {}

ScaleExecutor::~ScaleExecutor() {
  store_->RemoveWatcher(watcher_id_);
  std::vector<std::thread> threads;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [pool, state] : pools_) {
      state.pending.reset();
      if (state.thread.joinable()) threads.push_back(std::move(state.thread));
    }
  }
  for (std::thread& t : threads) t.join();
}

uint64_t ScaleExecutor::runs_finished() const {
  MutexLock lock(&mu_);
  return runs_finished_;
}

void ScaleExecutor::OnPublish() {
  const std::shared_ptr<const policy::FleetConfig> config = config_();
  std::vector<std::thread> finished;  // Joined outside the lock (they have returned or are returning).
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    for (const std::shared_ptr<const Snapshot>& snap : store_->All()) {
      if (snap->assignment.stale() || config->For(snap->pool).advisory) continue;
      const auto desired = static_cast<int32_t>(snap->assignment.desired_replicas());
      PoolState& state = pools_[snap->pool];
      if (state.running) {
        if (desired != state.acted) {
          state.pending = desired;
        } else {
          state.pending.reset();  // Back to the count being run: nothing more to do.
        }
        continue;
      }
      if (state.acted == desired) continue;
      state.acted = desired;
      state.running = true;
      if (state.thread.joinable()) finished.push_back(std::move(state.thread));
      state.thread = std::thread([this, pool = snap->pool] { RunPool(pool); });
    }
  }
  for (std::thread& t : finished) t.join();
}

void ScaleExecutor::RunPool(const std::string& pool) {
  int32_t replicas;
  {
    MutexLock lock(&mu_);
    replicas = *pools_[pool].acted;
  }
  while (true) {
    const std::vector<std::string> argv = ExpandCommand(words_, pool, replicas);
    ExecResult r =
        RunCommand(argv, {absl::StrCat("SWITCHBOARD_POOL=", pool), absl::StrCat("SWITCHBOARD_REPLICAS=", replicas)},
                   options_.timeout);
    if (!r.ok) SB_LOG(WARNING) << "--scale-exec for pool " << pool << " to " << replicas << " failed: " << r.detail;
    events_({wall_(), r.ok ? "scale_exec" : "scale_exec_failed", pool, "", "",
             absl::StrCat(replicas, " replicas: ", r.detail)});
    MutexLock lock(&mu_);
    ++runs_finished_;
    PoolState& state = pools_[pool];
    if (!state.pending || stopping_) {
      state.running = false;
      state.pending.reset();
      return;
    }
    replicas = *state.pending;
    state.acted = replicas;
    state.pending.reset();
  }
}

}  // namespace switchboard::controlplane
