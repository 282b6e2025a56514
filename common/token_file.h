// The token table of an --admin-tokens file, followed on disk, so that a token added to
// or revoked from the file takes effect without a restart.
//
// Every `interval` (on the injected Clock) a thread reads the file again. When its
// content changed and parses, the new table replaces the current one at once: the next
// call with a revoked token is refused. When it does not parse (or cannot be read), the
// current table stays, and the error is reported once per distinct content, so a file
// half-written by an editor never locks everyone out. A Kubernetes Secret mounted as a
// volume is replaced by a symlink swap; reading the content (not the modification time)
// follows that too.
//
// Thread-safe: Current() may be called from any thread while the watcher runs.
#ifndef SWITCHBOARD_COMMON_TOKEN_FILE_H_
#define SWITCHBOARD_COMMON_TOKEN_FILE_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/mutex.h"

namespace switchboard {

class TokenFile {
 public:
  // Called on the watcher thread after a change of the file: OK with the new table's
  // size, or the error that kept the current table (naming the file and the entry, never
  // a hash or a token).
  using OnChange = std::function<void(const absl::Status& status, size_t tokens)>;

  // Loads `path` now (its error, if any, fails the call) and, when `interval` is
  // positive, starts the watcher. `clock` must outlive the TokenFile; `on_change` may be
  // empty.
  static absl::StatusOr<std::unique_ptr<TokenFile>> Open(const std::string& path, absl::Duration interval,
                                                         const Clock* clock, OnChange on_change = nullptr);
  // Stops the watcher (waits for it).
  ~TokenFile();

  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  // The table in force. Never null.
  std::shared_ptr<const TokenTable> Current() const;

  // Reads the file now: true when its content changed and the new table is in force,
  // false when the content is what was last read, or the error (the table in force
  // stays). What the watcher calls every interval.
  absl::StatusOr<bool> Refresh();

  const std::string& path() const { return path_; }

 private:
  TokenFile(std::string path, absl::Duration interval, const Clock* clock, OnChange on_change);
  void Watch();

  const std::string path_;
  const absl::Duration interval_;
  const Clock* const clock_;
  const OnChange on_change_;

  mutable Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
  // The content last read, valid or not ("" with `unreadable`): a change is a difference
  // from it.
  std::string last_text_ ABSL_GUARDED_BY(mu_);
  bool unreadable_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;  // Started last in Open; joined in the destructor.
};

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_TOKEN_FILE_H_
