// Executed FLOPs from hardware counters: the CUPTI Range Profiler (cupti_range_profiler.h) and its host-side metric
// configuration (cupti_profiler_host.h). The old Profiling API (cuptiProfilerBeginSession & co., nvperf_host.h) is
// deprecated in CUDA 13 and not used here; only cuptiProfilerInitialize / DeviceSupported / GetCounterAvailability
// come from cupti_profiler_target.h, as the Range Profiler itself requires them.
//
// Two halves:
//   * HostConfig: runs without a GPU for any chip CUPTI supports (metric lists, properties, config image, pass count).
//   * RangeProfiler: one Range Profiler session on one device (needs a GPU, a driver and counter permission).
// Failures that Python must act on (no permission, counters held by DCGM or another profiler, unsupported device)
// are thrown as CounterError with a CounterStatus, so that the caller degrades instead of crashing.
#pragma once
#include <cupti.h>
#include <cupti_profiler_host.h>
#include <cupti_profiler_target.h>
#include <cupti_range_profiler.h>
#include <cupti_target.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace pyprof::cuda {

// Why a counter operation could not run; each maps to its own Python exception class (module_cuda.cpp).
enum class CounterStatus {
  kOk = 0,
  kInsufficientPrivileges,  // CUPTI_ERROR_INSUFFICIENT_PRIVILEGES (ERR_NVGPUCTRPERM): tracing still works
  kCountersInUse,           // CUPTI_ERROR_HARDWARE_BUSY & co.: DCGM, ncu/nsys or another session holds the counters
  kUnsupported,             // device, MIG/vGPU/WSL/CMP configuration or chip the profiler cannot serve, or no GPU
  kError,                   // any other failure
};

const char* counter_status_name(CounterStatus status);
CounterStatus classify_cupti_result(CUptiResult result);

class CounterError : public std::runtime_error {
 public:
  CounterError(CounterStatus status, const std::string& what) : std::runtime_error(what), status_(status) {}
  CounterStatus status() const { return status_; }

 private:
  CounterStatus status_;
};

// Throws CounterError (status from classify_cupti_result) with the call text, file:line and CUPTI's message.
[[noreturn]] void throw_counter_error(const char* call, CUptiResult result, const char* file, int line,
                                      const std::string& context = "");

