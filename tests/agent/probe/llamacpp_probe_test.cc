#include "agent/probe/llamacpp_probe.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/agent/probe/fake_http_client.h"

namespace switchboard::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Capture(const std::string& name) {
  return std::string(SWITCHBOARD_TESTDATA_DIR) + "/llama.cpp-b10470/" + name;
}

class LlamaCppProbeTest : public ::testing::Test {
 protected:
  LlamaCppProbeTest() {
    ProbeOptions o;
    o.base_url = "http://127.0.0.1:8080";
    o.address = "127.0.0.1:8080";
    probe_ = std::make_unique<LlamaCppProbe>(o, &http_);
  }
  void ServeIdleCaptures() {
    http_.SetFromCapture("/health", Capture("idle__GET_health.txt"));
    http_.SetFromCapture("/props", Capture("idle__GET_props.txt"));
    http_.SetFromCapture("/v1/models", Capture("idle__GET_v1_models.txt"));
    http_.SetFromCapture("/slots", Capture("idle__GET_slots.txt"));
  }
  v1::EndpointReport Poll() {
    now_ += absl::Seconds(1);
    return probe_->Poll(now_);
  }
  FakeHttpClient http_;
  std::unique_ptr<LlamaCppProbe> probe_;
  absl::Time now_ = absl::FromUnixSeconds(100);
};

TEST_F(LlamaCppProbeTest, RealBusyServer) {
  ServeIdleCaptures();
  http_.SetFromCapture("/metrics", Capture("busy__GET_metrics.txt"));
  http_.SetFromCapture("/slots", Capture("busy__GET_slots.txt"));
  v1::EndpointReport r = Poll();
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_READY) << r.probe_error();
  EXPECT_EQ(r.probe_error(), "");
  EXPECT_THAT(r.models(), ElementsAre("tiny")) << "'/models/tiny.gguf' becomes a clean pool name";
  EXPECT_EQ(r.slots_total(), 4u);
  EXPECT_EQ(r.slots_busy(), 4u);   // requests_processing
  EXPECT_EQ(r.queue_depth(), 2u);  // requests_deferred
  // No KV gauge in current builds: estimated from /slots, (179+179+180+180) / (4 x 1024).
  EXPECT_TRUE(r.kv_cache_estimated());
  EXPECT_NEAR(r.kv_cache_usage(), 718.0 / 4096, 1e-9);
}

// Found by fuzz_probes: a gauge past uint32's range was cast (undefined behaviour). It is
// refused like any other absurd reading, with the reason, and nothing else is reported.
TEST_F(LlamaCppProbeTest, RefusesGaugesPastAnyRealCount) {
  ServeIdleCaptures();
  http_.Set("/metrics", 200, "llamacpp:requests_processing 7.77778e+20\nllamacpp:requests_deferred 0\n");
  v1::EndpointReport r = Poll();
  EXPECT_THAT(r.probe_error(), HasSubstr("requests_processing / requests_deferred missing or invalid"));
  EXPECT_EQ(r.slots_busy(), 0u);
}

// Found by fuzz_probes: a JSON number past int64's range (total_slots 2e44) was cast
// (undefined behaviour). Integer fields outside [0, 2^53] are treated as missing.
TEST_F(LlamaCppProbeTest, RefusesJsonNumbersPastAnyRealCount) {
  ServeIdleCaptures();
  http_.Set("/props", 200, R"({"total_slots":2e44})");
  EXPECT_THAT(Poll().probe_error(), HasSubstr("total_slots missing or absurd"));
  http_.Set("/props", 200, R"({"total_slots":18446744073709551615})");
  EXPECT_THAT(Poll().probe_error(), HasSubstr("total_slots missing or absurd"));
  http_.Set("/props", 200, R"({"total_slots":-3})");
  EXPECT_THAT(Poll().probe_error(), HasSubstr("total_slots missing or absurd"));

  // 2024 shape, no /metrics or /slots: the busy count comes from /health alone, and one
  // past any real count is an error, not a number wrapped into range.
  http_.Set("/props", 200, R"({"total_slots":4})");
  http_.Set("/metrics", 501, "");
  http_.Set("/slots", 501, "");
  http_.Set("/health", 200, R"({"status":"ok","slots_idle":0,"slots_processing":4294967297})");
  EXPECT_THAT(Poll().probe_error(), HasSubstr("busy slots of 4"));
  http_.Set("/health", 200, R"({"status":"ok","slots_idle":1,"slots_processing":3})");
  v1::EndpointReport r = Poll();
  EXPECT_EQ(r.probe_error(), "");
  EXPECT_EQ(r.slots_busy(), 3u);
}

