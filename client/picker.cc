#include "client/picker.h"

#include <algorithm>
#include <cmath>

namespace switchboard::client {
double MedianOfKnown(std::vector<double> v, double otherwise) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !(x > 0) || !std::isfinite(x); }), v.end());
  if (v.empty()) return otherwise;
  const auto middle = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), middle, v.end());
  return *middle;
}

double EstimatedOccupancy(const PickerEndpoint& e, const PickerConfig& config) {
  const double busy = e.slots_total - std::min(e.slots_free, e.slots_total);
  const double change = static_cast<double>(e.sent_since_assignment) - e.done_since_assignment;
  return std::max(0.0, busy + e.queue_depth + (change + e.peers_change) * std::max(1.0, config.gateways));
}

double ExpectedTtftSeconds(const PickerEndpoint& e, double prompt_tokens, const PickerConfig& config,
                           double fallback_prefill, double fallback_decode) {
  const double prefill = e.prefill_tokens_per_second > 0 ? e.prefill_tokens_per_second : fallback_prefill;
  const double decode = e.decode_tokens_per_second > 0 ? e.decode_tokens_per_second : fallback_decode;
  const double slots = std::max<uint32_t>(1, e.slots_total);
  const double occupancy = EstimatedOccupancy(e, config);
  const double service = config.mean_prompt_tokens / prefill + config.mean_output_tokens / decode;
  const double wait = std::max(0.0, occupancy - slots + 1) * service / slots;
  return wait + std::max(0.0, prompt_tokens) / prefill + 1.0 / decode;
}

int PickEndpoint(const std::vector<PickerEndpoint>& endpoints, double prompt_tokens, const PickerConfig& config,
                 std::mt19937_64& rng, std::vector<int>* drawn) {
  if (drawn != nullptr) drawn->assign(endpoints.size(), 0);
  std::vector<double> weights, prefill, decode;
  for (const PickerEndpoint& e : endpoints) {
    weights.push_back(e.weight);
    prefill.push_back(e.prefill_tokens_per_second);
    decode.push_back(e.decode_tokens_per_second);
  }
  if (std::none_of(weights.begin(), weights.end(), [](double w) { return w > 0; })) return -1;
  // With no speed measured anywhere, every endpoint is alike and occupancy decides.
  const double fallback_prefill = MedianOfKnown(prefill, 1000);
  const double fallback_decode = MedianOfKnown(decode, 30);
  std::discrete_distribution<int> draw(weights.begin(), weights.end());
  int best = -1;
  double best_ttft = 0;
  for (int i = 0; i < std::max(1, config.draws); ++i) {
    const int c = draw(rng);
    if (drawn != nullptr) ++(*drawn)[c];
    const double ttft = ExpectedTtftSeconds(endpoints[c], prompt_tokens, config, fallback_prefill, fallback_decode);
    if (best < 0 || ttft < best_ttft) best = c, best_ttft = ttft;
  }
  return best;
}

}  // namespace switchboard::client