#define PYPROF_COUNTER_CALL(call)                                                          \
  do {                                                                                     \
    CUptiResult pyprof_cres_ = (call);                                                     \
    if (pyprof_cres_ != CUPTI_SUCCESS)                                                     \
      ::pyprof::cuda::throw_counter_error(#call, pyprof_cres_, __FILE__, __LINE__);        \
  } while (0)

// ---------------------------------------------------------------------------------------------------------------
// Host side: no GPU needed.

struct MetricProperties {
  std::string name;
  std::string description;
  std::string hw_unit;    // e.g. "smsp", "sm", "dram", "gpu"
  std::string dim_unit;   // e.g. "inst", "math_op", "nsecond", "byte", "cycle"
  std::string metric_type;  // "counter" | "ratio" | "throughput"
};

// Chip names the installed CUPTI host library knows (e.g. "GA100", "GH100").
std::vector<std::string> supported_chips();

// "counter" | "ratio" | "throughput" -> CUpti_MetricType; std::invalid_argument otherwise.
CUpti_MetricType parse_metric_type(const std::string& type);

// One CUPTI host object for a chip (optionally narrowed by a live device's counter-availability image).
class HostConfig {
 public:
  // Throws std::invalid_argument naming the chip (and the supported ones) when CUPTI does not know it.
  explicit HostConfig(const std::string& chip, std::vector<uint8_t> counter_availability = {});
  ~HostConfig();
  HostConfig(const HostConfig&) = delete;
  HostConfig& operator=(const HostConfig&) = delete;

  const std::string& chip() const { return chip_; }
  std::vector<std::string> base_metrics(CUpti_MetricType type) const;
  std::vector<std::string> sub_metrics(const std::string& metric, CUpti_MetricType type) const;
  // Throws std::invalid_argument naming the metric and chip when the metric is unknown.
  MetricProperties properties(const std::string& metric) const;

  // Adds metrics to the configuration; an unknown metric throws std::invalid_argument naming it and the chip.
  // Metrics are full names with a rollup, e.g. "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum".
  void add_metrics(const std::vector<std::string>& metrics);
  const std::vector<std::string>& metrics() const { return metrics_; }
  std::vector<uint8_t> config_image() const;

  // Evaluates metrics() for one range of a decoded counter data image.
  std::vector<double> evaluate(const std::vector<uint8_t>& counter_data, size_t range_index) const;

  CUpti_Profiler_Host_Object* object() const { return host_; }

 private:
  std::string chip_;
  std::vector<uint8_t> availability_;  // must outlive host_: CUPTI keeps a pointer to it
  CUpti_Profiler_Host_Object* host_ = nullptr;
  std::vector<std::string> metrics_;
};

// Passes needed to collect a config image (queried from CUPTI, never assumed).
size_t config_num_passes(const std::vector<uint8_t>& config_image);

struct CounterConfig {
  size_t num_passes = 0;
  std::vector<uint8_t> config_image;
  std::vector<std::string> metrics;
};

CounterConfig make_counter_config(const std::string& chip, const std::vector<std::string>& metrics,
                                  const std::vector<uint8_t>& counter_availability = {});

// ---------------------------------------------------------------------------------------------------------------
// Target side: needs a GPU. Each call makes `device` current on the calling thread and restores the previous one.

std::string device_chip_name(int device);
// Counter availability of a live device: narrows host metric lists to what this device/driver can collect now.
std::vector<uint8_t> counter_availability_image(int device);

enum class RangeMode {
  kPerKernel,  // CUPTI_AutoRange + CUPTI_KernelReplay: exact per kernel, kernels serialized and replayed
  kPerStep,    // CUPTI_UserRange + CUPTI_ApplicationReplay: one pass per caller step, no re-execution
};
RangeMode parse_range_mode(const std::string& mode);  // "kernel" | "step"

struct RangeValues {
  std::string name;
  std::vector<double> values;  // same order as RangeProfiler::metrics()
};

struct DecodedRanges {
  std::vector<RangeValues> ranges;
  size_t dropped_ranges = 0;
  size_t total_ranges = 0;  // ranges in the counter data image, including those before first_range
};

class RangeProfiler {
 public:
  RangeProfiler(int device, const std::vector<std::string>& metrics, RangeMode mode, size_t max_ranges);
  ~RangeProfiler();
  RangeProfiler(const RangeProfiler&) = delete;
  RangeProfiler& operator=(const RangeProfiler&) = delete;

  size_t num_passes() const { return num_passes_; }
  const std::string& chip() const { return chip_; }
  const std::vector<std::string>& metrics() const { return host_->metrics(); }
  size_t last_pass_index() const { return last_pass_index_; }
  bool all_passes_submitted() const { return all_passes_submitted_; }

  void start();
  void push_range(const std::string& name);
  void pop_range();
  bool stop();  // true once every pass of the configuration has been submitted
  // Decodes what the device collected; evaluates ranges [first_range, total). Counted dropped ranges accumulate.
  DecodedRanges decode(size_t first_range = 0);
  void close();
  bool closed() const { return object_ == nullptr; }

 private:
  void require_open(const char* what) const;

  int device_;
  RangeMode mode_;
  size_t max_ranges_;
  std::string chip_;
  std::vector<uint8_t> availability_;
  std::unique_ptr<HostConfig> host_;
  std::vector<uint8_t> config_image_;
  std::vector<uint8_t> counter_data_;
  size_t num_passes_ = 0;
  CUpti_RangeProfiler_Object* object_ = nullptr;
  bool started_ = false;
  bool all_passes_submitted_ = false;
  size_t last_pass_index_ = 0;
  size_t dropped_ranges_ = 0;
};

}  // namespace pyprof::cuda
