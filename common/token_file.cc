#include "common/token_file.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/log.h"

namespace switchboard {
TokenFile::TokenFile(std::string path, absl::Duration interval, const Clock* clock, OnChange on_change)
    : path_(std::move(path)), interval_(interval), clock_(clock), on_change_(std::move(on_change)) {}

absl::StatusOr<std::unique_ptr<TokenFile>> TokenFile::Open(const std::string& path, absl::Duration interval,
                                                           const Clock* clock, OnChange on_change) {
  std::unique_ptr<TokenFile> file(new TokenFile(path, interval, clock, std::move(on_change)));
  absl::StatusOr<std::string> text = ReadWholeFile(path, "--admin-tokens");
  if (!text.ok()) return text.status();
  absl::StatusOr<TokenTable> table = TokenTable::Parse(*text, absl::StrCat("--admin-tokens ", path));
  if (!table.ok()) return table.status();
  {
    MutexLock lock(&file->mu_);
    file->table_ = std::make_shared<const TokenTable>(std::move(*table));
    file->last_text_ = std::move(*text);
  }
  if (interval > absl::ZeroDuration()) file->watcher_ = std::thread([f = file.get()] { f->Watch(); });
  return file;
}

TokenFile::~TokenFile() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

std::shared_ptr<const TokenTable> TokenFile::Current() const {
  MutexLock lock(&mu_);
  return table_;
}

absl::StatusOr<bool> TokenFile::Refresh() {
  absl::StatusOr<std::string> read = ReadWholeFile(path_, "--admin-tokens");
  const bool readable = read.ok();
  const std::string text = readable ? std::move(*read) : std::string();
  {
    MutexLock lock(&mu_);
    if (readable ? (!unreadable_ && text == last_text_) : unreadable_) return false;
    unreadable_ = !readable;
    last_text_ = readable ? text : std::string();
  }
  if (!readable) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin-tokens ", path_, ": cannot read the file; keeping the tokens in force"));
  }
  absl::StatusOr<TokenTable> table = TokenTable::Parse(text, absl::StrCat("--admin-tokens ", path_));
  if (!table.ok()) {
    return absl::Status(table.status().code(), absl::StrCat(table.status().message(), "; keeping the tokens in force"));
  }
  MutexLock lock(&mu_);
  table_ = std::make_shared<const TokenTable>(std::move(*table));
  return true;
}

void TokenFile::Watch() {
  while (true) {
    {
      MutexLock lock(&mu_);
      if (clock_->AwaitWithTimeout(&mu_, Condition(&stop_), interval_)) return;
    }
    absl::StatusOr<bool> changed = Refresh();
    if (changed.ok() && !*changed) continue;
    size_t tokens = 0;
    if (changed.ok()) {
      tokens = Current()->size();
      SB_LOG(INFO) << "--admin-tokens " << path_ << ": reloaded, " << tokens << " tokens";
    } else {
      SB_LOG(ERROR) << changed.status().message();
    }
    if (on_change_) on_change_(changed.status(), tokens);
  }
}

}  // namespace switchboard