TEST_F(LlamaCppProbeTest, CountsFinishedRequestsFromSlots) {
  // llama.cpp has no finished-request counter; the real captures in order show one:
  // busy: slots 0-3 run tasks 17, 16, 14, 13. busy_tail: 0 and 1 idle (17 and 16 done),
  // 2 and 3 on tasks 19 and 18 (14 and 13 done): 4 finished. after: all idle, 19 and 18
  // done: 6. /metrics says 0 busy by then; /slots is read once more as the slots empty.
  ServeIdleCaptures();
  http_.SetFromCapture("/metrics", Capture("busy__GET_metrics.txt"));
  http_.SetFromCapture("/slots", Capture("busy__GET_slots.txt"));
  v1::EndpointReport r = Poll();
  EXPECT_EQ(r.requests_total(), 0u) << "nothing seen finishing yet: no counter";
  http_.SetFromCapture("/metrics", Capture("busy_tail__GET_metrics.txt"));
  http_.SetFromCapture("/slots", Capture("busy_tail__GET_slots.txt"));
  r = Poll();
  EXPECT_EQ(r.requests_total(), 4u);
  http_.SetFromCapture("/metrics", Capture("after__GET_metrics.txt"));
  http_.SetFromCapture("/slots", Capture("after__GET_slots.txt"));
  r = Poll();
  EXPECT_EQ(r.slots_busy(), 0u);
  EXPECT_EQ(r.requests_total(), 6u);
  // Idle now: /slots is not polled again, the counter holds.
  const int calls = http_.calls();
  r = Poll();
  EXPECT_EQ(r.requests_total(), 6u);
  EXPECT_EQ(http_.calls() - calls, 2) << "health + metrics only";
  // A task that started and finished between two reads shows as a new id on an idle slot.
  http_.SetFromCapture("/metrics", Capture("busy__GET_metrics.txt"));
  http_.Set("/slots", 200,
            R"([{"id":0,"n_ctx":1024,"is_processing":true,"id_task":30},
                {"id":1,"n_ctx":1024,"is_processing":false,"id_task":25},
                {"id":2,"n_ctx":1024,"is_processing":false,"id_task":19},
                {"id":3,"n_ctx":1024,"is_processing":false,"id_task":18}])");
  r = Poll();
  EXPECT_EQ(r.requests_total(), 7u) << "task 25 on slot 1; task 30 still running";
}

TEST_F(LlamaCppProbeTest, CountsFinishedRequestsWhereMetricsHaveAKvGauge) {
  // 2024 builds export llamacpp:kv_cache_usage_ratio: /slots is still read while busy, for
  // the count, and the gauge is kept rather than replaced by the estimate.
  http_.Set("/health", 200, R"({"status":"ok","slots_idle":1,"slots_processing":1})");
  http_.Set("/props", 200, R"({"total_slots":2,"default_generation_settings":{"n_ctx":512}})");
  http_.Set("/v1/models", 200, R"({"object":"list","data":[{"id":"m"}]})");
  http_.Set("/metrics", 200,
            "llamacpp:requests_processing 1\nllamacpp:requests_deferred 0\nllamacpp:kv_cache_usage_ratio 0.5\n");
  http_.Set("/slots", 200,
            R"([{"id":0,"n_ctx":512,"state":1,"id_task":3,"n_prompt_tokens":100},{"id":1,"n_ctx":512,"state":0}])");
  v1::EndpointReport r = Poll();
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_READY) << r.probe_error();
  http_.Set("/slots", 200,
            R"([{"id":0,"n_ctx":512,"state":1,"id_task":7,"n_prompt_tokens":100},{"id":1,"n_ctx":512,"state":0}])");
  r = Poll();
  EXPECT_EQ(r.requests_total(), 1u) << "task 3 finished, 7 runs";
  EXPECT_DOUBLE_EQ(r.kv_cache_usage(), 0.5) << "the gauge, not the estimate (100 / 1024)";
  EXPECT_FALSE(r.kv_cache_estimated());
}

