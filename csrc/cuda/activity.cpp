#include "activity.h"

#include <cuda.h>
#include <cupti.h>
#include <time.h>
// cupti.h brings the generated_cuda*_meta.h params structs (they have no include guards: never include them again).

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include "check.h"
#include "libcalls.h"

namespace pyprof::cuda {

const int kCuptiErrorMultipleSubscribers = static_cast<int>(CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED);
const uint32_t kExternalKindCustom0 = static_cast<uint32_t>(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0);

namespace {

// CUPTI wants activity buffers aligned to 8 bytes (its samples' ALIGN_SIZE).
constexpr size_t kBufferAlign = 8;
// Failed calls inside callbacks are counted always and printed for the first few only: a broken setup must not
// flood the training job's stderr.
constexpr uint64_t kMaxPrintedCallbackErrors = 8;

// ---- launch API callback ids ----
// The subscriber binds library calls (libcalls.h) to launches, so it needs every way a kernel is launched. The same
// ids get activity API records (cuptiActivityEnableRuntimeApi / EnableDriverApi) because CUPTI only writes an
// external-correlation record next to an API record: without them pyprof's step ids never reach the kernels.
// Enabling CUPTI_ACTIVITY_KIND_RUNTIME/DRIVER instead would record every runtime call (PyTorch makes several
// cudaGetDevice / stream-capture queries per operator): more overhead and buffer pressure for records pyprof ignores.
constexpr CUpti_CallbackId kRuntimeLaunchCbids[] = {
    CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000,
    CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000,
    CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060,
    CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060,
    CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000,
    CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000,
    CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000,
    CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000,
    // CUDA 13: what nvcc emits for <<<...>>> (crt/device_functions.h __cudaLaunchKernel_helper).
    CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000,
    CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000,
};
constexpr CUpti_CallbackId kDriverLaunchCbids[] = {
    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch,
    CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz,
};

// Layout of __cudaLaunchKernel's parameters: the CUDA 13.0 headers have no generated params struct for it, but its
// signature is cudaLaunchKernel's with a cudaKernel_t first (crt/device_functions.h), and CUPTI's params structs are
// the arguments in order, so the stream sits where cudaLaunchKernel_v7000_params has it.
struct CudaLaunchKernelV13000Params {
  cudaKernel_t kernel;
  dim3 gridDim;
  dim3 blockDim;
  void** args;
  size_t sharedMem;
  cudaStream_t stream;
};

template <typename P>
uint64_t stream_of(const void* params) {
  return reinterpret_cast<uint64_t>(static_cast<const P*>(params)->stream);
}
template <typename P>
uint64_t hstream_of(const void* params) {
  return reinterpret_cast<uint64_t>(static_cast<const P*>(params)->hStream);
}

// The stream a launch API call names; 0 (matches any stream in the registry) where the call has none or it is unknown.
uint64_t launch_stream(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, const void* params) {
  if (params == nullptr) return 0;
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000:
        return stream_of<cudaLaunchKernel_v7000_params>(params);
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000:
        return stream_of<cudaLaunchKernel_ptsz_v7000_params>(params);
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000:
        return stream_of<cudaLaunchCooperativeKernel_v9000_params>(params);
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000:
        return stream_of<cudaLaunchCooperativeKernel_ptsz_v9000_params>(params);
      case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000:
        return stream_of<cudaGraphLaunch_v10000_params>(params);
      case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000:
        return stream_of<cudaGraphLaunch_ptsz_v10000_params>(params);
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060: {
        const auto* cfg = static_cast<const cudaLaunchKernelExC_v11060_params*>(params)->config;
        return cfg ? reinterpret_cast<uint64_t>(cfg->stream) : 0;
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060: {
        const auto* cfg = static_cast<const cudaLaunchKernelExC_ptsz_v11060_params*>(params)->config;
        return cfg ? reinterpret_cast<uint64_t>(cfg->stream) : 0;
      }
      case CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000:
      case CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000:
        return stream_of<CudaLaunchKernelV13000Params>(params);
      default:
        return 0;
    }
  }
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    switch (cbid) {
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel:
        return hstream_of<cuLaunchKernel_params>(params);
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz:
        return hstream_of<cuLaunchKernel_ptsz_params>(params);
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel:
        return hstream_of<cuLaunchCooperativeKernel_params>(params);
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz:
        return hstream_of<cuLaunchCooperativeKernel_ptsz_params>(params);
      case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch:
        return hstream_of<cuGraphLaunch_params>(params);
      case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz:
        return hstream_of<cuGraphLaunch_ptsz_params>(params);
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx: {
        const auto* cfg = static_cast<const cuLaunchKernelEx_params*>(params)->config;
        return cfg ? reinterpret_cast<uint64_t>(cfg->hStream) : 0;
      }
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz: {
        const auto* cfg = static_cast<const cuLaunchKernelEx_ptsz_params*>(params)->config;
        return cfg ? reinterpret_cast<uint64_t>(cfg->hStream) : 0;
      }
      default:
        return 0;
    }
  }
  return 0;
}

