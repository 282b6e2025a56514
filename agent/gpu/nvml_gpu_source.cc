#include "agent/gpu/nvml_gpu_source.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace switchboard::agent {
namespace {

// The subset of nvml.h we use, declared here: the agent must build without the CUDA
// toolkit. Values from NVML's public header.
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr nvmlReturn_t kNvmlNotSupported = 3;
constexpr unsigned kNvmlTemperatureGpu = 0;
struct NvmlMemory {
  unsigned long long total, free, used;  // Bytes. Note the order.
};
// nvmlDeviceGetMemoryInfo_v2 (drivers since R510) splits the driver's reserved memory out of
// `used`, as nvidia-smi does; the first version counts it as used (about 480 MiB on an idle
// H100 with driver 580, where nvidia-smi shows 0).
struct NvmlMemoryV2 {
  unsigned version;
  unsigned long long total, reserved, free, used;
};
// NVML_STRUCT_VERSION(Memory, 2): the struct's size with the version in the top byte.
constexpr unsigned kNvmlMemoryV2Version = static_cast<unsigned>(sizeof(NvmlMemoryV2)) | (2u << 24);
struct NvmlUtilization {
  unsigned int gpu, memory;  // Percent.
};

}  // namespace

struct NvmlGpuSource::Api {
  void* handle = nullptr;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*device_count)(unsigned*) = nullptr;
  nvmlReturn_t (*device_by_index)(unsigned, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*device_name)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*device_uuid)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*memory_info)(nvmlDevice_t, NvmlMemory*) = nullptr;
  nvmlReturn_t (*memory_info_v2)(nvmlDevice_t, NvmlMemoryV2*) = nullptr;  // Optional.
  nvmlReturn_t (*utilization)(nvmlDevice_t, NvmlUtilization*) = nullptr;
  nvmlReturn_t (*temperature)(nvmlDevice_t, unsigned, unsigned*) = nullptr;

  std::string Error(const char* what, nvmlReturn_t rc) const {
    return absl::StrCat(what, ": ", error_string ? error_string(rc) : "error", " (", rc, ")");
  }
};

absl::StatusOr<std::unique_ptr<NvmlGpuSource>> NvmlGpuSource::Open(const std::string& library) {
  auto api = std::make_unique<Api>();
  api->handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (api->handle == nullptr) {
    const char* err = dlerror();
    return absl::UnavailableError(absl::StrCat("cannot load ", library, ": ", err ? err : "unknown error"));
  }
  bool missing = false;
  std::string missing_name;
  auto load = [&](auto& fn, const char* symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(api->handle, symbol));
    if (fn == nullptr && !missing) {
      missing = true;
      missing_name = symbol;
    }
  };
  load(api->init, "nvmlInit_v2");
  load(api->shutdown, "nvmlShutdown");
  load(api->error_string, "nvmlErrorString");
  load(api->device_count, "nvmlDeviceGetCount_v2");
  load(api->device_by_index, "nvmlDeviceGetHandleByIndex_v2");
  load(api->device_name, "nvmlDeviceGetName");
  load(api->device_uuid, "nvmlDeviceGetUUID");
  load(api->memory_info, "nvmlDeviceGetMemoryInfo");
  load(api->utilization, "nvmlDeviceGetUtilizationRates");
  load(api->temperature, "nvmlDeviceGetTemperature");
  // Optional: older drivers lack it, and the first version is the fallback.
  api->memory_info_v2 =
      reinterpret_cast<decltype(api->memory_info_v2)>(dlsym(api->handle, "nvmlDeviceGetMemoryInfo_v2"));
  if (missing) {
    dlclose(api->handle);
    return absl::UnavailableError(absl::StrCat(library, " has no symbol ", missing_name));
  }
  if (nvmlReturn_t rc = api->init(); rc != kNvmlSuccess) {
    std::string err = api->Error("nvmlInit_v2", rc);
    dlclose(api->handle);
    return absl::UnavailableError(err);
  }
  return std::unique_ptr<NvmlGpuSource>(new NvmlGpuSource(std::move(api)));
}

NvmlGpuSource::NvmlGpuSource(std::unique_ptr<Api> api) : api_(std::move(api)) {}

NvmlGpuSource::~NvmlGpuSource() {
  api_->shutdown();
  dlclose(api_->handle);
}

absl::StatusOr<std::vector<GpuReading>> NvmlGpuSource::Read() {
  unsigned count = 0;
  if (nvmlReturn_t rc = api_->device_count(&count); rc != kNvmlSuccess) {
    return absl::UnavailableError(api_->Error("nvmlDeviceGetCount_v2", rc));
  }
  std::vector<GpuReading> out;
  for (unsigned i = 0; i < count && i < 64; ++i) {
    nvmlDevice_t dev = nullptr;
    if (nvmlReturn_t rc = api_->device_by_index(i, &dev); rc != kNvmlSuccess) {
      return absl::UnavailableError(api_->Error("nvmlDeviceGetHandleByIndex_v2", rc));
    }
    GpuReading g;
    char buf[96] = {};
    if (api_->device_uuid(dev, buf, sizeof(buf)) != kNvmlSuccess)
      return absl::UnavailableError("nvmlDeviceGetUUID failed");
    g.uuid.assign(buf, strnlen(buf, sizeof(buf)));
    char name[96] = {};
    if (api_->device_name(dev, name, sizeof(name)) == kNvmlSuccess) g.name.assign(name, strnlen(name, sizeof(name)));
    NvmlMemoryV2 mem2{};
    mem2.version = kNvmlMemoryV2Version;
    if (api_->memory_info_v2 != nullptr && api_->memory_info_v2(dev, &mem2) == kNvmlSuccess) {
      g.vram_total_bytes = mem2.total;
      g.vram_used_bytes = mem2.used;
      g.vram_free_bytes = mem2.free;
    } else {
      NvmlMemory mem{};
      if (nvmlReturn_t rc = api_->memory_info(dev, &mem); rc != kNvmlSuccess) {
        return absl::UnavailableError(api_->Error("nvmlDeviceGetMemoryInfo", rc));
      }
      g.vram_total_bytes = mem.total;
      g.vram_used_bytes = mem.used;
      g.vram_free_bytes = mem.free;
    }
    NvmlUtilization util{};
    nvmlReturn_t rc = api_->utilization(dev, &util);
    if (rc == kNvmlSuccess && util.gpu <= 100) g.utilization = util.gpu / 100.0;
    // NOT_SUPPORTED (MIG instances) and other per-field errors leave the field absent.
    (void)kNvmlNotSupported;
    unsigned celsius = 0;
    if (api_->temperature(dev, kNvmlTemperatureGpu, &celsius) == kNvmlSuccess && celsius < 200) {
      g.temperature_celsius = celsius;
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace switchboard::agent
