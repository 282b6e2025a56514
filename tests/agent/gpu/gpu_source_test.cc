#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/gpu/nvidia_smi_gpu_source.h"
#include "agent/gpu/nvml_gpu_source.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::agent {
namespace {

TEST(NvmlGpuSourceTest, ReadsEveryGpuThroughDlopen) {
  auto source = NvmlGpuSource::Open(FAKE_NVML_PATH);
  ASSERT_TRUE(source.ok()) << source.status();
  auto gpus = (*source)->Read();
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  ASSERT_EQ(gpus->size(), 2u);
  const GpuReading& h100 = (*gpus)[0];
  EXPECT_EQ(h100.uuid, "GPU-fake-0");
  EXPECT_EQ(h100.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(h100.vram_total_bytes, 80ull << 30);
  // nvmlDeviceGetMemoryInfo_v2: the driver's reserved 512 MiB is neither used nor free.
  EXPECT_EQ(h100.vram_used_bytes, 10ull << 30);
  EXPECT_EQ(h100.vram_free_bytes, (70ull << 30) - (512ull << 20));
  EXPECT_DOUBLE_EQ(h100.utilization.value(), 0.35);
  EXPECT_DOUBLE_EQ(h100.temperature_celsius.value(), 40);
  const GpuReading& mig = (*gpus)[1];
  EXPECT_FALSE(mig.utilization.has_value()) << "NOT_SUPPORTED on MIG leaves the field absent";
  EXPECT_EQ(mig.vram_used_bytes, 19ull << 30);
}

TEST(NvmlGpuSourceTest, FallsBackToFirstMemoryCallWithoutV2) {
  setenv("FAKE_NVML_NO_V2", "1", 1);
  auto source = NvmlGpuSource::Open(FAKE_NVML_PATH);
  ASSERT_TRUE(source.ok()) << source.status();
  auto gpus = (*source)->Read();
  unsetenv("FAKE_NVML_NO_V2");
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  // The first version counts reserved memory as used: the best an old driver offers.
  EXPECT_EQ((*gpus)[0].vram_used_bytes, (10ull << 30) + (512ull << 20));
  EXPECT_EQ((*gpus)[0].vram_total_bytes, 80ull << 30);
}

TEST(NvmlGpuSourceTest, NoLibraryOrNoDriverIsUnavailable) {
  auto missing = NvmlGpuSource::Open("/nonexistent/libnvidia-ml.so.1");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnavailable);
  setenv("FAKE_NVML_INIT_FAIL", "1", 1);
  auto no_driver = NvmlGpuSource::Open(FAKE_NVML_PATH);
  unsetenv("FAKE_NVML_INIT_FAIL");
  ASSERT_FALSE(no_driver.ok());
  EXPECT_THAT(std::string(no_driver.status().message()), ::testing::HasSubstr("Driver Not Loaded"));
}

TEST(NvmlGpuSourceTest, AutoFallsBackToNoneQuietly) {
  auto source = MakeGpuSource("auto", "/nonexistent/libnvidia-ml.so.1");
  ASSERT_TRUE(source.ok());
  // This machine has no nvidia-smi either (or, if it does, it works): never an error.
  auto gpus = (*source)->Read();
  EXPECT_TRUE(gpus.ok());
  EXPECT_FALSE(MakeGpuSource("nvml", "/nonexistent/libnvidia-ml.so.1").ok());
  EXPECT_FALSE(MakeGpuSource("bogus", "").ok());
  EXPECT_EQ((*MakeGpuSource("nvml", FAKE_NVML_PATH))->name(), "nvml");
}

TEST(NvidiaSmiCsvTest, ParsesLinesAndNotAvailable) {
  auto gpus = ParseNvidiaSmiCsv(
      "0, GPU-1111, NVIDIA H100 80GB HBM3, 81559, 1024, 80535, 37, 41\n"
      "1, GPU-2222, NVIDIA A100-SXM4-40GB, 40960, 0, 40960, [N/A], [N/A]\n");
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[0].vram_total_bytes, 81559ull << 20);
  EXPECT_DOUBLE_EQ((*gpus)[0].utilization.value(), 0.37);
  EXPECT_FALSE((*gpus)[1].utilization.has_value());
  EXPECT_FALSE((*gpus)[1].temperature_celsius.has_value());
  EXPECT_TRUE(ParseNvidiaSmiCsv("").value().empty());
  EXPECT_FALSE(ParseNvidiaSmiCsv("garbage\n").ok());
  EXPECT_FALSE(ParseNvidiaSmiCsv("0, GPU-1, x, lots, 1, 1, 1, 1\n").ok());
  // Figures that parse as doubles but are no memory size (undefined as integers).
  for (const char* bad : {"nan", "inf", "-inf", "1e400", "1e300", "-1"}) {
    EXPECT_FALSE(ParseNvidiaSmiCsv(absl::StrCat("0, GPU-1, x, ", bad, ", 1, 1, 1, 1\n")).ok()) << bad;
    EXPECT_FALSE(ParseNvidiaSmiCsv(absl::StrCat("0, GPU-1, x, 100, ", bad, ", 1, 1, 1\n")).ok()) << bad;
  }
}

}  // namespace
}  // namespace switchboard::agent

namespace switchboard::agent {
namespace {

// Counts reads; VRAM used grows by 1 GiB per read, so a repeated sample is recognizable.
class CountingGpuSource final : public GpuSource {
 public:
  explicit CountingGpuSource(int* reads) : reads_(reads) {}
  std::string name() const override { return "counting"; }
  absl::StatusOr<std::vector<GpuReading>> Read() override {
    ++*reads_;
    GpuReading g;
    g.uuid = "GPU-0";
    g.name = "test";
    g.vram_total_bytes = 80ull << 30;
    g.vram_used_bytes = static_cast<uint64_t>(*reads_) << 30;
    return std::vector<GpuReading>{g};
  }

 private:
  int* const reads_;
};

TEST(AgentGpuIntervalTest, ReadsAtMostEveryIntervalAndRepeatsTheLastReading) {
  int reads = 0;
  FakeClock clock;
  AgentOptions options;
  options.node_id = "n1";
  options.report_interval = absl::Seconds(1);
  options.gpu_interval = absl::Seconds(5);
  Agent agent(options, {}, std::make_unique<CountingGpuSource>(&reads), &clock);
  std::vector<uint64_t> used;
  for (int round = 0; round < 11; ++round) {
    v1::Report r = agent.ProbeRound();
    ASSERT_EQ(r.gpus_size(), 1) << "every report carries the GPUs, read or repeated";
    used.push_back(r.gpus(0).vram_used_bytes() >> 30);
    // Rounds start a little early or late, as real ones do.
    clock.Advance(absl::Seconds(1) + absl::Milliseconds(round % 2 == 0 ? -20 : 20));
  }
  EXPECT_EQ(reads, 3);
  EXPECT_THAT(used, ::testing::ElementsAre(1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3));
}

TEST(AgentGpuIntervalTest, ZeroReadsEveryReport) {
  int reads = 0;
  FakeClock clock;
  AgentOptions options;
  options.node_id = "n1";
  Agent agent(options, {}, std::make_unique<CountingGpuSource>(&reads), &clock);
  for (int round = 0; round < 4; ++round) {
    agent.ProbeRound();
    clock.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(reads, 4);
}

}  // namespace
}  // namespace switchboard::agent
