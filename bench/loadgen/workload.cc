#include "bench/loadgen/workload.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::bench {

std::string NodeId(int agent) { return absl::StrCat("lg-", agent); }

std::string EndpointAddress(int agent, int endpoint) {
  return absl::StrCat("10.", (agent / 65536) % 256, ".", (agent / 256) % 256, ".", agent % 256, ":", 8000 + endpoint);
}

std::string PoolOf(int agent, const Workload& w) { return absl::StrCat("bench-", agent % w.pools); }

v1::Hello MakeHello(int agent, const Workload& w) {
  v1::Hello hello;
  hello.set_node_id(NodeId(agent));
  hello.set_agent_version("loadgen-bench");
  hello.mutable_report_interval()->set_seconds(1);
  v1::GpuInfo* gpu = hello.add_gpus();
  gpu->set_uuid(absl::StrCat("GPU-", agent));
  gpu->set_name("bench");
  gpu->set_vram_total_bytes(uint64_t{80} << 30);
  for (int j = 0; j < w.endpoints_per_agent; ++j) {
    v1::EndpointInfo* ep = hello.add_endpoints();
    ep->set_address(EndpointAddress(agent, j));
    ep->set_engine(v1::ENGINE_LLAMACPP);
    ep->add_models(PoolOf(agent, w));
    ep->set_slots_total(8);
    ep->set_capacity_hint(1);
  }
  return hello;
}

LoadModel::LoadModel(int agent, const Workload& w)
    : agent_(agent), workload_(&w), rng_(static_cast<uint32_t>(agent) * 7919 + 1) {
  v1::GpuSample* gpu = last_.add_gpus();
  gpu->set_uuid(absl::StrCat("GPU-", agent));
  gpu->set_vram_used_bytes(uint64_t{40} << 30);
  gpu->set_utilization(0.5);
  gpu->set_has_utilization(true);
  for (int j = 0; j < w.endpoints_per_agent; ++j) {
    v1::EndpointReport* ep = last_.add_endpoints();
    ep->set_address(EndpointAddress(agent, j));
    ep->set_state(v1::ENDPOINT_STATE_READY);
    ep->add_models(PoolOf(agent, w));
    ep->set_engine(v1::ENGINE_LLAMACPP);
    ep->set_slots_total(8);
    ep->set_slots_busy(4);
    ep->set_queue_depth(1);
    ep->set_kv_cache_usage(0.4);
    ep->set_ttft_p50_seconds(0.1);
    ep->set_ttft_p95_seconds(0.3);
    ep->set_e2e_p50_seconds(2);
    ep->set_e2e_p95_seconds(4);
    ep->set_tokens_per_second(200);
    ep->set_slot_tokens_per_second(50);
    ep->set_prefill_tokens_per_second(2000);
    ep->set_errors_counted(true);
    ep->mutable_probe_latency()->set_nanos(1'000'000);
    ep->set_checks_total(1);
  }
}

void LoadModel::Next(uint64_t sequence, uint32_t marker, v1::Report* report) {
  std::uniform_real_distribution<double> unit(0, 1);
  for (int j = 0; j < last_.endpoints_size(); ++j) {
    v1::EndpointReport* ep = last_.mutable_endpoints(j);
    if (unit(rng_) >= workload_->change_probability) continue;
    const uint32_t busy = static_cast<uint32_t>(rng_() % 9);
    ep->set_slots_busy(busy);
    ep->set_queue_depth(busy == 8 ? static_cast<uint32_t>(rng_() % 4) : 0);
    ep->set_kv_cache_usage(0.1 + 0.1 * busy);
    ep->set_tokens_per_second(30.0 * busy + 10 * unit(rng_));
    ep->set_requests_total(ep->requests_total() + busy);
    ep->set_ttft_p95_seconds(0.2 + 0.05 * busy);
  }
  if (agent_ == 0 && marker != 0 && last_.endpoints_size() > 0) {
    last_.mutable_endpoints(0)->set_queue_depth(kMarkerBase + marker);
  }
  last_.set_sequence(sequence);
  *last_.mutable_agent_time() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::GetCurrentTimeNanos());
  *report = last_;
}

v1::Assignment MakeWatchedAssignment(const Workload& w, uint32_t marker_queue_depth) {
  v1::Assignment a;
  a.set_pool(kWatchedPool);
  a.set_version("0123456789abcdef");
  a.set_nonce("0123456789abcdef");
  a.set_lb_policy(v1::LB_POLICY_WEIGHTED);
  int n = 0;
  for (int i = 0; i < w.agents; i += w.pools) {
    for (int j = 0; j < w.endpoints_per_agent; ++j, ++n) {
      v1::AssignedEndpoint* ep = a.add_endpoints();
      ep->set_address(EndpointAddress(i, j));
      ep->set_node_id(NodeId(i));
      ep->set_weight(64);
      ep->set_state(v1::ENDPOINT_STATE_READY);
      ep->set_circuit(v1::CIRCUIT_STATE_CLOSED);
      ep->set_slots_total(8);
      ep->set_slots_free(4);
      ep->set_queue_depth(i == 0 && j == 0 ? marker_queue_depth : 1);
      ep->set_decode_tokens_per_second(50);
      ep->set_prefill_tokens_per_second(2000);
    }
  }
  a.set_desired_replicas(static_cast<uint32_t>(n));
  *a.mutable_generated_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::GetCurrentTimeNanos());
  return a;
}

uint32_t MarkerOf(const v1::Assignment& a) {
  const std::string node = NodeId(0), address = EndpointAddress(0, 0);
  for (const v1::AssignedEndpoint& ep : a.endpoints()) {
    if (ep.node_id() == node && ep.address() == address) {
      return ep.queue_depth() >= kMarkerBase ? ep.queue_depth() - kMarkerBase : 0;
    }
  }
  return 0;
}

ScratchDatabase::ScratchDatabase(const std::string& name)
    : path_((std::filesystem::temp_directory_path() / absl::StrFormat("%s_%d.db", name, getpid())).string()) {
  Remove();
}

ScratchDatabase::~ScratchDatabase() { Remove(); }

void ScratchDatabase::Remove() const {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix, ignored);
}

}  // namespace switchboard::bench