// Nesting of launch API calls on this thread: cudaLaunchKernel may call cuLaunchKernel inside, and both callbacks are
// enabled. Only the outermost call binds: its correlation id is the one the kernel record carries (the runtime
// call's for runtime launches, the driver call's for direct driver launches such as Triton's).
thread_local int t_launch_depth = 0;
// A stop between a launch's enter and exit callbacks leaves that thread's depth raised: each start opens a new
// generation, and a thread whose depth belongs to an older one starts again from 0.
std::atomic<uint64_t> g_launch_generation{0};
thread_local uint64_t t_launch_generation = 0;

void CUPTIAPI buffer_requested_cb(uint8_t** buffer, size_t* size, size_t* max_records) {
  ActivityTracer::instance().on_buffer_requested(buffer, size, max_records);
}

void CUPTIAPI buffer_completed_cb(CUcontext context, uint32_t stream_id, uint8_t* buffer, size_t size,
                                  size_t valid) {
  ActivityTracer::instance().on_buffer_completed(context, stream_id, buffer, size, valid);
}

void CUPTIAPI api_cb(void* /*userdata*/, CUpti_CallbackDomain domain, CUpti_CallbackId cbid, const void* cbdata) {
  ActivityTracer::instance().on_api_callback(static_cast<int>(domain), cbid, cbdata);
}

// Failure of a CUPTI call during start(): the status Python degrades on, with the call text and CUPTI's message.
TracerStatus failure_status(const CallFailure& f) {
  TracerStatus s;
  s.ok = false;
  s.code = f.code;
  s.message = f.text;
  return s;
}

// Telemetry and teardown failures (check.h's PYPROF_CUPTI_LOG sink): log, count and go on.
void log_failure(const CallFailure& f) { ActivityTracer::instance().note_callback_error(f.text); }

uint64_t CUPTIAPI monotonic_timestamp_cb() { return monotonic_clock_ns(); }

