#include "controlplane/service/ingest_thread.h"

#include "common/thread_name.h"

namespace switchboard::controlplane {

IngestThread::IngestThread() {
  thread_ = std::thread([this] {
    NameThisThread("sb-ingest");
    Loop();
  });
}

IngestThread::~IngestThread() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void IngestThread::Post(std::function<void()> work) {
  MutexLock lock(&mu_);
  queue_.push_back(std::move(work));
}

size_t IngestThread::backlog() const {
  MutexLock lock(&mu_);
  return queue_.size() + running_;
}

void IngestThread::Loop() {
  std::vector<std::function<void()>> batch;
  while (true) {
    {
      MutexLock lock(&mu_);
      running_ = 0;
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(Condition(&ready));
      if (queue_.empty()) return;  // Stopping, and nothing left to run.
      // Everything queued at once: one wakeup per burst, not per message.
      batch.swap(queue_);
      running_ = batch.size();
    }
    for (std::function<void()>& work : batch) work();
    batch.clear();
  }
}

}  // namespace switchboard::controlplane
