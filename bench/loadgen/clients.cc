#include "bench/loadgen/clients.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace switchboard::bench {
namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    default:
      return "OTHER";
  }
}

}  // namespace

void StreamOutcomes::Ended(const grpc::Status& status, bool expected) {
  MutexLock lock(&mu_);
  ++done_;
  if (expected) return;
  auto& entry = unexpected_[CodeName(status.error_code())];
  if (entry.first++ == 0) entry.second = status.error_message();
}

std::map<std::string, std::pair<int64_t, std::string>> StreamOutcomes::Unexpected() const {
  MutexLock lock(&mu_);
  return unexpected_;
}

int64_t StreamOutcomes::rejects() const {
  MutexLock lock(&mu_);
  int64_t n = 0;
  for (grpc::StatusCode c : {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::RESOURCE_EXHAUSTED,
                             grpc::StatusCode::PERMISSION_DENIED}) {
    auto it = unexpected_.find(CodeName(c));
    if (it != unexpected_.end()) n += it->second.first;
  }
  return n;
}

int64_t StreamOutcomes::errors() const {
  MutexLock lock(&mu_);
  int64_t n = 0;
  for (const auto& [code, entry] : unexpected_) {
    if (code != "INVALID_ARGUMENT" && code != "RESOURCE_EXHAUSTED" && code != "PERMISSION_DENIED") n += entry.first;
  }
  return n;
}

void StreamOutcomes::AwaitDone(int64_t streams, absl::Duration timeout) {
  MutexLock lock(&mu_);
  auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ >= streams; };
  mu_.AwaitWithTimeout(Condition(&all), timeout);
}

uint32_t MarkerBook::Issue() {
  MutexLock lock(&mu_);
  markers_.push_back({absl::Now()});
  return static_cast<uint32_t>(markers_.size());
}

void MarkerBook::Delivered(uint32_t marker, uint32_t* seen) {
  if (marker <= *seen) return;
  const absl::Time now = absl::Now();
  MutexLock lock(&mu_);
  for (uint32_t k = *seen + 1; k <= marker && k <= markers_.size(); ++k) {
    Marker& m = markers_[k - 1];
    m.first = std::min(m.first, now);
    m.last = std::max(m.last, now);
    ++m.reached;
    each_.push_back(now - m.sent);
  }
  *seen = marker;
}

MarkerBook::Summary MarkerBook::Summarize() const {
  MutexLock lock(&mu_);
  Summary s;
  s.issued = static_cast<int>(markers_.size());
  for (const Marker& m : markers_) {
    if (m.reached > 0) s.to_first.push_back(m.first - m.sent);
    if (m.reached >= subscribers_) {
      ++s.complete;
      s.to_last.push_back(m.last - m.sent);
    }
  }
  s.each = each_;
  return s;
}

AgentStream::AgentStream(int index, const Workload& workload, const std::shared_ptr<grpc::Channel>& channel,
                         bool closed_loop, StreamOutcomes* outcomes, std::atomic<uint32_t>* marker)
    : index_(index),
      closed_loop_(closed_loop),
      outcomes_(outcomes),
      marker_(marker),
      stub_(v1::AgentService::NewStub(channel)),
      load_(index, workload) {
  stub_->async()->Connect(&context_, this);
  // Send is called from the run's threads, outside gRPC's callbacks: the hold keeps the
  // call (and its stream object) alive until Cancel, so a write started there never
  // reaches a call that has ended and been freed.
  AddHold();
  {
    MutexLock lock(&mu_);
    *out_.mutable_hello() = MakeHello(index, workload);
    writing_ = true;
    StartWrite(&out_);
  }
  StartRead(&in_);
  StartCall();
}

void AgentStream::Send() {
  MutexLock lock(&mu_);
  if (cancelled_.load() || ended_.load()) return;
  if (writing_) {
    if (!pending_) overruns_.fetch_add(1);
    pending_ = true;
    return;
  }
  WriteLocked();
}

void AgentStream::WriteLocked() {
  load_.Next(++sequence_, index_ == 0 ? marker_->load() : 0, out_.mutable_report());
  writing_ = true;
  pending_ = false;
  StartWrite(&out_);
}

void AgentStream::Cancel() {
  {
    MutexLock lock(&mu_);  // A Send under way has started its write before this.
    if (cancelled_.exchange(true)) return;
    ended_before_cancel_ = ended_.load();
  }
  context_.TryCancel();
  RemoveHold();
}

void AgentStream::OnWriteDone(bool ok) {
  MutexLock lock(&mu_);
  writing_ = false;
  if (!ok) ended_.store(true);
  if (!ok || cancelled_.load()) return;
  // The first report only after the Hello's ack (a closed loop starts from the ack).
  if (pending_ || (closed_loop_ && hello_acked_.load())) WriteLocked();
}

void AgentStream::OnReadDone(bool ok) {
  if (!ok) {
    ended_.store(true);
    return;
  }
  if (in_.has_ack()) {
    if (in_.ack().sequence() == 0) {
      if (!hello_acked_.exchange(true) && closed_loop_) {
        MutexLock lock(&mu_);
        if (!writing_ && !ended_.load() && !cancelled_.load()) WriteLocked();
      }
    } else {
      uint64_t prev = acked_.load();
      while (in_.ack().sequence() > prev && !acked_.compare_exchange_weak(prev, in_.ack().sequence())) {
      }
    }
  }
  StartRead(&in_);
}

void AgentStream::OnDone(const grpc::Status& status) {
  bool expected;
  {
    MutexLock lock(&mu_);
    expected = !ended_before_cancel_;
  }
  outcomes_->Ended(status, expected);
}

SubscriberStream::SubscriberStream(int index, const std::shared_ptr<grpc::Channel>& channel, StreamOutcomes* outcomes,
                                   MarkerBook* book, bool ack)
    : outcomes_(outcomes), book_(book), ack_(ack), stub_(v1::DiscoveryService::NewStub(channel)) {
  stub_->async()->Subscribe(&context_, this);
  absl::MutexLock lock(&mu_);
  request_.set_subscriber_id(absl::StrCat("loadgen-", index));
  request_.add_pools(kWatchedPool);
  StartWrite(&request_);
  StartRead(&in_);
  StartCall();
}

void SubscriberStream::WriteAckLocked() {
  request_.Clear();
  request_.set_version_info(std::move(pending_version_));
  request_.set_response_nonce(std::move(pending_nonce_));
  ack_pending_ = false;
  writing_ = true;
  acks_.fetch_add(1);
  StartWrite(&request_);
}

void SubscriberStream::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (ok && ack_pending_) WriteAckLocked();
}

void SubscriberStream::Cancel() {
  cancelled_.store(true);
  context_.TryCancel();
}

void SubscriberStream::OnReadDone(bool ok) {
  if (!ok) return;
  bytes_.fetch_add(static_cast<int64_t>(in_.ByteSizeLong()));
  book_->Delivered(MarkerOf(in_), &seen_);
  received_.fetch_add(1);
  if (ack_) {
    absl::MutexLock lock(&mu_);
    pending_version_ = in_.version();
    pending_nonce_ = in_.nonce();
    ack_pending_ = true;
    if (!writing_) WriteAckLocked();
  }
  StartRead(&in_);
}

void SubscriberStream::OnDone(const grpc::Status& status) { outcomes_->Ended(status, cancelled_.load()); }

}  // namespace switchboard::bench