// The real seam: CUPTI itself.
class CuptiActivityVendor final : public ActivityVendor {
 public:
  int driver_version(std::string* error) override {
    int v = 0;
    const cudaError_t err = cudaDriverGetVersion(&v);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      if (error) *error = std::string("cudaDriverGetVersion failed (") + cudaGetErrorName(err) + ")";
      return 0;
    }
    if (v == 0 && error) *error = "cudaDriverGetVersion reported none";
    return v;
  }
  int subscribe(void** subscriber, std::string* holder) override {
    CUpti_SubscriberHandle sub = nullptr;
    char name[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN + 1] = {0};
    CUpti_SubscriberParams params{};
    params.structSize = CUpti_SubscriberParams_STRUCT_SIZE;
    params.subscriberName = "pyprof";
    params.oldSubscriberName = name;
    params.oldSubscriberSize = CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN;
    const CUptiResult r = cuptiSubscribe_v2(&sub, api_cb, nullptr, &params);
    *subscriber = sub;
    if (holder) *holder = name;
    return static_cast<int>(r);
  }
  int unsubscribe(void* subscriber) override {
    return static_cast<int>(cuptiUnsubscribe(static_cast<CUpti_SubscriberHandle>(subscriber)));
  }
  int enable_callback(void* subscriber, int domain, uint32_t cbid, bool on) override {
    return static_cast<int>(cuptiEnableCallback(on ? 1 : 0, static_cast<CUpti_SubscriberHandle>(subscriber),
                                                static_cast<CUpti_CallbackDomain>(domain), cbid));
  }
  int register_buffer_callbacks() override {
    return static_cast<int>(cuptiActivityRegisterCallbacks(buffer_requested_cb, buffer_completed_cb));
  }
  int register_timestamp_callback() override {
    return static_cast<int>(cuptiActivityRegisterTimestampCallback(monotonic_timestamp_cb));
  }
  int enable_kind(int kind, bool on) override {
    const auto k = static_cast<CUpti_ActivityKind>(kind);
    return static_cast<int>(on ? cuptiActivityEnable(k) : cuptiActivityDisable(k));
  }
  int enable_api_record(int domain, uint32_t cbid, bool on) override {
    return static_cast<int>(domain == CUPTI_CB_DOMAIN_RUNTIME_API ? cuptiActivityEnableRuntimeApi(cbid, on ? 1 : 0)
                                                                  : cuptiActivityEnableDriverApi(cbid, on ? 1 : 0));
  }
  int flush_all(bool forced) override {
    return static_cast<int>(cuptiActivityFlushAll(forced ? CUPTI_ACTIVITY_FLAG_FLUSH_FORCED : 0));
  }
  int timestamp(uint64_t* ns) override { return static_cast<int>(cuptiGetTimestamp(ns)); }
};

CUptiResult as_result(int code) { return static_cast<CUptiResult>(code); }

}  // namespace

std::unique_ptr<ActivityVendor> make_cupti_activity_vendor() { return std::make_unique<CuptiActivityVendor>(); }

uint64_t monotonic_clock_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// A call through the vendor seam, named by the CUPTI call it stands for (check.h's text): logged, counted, go on.
#define PYPROF_SEAM_LOG(expr, cupti_call)                                                                   \
  do {                                                                                                      \
    if (const auto pyprof_f_ = check_cupti(as_result(expr), cupti_call, __FILE__, __LINE__)) log_failure(*pyprof_f_); \
  } while (0)

// Setup: a failed call ends start() with a status (after rolling back) instead of an exception, so that the training
// loop goes on without the tracer (STYLE.md habit 8).
#define PYPROF_CUPTI_START(call, text)                                                   \
  do {                                                                                   \
    if (const auto pyprof_f_ = check_cupti(as_result(call), text, __FILE__, __LINE__)) { \
      disable_locked();                                                                  \
      return failure_status(*pyprof_f_);                                                 \
    }                                                                                    \
  } while (0)

// ---------------------------------------------------------------------------------------------------------------
// BufferPool

void BufferPool::configure(size_t buffer_bytes, size_t max_buffers) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t rounded = (buffer_bytes + kBufferAlign - 1) / kBufferAlign * kBufferAlign;
  if (rounded != buffer_bytes_) {
    // Buffers of the old size cannot be handed out any more: free the idle ones now, the busy ones on their return.
    for (uint8_t* b : free_) std::free(b);
    alive_ -= free_.size();
    free_.clear();
    stale_.insert(in_use_.begin(), in_use_.end());
  }
  buffer_bytes_ = rounded;
  max_buffers_ = max_buffers;
}

uint8_t* BufferPool::acquire() {
  std::lock_guard<std::mutex> lock(mu_);
  uint8_t* b = nullptr;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (alive_ >= max_buffers_) {
    ++stats_.refused;
    return nullptr;
  } else {
    b = static_cast<uint8_t*>(std::aligned_alloc(kBufferAlign, buffer_bytes_));
    if (b == nullptr) {
      ++stats_.refused;
      return nullptr;
    }
    ++alive_;
    ++stats_.allocated;
  }
  in_use_.insert(b);
  stats_.in_use = in_use_.size();
  return b;
}

