#include "sim/simulator/fleet_sim.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <queue>

#include "absl/time/time.h"
#include "client/in_flight_share.h"
#include "client/pick_decision.h"
#include "client/picker.h"
#include "controlplane/policy/admission.h"
#include "controlplane/policy/forecast.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/policy/replicas.h"
#include "controlplane/policy/weights.h"

namespace switchboard::sim {
namespace {

using ServerState = SimServerState;

// A sequence running on a batched server: tokens still to do (fractional: the batched
// model is a fluid one, with rates that change only when the batch does).
struct Sequence {
  int request = 0;
  double prompt_left = 0;  // > 0: in prefill; its first token comes when this reaches 0.
  double decode_left = 0;  // Tokens after the first.
  double prompt_rate = 0;  // Prompt tokens/s it gets in the current batch.
};

struct Server {
  const ServerType* type = nullptr;
  ServerState state = ServerState::kReady;
  int busy = 0;
  std::deque<int> queue;  // Request indices, FIFO.
  double created_s = 0, removed_s = -1;
  uint64_t completed = 0;  // Finished requests: the counter its agent reports.
  // Batched model: the running sequences in admission order (prompts are chunked first
  // come, first served), the rates set at `updated_s`, and the epoch that invalidates an
  // older kBatchStep event for this server.
  std::vector<Sequence> running;
  double updated_s = 0;
  double decode_rate = 0;  // Tokens/s of each decoding sequence.
  uint64_t epoch = 0;
  // Batched model: the mean time its recent requests held a slot (exponentially weighted
  // over completions), as its agent's end-to-end latency reports it; 0 until one finishes.
  double slot_seconds = 0;
};

Server NewServer(const ServerType* type, ServerState state, double created_s) {
  Server srv;
  srv.type = type;
  srv.state = state;
  srv.created_s = created_s;
  srv.updated_s = created_s;
  return srv;
}

// What the control plane last knew of a server (reported every interval).
struct ServerView {
  int busy = 0, queue = 0, slots = 0;
  double decode_tps = 0, prefill_tps = 0;  // As the agent measures them.
  double slot_seconds = 0;                 // Likewise: how long a request holds a slot.
  bool routable = false;
};

// A proxy's own traffic to one server since its last view: requests it sent there, and
// its requests there that finished (sent before or after the view).
struct SinceView {
  uint32_t sent = 0, done = 0;
};

struct View {
  std::vector<ServerView> servers;
  std::vector<uint32_t> weights;  // Switchboard's weights for this view.
  std::vector<double> headroom;   // Priority classes: each class's headroom in slots (ClassHeadrooms).
};

enum class EventType {
  kArrival,
  kCompletion,
  kReport,
  kViewArrives,
  kAutoscale,
  kServerReady,
  kBatchStep,
  kShareTick,    // A picker replica writes its requests in flight (a = proxy).
  kShareArrive,  // The control plane reads it and answers (a = proxy, b = pending report).
  kShareAnswer,  // The answer reaches the replica (a = proxy, b = pending answer).
};

struct Event {
  double t;
  uint64_t seq;
  EventType type;
  int a = 0, b = 0;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(std::lround(q * static_cast<double>(v.size() - 1))));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// What a scale-up adds: the named type, else the first.
const ServerType* ScaleType(const Scenario& s) {
  for (const ServerType& t : s.servers) {
    if (t.name == s.scale_server_type) return &t;
  }
  return &s.servers.front();
}

// Look back for the straight-line trend twice as far as the forecast looks ahead (one
// cold start), and at least over four autoscaling syncs.
absl::Duration ExtrapolationWindow(const Scenario& s) {
  return absl::Seconds(std::max(2 * ScaleType(s)->cold_start_s, 4 * s.autoscale_interval_s));
}

class FleetSim {
 public:
  FleetSim(const Scenario& s, const std::vector<SimRequest>& w, Routing routing, Scaling scaling, uint64_t seed,
           std::optional<ClassMode> class_mode = std::nullopt)
      : s_(s),
        w_(w),
        routing_(routing),
        scaling_(scaling),
        rng_(seed),
        scale_type_(ScaleType(s)),
        policy_(PoolPolicyFor(s, scaling)),
        memory_(policy::SeasonalForecast(absl::Hours(24 * 365), absl::Seconds(s.diurnal_period_s), 24,
                                         ExtrapolationWindow(s))) {
    if (class_mode) {
      class_mode_ = *class_mode;
      class_run_ = true;
      if (class_mode_ == ClassMode::kClasses) {
        for (size_t i = 0; i < s.classes.size(); ++i) {
          admission_.classes.push_back({s.classes[i].name, static_cast<int32_t>(i), s.classes[i].share});
        }
        admission_.default_class = s.classes.back().name;
      }
      refused_.assign(w.size(), false);
    }
    for (const ServerType& t : s.servers) {
      for (int i = 0; i < t.count; ++i) servers_.push_back(NewServer(&t, ServerState::kReady, 0));
    }
    proxy_view_.assign(s.proxies, MakeView());
    outstanding_.assign(s.proxies, std::vector<int>(servers_.size(), 0));
    since_view_.assign(s.proxies, std::vector<SinceView>(servers_.size()));
    rr_.assign(s.proxies, 0);
    peers_.assign(s.proxies, client::PeerInFlight());
    request_proxy_.assign(w.size(), 0);
    ttft_.assign(w.size(), -1);
    start_s_.assign(w.size(), 0);
    e2e_.assign(w.size(), -1);
    if (scaling_ == Scaling::kOracle) {
      work_prefix_.assign(w.size() + 1, 0);
      for (size_t i = 0; i < w.size(); ++i) work_prefix_[i + 1] = work_prefix_[i] + ServiceSeconds(w[i]);
    }
  }

