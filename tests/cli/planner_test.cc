// Capacity planner figures computed by hand.
#include "cli/planner.h"

#include <sstream>

#include "cli/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace switchboard::cli {
namespace {

TEST(PlannerTest, Llama3_8B_Q4KM_8k_8slots) {
  PlanRequest r;
  r.model = FindModel("llama-3-8b").value();
  r.quant = "Q4_K_M";
  r.ctx_per_slot = 8192;
  r.slots = 8;
  Plan p = MakePlan(r).value();
  // Weights: 8.03e9 x 4.85 / 8 = 4,868,187,500 bytes.
  EXPECT_EQ(p.weights_bytes, 4'868'187'500u);
  // KV per token: 2 x 32 layers x 8 KV heads x 128 dims x 2 bytes (f16) = 131,072 bytes.
  EXPECT_EQ(p.kv_bytes_per_token, 131'072u);
  // x 8192 x 8 = 65,536 tokens: 8 GiB exactly.
  EXPECT_EQ(p.kv_cache_bytes, 8ull << 30);
  // Overhead: 0.5 GiB + 5% of weights = 536,870,912 + 243,409,375.
  EXPECT_EQ(p.overhead_bytes, 780'280'287u);
  EXPECT_EQ(p.total_bytes, 4'868'187'500u + (8ull << 30) + 780'280'287u);
  // 14.2 GB: a T4 (16 GiB x 0.9 = 14.4 GiB usable) fits it on one GPU.
  ASSERT_FALSE(p.gpus.empty());
  EXPECT_EQ(p.gpus.front().gpu.name, "T4");
  EXPECT_EQ(p.gpus.front().count, 1);
}

TEST(PlannerTest, KvCacheTypeAndQuantChangeTheFigures) {
  PlanRequest r;
  r.model = FindModel("Llama-3-8B").value();  // Case-insensitive.
  r.quant = "f16";
  r.kv_type = "q8_0";
  r.ctx_per_slot = 4096;
  r.slots = 1;
  Plan p = MakePlan(r).value();
  EXPECT_EQ(p.weights_bytes, 16'060'000'000u);  // 8.03e9 x 2 bytes
  EXPECT_EQ(p.kv_bytes_per_token, 69'632u);     // 2 x 32 x 8 x 128 x 34/32
  EXPECT_EQ(p.kv_cache_bytes, 69'632ull * 4096);
}

TEST(PlannerTest, Llama2_7B_HasNoGqa) {
  PlanRequest r;
  r.model = FindModel("llama-2-7b").value();
  r.ctx_per_slot = 4096;
  r.slots = 4;
  Plan p = MakePlan(r).value();
  // 2 x 32 x 32 x 128 x 2 = 524,288 bytes per token (4x llama-3-8b's).
  EXPECT_EQ(p.kv_bytes_per_token, 524'288u);
  EXPECT_EQ(p.kv_cache_bytes, 8ull << 30);
}

TEST(PlannerTest, Llama3_70BNeedsSeveralGpus) {
  PlanRequest r;
  r.model = FindModel("llama-3-70b").value();
  r.quant = "fp8";
  r.ctx_per_slot = 8192;
  r.slots = 16;
  Plan p = MakePlan(r).value();
  // 70.6e9 bytes of weights (65.75 GiB) + 2 x 80 x 8 x 128 x 2 x 131,072 tokens (40 GiB)
  // + 5% activations (3.29 GiB) = 109.04 GiB, split n ways, + 0.5 GiB per GPU:
  // H100 (72 GiB usable): n = 2 gives 55.0. T4 (14.4 usable): n = 8 gives 14.13.
  auto count = [](const Plan& plan, const std::string& gpu) {
    for (const GpuFit& f : plan.gpus) {
      if (f.gpu.name == gpu) return f.count;
    }
    return -1;
  };
  EXPECT_EQ(count(p, "H100 80GB"), 2);
  EXPECT_EQ(count(p, "T4"), 8);
  // Twice the slots: 80 GiB of KV; 149 GiB / 8 + 0.5 = 19.1 GiB per T4: does not fit.
  r.slots = 32;
  Plan bigger = MakePlan(r).value();
  EXPECT_EQ(count(bigger, "T4"), 0);
  EXPECT_EQ(count(bigger, "H100 80GB"), 4);
}

TEST(PlannerTest, CustomModelAndBadInput) {
  PlanRequest r;
  r.model = {"custom", 1e9, 16, 4, 64};
  Plan p = MakePlan(r).value();
  EXPECT_EQ(p.kv_bytes_per_token, 2u * 16 * 4 * 64 * 2);
  r.quant = "Q9_X";
  EXPECT_FALSE(MakePlan(r).ok());
  r.quant = "Q4_K_M";
  r.kv_type = "f12";
  EXPECT_FALSE(MakePlan(r).ok());
  r.kv_type = "f16";
  r.slots = 0;
  EXPECT_FALSE(MakePlan(r).ok());
  EXPECT_FALSE(FindModel("gpt-5").ok());
}

TEST(PlannerTest, JsonHasEverySizeInBytes) {
  PlanOptions o;
  o.model = "llama-3-8b";
  o.request.ctx_per_slot = 8192;
  o.request.slots = 8;
  o.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(RunPlan(o, out, err), 0) << err.str();
  nlohmann::json j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["kv_cache_bytes"].get<uint64_t>(), 8ull << 30);
  EXPECT_EQ(j["weights_bytes"].get<uint64_t>(), 4'868'187'500u);
  EXPECT_TRUE(j.contains("total_bytes"));
  EXPECT_TRUE(j["gpus"][0].contains("memory_bytes"));
}

}  // namespace
}  // namespace switchboard::cli
