#include "range_profiler.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <mutex>
#include <sstream>

#include "check.h"

namespace pyprof::cuda {

// ---------------------------------------------------------------------------------------------------------------
// Status and errors

const char* counter_status_name(CounterStatus status) {
  switch (status) {
    case CounterStatus::kOk: return "ok";
    case CounterStatus::kInsufficientPrivileges: return "insufficient_privileges";
    case CounterStatus::kCountersInUse: return "counters_in_use";
    case CounterStatus::kUnsupported: return "unsupported";
    case CounterStatus::kError: return "error";
  }
  return "error";
}

CounterStatus classify_cupti_result(CUptiResult result) {
  switch (result) {
    case CUPTI_SUCCESS: return CounterStatus::kOk;
    case CUPTI_ERROR_INSUFFICIENT_PRIVILEGES:
    case CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES:
      return CounterStatus::kInsufficientPrivileges;
    // The counter hardware has one owner: DCGM's profiling module, a running ncu/nsys, or another CUPTI profiling
    // session in this process (an old-API session or a second Range Profiler / PM sampler on the same device).
    case CUPTI_ERROR_HARDWARE_BUSY:
    case CUPTI_ERROR_OLD_PROFILER_API_INITIALIZED:
    case CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED:
      return CounterStatus::kCountersInUse;
    case CUPTI_ERROR_NOT_SUPPORTED:
    case CUPTI_ERROR_INVALID_DEVICE:
    case CUPTI_ERROR_VIRTUALIZED_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_CONFIDENTIAL_COMPUTING_NOT_SUPPORTED:
    case CUPTI_ERROR_CMP_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_MIG_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_SLI_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_WSL_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_INVALID_CHIP_NAME:
    case CUPTI_ERROR_LEGACY_PROFILER_NOT_SUPPORTED:
      return CounterStatus::kUnsupported;
    default: return CounterStatus::kError;
  }
}

namespace {

std::string status_hint(CounterStatus status) {
  switch (status) {
    case CounterStatus::kInsufficientPrivileges:
      return "; GPU performance counters are restricted to admin users (ERR_NVGPUCTRPERM): run as root or with "
             "CAP_SYS_ADMIN/CAP_PERFMON, or load the driver with the modprobe option "
             "NVreg_RestrictProfilingToAdminUsers=0";
    case CounterStatus::kCountersInUse:
      return "; the counter hardware is held by another client (DCGM profiling, ncu/nsys, or another CUPTI profiling "
             "session): stop it (e.g. `dcgmi profile --pause`) and retry";
    default: return "";
  }
}

}  // namespace

void throw_counter_error(const CallFailure& failure, const std::string& context) {
  const CounterStatus status = classify_cupti_result(static_cast<CUptiResult>(failure.code));
  std::string what = failure.text;
  if (!context.empty()) what = context + ": " + what;
  what += " [status=" + std::string(counter_status_name(status)) + "]" + status_hint(status);
  throw CounterError(status, what);
}

// ---------------------------------------------------------------------------------------------------------------
// Host side

std::vector<std::string> supported_chips() {
  CUpti_Profiler_Host_GetSupportedChips_Params p{CUpti_Profiler_Host_GetSupportedChips_Params_STRUCT_SIZE};
  PYPROF_COUNTER_CALL(cuptiProfilerHostGetSupportedChips(&p));
  std::vector<std::string> chips;
  for (size_t i = 0; i < p.numChips; ++i) chips.emplace_back(p.ppChipNames[i]);
  return chips;
}

CUpti_MetricType parse_metric_type(const std::string& type) {
  if (type == "counter") return CUPTI_METRIC_TYPE_COUNTER;
  if (type == "ratio") return CUPTI_METRIC_TYPE_RATIO;
  if (type == "throughput") return CUPTI_METRIC_TYPE_THROUGHPUT;
  throw std::invalid_argument("metric_type must be 'counter', 'ratio' or 'throughput', not '" + type + "'");
}

namespace {

const char* metric_type_name(CUpti_MetricType t) {
  switch (t) {
    case CUPTI_METRIC_TYPE_COUNTER: return "counter";
    case CUPTI_METRIC_TYPE_RATIO: return "ratio";
    case CUPTI_METRIC_TYPE_THROUGHPUT: return "throughput";
    default: return "unknown";
  }
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::ostringstream os;
  for (size_t i = 0; i < items.size(); ++i) os << (i ? sep : "") << items[i];
  return os.str();
}

}  // namespace

HostConfig::HostConfig(const std::string& chip, std::vector<uint8_t> counter_availability)
    : chip_(chip), host_(CUPTI_PROFILER_TYPE_RANGE_PROFILER, chip, std::move(counter_availability)) {
  if (!host_.failure()) return;
  const CallFailure& f = *host_.failure();
  const auto r = static_cast<CUptiResult>(f.code);
  if (r == CUPTI_ERROR_INVALID_CHIP_NAME || r == CUPTI_ERROR_INVALID_PARAMETER || r == CUPTI_ERROR_NOT_SUPPORTED) {
    std::string known;
    try {
      known = join(supported_chips());
    } catch (const std::exception&) {
      known = "(could not list them)";
    }
    throw std::invalid_argument("chip '" + chip_ + "' is not supported by this CUPTI (" + f.text +
                                "); supported chips: " + known);
  }
  throw_counter_error(f, "chip " + chip_);
}

HostConfig::~HostConfig() = default;  // ProfilerHost deinitializes

std::vector<std::string> HostConfig::base_metrics(CUpti_MetricType type) const {
  CUpti_Profiler_Host_GetBaseMetrics_Params p{CUpti_Profiler_Host_GetBaseMetrics_Params_STRUCT_SIZE};
  p.pHostObject = host_.get();
  p.metricType = type;
  PYPROF_COUNTER_CALL(cuptiProfilerHostGetBaseMetrics(&p));
  std::vector<std::string> out;
  out.reserve(p.numMetrics);
  for (size_t i = 0; i < p.numMetrics; ++i) out.emplace_back(p.ppMetricNames[i]);
  return out;
}

std::vector<std::string> HostConfig::sub_metrics(const std::string& metric, CUpti_MetricType type) const {
  CUpti_Profiler_Host_GetSubMetrics_Params p{CUpti_Profiler_Host_GetSubMetrics_Params_STRUCT_SIZE};
  p.pHostObject = host_.get();
  p.metricType = type;
  p.pMetricName = metric.c_str();
  const CUptiResult r = cuptiProfilerHostGetSubMetrics(&p);
  if (r != CUPTI_SUCCESS)
    throw std::invalid_argument("metric '" + metric + "' (" + metric_type_name(type) + ") is unknown on chip " + chip_ +
                                ": " + cupti_error_text("cuptiProfilerHostGetSubMetrics", r, __FILE__, __LINE__));
  std::vector<std::string> out;
  for (size_t i = 0; i < p.numOfSubmetrics; ++i) out.emplace_back(p.ppSubMetrics[i]);
  return out;
}

MetricProperties HostConfig::properties(const std::string& metric) const {
  CUpti_Profiler_Host_GetMetricProperties_Params p{CUpti_Profiler_Host_GetMetricProperties_Params_STRUCT_SIZE};
  p.pHostObject = host_.get();
  p.pMetricName = metric.c_str();
  const CUptiResult r = cuptiProfilerHostGetMetricProperties(&p);
  if (r != CUPTI_SUCCESS)
    throw std::invalid_argument("metric '" + metric + "' is unknown on chip " + chip_ + ": " +
                                cupti_error_text("cuptiProfilerHostGetMetricProperties", r, __FILE__, __LINE__));
  MetricProperties m;
  m.name = metric;
  if (p.pDescription) m.description = p.pDescription;
  if (p.pHwUnit) m.hw_unit = p.pHwUnit;
  if (p.pDimUnit) m.dim_unit = p.pDimUnit;
  m.metric_type = metric_type_name(p.metricType);
  return m;
}

void HostConfig::add_metrics(const std::vector<std::string>& metrics) {
  if (metrics.empty()) throw std::invalid_argument("no metrics given for chip " + chip_);
  std::vector<const char*> names;
  names.reserve(metrics.size());
  for (const auto& m : metrics) names.push_back(m.c_str());
  CUpti_Profiler_Host_ConfigAddMetrics_Params p{CUpti_Profiler_Host_ConfigAddMetrics_Params_STRUCT_SIZE};
  p.pHostObject = host_.get();
  p.ppMetricNames = names.data();
  p.numMetrics = names.size();
  const CUptiResult r = cuptiProfilerHostConfigAddMetrics(&p);
  if (r == CUPTI_SUCCESS) {
    metrics_.insert(metrics_.end(), metrics.begin(), metrics.end());
    return;
  }
  // CUPTI's error does not say which metric it rejected: find the unknown ones through their properties.
  std::vector<std::string> unknown;
  for (const auto& m : metrics) {
    CUpti_Profiler_Host_GetMetricProperties_Params q{CUpti_Profiler_Host_GetMetricProperties_Params_STRUCT_SIZE};
    q.pHostObject = host_.get();
    q.pMetricName = m.c_str();
    if (cuptiProfilerHostGetMetricProperties(&q) != CUPTI_SUCCESS) unknown.push_back(m);
  }
  const std::string text = cupti_error_text("cuptiProfilerHostConfigAddMetrics", r, __FILE__, __LINE__);
  if (!unknown.empty())
    throw std::invalid_argument("unknown metric(s) on chip " + chip_ + ": " + join(unknown) +
                                " (a metric needs a rollup such as .sum/.avg/.max; list base names with "
                                "counters_base_metrics) — " + text);
  if (r == CUPTI_ERROR_INVALID_PARAMETER || r == CUPTI_ERROR_INVALID_METRIC_NAME)
    throw std::invalid_argument("CUPTI rejected the metric list for chip " + chip_ + " [" + join(metrics) + "]: " +
                                text + " (possibly unavailable on this device: see its counter availability)");
  throw_counter_error(*check_cupti(r, "cuptiProfilerHostConfigAddMetrics", __FILE__, __LINE__), "chip " + chip_);
}

std::vector<uint8_t> HostConfig::config_image() const {
  CUpti_Profiler_Host_GetConfigImageSize_Params s{CUpti_Profiler_Host_GetConfigImageSize_Params_STRUCT_SIZE};
  s.pHostObject = host_.get();
  PYPROF_COUNTER_CALL(cuptiProfilerHostGetConfigImageSize(&s));
  std::vector<uint8_t> image(s.configImageSize);
  CUpti_Profiler_Host_GetConfigImage_Params g{CUpti_Profiler_Host_GetConfigImage_Params_STRUCT_SIZE};
  g.pHostObject = host_.get();
  g.configImageSize = image.size();
  g.pConfigImage = image.data();
  PYPROF_COUNTER_CALL(cuptiProfilerHostGetConfigImage(&g));
  return image;
}

std::vector<double> HostConfig::evaluate(const std::vector<uint8_t>& counter_data, size_t range_index) const {
  std::vector<const char*> names;
  for (const auto& m : metrics_) names.push_back(m.c_str());
  std::vector<double> values(names.size(), 0.0);
  CUpti_Profiler_Host_EvaluateToGpuValues_Params p{CUpti_Profiler_Host_EvaluateToGpuValues_Params_STRUCT_SIZE};
  p.pHostObject = host_.get();
  p.pCounterDataImage = counter_data.data();
  p.counterDataImageSize = counter_data.size();
  p.rangeIndex = range_index;
  p.ppMetricNames = names.data();
  p.numMetrics = names.size();
  p.pMetricValues = values.data();
  PYPROF_COUNTER_CALL(cuptiProfilerHostEvaluateToGpuValues(&p));
  return values;
}

size_t config_num_passes(const std::vector<uint8_t>& config_image) {
  CUpti_Profiler_Host_GetNumOfPasses_Params p{CUpti_Profiler_Host_GetNumOfPasses_Params_STRUCT_SIZE};
  p.configImageSize = config_image.size();
  p.pConfigImage = const_cast<uint8_t*>(config_image.data());  // CUPTI reads it only
  PYPROF_COUNTER_CALL(cuptiProfilerHostGetNumOfPasses(&p));
  return p.numOfPasses;
}

CounterConfig make_counter_config(const std::string& chip, const std::vector<std::string>& metrics,
                                  const std::vector<uint8_t>& counter_availability) {
  HostConfig host(chip, counter_availability);
  host.add_metrics(metrics);
  CounterConfig c;
  c.config_image = host.config_image();
  c.num_passes = config_num_passes(c.config_image);
  c.metrics = host.metrics();
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Target side

namespace {

// Makes `device` current (creating its primary context) for the scope; restores the caller's device after.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    had_prev_ = cudaGetDevice(&prev_) == cudaSuccess;
    auto failure = PYPROF_CUDA_FAILURE(cudaSetDevice(device));
    if (!failure) failure = PYPROF_CUDA_FAILURE(cudaFree(nullptr));  // forces the primary context into existence
    if (failure) {
      (void)cudaGetLastError();  // do not leave the sticky error for the framework to trip over
      const auto err = static_cast<cudaError_t>(failure->code);
      const bool no_gpu = err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
                          err == cudaErrorInvalidDevice || err == cudaErrorStubLibrary;
      throw CounterError(no_gpu ? CounterStatus::kUnsupported : CounterStatus::kError,
                         "device " + std::to_string(device) + ": " + failure->text +
                             (no_gpu ? " [status=unsupported] (no usable GPU/driver)" : " [status=error]"));
    }
  }
  ~DeviceScope() {
    if (had_prev_) (void)cudaSetDevice(prev_);  // restoring: nothing better to do on failure
  }

 private:
  int prev_ = 0;
  bool had_prev_ = false;
};

// cuptiProfilerInitialize once per process. It is never undone: the PM sampler and any later Range Profiler in the
// process rely on it, and CUPTI does not document DeInitialize as reference-counted.
void ensure_profiler_initialized() {
  static std::mutex mu;
  static bool done = false;
  std::lock_guard<std::mutex> lock(mu);
  if (done) return;
  CUpti_Profiler_Initialize_Params p{CUpti_Profiler_Initialize_Params_STRUCT_SIZE};
  PYPROF_COUNTER_CALL(cuptiProfilerInitialize(&p));
  done = true;
}

const char* support_level_name(CUpti_Profiler_Support_Level l) {
  switch (l) {
    case CUPTI_PROFILER_CONFIGURATION_SUPPORTED: return "supported";
    case CUPTI_PROFILER_CONFIGURATION_DISABLED: return "disabled";
    case CUPTI_PROFILER_CONFIGURATION_UNSUPPORTED: return "unsupported";
    default: return "unknown";
  }
}

void check_device_supported(int device) {
  CUpti_Profiler_DeviceSupported_Params p{CUpti_Profiler_DeviceSupported_Params_STRUCT_SIZE};
  p.cuDevice = static_cast<CUdevice>(device);  // a CUdevice is the driver ordinal, which the runtime ordinal matches
  p.api = CUPTI_PROFILER_RANGE_PROFILING;
  PYPROF_COUNTER_CALL(cuptiProfilerDeviceSupported(&p));
  if (p.isSupported == CUPTI_PROFILER_CONFIGURATION_SUPPORTED) return;
  std::ostringstream os;
  os << "device " << device << " does not support range profiling (cuptiProfilerDeviceSupported: architecture="
     << support_level_name(p.architecture) << " sli=" << support_level_name(p.sli)
     << " vGpu=" << support_level_name(p.vGpu) << " confidentialCompute=" << support_level_name(p.confidentialCompute)
     << " cmp=" << support_level_name(p.cmp) << " wsl=" << support_level_name(p.wsl) << ") [status=unsupported]";
  throw CounterError(CounterStatus::kUnsupported, os.str());
}

std::string chip_name_current(int device) {
  CUpti_Device_GetChipName_Params p{CUpti_Device_GetChipName_Params_STRUCT_SIZE};
  p.deviceIndex = static_cast<size_t>(device);
  PYPROF_COUNTER_CALL(cuptiDeviceGetChipName(&p));
  return p.pChipName ? std::string(p.pChipName) : std::string();
}

std::vector<uint8_t> availability_current() {
  CUpti_Profiler_GetCounterAvailability_Params p{CUpti_Profiler_GetCounterAvailability_Params_STRUCT_SIZE};
  p.ctx = nullptr;  // current context: the primary context DeviceScope made current
  PYPROF_COUNTER_CALL(cuptiProfilerGetCounterAvailability(&p));
  std::vector<uint8_t> image(p.counterAvailabilityImageSize);
  p.pCounterAvailabilityImage = image.data();
  PYPROF_COUNTER_CALL(cuptiProfilerGetCounterAvailability(&p));
  image.resize(p.counterAvailabilityImageSize);
  return image;
}

}  // namespace