bool BufferPool::owns(const uint8_t* buffer) const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_.count(buffer) > 0;
}

bool BufferPool::release(uint8_t* buffer) {
  if (buffer == nullptr) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (in_use_.erase(buffer) == 0) {
    // Not ours (or already returned): freeing or reusing it would corrupt its owner's heap or ours.
    ++stats_.foreign;
    return false;
  }
  stats_.in_use = in_use_.size();
  if (stale_.erase(buffer) > 0 || alive_ > max_buffers_) {
    // A buffer of an older size, or one over a lowered cap.
    std::free(buffer);
    --alive_;
    return true;
  }
  free_.push_back(buffer);
  return true;
}

void BufferPool::trim() {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint8_t* b : free_) std::free(b);
  alive_ -= free_.size();
  free_.clear();
}

size_t BufferPool::buffer_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buffer_bytes_;
}

BufferPool::Stats BufferPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoder

DecodeCounts decode_buffer(const uint8_t* buffer, size_t valid_bytes, RecordBatch& batch) {
  batch.clear();
  DecodeCounts c;
  if (buffer == nullptr || valid_bytes == 0) return c;
  // cuptiActivityGetNextRecord only reads the buffer; its signature is not const.
  uint8_t* buf = const_cast<uint8_t*>(buffer);
  CUpti_Activity* record = nullptr;
  for (;;) {
    const CUptiResult res = cuptiActivityGetNextRecord(buf, valid_bytes, &record);
    if (res == CUPTI_ERROR_MAX_LIMIT_REACHED) break;  // end of the valid part
    // No record after a rejected one can be reached: the cursor is the previous record, and CUPTI does not say where
    // the next one starts; its own loop stops on CUPTI_ERROR_INVALID_KIND ("incomplete or invalid", cupti_activity.h,
    // cuptiActivityGetNextRecord). Incomplete records come only from a forced flush, which is why the tracer forces
    // only at stop (flush()). The stop is counted (decode_errors) and named in last_error.
    if (res != CUPTI_SUCCESS) {
      c.error = true;
      c.error_message = cupti_error_text("cuptiActivityGetNextRecord", res, __FILE__, __LINE__);
      break;
    }
    ++c.records;
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      case CUPTI_ACTIVITY_KIND_KERNEL: {
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        KernelRecord r;
        r.name = k->name != nullptr ? std::string_view(k->name) : std::string_view("<unnamed kernel>");
        r.device_id = k->deviceId;
        r.context_id = k->contextId;
        r.stream_id = k->streamId;
        r.grid_x = k->gridX, r.grid_y = k->gridY, r.grid_z = k->gridZ;
        r.block_x = k->blockX, r.block_y = k->blockY, r.block_z = k->blockZ;
        r.start_ns = k->start;
        r.end_ns = k->end;
        r.correlation_id = k->correlationId;
        r.graph_id = k->graphId;
        r.graph_node_id = k->graphNodeId;
        batch.kernels.push_back(r);
        ++c.kernels;
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        MemRecord r;
        r.kind = MemKind::kMemcpy;
        r.bytes = m->bytes;
        r.copy_kind = m->copyKind;
        r.device_id = m->deviceId;
        r.context_id = m->contextId;
        r.stream_id = m->streamId;
        r.correlation_id = m->correlationId;
        r.start_ns = m->start;
        r.end_ns = m->end;
        batch.mems.push_back(r);
        ++c.memcpys;
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
        MemRecord r;
        r.kind = MemKind::kMemset;
        r.bytes = m->bytes;
        r.device_id = m->deviceId;
        r.context_id = m->contextId;
        r.stream_id = m->streamId;
        r.correlation_id = m->correlationId;
        r.start_ns = m->start;
        r.end_ns = m->end;
        batch.mems.push_back(r);
        ++c.memsets;
        break;
      }
      case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
        const auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(record);
        if (e->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) {
          batch.externals.push_back({e->correlationId, e->externalId, static_cast<uint32_t>(e->externalKind)});
        }
        ++c.externals;
        break;
      }
      case CUPTI_ACTIVITY_KIND_RUNTIME:
      case CUPTI_ACTIVITY_KIND_DRIVER:
        ++c.api;  // only there so that CUPTI writes the external-correlation records
        break;
      default:
        ++c.other;
        break;
    }
  }
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// ActivityTracer

