#include "sync/nginx_sync.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace switchboard::sync {
namespace {

// A command's output on one line: its lines joined with " | ".
std::string OneLine(absl::string_view output) {
  return absl::StrJoin(absl::StrSplit(absl::StripAsciiWhitespace(output), '\n', absl::SkipWhitespace()), " | ");
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes `content` to `path` through a temporary file in the same directory and a
// rename, so readers see the old file or the new one, never a part.
absl::Status WriteAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      const int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("writing ", tmp, ": ", std::strerror(e)));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = fsync(fd) == 0;
  close(fd);
  if (!synced || rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("replacing ", path, ": ", std::strerror(e)));
  }
  return absl::OkStatus();
}

}  // namespace

void ReloadLimiter::Expire(absl::Time now) {
  while (!times_.empty() && now - times_.front() >= absl::Minutes(1)) times_.pop_front();
}

bool ReloadLimiter::Allowed(absl::Time now) {
  Expire(now);
  return static_cast<int>(times_.size()) < per_minute_;
}

absl::Time ReloadLimiter::NextAllowed(absl::Time now) {
  if (Allowed(now)) return now;
  return times_[times_.size() - static_cast<size_t>(per_minute_)] + absl::Minutes(1);
}

std::pair<int, std::string> RunShell(const std::string& command) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, absl::StrCat("cannot run '", command, "': ", std::strerror(errno))};
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  const int code = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, out};
}

NginxSync::NginxSync(NginxSyncOptions options, std::ostream& out, std::function<absl::Time()> now)
    : options_(std::move(options)), out_(out), now_(std::move(now)), limiter_(options_.max_reloads_per_minute) {}

bool NginxSync::Complete() const {
  for (const std::string& p : options_.pools) {
    if (latest_.count(p) == 0) return false;
  }
  return options_.backup_pool.empty() || latest_.count(options_.backup_pool) > 0;
}

absl::Status NginxSync::Apply(const v1::Assignment& a) {
  latest_[a.pool()] = a;
  if (!Complete()) return absl::OkStatus();
  return Render();
}

absl::Status NginxSync::Tick() {
  if (!pending_ || !limiter_.Allowed(now_())) return absl::OkStatus();
  return Render();
}

absl::Status NginxSync::Render() {
  std::vector<NginxPool> pools;
  for (const std::string& name : options_.pools) {
    NginxPool p;
    p.assignment = latest_[name];
    p.upstream = options_.pools.size() == 1 && !options_.upstream.empty() ? options_.upstream : NginxUpstreamName(name);
    if (!options_.backup_pool.empty()) p.backup = latest_[options_.backup_pool];
    pools.push_back(std::move(p));
  }
  const std::string content = RenderNginx(pools, options_.render);
  const std::optional<std::string> old = ReadFile(options_.out);
  if (old && *old == content) {
    pending_ = false;
    return absl::OkStatus();  // Nothing nginx uses changed: no write, no reload.
  }
  if (options_.dry_run) {
    out_ << "nginx: would write " << options_.out << " and reload:\n" << content << std::flush;
    return absl::OkStatus();
  }
  const absl::Time now = now_();
  if (!limiter_.Allowed(now)) {
    if (!pending_) {
      out_ << "nginx: reload limit (" << options_.max_reloads_per_minute << "/min) reached; the change waits "
           << absl::FormatDuration(absl::Ceil(limiter_.NextAllowed(now) - now, absl::Seconds(1))) << std::endl;
    }
    pending_ = true;
    return absl::OkStatus();
  }
  pending_ = false;
  return WriteCheckReload(content);
}

absl::Status NginxSync::WriteCheckReload(const std::string& content) {
  const std::string& path = options_.out;
  const std::string previous = absl::StrCat(path, ".previous");
  const bool had_old = access(path.c_str(), F_OK) == 0;
  // Keep the old file by a second name, so a failed check can put it back atomically.
  if (had_old) {
    unlink(previous.c_str());
    if (link(path.c_str(), previous.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot keep ", path, " as ", previous, ": ", std::strerror(errno)));
    }
  }
  if (absl::Status s = WriteAtomically(path, content); !s.ok()) {
    if (had_old) unlink(previous.c_str());
    ++counters_.failures;
    out_ << "nginx: " << s.message() << std::endl;
    return s;
  }
  if (!options_.check_command.empty()) {
    auto [code, output] = RunShell(options_.check_command);
    if (code != 0) {
      if (had_old) {
        rename(previous.c_str(), path.c_str());
      } else {
        unlink(path.c_str());
      }
      ++counters_.failures;
      const std::string why = absl::StrCat("'", options_.check_command, "' failed (exit ", code, "): ", OneLine(output),
                                           had_old ? "; the old file is back in place" : "; nothing written");
      out_ << "nginx: check failed: " << why << std::endl;
      return absl::FailedPreconditionError(absl::StrCat("nginx check failed: ", why));
    }
  }
  if (had_old) unlink(previous.c_str());
  limiter_.Record(now_());
  auto [code, output] = RunShell(options_.reload_command);
  ++counters_.commands;
  if (code != 0) {
    ++counters_.failures;
    const std::string why = absl::StrCat("'", options_.reload_command, "' failed (exit ", code, "): ", OneLine(output));
    out_ << "nginx: wrote " << path << " but the reload failed: " << why << std::endl;
    return absl::UnavailableError(absl::StrCat("nginx reload failed: ", why));
  }
  ++counters_.applies;
  out_ << "nginx: wrote " << path << " and reloaded (" << counters_.commands << " reloads so far)" << std::endl;
  return absl::OkStatus();
}

}  // namespace switchboard::sync
