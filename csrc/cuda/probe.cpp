#include "probe.h"

#include "check.h"

namespace pyprof::cuda {

Probe probe() {
  Probe p;
  // A probe never raises (probe.h): each unanswered query leaves its field at 0 and the status says what failed.
  (void)cudaRuntimeGetVersion(&p.runtime_version);
  // The static runtime loads libcuda only now; without a driver these calls return an error instead of failing to load.
  if (cudaDriverGetVersion(&p.driver_version) != cudaSuccess || p.driver_version == 0) {
    p.status = "no driver";
    p.driver_version = 0;
  }
  uint32_t cupti = 0;
  if (cuptiGetVersion(&cupti) == CUPTI_SUCCESS) p.cupti_version = static_cast<int>(cupti);
  if (p.driver_version == 0) return p;

  const auto failure = PYPROF_CUDA_FAILURE(cudaGetDeviceCount(&p.device_count));
  if ((failure && failure->code == cudaErrorNoDevice) || (!failure && p.device_count == 0)) {
    p.device_count = 0;
    p.status = "no GPU";
    return p;
  }
  if (failure) {
    p.device_count = 0;
    p.status = failure->text;
    return p;
  }
  for (int i = 0; i < p.device_count; ++i) {
    DeviceInfo d;
    d.index = i;
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) == cudaSuccess) {
      d.name = prop.name;
      d.cc_major = prop.major;
      d.cc_minor = prop.minor;
      d.sm_count = prop.multiProcessorCount;
      d.memory_bytes = static_cast<long long>(prop.totalGlobalMem);
    }
    (void)cudaDeviceGetAttribute(&d.sm_clock_khz, cudaDevAttrClockRate, i);
    (void)cudaDeviceGetAttribute(&d.memory_clock_khz, cudaDevAttrMemoryClockRate, i);
    p.devices.push_back(d);
  }
  p.status = "ok";
  return p;
}

}  // namespace pyprof::cuda
