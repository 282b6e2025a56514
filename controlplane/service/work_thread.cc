#include "controlplane/service/work_thread.h"

#include <utility>

#include "common/thread_name.h"

namespace switchboard::controlplane {

WorkThread::WorkThread(std::string name, size_t queue_limit)
    : name_(std::move(name)), queue_limit_(queue_limit), thread_([this] {
        NameThisThread(name_.c_str());
        Loop();
      }) {}

WorkThread::~WorkThread() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

bool WorkThread::Post(std::function<void()> work) {
  MutexLock lock(&mu_);
  if (queue_.size() >= queue_limit_) return false;
  queue_.push_back(std::move(work));
  return true;
}

void WorkThread::Loop() {
  std::vector<std::function<void()>> batch;
  while (true) {
    {
      MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(Condition(&ready));
      if (queue_.empty()) return;  // Stopping, and nothing left to run.
      batch.swap(queue_);
    }
    for (std::function<void()>& work : batch) work();
    batch.clear();
  }
}

}  // namespace switchboard::controlplane