TEST_F(LlamaCppProbeTest, LoadingModelIsStarting) {
  http_.SetFromCapture("/health", Capture("startup_loading__GET_health.txt"));
  v1::EndpointReport r = Poll();
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_STARTING);
  EXPECT_EQ(r.probe_error(), "");
}

TEST_F(LlamaCppProbeTest, MetricsDisabledFallsBackToSlots) {
  ServeIdleCaptures();
  http_.SetFromCapture("/metrics", Capture("nometrics__GET_metrics.txt"));
  http_.SetFromCapture("/slots", Capture("busy__GET_slots.txt"));
  v1::EndpointReport r = Poll();
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_READY) << r.probe_error();
  EXPECT_EQ(r.slots_busy(), 4u);
  EXPECT_EQ(r.queue_depth(), 0u) << "/slots cannot see the queue";
  const int calls = http_.calls();
  Poll();
  // Once known unsupported, /metrics is not asked again: health + slots per round.
  EXPECT_EQ(http_.calls() - calls, 2);
}

TEST_F(LlamaCppProbeTest, Shapes2024) {
  http_.Set("/health", 200, R"({"status":"no slot available","slots_idle":0,"slots_processing":2})");
  http_.Set("/props", 200, R"({"total_slots":2,"default_generation_settings":{"n_ctx":512}})");
  http_.Set("/v1/models", 200, R"({"object":"list","data":[{"id":"mistral-7b","meta":null}]})");
  http_.Set("/metrics", 501, "");
  http_.Set("/slots", 200,
            R"([{"id":0,"n_ctx":512,"state":1,"id_task":3,"n_prompt_tokens":100,"next_token":{"n_decoded":10}},
                {"id":1,"n_ctx":512,"state":0}])");
  v1::EndpointReport r = Poll();
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_READY) << r.probe_error();
  EXPECT_THAT(r.models(), ElementsAre("mistral-7b"));
  EXPECT_EQ(r.slots_busy(), 1u) << "integer state: 0 idle, else busy";
  // next_token as an object (README shape): two reads 1 s apart, 10 -> 30 decoded.
  http_.Set("/slots", 200,
            R"([{"id":0,"n_ctx":512,"state":1,"id_task":3,"n_prompt_tokens":120,"next_token":{"n_decoded":30}},
                {"id":1,"n_ctx":512,"state":0}])");
  r = Poll();
  EXPECT_DOUBLE_EQ(r.slot_tokens_per_second(), 20);
}

TEST_F(LlamaCppProbeTest, CountersGiveRatesAndARestartRebaselines) {
  ServeIdleCaptures();
  auto metrics = [](double tokens, double seconds) {
    return "llamacpp:requests_processing 1\nllamacpp:requests_deferred 0\nllamacpp:tokens_predicted_total " +
           std::to_string(tokens) + "\nllamacpp:tokens_predicted_seconds_total " + std::to_string(seconds) + "\n";
  };
  http_.Set("/metrics", 200, metrics(1000, 20));
  Poll();
  http_.Set("/metrics", 200, metrics(1300, 26));  // 300 tokens in 1 s, 6 s of slot time
  v1::EndpointReport r = Poll();
  EXPECT_DOUBLE_EQ(r.tokens_per_second(), 300);
  EXPECT_DOUBLE_EQ(r.slot_tokens_per_second(), 50);
  http_.Set("/metrics", 200, metrics(10, 1));  // Server restarted.
  r = Poll();
  EXPECT_GE(r.tokens_per_second(), 0) << "never a negative rate";
  EXPECT_EQ(r.tokens_per_second(), 0);
  http_.Set("/metrics", 200, metrics(110, 3));
  r = Poll();
  EXPECT_DOUBLE_EQ(r.tokens_per_second(), 100) << "rates resume from the new baseline";
}

