// CUPTI Activity tracer: the process-wide source of kernel, memcpy and memset timings.
// Kineto-like separation (STYLE.md habit 4):
//   - BufferPool: fixed-size activity buffers, bounded in number; a refused request is counted (CUPTI then drops);
//   - decode_buffer(): the ONE decoder of CUPTI's buffer layout, used by the buffer-completed callback and by the test
//     seam alike, turning raw records into a RecordBatch for the Aggregator (aggregator.h);
//   - ActivityTracer: the state (start/stop/flush, the callback subscriber that binds library calls to launches).
// Never an exception out of a CUPTI callback: callbacks log, count and go on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "aggregator.h"

namespace pyprof::cuda {

// CUPTI constants Python needs, without including cupti.h here.
extern const int kCuptiErrorMultipleSubscribers;  // CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED
extern const uint32_t kExternalKindCustom0;       // CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0: pyprof's step ids

struct TracerOptions {
  size_t buffer_bytes = 4 << 20;  // one activity buffer
  size_t max_buffers = 64;        // buffers alive at once (handed to CUPTI or waiting for reuse)
  // Step tags (push_external_id) need CUPTI's external-correlation records, which CUPTI writes only next to per-launch
  // runtime/driver API records; those cost time on every launch and profile() does not use them: off unless asked.
  bool external_correlation = false;
};

// The CUPTI calls of the tracer's lifecycle (start, stop, flush, clock), behind one seam as Kineto keeps
// CuptiActivityApi apart: the real one calls CUPTI; tests install a fake that records the sequence. Every method
// returns a CUptiResult value (0 = CUPTI_SUCCESS).
class ActivityVendor {
 public:
  virtual ~ActivityVendor() = default;
  // The driver version (cudaDriverGetVersion), 0 when there is none; `error` gets the reason then.
  virtual int driver_version(std::string* error) = 0;
  virtual int subscribe(void** subscriber, std::string* holder) = 0;
  virtual int unsubscribe(void* subscriber) = 0;
  virtual int enable_callback(void* subscriber, int domain, uint32_t cbid, bool on) = 0;
  virtual int register_buffer_callbacks() = 0;
  virtual int register_timestamp_callback() = 0;
  virtual int enable_kind(int kind, bool on) = 0;
  virtual int enable_api_record(int domain, uint32_t cbid, bool on) = 0;
  virtual int flush_all(bool forced) = 0;
  virtual int timestamp(uint64_t* ns) = 0;
};
std::unique_ptr<ActivityVendor> make_cupti_activity_vendor();

// CLOCK_MONOTONIC in ns: the clock the tracer registers with CUPTI (cuptiActivityRegisterTimestampCallback), the same
// as Python's time.monotonic_ns(). CUPTI's default on Linux is CLOCK_REALTIME, which NTP can step backwards.
uint64_t monotonic_clock_ns();

// Result of start(): ok, or the CUptiResult (or a negative pyprof code) and a message Python can show.
struct TracerStatus {
  static constexpr int kNoDriver = -1;  // no NVIDIA driver: CUPTI cannot trace anything

  bool ok = false;
  int code = 0;
  std::string message;
  std::string holder;  // with CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED: the subscriber CUPTI named, if any
};

// Fixed-size buffers for CUPTI, at most `max_buffers` alive; freed buffers are reused, never returned to the heap
// while tracing (CUPTI may still hold others), so memory stays at most buffer_bytes * max_buffers.
class BufferPool {
 public:
  void configure(size_t buffer_bytes, size_t max_buffers);
  // A buffer of buffer_bytes(), 8-byte aligned as CUPTI requires; nullptr (counted as refused) at the cap.
  uint8_t* acquire();
  // Takes back a buffer acquire() handed out. One it never allocated (CUPTI hands a completed buffer to whoever
  // registered the callbacks last, so another client's can arrive here) is counted and left alone: false.
  bool release(uint8_t* buffer);
  // Whether `buffer` is one of this pool's, held by CUPTI now.
  bool owns(const uint8_t* buffer) const;
  // Frees the buffers waiting for reuse (those CUPTI holds are freed when they come back after stop).
  void trim();
  size_t buffer_bytes() const;

  struct Stats {
    uint64_t allocated = 0;  // buffers allocated over the process's life
    uint64_t in_use = 0;     // held by CUPTI now
    uint64_t refused = 0;    // requests answered with no buffer
    uint64_t foreign = 0;    // buffers handed back that this pool never allocated (another CUPTI client's): ignored
  };
  Stats stats() const;