  PolicyResult Run() {
    for (size_t i = 0; i < w_.size(); ++i) Push(w_[i].arrival_s, EventType::kArrival, static_cast<int>(i));
    Push(0, EventType::kReport);
    if (scaling_ != Scaling::kNone) Push(s_.autoscale_interval_s, EventType::kAutoscale);
    if (routing_ == Routing::kSwitchboardPickerShared) {
      // Replicas write at the same interval, out of step with each other.
      for (int p = 0; p < s_.proxies; ++p) Push(s_.share_interval_s * p / s_.proxies, EventType::kShareTick, p);
    }
    while (!events_.empty()) {
      Event e = events_.top();
      events_.pop();
      now_ = e.t;
      // After the end, only in-flight work drains.
      if (now_ > s_.duration_s && e.type != EventType::kCompletion && e.type != EventType::kBatchStep) continue;
      switch (e.type) {
        case EventType::kArrival:
          Arrive(e.a);
          break;
        case EventType::kCompletion:
          Complete(e.a, e.b);
          break;
        case EventType::kReport:
          Report();
          break;
        case EventType::kViewArrives:
          proxy_view_[e.a] = views_.at(e.b - views_base_);
          std::fill(since_view_[e.a].begin(), since_view_[e.a].end(), SinceView());
          peers_[e.a].AssignmentApplied();
          break;
        case EventType::kShareTick:
          ShareTick(e.a);
          break;
        case EventType::kShareArrive: {
          auto it = pending_.find(e.b);
          board_.Report(e.a, std::move(it->second));
          pending_.erase(it);
          const int id = next_pending_++;
          pending_[id][""] = board_.Others(e.a, "");
          pending_peers_[id] = board_.Peers(e.a);
          Push(now_ + s_.share_delay_s, EventType::kShareAnswer, e.a, id);
          break;
        }
        case EventType::kShareAnswer: {
          auto it = pending_.find(e.b);
          peers_[e.a].Received(std::move(it->second[""]), pending_peers_[e.b]);
          pending_.erase(it);
          pending_peers_.erase(e.b);
          break;
        }
        case EventType::kAutoscale:
          Autoscale();
          break;
        case EventType::kServerReady:
          if (servers_[e.a].state == ServerState::kLoading) servers_[e.a].state = ServerState::kReady;
          break;
        case EventType::kBatchStep:
          if (servers_[e.a].epoch == static_cast<uint64_t>(e.b)) BatchStep(e.a);
          break;
      }
    }
    return Results();
  }

 private:
  void Push(double t, EventType type, int a = 0, int b = 0) { events_.push({t, seq_++, type, a, b}); }

  // A picker replica's write on its ShareInFlight stream: its requests in flight per
  // server (one pool, named ""), read by the control plane one delay later.
  void ShareTick(int proxy) {
    client::EndpointCounts mine;
    for (size_t c = 0; c < servers_.size(); ++c) {
      if (outstanding_[proxy][c] > 0) mine[std::to_string(c)] = static_cast<uint32_t>(outstanding_[proxy][c]);
    }
    const int id = next_pending_++;
    pending_[id][""] = std::move(mine);
    Push(now_ + s_.share_delay_s, EventType::kShareArrive, proxy, id);
    Push(now_ + s_.share_interval_s, EventType::kShareTick, proxy);
  }

  // A request's time in a slot of the type scale-ups add. Batched: at full batch (Little's
  // law on ServerCapacityRps), its prompt holds the whole server and each decode step
  // serves every slot.
  double ServiceSeconds(const SimRequest& r) const {
    const ServerType& t = *scale_type_;
    if (s_.server_model == ServerModel::kBatched) {
      return t.slots * r.prompt_tokens / t.prefill_tps +
             r.output_tokens * (1 + t.decode_slowdown * (t.slots - 1)) / t.decode_tps;
    }
    return r.prompt_tokens / t.prefill_tps + r.output_tokens / t.decode_tps;
  }

  // Slot-seconds of the requests arriving in [from_s, to_s) (the workload is in arrival order).
  double FutureWork(double from_s, double to_s) const {
    auto at = [&](double t) {
      return std::lower_bound(w_.begin(), w_.end(), t, [](const SimRequest& r, double v) { return r.arrival_s < v; }) -
             w_.begin();
    };
    return work_prefix_[at(to_s)] - work_prefix_[at(from_s)];
  }

