#include "picker/metrics.h"

namespace switchboard::picker {

std::unique_ptr<PickerMetrics> MakePickerMetrics() {
  auto m = std::make_unique<PickerMetrics>();
  m->registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("switchboard_build_info")
      .Help("Always 1; the labels say which build runs")
      .Register(*m->registry)
      .Add({{"component", "picker"}, {"version", SWITCHBOARD_VERSION}})
      .Set(1);
  auto& requests = prometheus::BuildCounter()
                       .Name("switchboard_picker_requests_total")
                       .Help("Requests the picker decided, by result")
                       .Register(*m->registry);
  m->routed = &requests.Add({{"result", "routed"}});
  m->unavailable = &requests.Add({{"result", "unavailable"}});
  m->shed = &requests.Add({{"result", "shed"}});
  m->class_refused = &requests.Add({{"result", "class_refused"}});
  m->bad_request = &requests.Add({{"result", "bad_request"}});
  m->too_large = &requests.Add({{"result", "too_large"}});
  m->rate_limited = &requests.Add({{"result", "rate_limited"}});
  m->rate_limit_errors = &prometheus::BuildCounter()
                              .Name("switchboard_picker_ratelimit_errors_total")
                              .Help("Rate Limit Service calls that failed or missed --ratelimit-timeout")
                              .Register(*m->registry)
                              .Add({});
  auto& responses = prometheus::BuildCounter()
                        .Name("switchboard_picker_responses_total")
                        .Help("Answers seen on the response path, by status class")
                        .Register(*m->registry);
  m->responses_ok = &responses.Add({{"class", "2xx_3xx"}});
  m->responses_client_error = &responses.Add({{"class", "4xx"}});
  m->responses_server_error = &responses.Add({{"class", "5xx"}});
  m->streams = &prometheus::BuildGauge()
                    .Name("switchboard_picker_streams")
                    .Help("ext_proc streams open")
                    .Register(*m->registry)
                    .Add({});
  m->assignments = &prometheus::BuildCounter()
                        .Name("switchboard_picker_assignments_total")
                        .Help("Assignments applied")
                        .Register(*m->registry)
                        .Add({});
  m->outcome_reports = &prometheus::BuildCounter()
                            .Name("switchboard_picker_outcome_reports_total")
                            .Help("Outcome reports sent to the control plane")
                            .Register(*m->registry)
                            .Add({});
  m->decide_seconds = &prometheus::BuildHistogram()
                           .Name("switchboard_picker_decide_seconds")
                           .Help("Time to parse a request and pick its endpoint")
                           .Register(*m->registry)
                           .Add({}, prometheus::Histogram::BucketBoundaries{1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2});
  m->share_peers = &prometheus::BuildGauge()
                        .Name("switchboard_picker_share_peers")
                        .Help("Other picker replicas this one hears from through the control plane (0: not sharing)")
                        .Register(*m->registry)
                        .Add({});
  m->peer_requests_in_flight = &prometheus::BuildGauge()
                                    .Name("switchboard_picker_peer_requests_in_flight")
                                    .Help("The other replicas' requests in flight, as last heard")
                                    .Register(*m->registry)
                                    .Add({});
  return m;
}

}  // namespace switchboard::picker
