#include "controlplane/xds/push_fanout.h"

#include "common/thread_name.h"

namespace switchboard::controlplane::xds {

PushFanOut::PushFanOut(int threads) {
  for (int i = 1; i < threads; ++i)
    helpers_.emplace_back([this] {
      NameThisThread("sb-xds-fanout");
      Helper();
    });
}

PushFanOut::~PushFanOut() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : helpers_) t.join();
}

void PushFanOut::Run(size_t n, const std::function<void(size_t)>& work) {
  uint64_t generation;
  {
    MutexLock lock(&mu_);
    work_ = &work;
    size_ = n;
    next_ = 0;
    done_ = 0;
    generation = ++generation_;
  }
  Drain(work, generation);
  MutexLock lock(&mu_);
  auto finished = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ == size_; };
  mu_.Await(Condition(&finished));
  work_ = nullptr;
}

void PushFanOut::Drain(const std::function<void(size_t)>& work, uint64_t generation) {
  MutexLock lock(&mu_);
  while (generation_ == generation && next_ < size_) {
    const size_t i = next_++;
    mu_.Unlock();
    work(i);
    mu_.Lock();
    ++done_;
  }
}

void PushFanOut::Helper() {
  uint64_t seen = 0;
  while (true) {
    const std::function<void(size_t)>* work;
    uint64_t generation;
    {
      MutexLock lock(&mu_);
      auto woken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || (generation_ != seen && work_ != nullptr && next_ < size_);
      };
      mu_.Await(Condition(&woken));
      if (stop_) return;
      seen = generation_;
      work = work_;
      generation = generation_;
    }
    Drain(*work, generation);
  }
}

}  // namespace switchboard::controlplane::xds