  // The oracle scaler's replica count: a replica asked for now serves from one cold start
  // on, and one removed now stops at once, so the count must cover every moment from now
  // until the sync after a cold start. It covers every minute that overlaps that span
  // (a burst is met in full from its first second, and kept until its last): the
  // slot-seconds that the minute's arrivals bring (their real sizes) over the minute, at
  // the reactive policy's target; the requests queued now add theirs to the first minute.
  int OracleReplicas() const {
    const double window_s = std::max(60.0, s_.autoscale_interval_s);
    const double horizon_s = scale_type_->cold_start_s + s_.autoscale_interval_s;
    double queued_work = 0;
    for (const Server& srv : servers_) {
      for (int r : srv.queue) queued_work += ServiceSeconds(w_[r]);
    }
    double peak_slots = queued_work / window_s;
    for (double start = now_ - window_s + s_.autoscale_interval_s; start <= now_ + horizon_s;
         start += s_.autoscale_interval_s) {
      // Arrivals stop at the scenario's end: a minute cut short by it is as long as it lasts.
      const double from = std::max(0.0, start), to = std::min(s_.duration_s, start + window_s);
      if (to <= from) break;
      const double backlog = from <= now_ && now_ < to ? queued_work : 0;
      peak_slots = std::max(peak_slots, (FutureWork(from, to) + backlog) / (to - from));
    }
    const double target = policy_.autoscale->metrics.front().target;
    const int needed = static_cast<int>(std::ceil(peak_slots / (scale_type_->slots * target)));
    return std::clamp(needed, policy_.autoscale->min_replicas, policy_.autoscale->max_replicas);
  }

  View MakeView() {
    View v;
    std::vector<policy::WeightInput> inputs;
    for (const Server& srv : servers_) {
      ServerView sv;
      sv.busy = srv.busy;
      sv.queue = static_cast<int>(srv.queue.size());
      sv.slots = srv.type->slots;
      sv.decode_tps = srv.type->decode_tps;
      sv.prefill_tps = srv.type->prefill_tps;
      // Ideal servers: the mean request's time in a slot. Batched ones: measured, since it
      // depends on how full the batch has been.
      sv.slot_seconds = s_.prompt_tokens_mean / sv.prefill_tps + s_.output_tokens_mean / sv.decode_tps;
      if (s_.server_model == ServerModel::kBatched && srv.slot_seconds > 0) sv.slot_seconds = srv.slot_seconds;
      sv.routable = srv.state == ServerState::kReady;
      v.servers.push_back(sv);
      policy::WeightInput in;
      in.routable = sv.routable;
      in.slots_total = sv.slots;
      in.slots_busy = std::min(sv.busy, sv.slots);
      in.queue_depth = sv.queue;
      in.slot_tokens_per_second = sv.decode_tps;  // What the agent measures.
      // And the mean time a request holds a slot there (its end-to-end latency).
      in.slot_seconds_per_request = sv.slot_seconds;
      in.previous_weight = previous_weights_.size() > inputs.size() ? previous_weights_[inputs.size()] : 0;
      inputs.push_back(in);
    }
    policy::PoolWeights pw = policy::ComputeWeights(inputs, s_.weights);
    for (const auto& r : pw.endpoints) v.weights.push_back(r.weight);
    previous_weights_ = v.weights;
    if (admission_.enabled()) {
      // As the control plane publishes it (BuildSnapshot): over the routable servers.
      policy::RoutableOccupancy occupancy;
      for (size_t i = 0; i < v.servers.size(); ++i) {
        occupancy.Add(v.weights[i] > 0, v.servers[i].slots, v.servers[i].busy, v.servers[i].queue);
      }
      for (const policy::ClassHeadroom& h :
           policy::ClassHeadrooms(admission_, occupancy.occupancy_slots, occupancy.slots)) {
        v.headroom.push_back(h.headroom_slots);
      }
    }
    return v;
  }

  // The control plane's reconcile: a new view, pushed to each proxy after the delay.
  void Report() {
    views_.push_back(MakeView());
    const int id = static_cast<int>(views_base_ + views_.size() - 1);
    for (int p = 0; p < s_.proxies; ++p) Push(now_ + s_.push_delay_s, EventType::kViewArrives, p, id);
    Push(now_ + s_.report_interval_s, EventType::kReport);
    // Old views nobody can still be waiting for are not needed.
    if (views_.size() > 64) views_.pop_front(), ++views_base_;
  }