ActivityTracer::ActivityTracer() : vendor_(make_cupti_activity_vendor()) {}

void ActivityTracer::set_vendor(std::unique_ptr<ActivityVendor> vendor) {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (active_) throw std::logic_error("ActivityTracer::set_vendor while tracing");
  vendor_ = vendor ? std::move(vendor) : make_cupti_activity_vendor();
  callbacks_registered_ = false;
  monotonic_clock_ = false;
}

void ActivityTracer::reset() {
  // Buffers CUPTI completed before this point belong to the old profile: decode them now, then forget everything.
  flush(false);
  aggregator_.clear();
}

ActivityTracer& ActivityTracer::instance() {
  static ActivityTracer* t = new ActivityTracer();  // never destroyed: CUPTI may call back during exit
  return *t;
}

bool ActivityTracer::active() const {
  std::lock_guard<std::mutex> lock(state_mu_);
  return active_;
}

TracerStatus ActivityTracer::start(const TracerOptions& options) {
  if (options.buffer_bytes < 64 * 1024) {
    throw std::invalid_argument("tracer buffer_bytes must be at least 65536 (a few MiB is typical), got " +
                                std::to_string(options.buffer_bytes));
  }
  if (options.max_buffers < 1) throw std::invalid_argument("tracer max_buffers must be at least 1");
  std::lock_guard<std::mutex> lock(state_mu_);
  if (active_) {
    TracerStatus s;
    s.ok = true;
    s.message = "already tracing (options of the first start kept)";
    return s;
  }
  TracerStatus s = start_locked(options);
  active_ = s.ok;
  {
    std::lock_guard<std::mutex> slock(stats_mu_);
    stats_.active = s.ok;
  }
  return s;
}

