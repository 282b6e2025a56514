// The load generator's gRPC clients: simulated agents (AgentService.Connect) and native
// subscribers (DiscoveryService.Subscribe), callback reactors so that thousands of streams
// run on gRPC's own threads. Each stream has its own connection, as real agents and
// gateways on separate hosts do.
#ifndef SWITCHBOARD_BENCH_LOADGEN_CLIENTS_H_
#define SWITCHBOARD_BENCH_LOADGEN_CLIENTS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "bench/loadgen/workload.h"
#include "common/mutex.h"
#include "switchboard/v1/agent.grpc.pb.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::bench {

// How the streams of one run ended; shared by every stream, thread-safe.
class StreamOutcomes {
 public:
  void Ended(const grpc::Status& status, bool expected);
  // Streams that ended before the run asked them to, by gRPC status code name, with the
  // first message seen for each code.
  std::map<std::string, std::pair<int64_t, std::string>> Unexpected() const;
  int64_t rejects() const;  // INVALID_ARGUMENT, RESOURCE_EXHAUSTED, PERMISSION_DENIED.
  int64_t errors() const;   // Any other non-OK end before the run's end.
  void AwaitDone(int64_t streams, absl::Duration timeout);

 private:
  mutable Mutex mu_;
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::pair<int64_t, std::string>> unexpected_ ABSL_GUARDED_BY(mu_);
};

// Report-to-subscriber latency: the run issues markers (1, 2, ...) in agent 0's reports
// and subscribers note when each first sees a marker at least that high (latest-wins:
// a newer marker also delivers the older ones it overtook).
class MarkerBook {
 public:
  explicit MarkerBook(int subscribers) : subscribers_(subscribers) {}
  // A new marker, sent now; returns its number.
  uint32_t Issue();
  // Subscriber `sub` received an assignment carrying `marker`, after `*seen`.
  void Delivered(uint32_t marker, uint32_t* seen);
  struct Summary {
    int issued = 0;
    int complete = 0;                      // Markers every subscriber received.
    std::vector<absl::Duration> to_last;   // Per complete marker: report to last subscriber.
    std::vector<absl::Duration> to_first;  // Per marker received by anyone: report to first subscriber.
    std::vector<absl::Duration> each;      // Per delivery.
  };
  Summary Summarize() const;

 private:
  struct Marker {
    absl::Time sent;
    absl::Time first = absl::InfiniteFuture();
    absl::Time last = absl::InfinitePast();
    int reached = 0;
  };
  const int subscribers_;
  mutable Mutex mu_;
  std::vector<Marker> markers_ ABSL_GUARDED_BY(mu_);  // Index = marker - 1.
  std::vector<absl::Duration> each_ ABSL_GUARDED_BY(mu_);
};

// One simulated agent: Hello, then reports when asked (paced) or back to back (closed
// loop). Counts the reports the server acknowledged.
class AgentStream final : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControlMessage> {
 public:
  AgentStream(int index, const Workload& workload, const std::shared_ptr<grpc::Channel>& channel, bool closed_loop,
              StreamOutcomes* outcomes, std::atomic<uint32_t>* marker);
  // Sends a report now, or right after the write in flight (then counts an overrun);
  // nothing once the stream has failed or was cancelled. Any thread, until Cancel.
  void Send();
  // Ends the stream (OnDone follows on a gRPC thread). Once: after it, Send does nothing.
  void Cancel();
  bool hello_acked() const { return hello_acked_.load(); }
  uint64_t acked() const { return acked_.load(); }  // Highest report sequence acknowledged.
  uint64_t overruns() const { return overruns_.load(); }
  // The stream has ended (a read or a write failed: the server refused the agent, or
  // went away); OnDone itself waits for Cancel.
  bool ended() const { return ended_.load(); }

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int index_;
  const bool closed_loop_;
  StreamOutcomes* const outcomes_;
  std::atomic<uint32_t>* const marker_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
  grpc::ClientContext context_;
  v1::ControlMessage in_;
  std::atomic<bool> hello_acked_{false};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> overruns_{0};
  std::atomic<bool> ended_{false};
  std::atomic<bool> cancelled_{false};

  Mutex mu_;
  bool ended_before_cancel_ ABSL_GUARDED_BY(mu_) = false;  // Its end is then an outcome to count.
  LoadModel load_ ABSL_GUARDED_BY(mu_);
  v1::AgentMessage out_ ABSL_GUARDED_BY(mu_);
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
};

// One native subscriber of pool "bench-0": parses every assignment (as a gateway does)
// and hands its marker to the book. ACKs only when asked to (--subscriber-acks): the
// native stream is latest-wins with or without ACKs, and the bare broadcaster reads and
// drops them.
class SubscriberStream final : public grpc::ClientBidiReactor<v1::SubscribeRequest, v1::Assignment> {
 public:
  // With `ack`, the subscriber ACKs every assignment it reads (version_info and
  // response_nonce, as client/subscription.cc does), one write at a time: while one is in
  // flight, only the newest assignment's ACK waits to be sent.
  SubscriberStream(int index, const std::shared_ptr<grpc::Channel>& channel, StreamOutcomes* outcomes, MarkerBook* book,
                   bool ack);
  void Cancel();
  int64_t received() const { return received_.load(); }
  int64_t bytes() const { return bytes_.load(); }
  int64_t acks() const { return acks_.load(); }

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void WriteAckLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  StreamOutcomes* const outcomes_;
  MarkerBook* const book_;
  const bool ack_;
  std::unique_ptr<v1::DiscoveryService::Stub> stub_;
  grpc::ClientContext context_;
  absl::Mutex mu_;
  v1::SubscribeRequest request_ ABSL_GUARDED_BY(mu_);  // The one write in flight.
  bool writing_ ABSL_GUARDED_BY(mu_) = true;           // The subscription itself, at first.
  std::string pending_version_ ABSL_GUARDED_BY(mu_);   // The newest assignment not ACKed yet.
  std::string pending_nonce_ ABSL_GUARDED_BY(mu_);
  bool ack_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> acks_{0};
  v1::Assignment in_;
  uint32_t seen_ = 0;  // Touched by the read callback only.
  std::atomic<int64_t> received_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<bool> cancelled_{false};
};

}  // namespace switchboard::bench

#endif  // SWITCHBOARD_BENCH_LOADGEN_CLIENTS_H_
