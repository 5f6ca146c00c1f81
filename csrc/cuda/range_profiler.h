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
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "counter_claims.h"
#include "profiler_host.h"

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

// Throws CounterError (status from classify_cupti_result) with check.h's text (call, file:line, CUPTI's message).
[[noreturn]] void throw_counter_error(const CallFailure& failure, const std::string& context = "");
[[noreturn]] inline void throw_counter_error_here(const CallFailure& failure) { throw_counter_error(failure); }

#define PYPROF_COUNTER_CALL(call) PYPROF_CUPTI_CALL_AS(call, ::pyprof::cuda::throw_counter_error_here)

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

  CUpti_Profiler_Host_Object* object() const { return host_.get(); }

 private:
  std::string chip_;
  ProfilerHost host_;  // the shared RAII holder; keeps the availability image CUPTI points to
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

// Pass bookkeeping of one collection (pure: no CUPTI call, tested on a CPU through pyprof._C_cuda.testing).
//
// Step mode (UserRange + ApplicationReplay): the application replays, one pass per start()..stop(). CUPTI's Stop
// returns the passIndex and targetNestingLevel the *next* pass must collect, and they go to SetConfig before the next
// Start (cupti_range_profiler.h, CUpti_RangeProfiler_Stop_Params [out] and SetConfig [in]; the older profiler API says
// it plainly: "set this to the output of EndPass() for application replay", cupti_profiler_target.h,
// CUpti_Profiler_SetConfig_Params). Without that, pass 0 is collected again and again and the set never completes.
// Kernel mode (AutoRange + KernelReplay): CUPTI replays each kernel itself; one SetConfig per counter data image.
struct PassConfig {
  size_t pass_index = 0;
  uint16_t target_nesting_level = 1;
};

class PassBookkeeper {
 public:
  PassBookkeeper(RangeMode mode, uint16_t min_nesting_level = 1);
  // The SetConfig parameters for the Start about to happen, or nullopt when the current configuration stands.
  std::optional<PassConfig> before_start();
  // What Stop reported. Throws std::logic_error if Stop reports a pass index that goes backwards within a collection
  // (CUPTI would be collecting a pass twice).
  void after_stop(size_t next_pass_index, size_t next_target_nesting_level, bool all_passes_submitted);
  // The counter data image was decoded and re-initialized: the next Start begins a new collection at pass 0.
  void after_decode();

  bool all_passes_submitted() const { return all_submitted_; }
  size_t passes_submitted() const { return passes_submitted_; }
  size_t last_pass_index() const { return last_pass_index_; }

 private:
  RangeMode mode_;
  uint16_t min_level_;
  PassConfig next_;
  bool configured_ = false;       // SetConfig done for the current image
  bool all_submitted_ = false;
  size_t passes_submitted_ = 0;   // Stops in the current collection
  size_t last_pass_index_ = 0;    // the pass index the last Stop named
};

// Ranges the next counter data image holds, after one that held `current` decoded `decoded` ranges and dropped
// `dropped`: unchanged while nothing is dropped, else enough for what was seen (doubled, so a growing step settles in
// a few collections), capped at `cap`. Pure; tested on a CPU.
size_t next_max_ranges(size_t current, size_t decoded, size_t dropped, size_t cap);

// Largest counter data image pyprof sizes on its own (ranges); a kernel-mode step with more kernels drops the rest
// and says so. 1 << 16 ranges is a few hundred MB of counter data for a FLOP metric set at most.
constexpr size_t kMaxRangesCap = size_t{1} << 16;

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
  size_t last_pass_index() const { return passes_.last_pass_index(); }
  bool all_passes_submitted() const { return passes_.all_passes_submitted(); }
  size_t max_ranges() const { return max_ranges_; }

  void start();
  void push_range(const std::string& name);
  void pop_range();
  // Ends a pass: true once every pass of the configuration has been submitted. Kernel mode decodes right here and
  // re-initializes the counter data image (the ranges wait in this object for decode()), so a stop/start pair in the
  // middle of a step (the NCCL exclusion) loses nothing and each image holds one stop's kernels.
  bool stop();
  // Step mode: decodes the collected passes, then re-initializes the image for a new collection.
  // Kernel mode: hands over the ranges decoded at the stops since the last decode().
  // Ranges are numbered from the profiler's start; those below first_range are skipped. Dropped ranges accumulate.
  DecodedRanges decode(size_t first_range = 0);
  // Sizes the next counter data image for at least `max_ranges` ranges (e.g. the kernels the tracer saw in a step);
  // only between collections (not started). Capped at kMaxRangesCap.
  void reserve_ranges(size_t max_ranges);
  void close();
  bool closed() const { return object_ == nullptr; }

 private:
  void require_open(const char* what) const;
  void init_image();     // (re)sizes and initializes counter_data_ for max_ranges_; needs a SetConfig after
  void set_config(const PassConfig& pc);
  void decode_image(std::vector<RangeValues>* out);  // DecodeData + evaluate every range of the image

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
  std::optional<CounterClaim> claim_;  // this device's counters, against a PM sampler (counter_claims.h)
  PassBookkeeper passes_;
  bool started_ = false;
  bool image_dirty_ = false;           // a stop collected into the image since it was initialized
  size_t dropped_ranges_ = 0;
  std::vector<RangeValues> decoded_;   // kernel mode: ranges decoded at stops, waiting for decode()
  size_t decoded_base_ = 0;            // index of decoded_[0] among all ranges since the start
};

}  // namespace pyprof::cuda