TracerStatus ActivityTracer::start_locked(const TracerOptions& options) {
  // Without a driver CUPTI has nothing to trace; say so plainly instead of passing on CUPTI's generic error.
  std::string driver_error;
  if (vendor_->driver_version(&driver_error) == 0) {
    TracerStatus s;
    s.code = TracerStatus::kNoDriver;
    s.message = "no NVIDIA driver: " + driver_error + "; the CUPTI kernel tracer needs a GPU with its driver";
    return s;
  }

  // Subscribe first: when another CUPTI client (torch.profiler/Kineto, Nsight Systems/Compute, DCGM) holds CUPTI, leave
  // every activity setting alone — registering our buffer callbacks would steal that client's records.
  void* sub = nullptr;
  std::string holder;
  const int sres = vendor_->subscribe(&sub, &holder);
  if (const auto f = check_cupti(as_result(sres), "cuptiSubscribe_v2(&sub, api_cb, nullptr, &params)", __FILE__,
                                 __LINE__)) {
    TracerStatus s = failure_status(*f);
    s.holder = holder;
    if (as_result(sres) == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
      s.message = std::string("CUPTI is already in use by ") +
                  (s.holder.empty() ? "another tool (torch.profiler, Nsight Systems/Compute, cuda-gdb or DCGM)"
                                    : "'" + s.holder + "'") +
                  "; only one CUPTI subscriber is allowed per process (" + s.message + ")";
    }
    return s;
  }
  subscriber_ = sub;
  g_launch_generation.fetch_add(1, std::memory_order_relaxed);

  // Per-callback-id settings degrade one id at a time (a driver that lacks one launch entry point loses only the
  // binding or step tag of launches made through it): logged, counted and named in the status message.
  std::string degraded;
  auto soft = [this, &degraded](const char* call, uint32_t cbid, int res) {
    if (res == 0) return false;
    const std::string text =
        cupti_error_text(call, as_result(res), __FILE__, __LINE__) + " (cbid " + std::to_string(cbid) + ")";
    note_callback_error(text);
    degraded += (degraded.empty() ? "" : "; ") + text;
    return true;
  };
  for (CUpti_CallbackId cbid : kRuntimeLaunchCbids) {
    soft("cuptiEnableCallback(RUNTIME_API)", cbid, vendor_->enable_callback(sub, CUPTI_CB_DOMAIN_RUNTIME_API, cbid, true));
  }
  for (CUpti_CallbackId cbid : kDriverLaunchCbids) {
    soft("cuptiEnableCallback(DRIVER_API)", cbid, vendor_->enable_callback(sub, CUPTI_CB_DOMAIN_DRIVER_API, cbid, true));
  }

  pool_.configure(options.buffer_bytes, options.max_buffers);
  // At every start, not once per process: CUPTI delivers buffers to whoever registered last, and another client
  // (Kineto registers at every enable) may have done so since our previous start (Kineto CuptiActivityApi does the
  // same at each enable). Buffers of that client that still come back to us are left alone (BufferPool::release).
  PYPROF_CUPTI_START(vendor_->register_buffer_callbacks(),
                     "cuptiActivityRegisterCallbacks(buffer_requested_cb, buffer_completed_cb)");
  callbacks_registered_ = true;
  // Before any kind is enabled, as cupti_activity.h asks (cuptiActivityRegisterTimestampCallback): every record then
  // carries CLOCK_MONOTONIC time. A failure keeps CUPTI's default clock (now_ns() follows), logged as degraded.
  monotonic_clock_ = !soft("cuptiActivityRegisterTimestampCallback(monotonic_timestamp_cb)", 0,
                           vendor_->register_timestamp_callback());

  // CONCURRENT_KERNEL, never KERNEL: KIND_KERNEL serializes every kernel launch.
  std::vector<CUpti_ActivityKind> kinds = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                           CUPTI_ACTIVITY_KIND_MEMSET};
  if (options.external_correlation) kinds.push_back(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
  for (CUpti_ActivityKind kind : kinds) {
    PYPROF_CUPTI_START(vendor_->enable_kind(static_cast<int>(kind), true), "cuptiActivityEnable(kind)");
    enabled_kinds_.push_back(static_cast<int>(kind));
  }
  if (options.external_correlation) {
    // CUPTI writes an external-correlation record only next to an API record of the launch: one per launch, paid on
    // every launch, which is why it is on request only.
    for (CUpti_CallbackId cbid : kRuntimeLaunchCbids) {
      if (!soft("cuptiActivityEnableRuntimeApi", cbid, vendor_->enable_api_record(CUPTI_CB_DOMAIN_RUNTIME_API, cbid, true)))
        enabled_runtime_cbids_.push_back(cbid);
    }
    for (CUpti_CallbackId cbid : kDriverLaunchCbids) {
      if (!soft("cuptiActivityEnableDriverApi", cbid, vendor_->enable_api_record(CUPTI_CB_DOMAIN_DRIVER_API, cbid, true)))
        enabled_driver_cbids_.push_back(cbid);
    }
  }

  TracerStatus s;
  s.ok = true;
  s.message = "tracing kernels, memcpys and memsets";
  if (options.external_correlation) s.message += " with step tags (external correlation)";
  if (!degraded.empty()) s.message += "; degraded: " + degraded;
  return s;
}

// Undoes whatever start_locked() enabled (also its partial work after a failure). Logs failures, never throws.
void ActivityTracer::disable_locked() {
  for (uint32_t cbid : enabled_runtime_cbids_)
    PYPROF_SEAM_LOG(vendor_->enable_api_record(CUPTI_CB_DOMAIN_RUNTIME_API, cbid, false), "cuptiActivityEnableRuntimeApi(cbid, 0)");
  for (uint32_t cbid : enabled_driver_cbids_)
    PYPROF_SEAM_LOG(vendor_->enable_api_record(CUPTI_CB_DOMAIN_DRIVER_API, cbid, false), "cuptiActivityEnableDriverApi(cbid, 0)");
  enabled_runtime_cbids_.clear();
  enabled_driver_cbids_.clear();
  for (int kind : enabled_kinds_) PYPROF_SEAM_LOG(vendor_->enable_kind(kind, false), "cuptiActivityDisable(kind)");
  enabled_kinds_.clear();
  if (subscriber_ != nullptr) {
    PYPROF_SEAM_LOG(vendor_->unsubscribe(subscriber_), "cuptiUnsubscribe(subscriber)");
    subscriber_ = nullptr;
  }
}

