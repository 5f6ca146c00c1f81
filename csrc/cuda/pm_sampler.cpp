#include "pm_sampler.h"

#include <cupti_pmsampling.h>
#include <cupti_profiler_target.h>
#include <cupti_target.h>
#include <time.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "check.h"
#include "counter_claims.h"
#include "profiler_host.h"

namespace pyprof::cuda {

namespace {

// How much of the hardware buffer CUPTI fills between two decodes, and how many samples one decode can hold.
// At a 2 ms interval, a 50 ms decode period leaves ~25 records per decode: both limits are far above that, so only a
// decode thread starved for seconds overflows (and that is counted, not hidden).
constexpr std::size_t kHardwareBufferBytes = 32u << 20;
constexpr uint32_t kSamplesPerDecode = 512;
constexpr auto kDecodePeriod = std::chrono::milliseconds(50);
// SYSCLK triggering counts the interval in sys-clock cycles, and the sys clock is not reported anywhere CUPTI
// exposes. 1 GHz is an assumption that only sets the spacing of samples on GA100/Turing; every sample still carries
// its own start/end timestamps, which is what the time axis and all rates use.
constexpr double kAssumedSysclkHz = 1e9;

// A failure with the status Python reports for it.
struct PmError : std::runtime_error {
  std::string status;
  PmError(std::string st, const std::string& text) : std::runtime_error(text), status(std::move(st)) {}
};

std::string status_for(CUptiResult r) {
  switch (r) {
    case CUPTI_ERROR_INSUFFICIENT_PRIVILEGES:
    case CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES:
      return "permission_denied";
    case CUPTI_ERROR_NOT_SUPPORTED:
    case CUPTI_ERROR_NOT_COMPATIBLE:
    case CUPTI_ERROR_CMP_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_WSL_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_LEGACY_PROFILER_NOT_SUPPORTED:
      return "not_supported";
    default:
      return "error";
  }
}

[[noreturn]] void throw_pm_error(const CallFailure& f) {
  throw PmError(status_for(static_cast<CUptiResult>(f.code)), f.text);
}

}  // namespace
}  // namespace pyprof::cuda

// Target-side checked call (check.h): the text is the vocabulary's, the status says what kind of failure it was.
#define PYPROF_PM_CALL(call) PYPROF_CUPTI_CALL_AS(call, ::pyprof::cuda::throw_pm_error)