  int Choose(int proxy, const SimRequest& request) {
    const View& v = ViewOf(proxy);
    std::vector<int> candidates;
    for (size_t i = 0; i < v.servers.size(); ++i) {
      if (v.servers[i].routable && servers_[i].state == ServerState::kReady) candidates.push_back(static_cast<int>(i));
    }
    if (routing_ == Routing::kOracle || routing_ == Routing::kOracleSizeBlind || routing_ == Routing::kOracleJsq) {
      candidates.clear();
      for (size_t i = 0; i < servers_.size(); ++i) {
        if (servers_[i].state == ServerState::kReady) candidates.push_back(static_cast<int>(i));
      }
    }
    if (candidates.empty()) return -1;
    std::vector<int>& local = outstanding_[proxy];
    switch (routing_) {
      case Routing::kRoundRobin:
        return candidates[rr_[proxy]++ % candidates.size()];
      case Routing::kLeastConnections: {
        int best = candidates[0];
        for (int c : candidates) {
          if (local[c] < local[best]) best = c;
        }
        return best;
      }
      case Routing::kStaticWeights: {
        std::vector<double> wts;
        wts.reserve(candidates.size());
        for (int c : candidates) wts.push_back(servers_[c].type->slots * servers_[c].type->decode_tps);
        return candidates[std::discrete_distribution<int>(wts.begin(), wts.end())(rng_)];
      }
      case Routing::kSlotPolling: {
        // The seed's rule: the most free slots in the last poll (every proxy sees the same).
        int best = candidates[0];
        auto free_slots = [&](int c) { return v.servers[c].slots - v.servers[c].busy - v.servers[c].queue; };
        for (int c : candidates) {
          if (free_slots(c) > free_slots(best)) best = c;
        }
        return best;
      }
      case Routing::kSwitchboard: {
        // Envoy-style weighted least request: two choices drawn by weight, the one with
        // fewer requests outstanding from this proxy per unit of weight wins.
        std::vector<double> wts;
        wts.reserve(candidates.size());
        for (int c : candidates) wts.push_back(std::max<uint32_t>(1, v.weights[c]));
        std::discrete_distribution<int> pick(wts.begin(), wts.end());
        const int a = candidates[pick(rng_)], b = candidates[pick(rng_)];
        auto score = [&](int c) { return (local[c] + 1.0) / std::max<uint32_t>(1, v.weights[c]); };
        return score(a) <= score(b) ? a : b;
      }
      case Routing::kSwitchboardSizeAware: {
        // A gateway that reads each request: policy/picker on the same pushed weights and
        // state, knowing the prompt's length and how many gateways share the pool.
        std::vector<client::PickerEndpoint> eps;
        for (int c : candidates) {
          const ServerView& sv = v.servers[c];
          client::PickerEndpoint e;
          e.weight = v.weights[c];
          e.slots_total = sv.slots;
          e.slots_free = static_cast<uint32_t>(std::max(0, sv.slots - sv.busy));
          e.queue_depth = sv.queue;
          e.decode_tokens_per_second = sv.decode_tps;
          e.prefill_tokens_per_second = sv.prefill_tps;
          e.sent_since_assignment = since_view_[proxy][c].sent;
          e.done_since_assignment = since_view_[proxy][c].done;
          eps.push_back(e);
        }
        client::PickerConfig pc;
        pc.gateways = s_.proxies;
        pc.mean_prompt_tokens = s_.prompt_tokens_mean;
        pc.mean_output_tokens = s_.output_tokens_mean;
        const int k = client::PickEndpoint(eps, request.prompt_tokens, pc, rng_);
        return k < 0 ? -1 : candidates[k];
      }
      case Routing::kSwitchboardPicker:
      case Routing::kSwitchboardPickerShared: {
        // switchboard-picker's own decision (DecidePick, as PoolTable feeds it) with one
        // picker replica per proxy, each started with --replicas = the number of proxies:
        // it scales its own requests since the assignment by that to stand for everyone's.
        // Shared: its own requests since the assignment as they are, plus the others'
        // change in flight as the control plane last answered it (ShareTick).
        const bool shared = routing_ == Routing::kSwitchboardPickerShared;
        std::vector<client::CandidateEndpoint> eps;
        for (int c : candidates) {
          const ServerView& sv = v.servers[c];
          client::CandidateEndpoint e;
          e.address = std::to_string(c);
          e.load.weight = v.weights[c];
          e.load.slots_total = sv.slots;
          e.load.slots_free = static_cast<uint32_t>(std::max(0, sv.slots - sv.busy));
          e.load.queue_depth = sv.queue;
          e.load.decode_tokens_per_second = sv.decode_tps;
          e.load.prefill_tokens_per_second = sv.prefill_tps;
          e.load.sent_since_assignment = since_view_[proxy][c].sent;
          e.load.done_since_assignment = since_view_[proxy][c].done;
          if (shared) e.load.peers_change = peers_[proxy].Change(e.address);
          eps.push_back(std::move(e));
        }
        client::PickPolicy pp;
        if (class_run_ && class_mode_ != ClassMode::kStrictPriority) pp.shed_occupancy = s_.shed_occupancy;
        pp.picker.gateways = shared ? peers_[proxy].GatewaysScale(s_.proxies) : s_.proxies;
        if (admission_.enabled() && !v.headroom.empty()) {
          // The picker's admission (PoolTable::Pick): the published headroom less the
          // change in occupancy since the view as the picker counts it (its own requests
          // and, shared, the others' change), times the replicas it does not hear from.
          policy::OccupancyChange change;
          for (const client::CandidateEndpoint& e : eps) {
            change.Add(e.load.weight > 0, static_cast<double>(e.load.sent_since_assignment),
                       static_cast<double>(e.load.done_since_assignment), e.load.peers_change);
          }
          const int cls = request.priority_class;
          const double headroom = policy::HeadroomSinceAssignment(v.headroom[cls], change, pp.picker.gateways);
          if (!policy::DecideAdmission(admission_, admission_.classes[cls].name, headroom).admit) return -1;
        }
        pp.picker.mean_prompt_tokens = s_.prompt_tokens_mean;
        pp.picker.mean_output_tokens = s_.output_tokens_mean;
        pp.fallbacks = 0;
        client::PickRequest pr;
        pr.prompt_tokens = request.prompt_tokens;
        const client::PickResult result = client::DecidePick(eps, pr, pp, rng_);
        return result.verdict == client::PickVerdict::kRoute ? std::stoi(result.endpoints.front()) : -1;
      }
      case Routing::kOracleJsq: {
        // Join the shortest queue with perfect global knowledge, counted in free slots
        // (slots - busy - queued) so that a 16-slot server is not "longer" than a 4-slot one
        // at the same occupancy. It knows neither speeds nor request sizes.
        int best = candidates[0];
        auto free_slots = [&](int c) {
          return servers_[c].type->slots - servers_[c].busy - static_cast<int>(servers_[c].queue.size());
        };
        for (int c : candidates) {
          if (free_slots(c) > free_slots(best)) best = c;
        }
        return best;
      }
      case Routing::kOracle:
      case Routing::kOracleSizeBlind: {
        // Perfect global knowledge (join the shortest expected TTFT): the wait for a slot
        // (queue ahead over the slots, at the mean service time) plus this request's own
        // prefill and first token on that server. The size-blind oracle assumes every
        // prompt has the mean length: the best any router can do that, like Envoy, does
        // not look at request sizes.
        int best = candidates[0];
        double best_score = 1e300;
        for (int c : candidates) {
          const Server& srv = servers_[c];
          const double service =
              s_.prompt_tokens_mean / srv.type->prefill_tps + s_.output_tokens_mean / srv.type->decode_tps;
          const double wait = srv.busy < srv.type->slots ? 0 : (srv.queue.size() + 1.0) * service / srv.type->slots;
          const double prompt = routing_ == Routing::kOracle ? request.prompt_tokens : s_.prompt_tokens_mean;
          const double score = wait + prompt / srv.type->prefill_tps + 1.0 / srv.type->decode_tps;
          if (score < best_score) best_score = score, best = c;
        }
        return best;
      }
    }
    return candidates[0];
  }