std::string device_chip_name(int device) {
  DeviceScope scope(device);
  return chip_name_current(device);
}

std::vector<uint8_t> counter_availability_image(int device) {
  DeviceScope scope(device);
  ensure_profiler_initialized();
  return availability_current();
}

RangeMode parse_range_mode(const std::string& mode) {
  if (mode == "kernel") return RangeMode::kPerKernel;
  if (mode == "step") return RangeMode::kPerStep;
  throw std::invalid_argument("mode must be 'kernel' or 'step', not '" + mode + "'");
}

// ---------------------------------------------------------------------------------------------------------------
// Pass bookkeeping (pure)

PassBookkeeper::PassBookkeeper(RangeMode mode, uint16_t min_nesting_level)
    : mode_(mode), min_level_(min_nesting_level) {
  next_.target_nesting_level = min_level_;
}

std::optional<PassConfig> PassBookkeeper::before_start() {
  // Step mode: every pass gets its own SetConfig with what the previous Stop reported. Kernel mode: once per image.
  if (mode_ == RangeMode::kPerStep || !configured_) {
    configured_ = true;
    return next_;
  }
  return std::nullopt;
}

void PassBookkeeper::after_stop(size_t next_pass_index, size_t next_target_nesting_level, bool all_passes_submitted) {
  ++passes_submitted_;
  last_pass_index_ = next_pass_index;
  all_submitted_ = all_passes_submitted;
  if (mode_ != RangeMode::kPerStep) return;
  if (!all_passes_submitted && passes_submitted_ > 1 && next_pass_index < next_.pass_index)
    throw std::logic_error("Range Profiler pass bookkeeping: Stop reported pass " + std::to_string(next_pass_index) +
                           " after pass " + std::to_string(next_.pass_index) + " in one collection");
  next_.pass_index = next_pass_index;
  next_.target_nesting_level =
      static_cast<uint16_t>(next_target_nesting_level > 0 ? next_target_nesting_level : min_level_);
}

