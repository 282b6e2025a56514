#include "sync/haproxy_sync.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace switchboard::sync {

absl::StatusOr<std::string> HaproxyCommand(const std::string& socket_path, const std::string& command,
                                           absl::Duration timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int e = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to HAProxy's socket ", socket_path, ": ", std::strerror(e)));
  }
  const std::string line = command + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat("writing to ", socket_path, ": ", std::strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) {
      close(fd);
      return absl::DeadlineExceededError(absl::StrCat("HAProxy did not answer '", command, "' in time"));
    }
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left_ms)) <= 0) continue;
    char buf[8192];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // HAProxy closes the connection after answering one command.
    answer.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return answer;
}

HaproxySync::HaproxySync(std::string socket_path, HaproxyOptions options, bool dry_run, std::ostream& out)
    : socket_path_(std::move(socket_path)), options_(std::move(options)), dry_run_(dry_run), out_(out) {}

absl::Status HaproxySync::Apply(const v1::Assignment& a) {
  constexpr absl::Duration kTimeout = absl::Seconds(5);
  absl::StatusOr<std::vector<ProxyServer>> desired = DesiredServers(a, options_);
  if (!desired.ok()) return desired.status();

  absl::StatusOr<std::string> state = HaproxyCommand(socket_path_, "show servers state " + options_.backend, kTimeout);
  std::vector<ProxyServer> current;
  if (!state.ok()) {
    if (!dry_run_) {
      if (reachable_) out_ << "haproxy: " << state.status().message() << " (retrying)" << std::endl;
      reachable_ = false;
      return state.status();
    }
    out_ << "haproxy: " << state.status().message() << "; planning from an empty backend" << std::endl;
  } else {
    if (!reachable_) out_ << "haproxy: socket " << socket_path_ << " is back; re-applying the whole state" << std::endl;
    reachable_ = true;
    absl::StatusOr<std::vector<ProxyServer>> parsed = ParseServersState(*state, options_.backend);
    if (!parsed.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("backend ", options_.backend, ": ",
                                                        absl::StripAsciiWhitespace(*state).substr(0, 200), " (",
                                                        parsed.status().message(), ")"));
    }
    current = std::move(*parsed);
  }

  const HaproxyPlan plan = PlanHaproxy(current, *desired, options_);
  absl::Status result;
  if (!plan.unplaced.empty()) {
    result = absl::ResourceExhaustedError(absl::StrCat("backend ", options_.backend, ": no free server slot for ",
                                                       absl::StrJoin(plan.unplaced, ", "),
                                                       " (declare more in server-template)"));
    out_ << "haproxy: " << result.message() << std::endl;
  }
  if (plan.empty()) return result;

  const std::string what =
      absl::StrCat("backend ", options_.backend, " <- pool ", a.pool(), " version ", a.version(), ": ",
                   plan.commands.size(), " commands (added ", plan.added, ", removed ", plan.removed, ", weights ",
                   plan.weight_changes, ", states ", plan.state_changes, ", addresses ", plan.address_changes, ")");
  if (dry_run_) {
    out_ << "haproxy: would change " << what << std::endl;
    for (const std::string& c : plan.commands) out_ << "  would run: " << c << std::endl;
    return result;
  }
  int failed = 0;
  for (const std::string& c : plan.commands) {
    absl::StatusOr<std::string> answer = HaproxyCommand(socket_path_, c, kTimeout);
    ++counters_.commands;
    if (answer.ok() && HaproxyCommandSucceeded(*answer)) {
      out_ << "  ran: " << c << std::endl;
      // Counted as done, not as planned: a postponed `del server` counts once, when it works.
      if (absl::StartsWith(c, "add server ")) {
        ++counters_.added;
      } else if (absl::StartsWith(c, "del server ")) {
        ++counters_.removed;
      } else if (absl::StrContains(c, " weight ")) {
        ++counters_.weight_changes;
      } else if (absl::StrContains(c, " addr ")) {
        ++counters_.address_changes;
      } else if (absl::StrContains(c, " state ")) {
        ++counters_.state_changes;
      }
      continue;
    }
    const std::string why = answer.ok() ? std::string(absl::StripAsciiWhitespace(*answer)) : answer.status().ToString();
    if (absl::StartsWith(c, "del server ")) {
      // Connections still open: the server stays in maintenance, the next round deletes it.
      out_ << "  postponed: " << c << ": " << why << std::endl;
      continue;
    }
    ++failed;
    ++counters_.failures;
    out_ << "  failed: " << c << ": " << why << std::endl;
    if (result.ok()) result = absl::AbortedError(absl::StrCat("HAProxy refused '", c, "': ", why));
  }
  ++counters_.applies;
  out_ << "haproxy: changed " << what << (failed > 0 ? absl::StrCat(", ", failed, " failed") : "")
       << "; totals: " << counters_.commands << " commands, " << counters_.failures << " failed" << std::endl;
  return result;
}

}  // namespace switchboard::sync