  const View& ViewOf(int proxy) { return proxy_view_[proxy]; }

  void Arrive(int r) {
    const int proxy = static_cast<int>(rng_() % s_.proxies);
    const int server = Choose(proxy, w_[r]);
    if (server < 0) {
      ++rejected_;
      if (class_run_) refused_[r] = true;
      return;
    }
    request_proxy_[r] = proxy;
    ++outstanding_[proxy][server];
    ++since_view_[proxy][server].sent;
    Server& srv = servers_[server];
    if (srv.busy < srv.type->slots) {
      Start(r, server);
    } else if (class_mode_ == ClassMode::kStrictPriority) {
      // Behind every queued request of its class or a more important one.
      auto at = std::find_if(srv.queue.begin(), srv.queue.end(),
                             [&](int q) { return w_[q].priority_class > w_[r].priority_class; });
      srv.queue.insert(at, r);
    } else {
      srv.queue.push_back(r);
    }
  }

  void Start(int r, int server) {
    Server& srv = servers_[server];
    ++srv.busy;
    const SimRequest& q = w_[r];
    if (s_.server_model == ServerModel::kBatched) {
      start_s_[r] = now_;
      Advance(srv);
      // At least one prompt token: the step that processes it gives the first token.
      srv.running.push_back(
          {r, std::max(1.0, static_cast<double>(q.prompt_tokens)), std::max(0.0, q.output_tokens - 1.0)});
      Reschedule(server);
      return;
    }
    const double prefill = q.prompt_tokens / srv.type->prefill_tps;
    const double per_token = 1.0 / srv.type->decode_tps;
    ttft_[r] = now_ + prefill + per_token - q.arrival_s;
    e2e_[r] = now_ + prefill + q.output_tokens * per_token - q.arrival_s;
    Push(now_ + prefill + q.output_tokens * per_token, EventType::kCompletion, r, server);
  }

  void Complete(int r, int server) {
    Server& srv = servers_[server];
    --srv.busy;
    ++srv.completed;
    --outstanding_[request_proxy_[r]][server];
    ++since_view_[request_proxy_[r]][server].done;
    ++completed_;
    if (!srv.queue.empty()) {
      const int next = srv.queue.front();
      srv.queue.pop_front();
      Start(next, server);
    } else if (srv.state == ServerState::kDraining && srv.busy == 0) {
      srv.state = ServerState::kGone;
      srv.removed_s = now_;
    }
  }

  // Batched model. Brings the running sequences' progress up to now at the rates set at
  // the last change.
  void Advance(Server& srv) {
    const double dt = now_ - srv.updated_s;
    srv.updated_s = now_;
    if (dt <= 0) return;
    for (Sequence& q : srv.running) {
      if (q.prompt_left > 0) {
        q.prompt_left -= dt * q.prompt_rate;
      } else {
        q.decode_left -= dt * srv.decode_rate;
      }
    }
  }

