#include "agent/probe/counter_pair.h"

#include <cmath>

namespace switchboard::agent {
namespace {

bool Valid(std::optional<double> v) { return v && std::isfinite(*v) && *v >= 0; }

}  // namespace

std::optional<CounterPair::Growth> CounterPair::Update(absl::Time now, std::optional<double> first,
                                                       std::optional<double> second) {
  if (!Valid(first) || !Valid(second)) return std::nullopt;
  std::optional<Growth> growth;
  if (last_ && *first >= last_->first && *second >= last_->second) {
    growth = Growth{*first - last_->first, *second - last_->second, absl::ToDoubleSeconds(now - last_->at)};
  }
  last_ = Sample{now, *first, *second};
  return growth;
}

}  // namespace switchboard::agent
