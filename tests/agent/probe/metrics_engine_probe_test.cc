#include "agent/probe/metrics_engine_probe.h"

#include <limits>

#include "absl/strings/str_format.h"
#include "agent/probe/counter_pair.h"
#include "gtest/gtest.h"
#include "tests/agent/probe/fake_http_client.h"

namespace switchboard::agent {
namespace {

// Options for an engine on 127.0.0.1:`port`.
ProbeOptions LocalOptions(int port) {
  ProbeOptions o;
  o.base_url = absl::StrFormat("http://127.0.0.1:%d", port);
  o.address = absl::StrFormat("127.0.0.1:%d", port);
  return o;
}

TEST(CounterPairTest, GrowthRatioRestartAndBadValues) {
  CounterPair c;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_FALSE(c.Update(t0, 100.0, 2.0)) << "the first scrape is a baseline";
  std::optional<CounterPair::Growth> g = c.Update(t0 + absl::Seconds(2), 700.0, 3.5);
  ASSERT_TRUE(g);
  EXPECT_DOUBLE_EQ(g->first, 600);
  EXPECT_DOUBLE_EQ(g->second, 1.5);
  EXPECT_DOUBLE_EQ(g->seconds, 2);
  EXPECT_DOUBLE_EQ(g->Ratio(), 400);
  // Missing, negative or not finite: ignored, the baseline stays.
  EXPECT_FALSE(c.Update(t0 + absl::Seconds(3), std::nullopt, 4.0));
  EXPECT_FALSE(c.Update(t0 + absl::Seconds(3), -1.0, 4.0));
  EXPECT_FALSE(c.Update(t0 + absl::Seconds(3), 800.0, std::numeric_limits<double>::infinity()));
  g = c.Update(t0 + absl::Seconds(4), 900.0, 4.0);
  ASSERT_TRUE(g);
  EXPECT_DOUBLE_EQ(g->first, 200);
  EXPECT_DOUBLE_EQ(g->seconds, 2);
  // Nothing moved: growth 0, no ratio.
  g = c.Update(t0 + absl::Seconds(5), 900.0, 4.0);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->Ratio(), 0);
  // Either counter going down is a restart: no growth, new baseline.
  EXPECT_FALSE(c.Update(t0 + absl::Seconds(6), 50.0, 4.5));
  g = c.Update(t0 + absl::Seconds(7), 150.0, 5.0);
  ASSERT_TRUE(g);
  EXPECT_DOUBLE_EQ(g->Ratio(), 200);
  // One counter alone: its growth and the time between scrapes.
  CounterPair one;
  EXPECT_FALSE(one.Update(t0, 10.0));
  g = one.Update(t0 + absl::Milliseconds(500), 60.0);
  ASSERT_TRUE(g);
  EXPECT_DOUBLE_EQ(g->first / g->seconds, 100);
}

// vLLM's V1 metrics as a real server prints them (model_name label, histogram series).
std::string VllmMetrics(double prompt_tokens_sum, double prefill_seconds_sum, double generated) {
  const std::string l = R"(model_name="meta-llama/Llama-3.1-8B-Instruct")";
  std::string out;
  absl::StrAppendFormat(&out, "vllm:num_requests_running{%s} 2.0\nvllm:num_requests_waiting{%s} 0.0\n", l, l);
  absl::StrAppendFormat(&out, "vllm:kv_cache_usage_perc{%s} 0.1\nvllm:generation_tokens_total{%s} %f\n", l, l,
                        generated);
  absl::StrAppendFormat(&out, "vllm:request_prompt_tokens_bucket{%s,le=\"+Inf\"} 3.0\n", l);
  absl::StrAppendFormat(&out, "vllm:request_prompt_tokens_sum{%s} %f\n", l, prompt_tokens_sum);
  absl::StrAppendFormat(&out, "vllm:request_prompt_tokens_count{%s} 3.0\n", l);
  absl::StrAppendFormat(&out, "vllm:request_prefill_time_seconds_bucket{%s,le=\"+Inf\"} 3.0\n", l);
  absl::StrAppendFormat(&out, "vllm:request_prefill_time_seconds_sum{%s} %f\n", l, prefill_seconds_sum);
  absl::StrAppendFormat(&out, "vllm:request_prefill_time_seconds_count{%s} 3.0\n", l);
  return out;
}

class VllmProbeTest : public ::testing::Test {
 protected:
  VllmProbeTest() {
    ProbeOptions o = LocalOptions(8000);
    probe_ = std::make_unique<MetricsEngineProbe>(VllmSpec(), o, &http_);
    http_.Set("/health", 200, "");
    http_.Set("/v1/models", 200, R"({"data":[{"id":"meta-llama/Llama-3.1-8B-Instruct","max_model_len":8192}]})");
  }
  v1::EndpointReport Poll(double prompt_tokens_sum, double prefill_seconds_sum, double generated) {
    http_.Set("/metrics", 200, VllmMetrics(prompt_tokens_sum, prefill_seconds_sum, generated));
    now_ += absl::Seconds(1);
    return probe_->Poll(now_);
  }
  FakeHttpClient http_;
  std::unique_ptr<MetricsEngineProbe> probe_;
  absl::Time now_ = absl::FromUnixSeconds(100);
};

TEST_F(VllmProbeTest, PrefillSpeedFromPromptAndPrefillTimeHistograms) {
  v1::EndpointReport r = Poll(1200, 0.3, 500);
  EXPECT_TRUE(r.probe_error().empty()) << r.probe_error();
  EXPECT_EQ(r.prefill_tokens_per_second(), 0) << "one scrape is no rate";
  // Three requests finished: 9000 prompt tokens prefilled in 1.5 s of their prefill time.
  r = Poll(1200 + 9000, 0.3 + 1.5, 700);
  EXPECT_DOUBLE_EQ(r.prefill_tokens_per_second(), 6000);
  EXPECT_DOUBLE_EQ(r.tokens_per_second(), 200);
  EXPECT_DOUBLE_EQ(r.slot_tokens_per_second(), 100) << "200 tokens/s over 2 running";
  r = Poll(1200 + 9000, 0.3 + 1.5, 700);  // Nothing finished: the last speed stays.
  EXPECT_DOUBLE_EQ(r.prefill_tokens_per_second(), 6000);
  r = Poll(10, 0.01, 5);  // Restarted: re-baseline, never a negative or absurd speed.
  EXPECT_DOUBLE_EQ(r.prefill_tokens_per_second(), 6000);
  r = Poll(10 + 4000, 0.01 + 1.0, 105);
  EXPECT_DOUBLE_EQ(r.prefill_tokens_per_second(), 4000);
}

TEST_F(VllmProbeTest, OlderVllmWithoutPrefillHistogramReportsZero) {
  auto old_metrics = [](double generated) {
    return absl::StrFormat(
        "vllm:num_requests_running 1\nvllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc 0.2\n"
        "vllm:generation_tokens_total %f\n",
        generated);
  };
  http_.Set("/metrics", 200, old_metrics(10));
  now_ += absl::Seconds(1);
  probe_->Poll(now_);
  http_.Set("/metrics", 200, old_metrics(40));
  now_ += absl::Seconds(1);
  v1::EndpointReport r = probe_->Poll(now_);
  EXPECT_TRUE(r.probe_error().empty()) << r.probe_error();
  EXPECT_EQ(r.prefill_tokens_per_second(), 0) << "unknown: the picker assumes the pool's median";
  EXPECT_DOUBLE_EQ(r.tokens_per_second(), 30);
}

TEST(TgiProbeTest, RequestsTotalCountsFinishedRequests) {
  // TGI's tgi_request_count grows as requests arrive; the control plane's slot demand
  // needs finished ones: success + failure.
  FakeHttpClient http;
  ProbeOptions o = LocalOptions(3000);
  MetricsEngineProbe probe(TgiSpec(), o, &http);
  http.Set("/health", 200, "");
  http.Set("/info", 200, R"({"model_id":"mistralai/Mistral-7B-Instruct-v0.3","max_concurrent_requests":128})");
  http.Set("/metrics", 200,
           "tgi_batch_current_size 3\ntgi_queue_size 2\ntgi_request_count 60\ntgi_request_success 50\n"
           "tgi_request_failure{err=\"validation\"} 3\ntgi_request_failure{err=\"generation\"} 2\n");
  v1::EndpointReport r = probe.Poll(absl::FromUnixSeconds(100));
  EXPECT_TRUE(r.probe_error().empty()) << r.probe_error();
  EXPECT_EQ(r.requests_total(), 55u) << "50 succeeded + 5 failed; 5 still running or queued";
  EXPECT_EQ(r.errors_total(), 2u) << "invalid requests are the client's fault, not the server's";
  EXPECT_TRUE(r.errors_counted());
  // A TGI that has not failed yet has no failure series at all.
  http.Set("/metrics", 200, "tgi_batch_current_size 0\ntgi_queue_size 0\ntgi_request_count 7\ntgi_request_success 7\n");
  r = probe.Poll(absl::FromUnixSeconds(101));
  EXPECT_EQ(r.requests_total(), 7u);
  EXPECT_EQ(r.errors_total(), 0u);
  EXPECT_TRUE(r.errors_counted()) << "no failure yet is still a count";
}

// max_concurrent_requests is capped at 65,536 slots; one past uint32's range used to wrap
// (2^32 + 128 read as 128).
TEST(TgiProbeTest, MaxConcurrentRequestsPastUint32IsCappedNotWrapped) {
  FakeHttpClient http;
  ProbeOptions o = LocalOptions(3000);
  MetricsEngineProbe probe(TgiSpec(), o, &http);
  http.Set("/health", 200, "");
  http.Set("/info", 200, R"({"model_id":"m","max_concurrent_requests":4294967424})");
  http.Set("/metrics", 200, "tgi_batch_current_size 3\ntgi_queue_size 0\n");
  v1::EndpointReport r = probe.Poll(absl::FromUnixSeconds(100));
  EXPECT_TRUE(r.probe_error().empty()) << r.probe_error();
  EXPECT_EQ(r.slots_total(), 65536u);
}

// vLLM and SGLang count requests but not their failures: errors_total means nothing.
TEST(MetricsEngineProbeTest, EnginesWithoutAFailureCounterDoNotClaimToCountErrors) {
  FakeHttpClient http;
  ProbeOptions o = LocalOptions(30000);
  o.check.mode = ActiveCheckOptions::Mode::kOff;
  MetricsEngineProbe probe(SglangSpec(), o, &http);
  http.Set("/health", 200, "");
  http.Set("/v1/models", 200, R"({"data":[{"id":"m"}]})");
  http.Set("/metrics", 200, "sglang:num_running_reqs 0\nsglang:num_queue_reqs 0\nsglang:num_requests_total 40\n");
  v1::EndpointReport r = probe.Poll(absl::FromUnixSeconds(100));
  EXPECT_TRUE(r.probe_error().empty()) << r.probe_error();
  EXPECT_EQ(r.requests_total(), 40u);
  EXPECT_FALSE(r.errors_counted());
}

}  // namespace
}  // namespace switchboard::agent
