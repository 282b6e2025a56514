#include "controlplane/service/read_executor.h"

#include "common/thread_name.h"

namespace switchboard::controlplane {

ReadExecutor::ReadExecutor(size_t queue_limit) : queue_limit_(queue_limit) {
  thread_ = std::thread([this] {
    NameThisThread("sb-reads");
    Loop();
  });
}

ReadExecutor::~ReadExecutor() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

bool ReadExecutor::Post(std::function<void()> work) {
  MutexLock lock(&mu_);
  if (queue_.size() >= queue_limit_) return false;
  queue_.push_back(std::move(work));
  return true;
}

void ReadExecutor::Loop() {
  while (true) {
    std::function<void()> work;
    {
      MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(Condition(&ready));
      if (queue_.empty()) return;  // Stopping, and nothing left to answer.
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

}  // namespace switchboard::controlplane
