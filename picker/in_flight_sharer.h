// The picker's side of DiscoveryService.ShareInFlight: every interval it writes this
// replica's requests in flight (PoolTable::InFlight) and hands the control plane's answer,
// the other replicas' counts, to the table (SetPeers). While the stream is down the table
// picks as if alone among --replicas replicas (PeersLost); it reconnects with backoff.
#ifndef SWITCHBOARD_PICKER_IN_FLIGHT_SHARER_H_
#define SWITCHBOARD_PICKER_IN_FLIGHT_SHARER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "picker/metrics.h"
#include "picker/pool_table.h"

namespace switchboard::picker {

class InFlightSharer {
 public:
  using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>()>;
  // `table` and `metrics` (may be null) must outlive the sharer; `channel` is called for
  // every connection attempt.
  InFlightSharer(PoolTable* table, PickerMetrics* metrics, ChannelFactory channel, std::string subscriber_id,
                 absl::Duration interval);
  // Runs until Stop(), one stream at a time.
  void Run();
  void Stop();
  // Answers received (for metrics and tests).
  uint64_t answers() const;

 private:
  // One stream: reports and answers until it fails or Stop(). True when it got an answer.
  bool Stream(const std::shared_ptr<grpc::Channel>& channel);
  // Waits `d` or until Stop(); false when stopped.
  bool Wait(absl::Duration d);

  PoolTable* const table_;
  PickerMetrics* const metrics_;
  const ChannelFactory channel_;
  const std::string subscriber_id_;
  const absl::Duration interval_;
  mutable Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t answers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_IN_FLIGHT_SHARER_H_