void ActivityTracer::stop() {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (!active_) return;
  // Records of work already done arrive through the completed callback before the kinds go off. The end of a session
  // is the one place for a forced flush (cupti_activity.h, cuptiActivityFlushAll).
  PYPROF_SEAM_LOG(vendor_->flush_all(true), "cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED)");
  disable_locked();
  PYPROF_SEAM_LOG(vendor_->flush_all(true), "cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED)");
  pool_.trim();
  active_ = false;
  std::lock_guard<std::mutex> slock(stats_mu_);
  stats_.active = false;
}

void ActivityTracer::flush(bool forced) {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (!callbacks_registered_) return;  // CUPTI never had a buffer of ours
  // Not forced (per step): CUPTI hands over every buffer whose records are complete, full or not, so a window closed
  // after a synchronize sees its kernels; a forced flush would also hand over incomplete records.
  PYPROF_SEAM_LOG(vendor_->flush_all(forced), "cuptiActivityFlushAll(forced ? CUPTI_ACTIVITY_FLAG_FLUSH_FORCED : 0)");
}

uint64_t ActivityTracer::now_ns() const {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (monotonic_clock_) return monotonic_clock_ns();  // the clock the records are on
  uint64_t t = 0;
  if (const auto f = check_cupti(as_result(vendor_->timestamp(&t)), "cuptiGetTimestamp(&t)", __FILE__, __LINE__))
    throw_runtime_error(*f);
  return t;
}

void ActivityTracer::push_external_id(uint64_t id) {
  if (!active()) return;
  PYPROF_CUPTI_LOG(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id), log_failure);
}

uint64_t ActivityTracer::pop_external_id() {
  if (!active()) return 0;
  uint64_t last = 0;
  const CUptiResult res = cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
  if (res == CUPTI_ERROR_QUEUE_EMPTY) return 0;  // unbalanced pop: nothing to undo
  if (res != CUPTI_SUCCESS) {
    note_callback_error(cupti_error_text("cuptiActivityPopExternalCorrelationId", res, __FILE__, __LINE__));
    return 0;
  }
  return last;
}

DecodeCounts ActivityTracer::ingest_buffer(const uint8_t* buffer, size_t valid_bytes) {
  // One batch per thread, reused: decode allocates nothing once it has grown to a buffer's worth of records.
  thread_local RecordBatch batch;
  DecodeCounts c = decode_buffer(buffer, valid_bytes, batch);
  aggregator_.ingest(batch);
  batch.clear();
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.records_decoded += c.records;
  stats_.kernel_records += c.kernels;
  stats_.memcpy_records += c.memcpys;
  stats_.memset_records += c.memsets;
  stats_.external_records += c.externals;
  stats_.api_records += c.api;
  stats_.other_records += c.other;
  if (c.error) {
    ++stats_.decode_errors;
    stats_.last_error = c.error_message;
  }
  return c;
}

DecodeCounts ActivityTracer::ingest_bytes_for_test(const char* data, size_t size) {
  std::vector<uint64_t> aligned((size + 7) / 8);
  if (size > 0) std::memcpy(aligned.data(), data, size);
  return ingest_buffer(reinterpret_cast<const uint8_t*>(aligned.data()), size);
}

void ActivityTracer::on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) noexcept {
  try {
    uint8_t* b = pool_.acquire();  // nullptr at the cap: CUPTI drops records, and says how many in the next buffer
    *buffer = b;
    *size = b != nullptr ? pool_.buffer_bytes() : 0;
    *max_records = 0;  // as many as fit
  } catch (...) {
    *buffer = nullptr;
    *size = 0;
    note_callback_error("pyprof: exception while handing CUPTI an activity buffer");
  }
}