void PassBookkeeper::after_decode() {
  next_ = PassConfig{};
  next_.target_nesting_level = min_level_;
  configured_ = false;
  all_submitted_ = false;
  passes_submitted_ = 0;
}

size_t next_max_ranges(size_t current, size_t decoded, size_t dropped, size_t cap) {
  if (dropped == 0) return current;
  size_t want = std::max(current, decoded + dropped);
  want = want > cap / 2 ? cap : want * 2;
  return std::min(std::max(want, current), cap);
}

// ---------------------------------------------------------------------------------------------------------------
// RangeProfiler

RangeProfiler::RangeProfiler(int device, const std::vector<std::string>& metrics, RangeMode mode, size_t max_ranges)
    : device_(device), mode_(mode), max_ranges_(max_ranges), passes_(mode) {
  if (max_ranges_ == 0) throw std::invalid_argument("max_ranges must be at least 1");
  if (max_ranges_ > kMaxRangesCap)
    throw std::invalid_argument("max_ranges must be at most " + std::to_string(kMaxRangesCap) + ", got " +
                                std::to_string(max_ranges_));
  DeviceScope scope(device_);
  ensure_profiler_initialized();
  chip_ = chip_name_current(device_);
  check_device_supported(device_);
  availability_ = availability_current();

  host_ = std::make_unique<HostConfig>(chip_, availability_);
  host_->add_metrics(metrics);
  config_image_ = host_->config_image();
  num_passes_ = config_num_passes(config_image_);

  std::string held_by;
  claim_ = CounterClaim::acquire(device_, CounterUser::kRangeProfiler, &held_by);
  if (!claim_) throw CounterError(CounterStatus::kCountersInUse, held_by);

  CUpti_RangeProfiler_Enable_Params en{CUpti_RangeProfiler_Enable_Params_STRUCT_SIZE};
  en.ctx = nullptr;  // current (primary) context of device_
  if (const auto f = PYPROF_CUPTI_FAILURE(cuptiRangeProfilerEnable(&en))) {
    claim_.reset();
    throw_counter_error(*f);
  }
  object_ = en.pRangeProfilerObject;
  try {
    init_image();
  } catch (...) {
    close();
    throw;
  }
}