namespace pyprof::cuda {

namespace {

// The shared RAII holder (profiler_host.h) of a PM-sampling host object; a failed Initialize becomes a PmError.
ProfilerHost pm_host(const std::string& chip, const std::vector<uint8_t>& availability) {
  ProfilerHost host(CUPTI_PROFILER_TYPE_PM_SAMPLING, chip, availability);
  if (const auto& f = host.failure())
    throw PmError(status_for(static_cast<CUptiResult>(f->code)), "PM sampling host setup for chip '" + chip + "': " + f->text);
  return host;
}

CUptiResult add_metrics(CUpti_Profiler_Host_Object* host, const std::vector<const char*>& names) {
  CUpti_Profiler_Host_ConfigAddMetrics_Params p{CUpti_Profiler_Host_ConfigAddMetrics_Params_STRUCT_SIZE};
  p.pHostObject = host;
  p.ppMetricNames = const_cast<const char**>(names.data());
  p.numMetrics = names.size();
  return cuptiProfilerHostConfigAddMetrics(&p);
}

// Config image of the metrics already added to `host`, and its pass count.
std::size_t config_image(CUpti_Profiler_Host_Object* host, std::vector<uint8_t>& image) {
  CUpti_Profiler_Host_GetConfigImageSize_Params sp{CUpti_Profiler_Host_GetConfigImageSize_Params_STRUCT_SIZE};
  sp.pHostObject = host;
  PYPROF_PM_CALL(cuptiProfilerHostGetConfigImageSize(&sp));
  image.assign(sp.configImageSize, 0);
  CUpti_Profiler_Host_GetConfigImage_Params gp{CUpti_Profiler_Host_GetConfigImage_Params_STRUCT_SIZE};
  gp.pHostObject = host;
  gp.configImageSize = image.size();
  gp.pConfigImage = image.data();
  PYPROF_PM_CALL(cuptiProfilerHostGetConfigImage(&gp));
  CUpti_Profiler_Host_GetNumOfPasses_Params np{CUpti_Profiler_Host_GetNumOfPasses_Params_STRUCT_SIZE};
  np.configImageSize = image.size();
  np.pConfigImage = image.data();
  PYPROF_PM_CALL(cuptiProfilerHostGetNumOfPasses(&np));
  return np.numOfPasses;
}

std::vector<const char*> c_names(const std::vector<std::string>& metrics) {
  std::vector<const char*> v;
  v.reserve(metrics.size());
  for (const auto& m : metrics) v.push_back(m.c_str());
  return v;
}

std::string chip_of_device(int device) {
  CUpti_Device_GetChipName_Params p{CUpti_Device_GetChipName_Params_STRUCT_SIZE};
  p.deviceIndex = static_cast<std::size_t>(device);
  PYPROF_PM_CALL(cuptiDeviceGetChipName(&p));
  return p.pChipName ? std::string(p.pChipName) : std::string();
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// host side

PmConfig pm_config(const std::string& chip, const std::vector<std::string>& metrics,
                   const std::vector<uint8_t>& availability, bool require_one_pass) {
  if (metrics.empty()) throw std::runtime_error("pm_config: empty metric list");
  PmConfig out;
  out.metrics = metrics;
  {
    ProfilerHost host = pm_host(chip, availability);
    const CUptiResult r = add_metrics(host.get(), c_names(metrics));
    if (r == CUPTI_SUCCESS) out.num_passes = config_image(host.get(), out.config_image);
    else {
      // The batch call does not say which name it rejected: try each alone on a fresh host object.
      for (const auto& m : metrics) {
        ProfilerHost one = pm_host(chip, availability);
        const CUptiResult r1 = add_metrics(one.get(), {m.c_str()});
        if (r1 != CUPTI_SUCCESS)
          throw std::runtime_error("PM sampling on " + chip + " cannot collect metric '" + m + "' (unknown name, " +
                                   "not offered to PM sampling, or not available on this device): " +
                                   cupti_error_text("cuptiProfilerHostConfigAddMetrics", r1, __FILE__, __LINE__));
      }
      throw std::runtime_error("PM sampling on " + chip + " rejected the metric set as a whole: " +
                               cupti_error_text("cuptiProfilerHostConfigAddMetrics", r, __FILE__, __LINE__));
    }
  }
  if (require_one_pass && out.num_passes != 1) {
    // PM sampling has no replay: find the first metric (in list order) after which the prefix needs > 1 pass.
    for (std::size_t k = 1; k <= metrics.size(); ++k) {
      ProfilerHost host = pm_host(chip, availability);
      std::vector<std::string> prefix(metrics.begin(), metrics.begin() + static_cast<std::ptrdiff_t>(k));
      if (add_metrics(host.get(), c_names(prefix)) != CUPTI_SUCCESS) continue;
      std::vector<uint8_t> img;
      const std::size_t passes = config_image(host.get(), img);
      if (passes > 1) {
        std::ostringstream os;
        os << "PM sampling collects in one pass, but on " << chip << " the metric set needs " << out.num_passes
           << " passes; adding metric '" << metrics[k - 1] << "' (number " << k << " of " << metrics.size()
           << ") makes it " << passes << ": drop it or split the set";
        throw std::runtime_error(os.str());
      }
    }
    std::ostringstream os;
    os << "PM sampling on " << chip << ": the metric set needs " << out.num_passes << " passes (one is required)";
    throw std::runtime_error(os.str());
  }
  return out;
}

std::string pm_chip_name(int device) {
  int count = 0;
  PYPROF_CUDA_CALL(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    throw std::runtime_error("device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
                             " visible)");
  return chip_of_device(device);
}

std::vector<std::string> pm_base_metrics(const std::string& chip) {
  ProfilerHost host = pm_host(chip, {});
  std::vector<std::string> out;
  for (int t = 0; t < static_cast<int>(CUPTI_METRIC_TYPE__COUNT); ++t) {
    CUpti_Profiler_Host_GetBaseMetrics_Params p{CUpti_Profiler_Host_GetBaseMetrics_Params_STRUCT_SIZE};
    p.pHostObject = host.get();
    p.metricType = static_cast<CUpti_MetricType>(t);
    PYPROF_CUPTI_CALL(cuptiProfilerHostGetBaseMetrics(&p));
    for (std::size_t i = 0; i < p.numMetrics; ++i) out.emplace_back(p.ppMetricNames[i]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// ring

PmSampleRing::PmSampleRing(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

void PmSampleRing::push(PmSample s) {
  std::lock_guard<std::mutex> g(mu_);
  if (q_.size() >= capacity_) {
    q_.pop_front();
    ++dropped_;
  }
  q_.push_back(std::move(s));
}

std::vector<PmSample> PmSampleRing::drain() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<PmSample> out(std::make_move_iterator(q_.begin()), std::make_move_iterator(q_.end()));
  q_.clear();
  return out;
}

std::size_t PmSampleRing::size() const {
  std::lock_guard<std::mutex> g(mu_);
  return q_.size();
}

uint64_t PmSampleRing::dropped() const {
  std::lock_guard<std::mutex> g(mu_);
  return dropped_;
}

// ---------------------------------------------------------------------------------------------------------------
// target side

PmSampler::PmSampler(int device, std::vector<std::string> metrics, uint64_t interval_ns, std::size_t max_samples)
    : device_(device), metrics_(std::move(metrics)), interval_ns_(interval_ns), ring_(max_samples) {
  if (metrics_.empty()) throw std::invalid_argument("PmSampler: empty metric list");
  if (interval_ns_ == 0) throw std::invalid_argument("PmSampler: interval_ns must be > 0");
  metric_ptrs_ = c_names(metrics_);
  scratch_.assign(metrics_.size(), 0.0);
  stats_.interval_ns = interval_ns_;
}

PmSampler::~PmSampler() { stop(); }

void PmSampler::fail(const std::string& status, const std::string& text) {
  std::lock_guard<std::mutex> g(stats_mu_);
  stats_.status = status;
  stats_.error = text;
}

PmStats PmSampler::stats() const {
  PmStats s;
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    s = stats_;
  }
  s.dropped += ring_.dropped();
  return s;
}

std::string PmSampler::start() {
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    if (stats_.status == "running") return stats_.status;
  }
  try {
    std::lock_guard<std::mutex> g(cupti_mu_);
    const std::string trigger = setup();
    std::lock_guard<std::mutex> s(stats_mu_);
    stats_.status = "running";
    stats_.trigger_mode = trigger;
    stats_.error.clear();
  } catch (const PmError& e) {
    std::lock_guard<std::mutex> g(cupti_mu_);
    teardown();
    fail(e.status, e.what());
    return e.status;
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> g(cupti_mu_);
    teardown();
    fail("error", e.what());
    return "error";
  }
  stop_requested_ = false;
  try {
    thread_ = std::thread([this] { decode_loop(); });
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> g(cupti_mu_);
    teardown();
    fail("error", std::string("could not start the PM decode thread: ") + e.what());
    return "error";
  }
  return "running";
}

std::string PmSampler::setup() {
  int count = 0;
  if (const auto f = PYPROF_CUDA_FAILURE(cudaGetDeviceCount(&count))) throw PmError("no_device", f->text);
  if (device_ < 0 || device_ >= count)
    throw PmError("no_device", "PM sampling: device " + std::to_string(device_) + " does not exist (" +
                                   std::to_string(count) + " visible)");
  // CUPTI's device-index calls need an initialized driver; creating the primary context of the device is what any
  // training process does anyway. The caller's current device is restored.
  int prev = -1;
  cudaGetDevice(&prev);
  PYPROF_CUDA_CALL(cudaSetDevice(device_));
  PYPROF_CUDA_CALL(cudaFree(nullptr));
  if (prev >= 0 && prev != device_) cudaSetDevice(prev);

  // Shared with the Range Profiler; it is never de-initialized here so as not to pull it from under that user.
  CUpti_Profiler_Initialize_Params ip{CUpti_Profiler_Initialize_Params_STRUCT_SIZE};
  PYPROF_PM_CALL(cuptiProfilerInitialize(&ip));

  const std::string chip = chip_of_device(device_);
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    stats_.chip = chip;
  }

  CUpti_PmSampling_GetCounterAvailability_Params ap{CUpti_PmSampling_GetCounterAvailability_Params_STRUCT_SIZE};
  ap.deviceIndex = static_cast<std::size_t>(device_);
  PYPROF_PM_CALL(cuptiPmSamplingGetCounterAvailability(&ap));
  std::vector<uint8_t> availability(ap.counterAvailabilityImageSize);
  ap.pCounterAvailabilityImage = availability.data();
  PYPROF_PM_CALL(cuptiPmSamplingGetCounterAvailability(&ap));

  // Validates the set (naming a bad or pass-breaking metric), then a host object of our own to evaluate samples.
  config_image_ = pm_config(chip, metrics_, availability, /*require_one_pass=*/true).config_image;
  host_ = std::make_unique<ProfilerHost>(pm_host(chip, availability));
  PYPROF_PM_CALL(add_metrics(host_->get(), metric_ptrs_));

  // PM sampling and the Range Profiler program the same counter hardware; CUPTI does not document running both on
  // one device (cupti_pmsampling.h and cupti_range_profiler.h say nothing of it), so the second one is refused.
  std::string held_by;
  claim_ = CounterClaim::acquire(device_, CounterUser::kPmSampling, &held_by);
  if (!claim_) throw PmError("counters_in_use", held_by);

  CUpti_PmSampling_Enable_Params ep{CUpti_PmSampling_Enable_Params_STRUCT_SIZE};
  ep.deviceIndex = static_cast<std::size_t>(device_);
  PYPROF_PM_CALL(cuptiPmSamplingEnable(&ep));
  object_ = ep.pPmSamplingObject;

  // GA100 and Turing have no GPU_TIME_INTERVAL trigger (cupti_pmsampling.h); anything else that refuses it falls
  // back to SYSCLK as well.
  const bool sysclk_only = chip == "GA100" || chip.rfind("TU", 0) == 0;
  CUpti_PmSampling_SetConfig_Params sp{CUpti_PmSampling_SetConfig_Params_STRUCT_SIZE};
  sp.pPmSamplingObject = object_;
  sp.configSize = config_image_.size();
  sp.pConfig = config_image_.data();
  sp.hardwareBufferSize = kHardwareBufferBytes;
  // After an overflow the newest samples are the ones worth keeping (they describe the steps still to be reported):
  // KEEP_LATEST overwrites the oldest records and sampling goes on (cupti_pmsampling.h, SetConfig hwBufferAppendMode).
  // Turing has no KEEP_LATEST (same header): there KEEP_OLDEST, whose overflow decode reports and counts.
  const bool turing = chip.rfind("TU", 0) == 0;
  sp.hwBufferAppendMode = turing ? CUPTI_PM_SAMPLING_HARDWARE_BUFFER_APPEND_MODE_KEEP_OLDEST
                                 : CUPTI_PM_SAMPLING_HARDWARE_BUFFER_APPEND_MODE_KEEP_LATEST;
  std::string trigger;
  CUptiResult r = CUPTI_ERROR_NOT_SUPPORTED;
  if (!sysclk_only) {
    sp.triggerMode = CUPTI_PM_SAMPLING_TRIGGER_MODE_GPU_TIME_INTERVAL;
    sp.samplingInterval = interval_ns_;
    r = cuptiPmSamplingSetConfig(&sp);
    trigger = "gpu_time_interval";
  }
  if (r == CUPTI_ERROR_NOT_SUPPORTED) {
    sp.triggerMode = CUPTI_PM_SAMPLING_TRIGGER_MODE_GPU_SYSCLK_INTERVAL;
    sp.samplingInterval = static_cast<uint64_t>(static_cast<double>(interval_ns_) * kAssumedSysclkHz * 1e-9);
    if (sp.samplingInterval == 0) sp.samplingInterval = 1;
    r = cuptiPmSamplingSetConfig(&sp);
    trigger = "sysclk_interval";
  }
  if (const auto f = check_cupti(r, "cuptiPmSamplingSetConfig(&sp)", __FILE__, __LINE__)) throw_pm_error(*f);

  CUpti_PmSampling_GetCounterDataSize_Params dp{CUpti_PmSampling_GetCounterDataSize_Params_STRUCT_SIZE};
  dp.pPmSamplingObject = object_;
  dp.pMetricNames = metric_ptrs_.data();
  dp.numMetrics = metric_ptrs_.size();
  dp.maxSamples = kSamplesPerDecode;
  PYPROF_PM_CALL(cuptiPmSamplingGetCounterDataSize(&dp));
  counter_data_.assign(dp.counterDataSize, 0);
  CUpti_PmSampling_CounterDataImage_Initialize_Params cp{CUpti_PmSampling_CounterDataImage_Initialize_Params_STRUCT_SIZE};
  cp.pPmSamplingObject = object_;
  cp.counterDataSize = counter_data_.size();
  cp.pCounterData = counter_data_.data();
  PYPROF_PM_CALL(cuptiPmSamplingCounterDataImageInitialize(&cp));

  uint64_t cupti_ts = 0;
  cuptiGetTimestamp(&cupti_ts);
  const uint64_t mono = monotonic_ns();
  {
    std::lock_guard<std::mutex> g(stats_mu_);
    stats_.cupti_ts_at_start_ns = cupti_ts;
    stats_.monotonic_ns_at_start = mono;
  }

  CUpti_PmSampling_Start_Params st{CUpti_PmSampling_Start_Params_STRUCT_SIZE};
  st.pPmSamplingObject = object_;
  PYPROF_PM_CALL(cuptiPmSamplingStart(&st));
  started_ = true;
  return trigger;
}

void PmSampler::decode_loop() {
  // Never throws: a C++ exception escaping a std::thread would terminate the training process.
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(wake_mu_);
      wake_.wait_for(lk, kDecodePeriod, [this] { return stop_requested_.load(); });
    }
    const bool last = stop_requested_.load();
    try {
      std::lock_guard<std::mutex> g(cupti_mu_);
      if (object_ != nullptr) decode_available();
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> g(stats_mu_);
      ++stats_.decode_errors;
      stats_.error = e.what();
    } catch (...) {
      std::lock_guard<std::mutex> g(stats_mu_);
      ++stats_.decode_errors;
      stats_.error = "unknown exception in the PM decode thread";
    }
    if (last) return;
  }
}

void PmSampler::decode_available() {
  // Each decode moves at most kSamplesPerDecode records; repeat while CUPTI says the counter data image was full.
  for (int round = 0; round < 64; ++round) {
    CUpti_PmSampling_DecodeData_Params dp{CUpti_PmSampling_DecodeData_Params_STRUCT_SIZE};
    dp.pPmSamplingObject = object_;
    dp.pCounterDataImage = counter_data_.data();
    dp.counterDataImageSize = counter_data_.size();
    const CUptiResult r = cuptiPmSamplingDecodeData(&dp);
    const bool overflow = dp.overflow != 0 || r == CUPTI_ERROR_OUT_OF_MEMORY;
    if (overflow) {
      std::lock_guard<std::mutex> g(stats_mu_);
      ++stats_.overflows;
      // KEEP_LATEST (Ampere on): the oldest records were overwritten and sampling goes on; KEEP_OLDEST (Turing): the
      // newest were lost. Either way the loss is counted and decoding continues.
      stats_.error = "PM sampling hardware buffer overflowed: samples were lost (a longer interval or a busier decode "
                     "thread avoids it); sampling continues";
    }
    if (r != CUPTI_SUCCESS && r != CUPTI_ERROR_OUT_OF_MEMORY) {
      std::lock_guard<std::mutex> g(stats_mu_);
      ++stats_.decode_errors;
      stats_.error = cupti_error_text("cuptiPmSamplingDecodeData(&dp)", r, __FILE__, __LINE__);
      return;
    }

    CUpti_PmSampling_GetCounterDataInfo_Params ip{CUpti_PmSampling_GetCounterDataInfo_Params_STRUCT_SIZE};
    ip.pCounterDataImage = counter_data_.data();
    ip.counterDataImageSize = counter_data_.size();
    PYPROF_PM_CALL(cuptiPmSamplingGetCounterDataInfo(&ip));

    uint64_t ok = 0, failed = 0;
    std::string eval_error;
    for (std::size_t i = 0; i < ip.numCompletedSamples; ++i) {
      CUpti_PmSampling_CounterData_GetSampleInfo_Params sp{CUpti_PmSampling_CounterData_GetSampleInfo_Params_STRUCT_SIZE};
      sp.pPmSamplingObject = object_;
      sp.pCounterDataImage = counter_data_.data();
      sp.counterDataImageSize = counter_data_.size();
      sp.sampleIndex = i;
      CUptiResult ri = cuptiPmSamplingCounterDataGetSampleInfo(&sp);
      if (ri == CUPTI_SUCCESS) {
        CUpti_Profiler_Host_EvaluateToGpuValues_Params ev{CUpti_Profiler_Host_EvaluateToGpuValues_Params_STRUCT_SIZE};
        ev.pHostObject = host_->get();
        ev.pCounterDataImage = counter_data_.data();
        ev.counterDataImageSize = counter_data_.size();
        ev.rangeIndex = i;
        ev.ppMetricNames = metric_ptrs_.data();
        ev.numMetrics = metric_ptrs_.size();
        ev.pMetricValues = scratch_.data();
        ri = cuptiProfilerHostEvaluateToGpuValues(&ev);
        if (ri != CUPTI_SUCCESS)
          eval_error = cupti_error_text("cuptiProfilerHostEvaluateToGpuValues(&ev)", ri, __FILE__, __LINE__);
      } else {
        eval_error = cupti_error_text("cuptiPmSamplingCounterDataGetSampleInfo(&sp)", ri, __FILE__, __LINE__);
      }
      if (ri != CUPTI_SUCCESS) {
        ++failed;
        continue;
      }
      ring_.push(PmSample{sp.startTimestamp, sp.endTimestamp, scratch_});
      ++ok;
    }
    {
      std::lock_guard<std::mutex> g(stats_mu_);
      stats_.decoded += ok;
      stats_.dropped += failed;
      if (!eval_error.empty()) stats_.error = eval_error;
    }

    // The image is reused: re-initializing empties it for the next decode.
    CUpti_PmSampling_CounterDataImage_Initialize_Params cp{CUpti_PmSampling_CounterDataImage_Initialize_Params_STRUCT_SIZE};
    cp.pPmSamplingObject = object_;
    cp.counterDataSize = counter_data_.size();
    cp.pCounterData = counter_data_.data();
    PYPROF_PM_CALL(cuptiPmSamplingCounterDataImageInitialize(&cp));

    if (r != CUPTI_SUCCESS || dp.decodeStopReason != CUPTI_PM_SAMPLING_DECODE_STOP_REASON_COUNTER_DATA_FULL) return;
  }
}

void PmSampler::teardown() {
  if (object_ != nullptr) {
    if (started_) {
      CUpti_PmSampling_Stop_Params p{CUpti_PmSampling_Stop_Params_STRUCT_SIZE};
      p.pPmSamplingObject = object_;
      cuptiPmSamplingStop(&p);
      started_ = false;
    }
    CUpti_PmSampling_Disable_Params p{CUpti_PmSampling_Disable_Params_STRUCT_SIZE};
    p.pPmSamplingObject = object_;
    cuptiPmSamplingDisable(&p);
    object_ = nullptr;
  }
  host_.reset();
  claim_.reset();
}

void PmSampler::stop() {
  try {
    if (!thread_.joinable()) return;
    {
      // Stop the hardware first so that the thread's last decode sees every record there will be.
      std::lock_guard<std::mutex> g(cupti_mu_);
      if (started_ && object_ != nullptr) {
        CUpti_PmSampling_Stop_Params p{CUpti_PmSampling_Stop_Params_STRUCT_SIZE};
        p.pPmSamplingObject = object_;
        const CUptiResult r = cuptiPmSamplingStop(&p);
        started_ = false;
        if (r != CUPTI_SUCCESS) fail("error", cupti_error_text("cuptiPmSamplingStop(&p)", r, __FILE__, __LINE__));
      }
    }
    {
      std::lock_guard<std::mutex> lk(wake_mu_);
      stop_requested_ = true;
    }
    wake_.notify_all();
    thread_.join();
    std::lock_guard<std::mutex> g(cupti_mu_);
    teardown();
    std::lock_guard<std::mutex> s(stats_mu_);
    if (stats_.status == "running") stats_.status = "stopped";
  } catch (...) {
    // stop() runs from destructors: nothing may escape it.
  }
}

}  // namespace pyprof::cuda