void ActivityTracer::on_buffer_completed(void* context, uint32_t stream_id, uint8_t* buffer, size_t /*size*/,
                                         size_t valid) noexcept {
  if (buffer != nullptr && !pool_.owns(buffer)) {
    // Another CUPTI client's buffer, handed to us because we registered the callbacks after it did: its records are
    // not ours to count and its memory not ours to free. Counted (BufferPool::Stats::foreign) and left alone.
    pool_.release(buffer);
    return;
  }
  try {
    if (buffer != nullptr && valid > 0) ingest_buffer(buffer, valid);
    size_t dropped = 0;
    const CUptiResult res = cuptiActivityGetNumDroppedRecords(static_cast<CUcontext>(context), stream_id, &dropped);
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.buffers_completed;
    if (res == CUPTI_SUCCESS) {
      stats_.dropped_by_cupti += dropped;
    } else {
      ++stats_.callback_errors;
      stats_.last_error = cupti_error_text("cuptiActivityGetNumDroppedRecords", res, __FILE__, __LINE__);
    }
  } catch (const std::exception& e) {
    note_callback_error(std::string("pyprof: exception while decoding an activity buffer: ") + e.what());
  } catch (...) {
    note_callback_error("pyprof: unknown exception while decoding an activity buffer");
  }
  pool_.release(buffer);
}

void ActivityTracer::on_api_callback(int domain_int, uint32_t cbid, const void* cbdata) noexcept {
  try {
    const auto domain = static_cast<CUpti_CallbackDomain>(domain_int);
    if (domain != CUPTI_CB_DOMAIN_RUNTIME_API && domain != CUPTI_CB_DOMAIN_DRIVER_API) return;
    const auto* info = static_cast<const CUpti_CallbackData*>(cbdata);
    if (info == nullptr) return;
    const uint64_t generation = g_launch_generation.load(std::memory_order_relaxed);
    if (t_launch_generation != generation) {
      t_launch_generation = generation;
      t_launch_depth = 0;
    }
    if (info->callbackSite == CUPTI_API_EXIT) {
      if (t_launch_depth > 0) --t_launch_depth;
      return;
    }
    if (t_launch_depth++ > 0) return;  // nested: the outer launch call already bound
    const uint64_t stream = launch_stream(domain, cbid, info->functionParams);
    const uint64_t bound = libcall_registry().bind_launch(current_thread_id(), stream, info->correlationId);
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.launches_seen;
    if (bound != 0) ++stats_.launches_bound;
  } catch (const std::exception& e) {
    note_callback_error(std::string("pyprof: exception in the launch callback: ") + e.what());
  } catch (...) {
    note_callback_error("pyprof: unknown exception in the launch callback");
  }
}

void ActivityTracer::note_callback_error(const std::string& what) noexcept {
  try {
    uint64_t n = 0;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      n = ++stats_.callback_errors;
      stats_.last_error = what;
    }
    if (n <= kMaxPrintedCallbackErrors) std::fprintf(stderr, "pyprof: %s\n", what.c_str());
    if (n == kMaxPrintedCallbackErrors) std::fprintf(stderr, "pyprof: further tracer errors are only counted\n");
  } catch (...) {
    // Nothing left to do: an error while reporting an error must not reach CUPTI.
  }
}

TracerStats ActivityTracer::stats() const {
  TracerStats s;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    s = stats_;
  }
  s.buffers = pool_.stats();
  s.aggregator = aggregator_.stats();
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    s.monotonic_clock = monotonic_clock_;
  }
  return s;
}

void ActivityTracer::reset_for_test() {
  aggregator_.clear();
  libcall_registry().clear();
  std::lock_guard<std::mutex> lock(stats_mu_);
  const bool active = stats_.active;
  stats_ = TracerStats{};
  stats_.active = active;
}

}  // namespace pyprof::cuda