 private:
  mutable std::mutex mu_;
  size_t buffer_bytes_ = 4 << 20;
  size_t max_buffers_ = 64;
  std::vector<uint8_t*> free_;
  std::unordered_set<const uint8_t*> in_use_;  // held by CUPTI
  std::unordered_set<const uint8_t*> stale_;   // held by CUPTI, of an older buffer size: freed on return
  size_t alive_ = 0;                     // in use + free
  Stats stats_;
};

struct DecodeCounts {
  uint64_t records = 0, kernels = 0, memcpys = 0, memsets = 0, externals = 0, api = 0, other = 0;
  bool error = false;  // cuptiActivityGetNextRecord failed before the end of the buffer
  std::string error_message;
};

// Decodes every record in buffer[0, valid_bytes) with cuptiActivityGetNextRecord into `batch` (cleared first).
// Kinds not traced for aggregation (runtime/driver API records, anything else) are only counted.
DecodeCounts decode_buffer(const uint8_t* buffer, size_t valid_bytes, RecordBatch& batch);

struct TracerStats {
  bool active = false;
  bool monotonic_clock = false;   // records and now_ns() are on CLOCK_MONOTONIC (else CUPTI's default clock)
  uint64_t records_decoded = 0;
  uint64_t kernel_records = 0, memcpy_records = 0, memset_records = 0, external_records = 0, api_records = 0,
           other_records = 0;
  uint64_t buffers_completed = 0;
  uint64_t dropped_by_cupti = 0;  // cuptiActivityGetNumDroppedRecords, summed over completed buffers
  uint64_t decode_errors = 0;
  uint64_t callback_errors = 0;   // failed vendor calls or exceptions inside CUPTI callbacks (logged, not raised)
  uint64_t launches_seen = 0;     // outermost launch API calls seen by the callback subscriber
  uint64_t launches_bound = 0;    // of those, launches a library call was bound to
  std::string last_error;
  BufferPool::Stats buffers;
  Aggregator::Stats aggregator;
};

class ActivityTracer {
 public:
  // The process-wide tracer; never destroyed (CUPTI may call back during interpreter exit).
  static ActivityTracer& instance();

  // Starts tracing; never throws for a CUPTI or driver failure (returns it), throws std::invalid_argument for bad
  // options. Starting an active tracer is a no-op that returns ok.
  TracerStatus start(const TracerOptions& options);
  // Flushes (forced), disables the activity kinds and unsubscribes. No-op when not active.
  void stop();
  // Hands CUPTI's buffers to the decoder; blocks until done. forced=false (per step) hands over only buffers whose
  // records are all complete, non-full ones included; forced=true also those with incomplete records, which is
  // CUPTI's advice for the end of a session only (cupti_activity.h, cuptiActivityFlushAll).
  void flush(bool forced = false);
  // Forgets the aggregator's records, rows, links and counters (limits stay): a new profile starts from nothing,
  // not with the previous profile's kernels or pyprof's own peak kernels traced under enable_early.
  void reset();
  // Replaces the CUPTI seam (tests); only while not active. nullptr restores the real one.
  void set_vendor(std::unique_ptr<ActivityVendor> vendor);
  // CUPTI's clock: the clock of the records' timestamps (ns).
  uint64_t now_ns() const;
  // Tags launches of the calling thread with `id` (CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) until the pop.
  void push_external_id(uint64_t id);
  uint64_t pop_external_id();  // the id popped, 0 when none or not active

  bool active() const;
  TracerStats stats() const;
  Aggregator& aggregator() { return aggregator_; }

  // The path a completed buffer takes (decode_buffer then the aggregator), minus the CUPTI-only parts (dropped-record
  // query, returning the buffer to the pool). The test seam and the real callback both go through it.
  DecodeCounts ingest_buffer(const uint8_t* buffer, size_t valid_bytes);
  // ingest_buffer() on a copy of `data` in 8-byte aligned storage (as CUPTI's buffers are), for the test seam.
  DecodeCounts ingest_bytes_for_test(const char* data, size_t size);
  // Forgets records, rows, counters and the library-call registry's pending calls; the tracer's state stays.
  void reset_for_test();

  // CUPTI entry points (public so the C callbacks in activity.cpp can reach them; not for other callers).
  void on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) noexcept;
  void on_buffer_completed(void* context, uint32_t stream_id, uint8_t* buffer, size_t size, size_t valid) noexcept;
  void on_api_callback(int domain, uint32_t cbid, const void* cbdata) noexcept;
  void note_callback_error(const std::string& what) noexcept;

 private:
  ActivityTracer();
  TracerStatus start_locked(const TracerOptions& options);
  void disable_locked();

  mutable std::mutex state_mu_;  // start/stop/flush state, not the hot path
  bool active_ = false;
  bool callbacks_registered_ = false;  // by any start of this process (flush() needs them once)
  bool monotonic_clock_ = false;       // the timestamp callback is registered: records are on monotonic_clock_ns()
  std::unique_ptr<ActivityVendor> vendor_;
  void* subscriber_ = nullptr;  // CUpti_SubscriberHandle
  std::vector<int> enabled_kinds_;
  std::vector<uint32_t> enabled_runtime_cbids_, enabled_driver_cbids_;

  BufferPool pool_;
  Aggregator aggregator_;

  mutable std::mutex stats_mu_;
  TracerStats stats_;
};

}  // namespace pyprof::cuda