void RangeProfiler::init_image() {
  std::vector<const char*> names;
  for (const auto& m : host_->metrics()) names.push_back(m.c_str());
  CUpti_RangeProfiler_GetCounterDataSize_Params sz{CUpti_RangeProfiler_GetCounterDataSize_Params_STRUCT_SIZE};
  sz.pRangeProfilerObject = object_;
  sz.pMetricNames = names.data();
  sz.numMetrics = names.size();
  sz.maxNumOfRanges = max_ranges_;
  sz.maxNumRangeTreeNodes = static_cast<uint32_t>(max_ranges_);  // one nesting level: one node per range
  PYPROF_COUNTER_CALL(cuptiRangeProfilerGetCounterDataSize(&sz));
  counter_data_.assign(sz.counterDataSize, 0);

  CUpti_RangeProfiler_CounterDataImage_Initialize_Params ci{
      CUpti_RangeProfiler_CounterDataImage_Initialize_Params_STRUCT_SIZE};
  ci.pRangeProfilerObject = object_;
  ci.counterDataSize = counter_data_.size();
  ci.pCounterData = counter_data_.data();
  PYPROF_COUNTER_CALL(cuptiRangeProfilerCounterDataImageInitialize(&ci));
  image_dirty_ = false;
  passes_.after_decode();  // a fresh image starts a new collection: SetConfig before the next Start
}