  // Batched model: the rates of the current batch, and an event when the next sequence
  // ends its prompt or its output. A step decodes one token of every decoding sequence
  // and fills the rest of the budget with prompt tokens, first come, first served: the
  // prompts that fit whole end with the step; a longer one advances by what is left of
  // the budget per step.
  void Reschedule(int server) {
    Server& srv = servers_[server];
    const ServerType& t = *srv.type;
    ++srv.epoch;
    int decoding = 0;
    double prompt_waiting = 0;
    for (const Sequence& q : srv.running) {
      if (q.prompt_left > 0) {
        prompt_waiting += q.prompt_left;
      } else {
        ++decoding;
      }
    }
    const double chunk = std::min(prompt_waiting, std::max(1.0, static_cast<double>(t.step_token_budget - decoding)));
    const double decode_s = decoding > 0 ? (1 + t.decode_slowdown * (decoding - 1)) / t.decode_tps : 0;
    const double step_s = decode_s + chunk / t.prefill_tps;
    srv.decode_rate = decoding > 0 ? 1 / step_s : 0;
    double next = 1e300;
    double budget_left = chunk;
    for (Sequence& q : srv.running) {
      if (q.prompt_left > 0) {
        const double share = std::min(q.prompt_left, budget_left);
        budget_left -= share;
        q.prompt_rate = share / step_s;
        if (share > 0) next = std::min(next, q.prompt_left / q.prompt_rate);
      } else {
        next = std::min(next, q.decode_left / srv.decode_rate);
      }
    }
    if (next < 1e300) Push(now_ + std::max(0.0, next), EventType::kBatchStep, server, static_cast<int>(srv.epoch));
  }

