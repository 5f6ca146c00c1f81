#include "activity.h"

#include <cuda.h>
#include <cupti.h>
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
TracerStatus cupti_failure(const char* call, CUptiResult res, const char* file, int line) {
  TracerStatus s;
  s.ok = false;
  s.code = static_cast<int>(res);
  s.message = cupti_error_text(call, res, file, line);
  return s;
}

}  // namespace

// Setup: a failed call ends start() with a status (after rolling back) instead of an exception, so that the training
// loop goes on without the tracer (STYLE.md habit 8).
#define PYPROF_CUPTI_START(call)                                             \
  do {                                                                       \
    CUptiResult pyprof_res_ = (call);                                        \
    if (pyprof_res_ != CUPTI_SUCCESS) {                                      \
      disable_locked();                                                      \
      return cupti_failure(#call, pyprof_res_, __FILE__, __LINE__);          \
    }                                                                        \
  } while (0)

// Telemetry and teardown: log, count and go on.
#define PYPROF_CUPTI_LOG(call)                                                                            \
  do {                                                                                                    \
    CUptiResult pyprof_res_ = (call);                                                                     \
    if (pyprof_res_ != CUPTI_SUCCESS)                                                                     \
      ActivityTracer::instance().note_callback_error(cupti_error_text(#call, pyprof_res_, __FILE__, __LINE__)); \
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

void BufferPool::release(uint8_t* buffer) {
  if (buffer == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  in_use_.erase(buffer);
  stats_.in_use = in_use_.size();
  if (stale_.erase(buffer) > 0 || alive_ > max_buffers_) {
    // A buffer of an older size, or one over a lowered cap.
    std::free(buffer);
    --alive_;
    return;
  }
  free_.push_back(buffer);
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
  int driver_version = 0;
  const cudaError_t derr = cudaDriverGetVersion(&driver_version);
  if (derr != cudaSuccess || driver_version == 0) {
    TracerStatus s;
    s.code = TracerStatus::kNoDriver;
    s.message = std::string("no NVIDIA driver: cudaDriverGetVersion ") +
                (derr != cudaSuccess ? std::string("failed (") + cudaGetErrorName(derr) + ")" : "reported none") +
                "; the CUPTI kernel tracer needs a GPU with its driver";
    return s;
  }

  // Subscribe first: when another CUPTI client (torch.profiler/Kineto, Nsight Systems/Compute, DCGM) holds CUPTI, leave
  // every activity setting alone — registering our buffer callbacks would steal that client's records.
  CUpti_SubscriberHandle sub = nullptr;
  char holder[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN + 1] = {0};
  CUpti_SubscriberParams params{};
  params.structSize = CUpti_SubscriberParams_STRUCT_SIZE;
  params.subscriberName = "pyprof";
  params.oldSubscriberName = holder;
  params.oldSubscriberSize = CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN;
  const CUptiResult sres = cuptiSubscribe_v2(&sub, api_cb, nullptr, &params);
  if (sres != CUPTI_SUCCESS) {
    TracerStatus s = cupti_failure("cuptiSubscribe_v2(&sub, api_cb, nullptr, &params)", sres, __FILE__, __LINE__);
    s.holder = holder;
    if (sres == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
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
  auto soft = [this, &degraded](const char* call, uint32_t cbid, CUptiResult res) {
    if (res == CUPTI_SUCCESS) return false;
    const std::string text = cupti_error_text(call, res, __FILE__, __LINE__) + " (cbid " + std::to_string(cbid) + ")";
    note_callback_error(text);
    degraded += (degraded.empty() ? "" : "; ") + text;
    return true;
  };
  for (CUpti_CallbackId cbid : kRuntimeLaunchCbids) {
    soft("cuptiEnableCallback(RUNTIME_API)", cbid, cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API, cbid));
  }
  for (CUpti_CallbackId cbid : kDriverLaunchCbids) {
    soft("cuptiEnableCallback(DRIVER_API)", cbid, cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_DRIVER_API, cbid));
  }

  pool_.configure(options.buffer_bytes, options.max_buffers);
  if (!callbacks_registered_) {
    PYPROF_CUPTI_START(cuptiActivityRegisterCallbacks(buffer_requested_cb, buffer_completed_cb));
    callbacks_registered_ = true;
  }

  // CONCURRENT_KERNEL, never KERNEL: KIND_KERNEL serializes every kernel launch.
  for (CUpti_ActivityKind kind : {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                  CUPTI_ACTIVITY_KIND_MEMSET, CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION}) {
    PYPROF_CUPTI_START(cuptiActivityEnable(kind));
    enabled_kinds_.push_back(static_cast<int>(kind));
  }
  for (CUpti_CallbackId cbid : kRuntimeLaunchCbids) {
    if (!soft("cuptiActivityEnableRuntimeApi", cbid, cuptiActivityEnableRuntimeApi(cbid, 1))) {
      enabled_runtime_cbids_.push_back(cbid);
    }
  }
  for (CUpti_CallbackId cbid : kDriverLaunchCbids) {
    if (!soft("cuptiActivityEnableDriverApi", cbid, cuptiActivityEnableDriverApi(cbid, 1))) {
      enabled_driver_cbids_.push_back(cbid);
    }
  }

  TracerStatus s;
  s.ok = true;
  s.message = "tracing kernels, memcpys and memsets";
  if (!degraded.empty()) s.message += "; degraded: " + degraded;
  return s;
}

// Undoes whatever start_locked() enabled (also its partial work after a failure). Logs failures, never throws.
void ActivityTracer::disable_locked() {
  for (uint32_t cbid : enabled_runtime_cbids_) PYPROF_CUPTI_LOG(cuptiActivityEnableRuntimeApi(cbid, 0));
  for (uint32_t cbid : enabled_driver_cbids_) PYPROF_CUPTI_LOG(cuptiActivityEnableDriverApi(cbid, 0));
  enabled_runtime_cbids_.clear();
  enabled_driver_cbids_.clear();
  for (int kind : enabled_kinds_) PYPROF_CUPTI_LOG(cuptiActivityDisable(static_cast<CUpti_ActivityKind>(kind)));
  enabled_kinds_.clear();
  if (subscriber_ != nullptr) {
    PYPROF_CUPTI_LOG(cuptiUnsubscribe(static_cast<CUpti_SubscriberHandle>(subscriber_)));
    subscriber_ = nullptr;
  }
}

void ActivityTracer::stop() {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (!active_) return;
  // Records of work already done arrive through the completed callback before the kinds go off.
  PYPROF_CUPTI_LOG(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
  disable_locked();
  PYPROF_CUPTI_LOG(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
  pool_.trim();
  active_ = false;
  std::lock_guard<std::mutex> slock(stats_mu_);
  stats_.active = false;
}

void ActivityTracer::flush() {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (!callbacks_registered_) return;  // CUPTI never had a buffer of ours
  // Forced: also hands over buffers that are not full, so a window closed now sees its kernels.
  PYPROF_CUPTI_LOG(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
}

uint64_t ActivityTracer::now_ns() const {
  uint64_t t = 0;
  PYPROF_CUPTI_CALL(cuptiGetTimestamp(&t));
  return t;
}

void ActivityTracer::push_external_id(uint64_t id) {
  if (!active()) return;
  PYPROF_CUPTI_LOG(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id));
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

// ---------------------------------------------------------------------------------------------------------------
// Test seam: records in CUPTI's layout

namespace {

const char* intern_test_name(const std::string& name) {
  static std::mutex mu;
  static auto* names = new std::unordered_set<std::string>();  // alive for the process, like CUPTI's own names
  std::lock_guard<std::mutex> lock(mu);
  return names->insert(name).first->c_str();
}

template <typename R>
std::string record_bytes(const R& r) {
  static_assert(sizeof(R) % 8 == 0, "CUPTI records are 8-byte aligned and padded");
  return std::string(reinterpret_cast<const char*>(&r), sizeof(R));
}

}  // namespace

std::string make_kernel_record_bytes(const std::string& name, uint64_t start_ns, uint64_t end_ns, uint32_t device_id,
                                     uint32_t context_id, uint32_t stream_id, const int32_t grid[3],
                                     const int32_t block[3], uint32_t correlation_id, uint32_t graph_id,
                                     uint64_t graph_node_id, bool concurrent) {
  CUpti_ActivityKernel10 r;
  std::memset(&r, 0, sizeof r);
  r.kind = concurrent ? CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL : CUPTI_ACTIVITY_KIND_KERNEL;
  r.start = start_ns;
  r.end = end_ns;
  r.completed = end_ns;
  r.deviceId = device_id;
  r.contextId = context_id;
  r.streamId = stream_id;
  r.gridX = grid[0], r.gridY = grid[1], r.gridZ = grid[2];
  r.blockX = block[0], r.blockY = block[1], r.blockZ = block[2];
  r.correlationId = correlation_id;
  r.name = intern_test_name(name);
  r.graphId = graph_id;
  r.graphNodeId = graph_node_id;
  r.launchType = CUPTI_ACTIVITY_LAUNCH_TYPE_REGULAR;
  return record_bytes(r);
}

std::string make_memcpy_record_bytes(uint64_t bytes, uint64_t start_ns, uint64_t end_ns, uint8_t copy_kind,
                                     uint32_t device_id, uint32_t context_id, uint32_t stream_id,
                                     uint32_t correlation_id) {
  CUpti_ActivityMemcpy6 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  r.copyKind = copy_kind;
  r.bytes = bytes;
  r.start = start_ns;
  r.end = end_ns;
  r.deviceId = device_id;
  r.contextId = context_id;
  r.streamId = stream_id;
  r.correlationId = correlation_id;
  r.copyCount = 1;
  return record_bytes(r);
}

std::string make_memset_record_bytes(uint64_t bytes, uint64_t start_ns, uint64_t end_ns, uint32_t value,
                                     uint32_t device_id, uint32_t context_id, uint32_t stream_id,
                                     uint32_t correlation_id) {
  CUpti_ActivityMemset4 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  r.value = value;
  r.bytes = bytes;
  r.start = start_ns;
  r.end = end_ns;
  r.deviceId = device_id;
  r.contextId = context_id;
  r.streamId = stream_id;
  r.correlationId = correlation_id;
  return record_bytes(r);
}

std::string make_external_correlation_record_bytes(uint32_t correlation_id, uint64_t external_id,
                                                   uint32_t external_kind) {
  CUpti_ActivityExternalCorrelation r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
  r.externalKind = static_cast<CUpti_ExternalCorrelationKind>(external_kind);
  r.externalId = external_id;
  r.correlationId = correlation_id;
  return record_bytes(r);
}

}  // namespace pyprof::cuda