void RangeProfiler::set_config(const PassConfig& pc) {
  CUpti_RangeProfiler_SetConfig_Params sc{CUpti_RangeProfiler_SetConfig_Params_STRUCT_SIZE};
  sc.pRangeProfilerObject = object_;
  sc.configSize = config_image_.size();
  sc.pConfig = config_image_.data();
  sc.counterDataImageSize = counter_data_.size();
  sc.pCounterDataImage = counter_data_.data();
  if (mode_ == RangeMode::kPerKernel) {
    // One range per kernel; CUPTI saves/restores device memory and replays each kernel num_passes times.
    sc.range = CUPTI_AutoRange;
    sc.replayMode = CUPTI_KernelReplay;
  } else {
    // The caller's push/pop ranges; each Start..Stop is one pass and the caller's next (identical) step is the
    // next pass, so nothing is re-executed. passIndex/targetNestingLevel: what the previous Stop reported.
    sc.range = CUPTI_UserRange;
    sc.replayMode = CUPTI_ApplicationReplay;
  }
  sc.maxRangesPerPass = max_ranges_;
  sc.numNestingLevels = 1;
  sc.minNestingLevel = 1;
  sc.passIndex = pc.pass_index;
  sc.targetNestingLevel = pc.target_nesting_level;
  PYPROF_COUNTER_CALL(cuptiRangeProfilerSetConfig(&sc));
}