  // Batched model: the event Reschedule asked for. Prompts that ended give their first
  // token; outputs that ended complete, and queued requests take their slots.
  void BatchStep(int server) {
    constexpr double kDone = 1e-6;  // Tokens: what is left after rounding.
    Server& srv = servers_[server];
    Advance(srv);
    std::vector<int> finished;
    for (size_t i = 0; i < srv.running.size();) {
      Sequence& q = srv.running[i];
      if (q.prompt_left <= kDone && ttft_[q.request] < 0) {  // Rounding may overshoot below 0.
        q.prompt_left = 0;
        ttft_[q.request] = now_ - w_[q.request].arrival_s;
      }
      if (q.prompt_left <= 0 && q.decode_left <= kDone) {
        e2e_[q.request] = now_ - w_[q.request].arrival_s;
        const double held_s = now_ - start_s_[q.request];
        srv.slot_seconds = srv.slot_seconds > 0 ? 0.9 * srv.slot_seconds + 0.1 * held_s : held_s;
        finished.push_back(q.request);
        srv.running.erase(srv.running.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    // Complete() admits queued requests through Start(), which reschedules; reschedule
    // here too for the case where nothing finished or nothing was queued.
    for (int r : finished) Complete(r, server);
    Reschedule(server);
  }

  // What the servers' agents would report: every server that exists, with its counters.
  policy::ReplicaInput ScalingInput() const {
    policy::ReplicaInput in;
    in.now = in.wall = absl::UnixEpoch() + absl::Seconds(now_);
    for (size_t i = 0; i < servers_.size(); ++i) {
      const Server& srv = servers_[i];
      if (srv.state == ServerState::kGone) continue;
      in.endpoints.push_back(ScalingEndpointOf(static_cast<int>(i), srv.state, srv.type->slots, srv.busy,
                                               static_cast<int>(srv.queue.size()), srv.completed));
    }
    return in;
  }

  void Autoscale() {
    Push(now_ + s_.autoscale_interval_s, EventType::kAutoscale);
    int current = 0, ready = 0, desired = 0;
    if (scaling_ == Scaling::kOracle) {
      for (const Server& srv : servers_) {
        current += srv.state == ServerState::kLoading || srv.state == ServerState::kReady;
        ready += srv.state == ServerState::kReady;
      }
      desired = OracleReplicas();
    } else {
      const policy::ReplicaDecision decision = policy::DecidePoolReplicas(ScalingInput(), policy_, &memory_);
      current = decision.signals.current;
      ready = decision.signals.ready;
      desired = decision.desired;
    }
    replicas_by_minute_[static_cast<int>(now_ / 60)] = {current, ready};
    // Like the latencies, scaling is measured after the warmup: the scenario's starting
    // fleet is arbitrary, and the first minutes settle it (down from 10 replicas, say).
    if (last_desired_ && *last_desired_ != desired && now_ >= s_.warmup_s) {
      ++scaling_changes_;
      const int direction = desired > *last_desired_ ? 1 : -1;
      if (last_direction_ != 0 && direction != last_direction_) {
        ++scaling_reversals_;
        if (now_ - last_change_s_ <= kQuickReversalS) ++quick_reversals_;
      }
      last_direction_ = direction;
      last_change_s_ = now_;
    }
    last_desired_ = desired;
    for (int i = current; i < desired; ++i) {
      servers_.push_back(NewServer(scale_type_, ServerState::kLoading, now_));
      for (auto& o : outstanding_) o.push_back(0);
      for (auto& o : since_view_) o.emplace_back();
      Push(now_ + scale_type_->cold_start_s, EventType::kServerReady, static_cast<int>(servers_.size()) - 1);
    }
    for (int i = desired; i < current; ++i) {
      // Remove a loading replica first, else the least busy ready one (it drains).
      int victim = -1;
      for (size_t k = 0; k < servers_.size(); ++k) {
        if (servers_[k].state == ServerState::kLoading) victim = static_cast<int>(k);
      }
      if (victim < 0) {
        for (size_t k = 0; k < servers_.size(); ++k) {
          if (servers_[k].state != ServerState::kReady) continue;
          if (victim < 0 ||
              servers_[k].busy + servers_[k].queue.size() < servers_[victim].busy + servers_[victim].queue.size()) {
            victim = static_cast<int>(k);
          }
        }
      }
      if (victim < 0) break;
      Server& v = servers_[victim];
      if (v.state == ServerState::kLoading || (v.busy == 0 && v.queue.empty())) {
        v.state = ServerState::kGone;
        v.removed_s = now_;
      } else {
        v.state = ServerState::kDraining;  // Finishes its work, takes no more.
      }
    }
  }

  ClassModeResult ClassResults() {
    ClassModeResult out;
    out.mode = ClassModeName(class_mode_);
    std::vector<std::vector<double>> ttft(s_.classes.size());
    out.classes.resize(s_.classes.size());
    for (size_t c = 0; c < s_.classes.size(); ++c) out.classes[c].name = s_.classes[c].name;
    for (size_t i = 0; i < w_.size(); ++i) {
      if (w_[i].arrival_s < s_.warmup_s || w_[i].arrival_s > s_.duration_s) continue;
      const int c = w_[i].priority_class;
      if (c < 0 || c >= static_cast<int>(s_.classes.size())) continue;
      ++out.classes[c].offered;
      if (refused_[i]) {
        ++out.classes[c].refused;
      } else if (ttft_[i] >= 0) {
        ttft[c].push_back(ttft_[i]);
      }
    }
    for (size_t c = 0; c < s_.classes.size(); ++c) {
      out.classes[c].ttft_p50_s = Percentile(ttft[c], 0.50);
      out.classes[c].ttft_p99_s = Percentile(ttft[c], 0.99);
    }
    return out;
  }

 public:
  ClassModeResult RunClasses() {
    Run();
    return ClassResults();
  }

 private:
  PolicyResult Results() {
    PolicyResult out;
    std::vector<double> ttft, e2e;
    std::map<int, std::vector<double>> by_minute;
    for (size_t i = 0; i < w_.size(); ++i) {
      if (ttft_[i] < 0 || w_[i].arrival_s < s_.warmup_s || w_[i].arrival_s > s_.duration_s) continue;
      ttft.push_back(ttft_[i]);
      e2e.push_back(e2e_[i]);
      by_minute[static_cast<int>(w_[i].arrival_s / 60)].push_back(ttft_[i]);
    }
    out.completed = completed_;
    out.ttft_p50_s = Percentile(ttft, 0.50);
    out.ttft_p95_s = Percentile(ttft, 0.95);
    out.ttft_p99_s = Percentile(ttft, 0.99);
    out.e2e_p99_s = Percentile(e2e, 0.99);
    out.throughput_rps = ttft.size() / std::max(1.0, s_.duration_s - s_.warmup_s);
    for (auto& [minute, v] : by_minute) {
      MinuteResult m;
      m.minute = minute;
      m.requests = static_cast<int>(v.size());
      m.ttft_p95_s = Percentile(v, 0.95);
      if (m.ttft_p95_s > s_.slo_ttft_s) out.slo_violation_minutes += 1;
      // Replica counts as of the minute's last sync (or the last sync before it).
      auto it = replicas_by_minute_.upper_bound(minute);
      if (it != replicas_by_minute_.begin()) {
        --it;
        m.replicas = it->second.first;
        m.ready_replicas = it->second.second;
      } else {
        m.replicas = m.ready_replicas = static_cast<int>(servers_.size());  // A fixed fleet.
      }
      out.minutes.push_back(m);
    }
    for (const Server& srv : servers_) {
      const double end = srv.removed_s >= 0 ? std::min(srv.removed_s, s_.duration_s) : s_.duration_s;
      out.gpu_hours += std::max(0.0, end - srv.created_s) / 3600;
    }
    out.scaling_changes = scaling_changes_;
    out.scaling_reversals = scaling_reversals_;
    out.quick_reversals = quick_reversals_;
    return out;
  }

  const Scenario& s_;
  const std::vector<SimRequest>& w_;
  const Routing routing_;
  const Scaling scaling_;
  std::mt19937_64 rng_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  uint64_t seq_ = 0;
  double now_ = 0;
  std::vector<Server> servers_;
  const ServerType* const scale_type_;
  std::deque<View> views_;
  size_t views_base_ = 0;
  std::vector<View> proxy_view_;
  std::vector<uint32_t> previous_weights_;
  std::vector<std::vector<int>> outstanding_;       // [proxy][server]: requests sent, not done.
  std::vector<std::vector<SinceView>> since_view_;  // [proxy][server], since the proxy's last view.
  // switchboard_picker_shared: the control plane's board, each replica's view of the
  // others, and the reports and answers on their way (by id).
  client::InFlightBoard board_;
  std::vector<client::PeerInFlight> peers_;
  std::map<int, client::PoolCounts> pending_;
  std::map<int, size_t> pending_peers_;  // Of an answer on its way: the peers it counts.
  int next_pending_ = 0;
  std::vector<uint32_t> rr_;
  std::vector<int> request_proxy_;
  std::vector<double> ttft_, e2e_;
  std::vector<double> start_s_;      // Batched model: when each request took its slot.
  std::vector<double> work_prefix_;  // Oracle scaler: slot-seconds of requests [0, i).
  int64_t completed_ = 0, rejected_ = 0;
  // The mixed-priority comparison (SimulateClasses): its mode, the classes' admission
  // (none unless kClasses) and which requests were refused.
  ClassMode class_mode_ = ClassMode::kNone;
  bool class_run_ = false;
  policy::AdmissionConfig admission_;
  std::vector<bool> refused_;
  const policy::PoolPolicy policy_;   // As the control plane would hold it (PoolPolicyFor).
  policy::PoolScalingMemory memory_;  // Its forecast's season: the scenario's day.
  std::optional<int> last_desired_;
  int scaling_changes_ = 0;
  int scaling_reversals_ = 0;
  int quick_reversals_ = 0;
  int last_direction_ = 0;                                 // +1 up, -1 down: of the last change.
  double last_change_s_ = 0;                               // Simulated time of the last change.
  std::map<int, std::pair<int, int>> replicas_by_minute_;  // Minute -> {replicas, ready} at its last sync.
};

}  // namespace

policy::PoolPolicy PoolPolicyFor(const Scenario& scenario, Scaling scaling) {
  policy::PoolPolicy out;
  policy::AutoscaleConfig config;
  switch (scaling) {
    case Scaling::kNone:
      return out;
    case Scaling::kHpaUtilization:  // The seed's "CPU 70%" rule, on slot occupancy.
      config.metrics = {{policy::ScalingSignal::kSlotOccupancy, 0.7}};
      break;
    case Scaling::kHpaQueue:
      config.metrics = {{policy::ScalingSignal::kQueuePerReplica, 5}};
      break;
    case Scaling::kSwitchboardReactive:
    case Scaling::kSwitchboardPredictive:
    case Scaling::kOracle:
      // Exactly what the control plane does for a pool with no configuration file.
      out = policy::DefaultFleetConfig().defaults;
      config = *out.autoscale;
      if (scaling == Scaling::kSwitchboardPredictive) {
        out.predictive = policy::PredictiveConfig();
        out.predictive->lead_time = absl::Seconds(ScaleType(scenario)->cold_start_s);
      }
      break;
  }
  config.min_replicas = scenario.min_replicas;
  config.max_replicas = scenario.max_replicas;
  out.autoscale = config;
  out.autoscale_sync_period = absl::Seconds(scenario.autoscale_interval_s);
  return out;
}

policy::ScalingEndpoint ScalingEndpointOf(int index, SimServerState state, int slots, int busy, int queue,
                                          uint64_t completed) {
  policy::ScalingEndpoint ep;
  switch (state) {
    case SimServerState::kLoading:
      ep.state = v1::ENDPOINT_STATE_STARTING;
      break;
    case SimServerState::kReady:
      ep.state = v1::ENDPOINT_STATE_READY;
      break;
    case SimServerState::kDraining:
    case SimServerState::kGone:
      ep.state = v1::ENDPOINT_STATE_DRAINING;
      break;
  }
  ep.key = std::to_string(index);
  ep.reported = true;  // Fresh: the simulator's agents report every interval.
  ep.slots_total = static_cast<uint32_t>(slots);
  ep.slots_busy = static_cast<uint32_t>(busy);
  ep.queue_depth = static_cast<uint32_t>(queue);
  ep.requests_total = completed;
  return ep;
}

const char* RoutingName(Routing r) {
  switch (r) {
    case Routing::kRoundRobin:
      return "round_robin";
    case Routing::kLeastConnections:
      return "least_connections";
    case Routing::kStaticWeights:
      return "static_weights";
    case Routing::kSlotPolling:
      return "slot_polling";
    case Routing::kSwitchboard:
      return "switchboard";
    case Routing::kSwitchboardSizeAware:
      return "switchboard_size_aware";
    case Routing::kSwitchboardPicker:
      return "switchboard_picker";
    case Routing::kSwitchboardPickerShared:
      return "switchboard_picker_shared";
    case Routing::kOracleJsq:
      return "oracle_jsq";
    case Routing::kOracle:
      return "oracle";
    case Routing::kOracleSizeBlind:
      return "oracle_size_blind";
  }
  return "?";
}

const char* ScalingName(Scaling s) {
  switch (s) {
    case Scaling::kNone:
      return "none";
    case Scaling::kHpaUtilization:
      return "hpa_utilization";
    case Scaling::kHpaQueue:
      return "hpa_queue";
    case Scaling::kSwitchboardReactive:
      return "switchboard_reactive";
    case Scaling::kSwitchboardPredictive:
      return "switchboard_predictive";
    case Scaling::kOracle:
      return "oracle";
  }
  return "?";
}

PolicyResult Simulate(const Scenario& scenario, const std::vector<SimRequest>& workload, Routing routing,
                      Scaling scaling, uint64_t seed) {
  FleetSim sim(scenario, workload, routing, scaling, seed);
  PolicyResult r = sim.Run();
  r.policy = scaling == Scaling::kNone ? RoutingName(routing) : ScalingName(scaling);
  return r;
}

const char* ClassModeName(ClassMode m) {
  switch (m) {
    case ClassMode::kNone:
      return "no_classes";
    case ClassMode::kClasses:
      return "priority_classes";
    case ClassMode::kStrictPriority:
      return "strict_priority_queue";
  }
  return "?";
}

ClassModeResult SimulateClasses(const Scenario& scenario, const std::vector<SimRequest>& workload, ClassMode mode,
                                uint64_t seed) {
  FleetSim sim(scenario, workload, Routing::kSwitchboardPicker, Scaling::kNone, seed, mode);
  return sim.RunClasses();
}

}  // namespace switchboard::sim
