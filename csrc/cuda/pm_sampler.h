// CUPTI PM sampling: device-wide hardware counters read every ~1-10 ms in one pass, with no kernel replay.
//
// Two halves, kept apart so that the first is testable without a GPU:
//  - host side (pm_config, pm_base_metrics): the CUPTI profiler host API, which needs only a chip name;
//  - target side (PmSampler): enable -> set config -> counter data image -> start, a decode thread that moves
//    samples from the hardware buffer into a bounded ring (PmSampleRing), stop -> disable.
// On GH100 the FLOP counters (sm__ops_path_tensor_*) are not available to PM sampling: what this samples are
// pipe-activity counters, from which Python computes busy ratios, not FLOP counts.
#pragma once
#include <cupti_profiler_host.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "counter_claims.h"
#include "profiler_host.h"

struct CUpti_PmSampling_Object;

namespace pyprof::cuda {

// ---- host side (no GPU needed) ----

struct PmConfig {
  std::size_t num_passes = 0;
  std::vector<uint8_t> config_image;
  std::vector<std::string> metrics;
};

// Config image and pass count for `metrics` on `chip` (e.g. "GH100") with CUPTI_PROFILER_TYPE_PM_SAMPLING.
// `availability` is the device's counter availability image (empty: assume every counter of the chip).
// Throws std::runtime_error naming the metric CUPTI rejects; with require_one_pass, also when the set needs more
// than one pass, naming the first metric (in list order) that pushes it past one.
PmConfig pm_config(const std::string& chip, const std::vector<std::string>& metrics,
                   const std::vector<uint8_t>& availability = {}, bool require_one_pass = true);

// Every base metric (counter, ratio, throughput) PM sampling offers on `chip`, without rollup suffixes.
std::vector<std::string> pm_base_metrics(const std::string& chip);

// CUPTI chip name of CUDA device `device` (e.g. "GH100"). Throws std::runtime_error without a driver or device.
std::string pm_chip_name(int device);

// ---- samples and their bounded store ----

struct PmSample {
  uint64_t start_ns = 0;  // CUPTI timestamps of the sample's start and end
  uint64_t end_ns = 0;
  std::vector<double> values;  // one per metric, in the sampler's metric order
};

// Fixed-capacity FIFO of samples: when full, the oldest sample is overwritten and counted as dropped (the decode
// thread must never block on a slow reader). Thread-safe; the seam that CPU tests drive.
class PmSampleRing {
 public:
  explicit PmSampleRing(std::size_t capacity);
  void push(PmSample s);
  std::vector<PmSample> drain();
  std::size_t size() const;
  uint64_t dropped() const;
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::deque<PmSample> q_;
  uint64_t dropped_ = 0;
};

// ---- target side (needs a GPU with counter access) ----

struct PmStats {
  uint64_t decoded = 0;        // samples evaluated and pushed to the ring
  uint64_t dropped = 0;        // ring overwrites + samples whose evaluation failed
  uint64_t overflows = 0;      // hardware-buffer overflows reported by cuptiPmSamplingDecodeData
  uint64_t decode_errors = 0;  // failed decode calls (other than overflow)
  std::string status = "idle";  // idle | running | stopped | permission_denied | no_device | not_supported | error
  std::string error;            // the last error's text (call, file:line, CUPTI's message)
  std::string chip;
  std::string trigger_mode;  // gpu_time_interval | sysclk_interval
  uint64_t interval_ns = 0;
  // One pair read back to back at start, to put CUPTI timestamps on CLOCK_MONOTONIC (Python's time.monotonic_ns).
  uint64_t cupti_ts_at_start_ns = 0;
  uint64_t monotonic_ns_at_start = 0;
};

class PmSampler {
 public:
  PmSampler(int device, std::vector<std::string> metrics, uint64_t interval_ns = 2'000'000,
            std::size_t max_samples = 100'000);
  ~PmSampler();
  PmSampler(const PmSampler&) = delete;
  PmSampler& operator=(const PmSampler&) = delete;

  // Never throws: returns the status ("running" on success; "permission_denied", "no_device", "not_supported",
  // "counters_in_use" (a Range Profiler holds this device's counters) or "error" otherwise, with the text in stats().error). Whatever was set up before a failure is torn down.
  std::string start();
  // Stops sampling, decodes what is left, joins the decode thread and disables PM sampling. Never throws.
  void stop();
  std::vector<PmSample> samples() { return ring_.drain(); }
  PmStats stats() const;
  const std::vector<std::string>& metrics() const { return metrics_; }

 private:
  std::string setup();  // throws; start() maps the failure to a status
  void decode_loop();
  void decode_available();  // called with cupti_mu_ held
  void teardown();          // called with cupti_mu_ held
  void fail(const std::string& status, const std::string& text);

  int device_;
  std::vector<std::string> metrics_;
  std::vector<const char*> metric_ptrs_;
  uint64_t interval_ns_;
  PmSampleRing ring_;

  std::unique_ptr<ProfilerHost> host_;      // evaluates the samples (profiler_host.h)
  std::optional<CounterClaim> claim_;       // this device's counters, held while enabled (counter_claims.h)
  CUpti_PmSampling_Object* object_ = nullptr;
  std::vector<uint8_t> config_image_;
  std::vector<uint8_t> counter_data_;
  std::vector<double> scratch_;
  bool started_ = false;

  std::mutex cupti_mu_;  // serializes every CUPTI call on object_ between the caller and the decode thread
  std::thread thread_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_requested_{false};

  mutable std::mutex stats_mu_;
  PmStats stats_;
};

}  // namespace pyprof::cuda