RangeProfiler::~RangeProfiler() {
  try {
    close();
  } catch (...) {
    // a destructor cannot report; close() already did what it could
  }
}

void RangeProfiler::require_open(const char* what) const {
  if (object_ == nullptr)
    throw std::runtime_error(std::string("RangeProfiler.") + what + ": the profiler is closed");
}

void RangeProfiler::reserve_ranges(size_t max_ranges) {
  require_open("reserve_ranges");
  if (started_) throw std::runtime_error("RangeProfiler.reserve_ranges: call stop() first");
  const size_t want = std::min(std::max<size_t>(max_ranges, 1), kMaxRangesCap);
  if (want <= max_ranges_ || image_dirty_) return;  // a half-collected image is decoded before it is resized
  max_ranges_ = want;
  DeviceScope scope(device_);
  init_image();
}

void RangeProfiler::start() {
  require_open("start");
  if (started_) throw std::runtime_error("RangeProfiler.start: already started (call stop() first)");
  if (passes_.all_passes_submitted() && mode_ == RangeMode::kPerStep)
    throw std::runtime_error("RangeProfiler.start: all " + std::to_string(num_passes_) +
                             " passes were submitted already; decode() the data");
  DeviceScope scope(device_);
  if (const auto pc = passes_.before_start()) set_config(*pc);
  CUpti_RangeProfiler_Start_Params p{CUpti_RangeProfiler_Start_Params_STRUCT_SIZE};
  p.pRangeProfilerObject = object_;
  PYPROF_COUNTER_CALL(cuptiRangeProfilerStart(&p));
  started_ = true;
}