TEST_F(LlamaCppProbeTest, PrefillSpeedFromPromptCounters) {
  ServeIdleCaptures();
  auto metrics = [](double prompt_tokens, double prompt_seconds) {
    return "llamacpp:requests_processing 1\nllamacpp:requests_deferred 0\nllamacpp:prompt_tokens_total " +
           std::to_string(prompt_tokens) + "\nllamacpp:prompt_seconds_total " + std::to_string(prompt_seconds) + "\n";
  };
  http_.Set("/metrics", 200, metrics(164, 0.457887));  // The real capture's counters.
  EXPECT_EQ(Poll().prefill_tokens_per_second(), 0) << "one scrape is no rate";
  http_.Set("/metrics", 200, metrics(164 + 6000, 0.457887 + 2.5));  // 6000 prompt tokens in 2.5 s
  EXPECT_DOUBLE_EQ(Poll().prefill_tokens_per_second(), 2400);
  http_.Set("/metrics", 200, metrics(164 + 6000, 0.457887 + 2.5));  // Idle: the last speed stays.
  EXPECT_DOUBLE_EQ(Poll().prefill_tokens_per_second(), 2400);
  http_.Set("/metrics", 200, metrics(100, 0.1));  // Restarted: re-baseline, keep the old speed.
  EXPECT_DOUBLE_EQ(Poll().prefill_tokens_per_second(), 2400);
  http_.Set("/metrics", 200, metrics(1100, 0.6));
  EXPECT_DOUBLE_EQ(Poll().prefill_tokens_per_second(), 2000);
}

TEST_F(LlamaCppProbeTest, GarbageIsAProbeErrorAndThresholdsApply) {
  ServeIdleCaptures();
  http_.SetFromCapture("/metrics", Capture("busy__GET_metrics.txt"));
  ASSERT_EQ(Poll().state(), v1::ENDPOINT_STATE_READY);
  http_.Set("/metrics", 200, "<html>\x01 not metrics {{{");
  v1::EndpointReport r = Poll();
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_READY) << "one bad round is under the threshold (2)";
  EXPECT_THAT(r.probe_error(), HasSubstr("/metrics"));
  EXPECT_EQ(r.slots_total(), 4u) << "last known shape kept";
  r = Poll();
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_UNHEALTHY);
  EXPECT_EQ(r.slots_busy(), 0u);
  http_.Set("/health", 200, "not json");
  EXPECT_THAT(Poll().probe_error(), HasSubstr("/health"));
  http_.SetError("/health", "Couldn't connect to server");
  EXPECT_THAT(Poll().probe_error(), HasSubstr("Couldn't connect"));
  ServeIdleCaptures();
  http_.SetFromCapture("/metrics", Capture("busy__GET_metrics.txt"));
  EXPECT_EQ(Poll().state(), v1::ENDPOINT_STATE_READY) << "one good round recovers (default)";
}

TEST_F(LlamaCppProbeTest, AbsurdNumbersAreErrors) {
  ServeIdleCaptures();
  http_.Set("/metrics", 200, "llamacpp:requests_processing 9\nllamacpp:requests_deferred 0\n");
  EXPECT_THAT(Poll().probe_error(), HasSubstr("9 busy slots of 4"));
  http_.Set("/metrics", 200, "llamacpp:requests_processing NaN\nllamacpp:requests_deferred 0\n");
  EXPECT_THAT(Poll().probe_error(), HasSubstr("invalid"));
}

TEST_F(LlamaCppProbeTest, NeverReadyFailuresAreStarting) {
  http_.SetError("/health", "Couldn't connect to server");
  v1::EndpointReport r = Poll();
  r = Poll();
  r = Poll();
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_STARTING);
  EXPECT_THAT(r.probe_error(), HasSubstr("Couldn't connect"));
}

TEST(CleanModelNameTest, Paths) {
  EXPECT_EQ(CleanModelName("/models/Llama-3-8B.Q4_K_M.gguf"), "Llama-3-8B.Q4_K_M");
  EXPECT_EQ(CleanModelName("mistral-7b"), "mistral-7b");
  EXPECT_EQ(CleanModelName("org/model"), "model");
  EXPECT_EQ(CleanModelName("/"), "/");
}

TEST(ParseBackendSpecTest, GoodAndBad) {
  auto s = ParseBackendSpec("vllm=http://10.0.0.2:8000/,capacity=4,max_seqs=128");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->engine, "vllm");
  EXPECT_EQ(s->options.base_url, "http://10.0.0.2:8000");
  EXPECT_EQ(s->options.address, "10.0.0.2:8000");
  EXPECT_EQ(s->options.capacity_hint, 4);
  EXPECT_EQ(s->options.max_seqs, 128u);
  for (const char* bad :
       {"http://h:1", "nope=http://h:1", "llamacpp=https://h:1", "llamacpp=http://h", "llamacpp=http://h:1/v1",
        "llamacpp=http://h:1,capacity=-1", "llamacpp=http://h:1,foo=1", "vllm=http://h:1,max_seqs=0"}) {
    EXPECT_FALSE(ParseBackendSpec(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace switchboard::agent
