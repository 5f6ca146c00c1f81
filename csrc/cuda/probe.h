// What the CUDA side of this machine offers, asked without ever failing: no driver and no GPU are answers, not errors.
#pragma once
#include <string>
#include <vector>

namespace pyprof::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  int sm_clock_khz = 0;      // maximum SM clock the driver reports
  int memory_clock_khz = 0;
  long long memory_bytes = 0;
};

struct Probe {
  int runtime_version = 0;   // cudart this module was built with (static)
  int driver_version = 0;    // 0 when no driver is installed
  int cupti_version = 0;     // CUPTI API version of the libcupti that was loaded
  int device_count = 0;
  std::string status;        // "ok", "no driver", "no GPU", or the runtime's message
  std::vector<DeviceInfo> devices;
};

Probe probe();

}  // namespace pyprof::cuda