void RangeProfiler::push_range(const std::string& name) {
  require_open("push_range");
  if (mode_ != RangeMode::kPerStep)
    throw std::runtime_error("RangeProfiler.push_range: only in mode 'step' (mode 'kernel' makes one range per kernel)");
  DeviceScope scope(device_);
  CUpti_RangeProfiler_PushRange_Params p{CUpti_RangeProfiler_PushRange_Params_STRUCT_SIZE};
  p.pRangeProfilerObject = object_;
  p.pRangeName = name.c_str();
  PYPROF_COUNTER_CALL(cuptiRangeProfilerPushRange(&p));
}

void RangeProfiler::pop_range() {
  require_open("pop_range");
  if (mode_ != RangeMode::kPerStep) throw std::runtime_error("RangeProfiler.pop_range: only in mode 'step'");
  DeviceScope scope(device_);
  CUpti_RangeProfiler_PopRange_Params p{CUpti_RangeProfiler_PopRange_Params_STRUCT_SIZE};
  p.pRangeProfilerObject = object_;
  PYPROF_COUNTER_CALL(cuptiRangeProfilerPopRange(&p));
}

bool RangeProfiler::stop() {
  require_open("stop");
  if (!started_) throw std::runtime_error("RangeProfiler.stop: not started");
  DeviceScope scope(device_);
  CUpti_RangeProfiler_Stop_Params p{CUpti_RangeProfiler_Stop_Params_STRUCT_SIZE};
  p.pRangeProfilerObject = object_;
  started_ = false;
  PYPROF_COUNTER_CALL(cuptiRangeProfilerStop(&p));
  image_dirty_ = true;
  passes_.after_stop(p.passIndex, p.targetNestingLevel, p.isAllPassSubmitted != 0);
  const bool all = passes_.all_passes_submitted();
  if (mode_ == RangeMode::kPerKernel) {
    // Kernel replay completes every pass of a kernel before the next one runs: after Stop the image is whole.
    decode_image(&decoded_);
  }
  return all;
}

