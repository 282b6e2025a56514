#include "agent/gpu/nvidia_smi_gpu_source.h"

#include <stdio.h>
#include <sys/wait.h>

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/gpu/nvml_gpu_source.h"

namespace switchboard::agent {
namespace {

constexpr uint64_t kMiB = uint64_t{1024} * 1024;
constexpr double kMaxMiB = 1 << 30;  // 1 PiB: past any GPU, so a larger figure is garbage.

bool NotAvailable(absl::string_view field) { return absl::StartsWith(field, "["); }

}  // namespace

absl::StatusOr<std::vector<GpuReading>> ParseNvidiaSmiCsv(const std::string& text) {
  std::vector<GpuReading> out;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    ++line_number;
    std::vector<absl::string_view> f = absl::StrSplit(line, ',');
    for (auto& field : f) field = absl::StripAsciiWhitespace(field);
    if (f.size() != 8 || f[1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("nvidia-smi line ", line_number, ": expected 8 fields"));
    }
    GpuReading g;
    g.uuid = std::string(f[1]);
    g.name = std::string(f[2]);
    double total, used, free_mib;
    // SimpleAtod takes "nan", "inf" and 1e400; converting those to integers is undefined.
    auto in_range = [](double mib) { return std::isfinite(mib) && mib >= 0 && mib <= kMaxMiB; };
    if (!absl::SimpleAtod(f[3], &total) || !absl::SimpleAtod(f[4], &used) || !absl::SimpleAtod(f[5], &free_mib) ||
        !in_range(total) || !in_range(used) || !in_range(free_mib)) {
      return absl::InvalidArgumentError(absl::StrCat("nvidia-smi line ", line_number, ": bad memory figures"));
    }
    g.vram_total_bytes = static_cast<uint64_t>(total) * kMiB;
    g.vram_used_bytes = static_cast<uint64_t>(used) * kMiB;
    g.vram_free_bytes = static_cast<uint64_t>(free_mib) * kMiB;
    double v;
    if (!NotAvailable(f[6]) && absl::SimpleAtod(f[6], &v) && v >= 0 && v <= 100) g.utilization = v / 100.0;
    if (!NotAvailable(f[7]) && absl::SimpleAtod(f[7], &v) && v >= 0 && v < 200) g.temperature_celsius = v;
    out.push_back(std::move(g));
  }
  return out;
}

absl::StatusOr<std::vector<GpuReading>> NvidiaSmiGpuSource::Read() {
  FILE* pipe = popen(absl::StrCat(command_, " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return absl::UnavailableError("cannot run nvidia-smi");
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0 && text.size() < (1 << 20)) text.append(buf, n);
  int status = pclose(pipe);
  if (status != 0) return absl::UnavailableError(absl::StrCat("nvidia-smi exited with status ", WEXITSTATUS(status)));
  return ParseNvidiaSmiCsv(text);
}

absl::StatusOr<std::unique_ptr<GpuSource>> MakeGpuSource(const std::string& mode, const std::string& nvml_library) {
  if (mode == "none") return std::unique_ptr<GpuSource>(new NoGpuSource());
  if (mode == "nvml" || mode == "auto") {
    auto nvml = NvmlGpuSource::Open(nvml_library);
    if (nvml.ok()) return std::unique_ptr<GpuSource>(std::move(*nvml));
    if (mode == "nvml") return nvml.status();
  }
  if (mode == "nvidia-smi" || mode == "auto") {
    auto smi = std::make_unique<NvidiaSmiGpuSource>();
    auto reading = smi->Read();
    if (reading.ok()) return std::unique_ptr<GpuSource>(std::move(smi));
    if (mode == "nvidia-smi") return reading.status();
  }
  if (mode == "auto") return std::unique_ptr<GpuSource>(new NoGpuSource());
  return absl::InvalidArgumentError(absl::StrCat("--gpu '", mode, "': want auto, nvml, nvidia-smi or none"));
}

}  // namespace switchboard::agent
