// A stand-in for libnvidia-ml.so.1, built by the tests: the real NVML needs a GPU and
// its driver, which test machines lack. Exports the same C symbols the agent dlopens.
// Two GPUs by default; FAKE_NVML_INIT_FAIL=1 makes nvmlInit_v2 fail as on a host
// without a driver (NVML_ERROR_DRIVER_NOT_LOADED). Like a real driver since R510, the first
// nvmlDeviceGetMemoryInfo counts 512 MiB of driver-reserved memory as used and
// nvmlDeviceGetMemoryInfo_v2 reports it apart; FAKE_NVML_NO_V2=1 makes _v2 answer
// NVML_ERROR_FUNCTION_NOT_FOUND as an old driver's library would.
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {

struct FakeMemory {
  unsigned long long total, free, used;
};
struct FakeMemoryV2 {
  unsigned version;
  unsigned long long total, reserved, free, used;
};
struct FakeUtilization {
  unsigned int gpu, memory;
};

static int g_initialized = 0;

int nvmlInit_v2() {
  const char* fail = std::getenv("FAKE_NVML_INIT_FAIL");
  if (fail != nullptr && std::strcmp(fail, "1") == 0) return 9;
  g_initialized = 1;
  return 0;
}
int nvmlShutdown() {
  g_initialized = 0;
  return 0;
}
const char* nvmlErrorString(int rc) {
  return rc == 9 ? "Driver Not Loaded" : rc == 3 ? "Not Supported" : "Unknown Error";
}
int nvmlDeviceGetCount_v2(unsigned* count) {
  if (!g_initialized) return 1;
  *count = 2;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned index, void** device) {
  if (index >= 2) return 2;
  *device = reinterpret_cast<void*>(static_cast<unsigned long>(index) + 1);
  return 0;
}
static unsigned Index(void* device) { return static_cast<unsigned>(reinterpret_cast<unsigned long>(device) - 1); }
int nvmlDeviceGetName(void* device, char* name, unsigned length) {
  std::snprintf(name, length, "%s", Index(device) == 0 ? "NVIDIA H100 80GB HBM3" : "NVIDIA A100-SXM4-40GB MIG 3g.20gb");
  return 0;
}
int nvmlDeviceGetUUID(void* device, char* uuid, unsigned length) {
  std::snprintf(uuid, length, "GPU-fake-%u", Index(device));
  return 0;
}
static const unsigned long long kGiB = 1ull << 30;
static const unsigned long long kReserved = 512ull << 20;
static unsigned long long Total(void* device) { return Index(device) == 0 ? 80 * kGiB : 20 * kGiB; }
static unsigned long long Allocated(void* device) { return Index(device) == 0 ? 10 * kGiB : 19 * kGiB; }
int nvmlDeviceGetMemoryInfo(void* device, FakeMemory* memory) {
  memory->total = Total(device);
  memory->used = Allocated(device) + kReserved;
  memory->free = memory->total - memory->used;
  return 0;
}
int nvmlDeviceGetMemoryInfo_v2(void* device, FakeMemoryV2* memory) {
  const char* no_v2 = std::getenv("FAKE_NVML_NO_V2");
  if (no_v2 != nullptr && std::strcmp(no_v2, "1") == 0) return 13;        // FUNCTION_NOT_FOUND
  if (memory->version != (sizeof(FakeMemoryV2) | (2u << 24))) return 25;  // ARGUMENT_VERSION_MISMATCH
  memory->total = Total(device);
  memory->reserved = kReserved;
  memory->used = Allocated(device);
  memory->free = memory->total - memory->reserved - memory->used;
  return 0;
}
int nvmlDeviceGetUtilizationRates(void* device, FakeUtilization* utilization) {
  if (Index(device) == 1) return 3;  // NOT_SUPPORTED, as on a MIG instance.
  utilization->gpu = 35;
  utilization->memory = 20;
  return 0;
}
int nvmlDeviceGetTemperature(void* device, unsigned /*sensor*/, unsigned* celsius) {
  *celsius = 40 + Index(device);
  return 0;
}

}  // extern "C"