void RangeProfiler::decode_image(std::vector<RangeValues>* out) {
  CUpti_RangeProfiler_DecodeData_Params d{CUpti_RangeProfiler_DecodeData_Params_STRUCT_SIZE};
  d.pRangeProfilerObject = object_;
  PYPROF_COUNTER_CALL(cuptiRangeProfilerDecodeData(&d));
  dropped_ranges_ += d.numOfRangeDropped;

  CUpti_RangeProfiler_GetCounterDataInfo_Params info{CUpti_RangeProfiler_GetCounterDataInfo_Params_STRUCT_SIZE};
  info.pCounterDataImage = counter_data_.data();
  info.counterDataImageSize = counter_data_.size();
  PYPROF_COUNTER_CALL(cuptiRangeProfilerGetCounterDataInfo(&info));
  for (size_t r = 0; r < info.numTotalRanges; ++r) {
    CUpti_RangeProfiler_CounterData_GetRangeInfo_Params ri{
        CUpti_RangeProfiler_CounterData_GetRangeInfo_Params_STRUCT_SIZE};
    ri.pCounterDataImage = counter_data_.data();
    ri.counterDataImageSize = counter_data_.size();
    ri.rangeIndex = r;
    ri.rangeDelimiter = "/";
    PYPROF_COUNTER_CALL(cuptiRangeProfilerCounterDataGetRangeInfo(&ri));
    RangeValues rv;
    rv.name = ri.rangeName ? ri.rangeName : std::to_string(r);
    rv.values = host_->evaluate(counter_data_, r);
    out->push_back(std::move(rv));
  }
  // The next image holds what this one could not (sized from the kernels actually launched), then starts empty.
  max_ranges_ = next_max_ranges(max_ranges_, info.numTotalRanges, d.numOfRangeDropped, kMaxRangesCap);
  init_image();
}

DecodedRanges RangeProfiler::decode(size_t first_range) {
  require_open("decode");
  if (started_) throw std::runtime_error("RangeProfiler.decode: call stop() first");
  DeviceScope scope(device_);
  if (mode_ == RangeMode::kPerStep && image_dirty_) {
    decoded_base_ += decoded_.size();
    decoded_.clear();
    decode_image(&decoded_);
  }
  DecodedRanges out;
  out.dropped_ranges = dropped_ranges_;
  out.total_ranges = decoded_base_ + decoded_.size();
  for (size_t i = 0; i < decoded_.size(); ++i) {
    if (decoded_base_ + i >= first_range) out.ranges.push_back(decoded_[i]);
  }
  // Handed over: memory stays bounded by one decode's ranges.
  decoded_base_ += decoded_.size();
  decoded_.clear();
  return out;
}

void RangeProfiler::close() {
  if (object_ == nullptr) return;
  DeviceScope scope(device_);
  if (started_) {
    CUpti_RangeProfiler_Stop_Params s{CUpti_RangeProfiler_Stop_Params_STRUCT_SIZE};
    s.pRangeProfilerObject = object_;
    (void)cuptiRangeProfilerStop(&s);  // best effort: closing must release the counters even after an error
    started_ = false;
  }
  CUpti_RangeProfiler_Disable_Params p{CUpti_RangeProfiler_Disable_Params_STRUCT_SIZE};
  p.pRangeProfilerObject = object_;
  object_ = nullptr;
  claim_.reset();
  PYPROF_COUNTER_CALL(cuptiRangeProfilerDisable(&p));
}

}  // namespace pyprof::cuda
