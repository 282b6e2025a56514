// Test harness for integration tests: real binaries as child processes on loopback,
// ports chosen by the kernel (port 0) and read back from each program's stdout, and
// waits on conditions with deadlines (never fixed sleeps).
#ifndef SWITCHBOARD_TESTS_INTEGRATION_HARNESS_H_
#define SWITCHBOARD_TESTS_INTEGRATION_HARNESS_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "switchboard/v1/admin.grpc.pb.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::testing {

// Directory of the project's binaries (SWITCHBOARD_BIN_DIR, set by CTest).
std::string BinDir();

// `d` times SWITCHBOARD_TEST_SLOWDOWN (default 1): the sanitizer test presets set it, as
// their binaries run several times slower. Every deadline below is scaled by it.
absl::Duration Scaled(absl::Duration d);

// True in AddressSanitizer and ThreadSanitizer builds. Tests that bound a process's CPU or
// memory, or that need a thousand concurrent streams, scale down there: ASan holds freed
// memory in its quarantine (RSS grows by design) and both run the code several times slower.
bool SanitizerBuild();

// The one place where tests choose plaintext: a Switchboard binary named by its name in
// BinDir() (controlplane, agent, sbctl, sync, loadgen, picker) whose `args` carry
// neither --insecure nor a TLS flag (--tls-cert, --tls-key, --client-ca, --ca, --cert,
// --key) gets --insecure as its first argument. Binaries given by absolute path run with
// exactly `args` (tests of the secure default use that).
std::vector<std::string> WithTransportDefaults(const std::string& binary, std::vector<std::string> args);

class Subprocess {
 public:
  // Starts `binary` (a name in BinDir(), or an absolute path) with `args`
  // (WithTransportDefaults); stdout is captured for WaitForLine, stderr goes to the
  // test's stderr. The process leads a process group of its own, so that what it starts
  // (nginx's and haproxy's workers) can be killed with it.
  static std::unique_ptr<Subprocess> Start(const std::string& binary, const std::vector<std::string>& args);
  // SIGKILLs the process group (a worker left by a killed master would keep the test's
  // output open, and CTest waiting on it) and reaps the process if still running.
  ~Subprocess();

  // Reads stdout until a line starts with `prefix`; returns the integer that ends it
  // (the programs print "grpc listening on port N").
  absl::StatusOr<int> WaitForPort(const std::string& prefix, absl::Duration timeout);
  // The first line on stdout that starts with `prefix` (lines before it are dropped).
  absl::StatusOr<std::string> WaitForLine(const std::string& prefix, absl::Duration timeout);
  void Signal(int sig);
  // Waits for exit; returns the exit status (or 128 + signal).
  int Wait();
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

 private:
  Subprocess(pid_t pid, int stdout_fd) : pid_(pid), group_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_;
  const pid_t group_;
  int stdout_fd_;
  std::string buffer_;
};

// Runs `binary` (a name in BinDir(), or an absolute path) with `args` (WithTransportDefaults) until it
// exits; one still running
// after `timeout` is SIGKILLed. Returns its exit status (as Subprocess::Wait) and what it
// wrote to stdout and stderr, interleaved. For programs expected to exit on their own,
// such as on a usage error.
std::pair<int, std::string> RunToExit(const std::string& binary, const std::vector<std::string>& args,
                                      absl::Duration timeout);

// Polls `condition` until it holds or `timeout` passes; true if it held.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
             absl::Duration poll = absl::Milliseconds(20));

// A native Subscribe client keeping the newest Assignment of every pool.
class Subscriber {
 public:
  Subscriber(const std::string& target, std::vector<std::string> pools);
  ~Subscriber();
  // Waits until the newest assignment of `pool` satisfies `pred`; returns it (or the
  // last one seen, with ok=false, on timeout).
  bool WaitFor(const std::string& pool, const std::function<bool(const v1::Assignment&)>& pred, absl::Duration timeout,
               v1::Assignment* out = nullptr);
  int received() const;
  // Every assignment of `pool` received so far, oldest first.
  std::vector<v1::Assignment> Seen(const std::string& pool) const;

 private:
  grpc::ClientContext context_;
  std::unique_ptr<v1::DiscoveryService::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SubscribeRequest, v1::Assignment>> stream_;
  std::thread reader_;
  mutable Mutex mu_;
  std::map<std::string, v1::Assignment> latest_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<v1::Assignment>> seen_ ABSL_GUARDED_BY(mu_);
  int received_ ABSL_GUARDED_BY(mu_) = 0;
};

// Starts `n` chat completions of `max_tokens` output tokens against 127.0.0.1:port,
// each on its own thread, appended to `threads` (join them after the server is gone or
// the requests are done).
// `prompt_chars` > 0 sends a prompt of that many characters (about a quarter as many tokens).
// `in_flight`, when given, counts the requests sent and not yet answered.
void SendChatCompletions(int port, int n, int max_tokens, std::vector<std::thread>* threads, int prompt_chars = 0,
                         std::atomic<int>* in_flight = nullptr);

// Runs `sbctl --controlplane TARGET ARGS` (plaintext, as WithTransportDefaults); returns
// its exit code and output (stdout and stderr).
std::pair<int, std::string> RunSbctl(const std::string& target, const std::string& args);

// Weight of `address` in `a`, or -1 if absent.
int WeightOf(const v1::Assignment& a, const std::string& address);

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_TESTS_INTEGRATION_HARNESS_H_
