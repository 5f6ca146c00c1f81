// Aggregation of GPU activity records: the state between the CUPTI buffers (activity.h) and the Python report.
// Pure C++ with no CUPTI call, so every path is testable on a CPU by handing records in directly or through the
// activity decoder's test seam. Two consumers read it:
//   - a kernel table keyed by (kernel name, grid, block, device): count, total/max time, library FLOPs;
//   - step windows: records wait in a bounded pending list until close_window() takes those that start in the window.
// Memory is bounded everywhere (keys, pending records, records kept per window, external ids) and every loss is counted.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pyprof::cuda {

// One kernel execution, as decoded from a CUpti_ActivityKernel record.
struct KernelRecord {
  std::string_view name;  // only valid while the record is handed in: the aggregator interns it
  uint32_t device_id = 0;
  uint32_t context_id = 0;
  uint32_t stream_id = 0;
  int32_t grid_x = 0, grid_y = 0, grid_z = 0;
  int32_t block_x = 0, block_y = 0, block_z = 0;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint32_t correlation_id = 0;
  uint32_t graph_id = 0;  // 0 unless launched as part of a CUDA graph
  uint64_t graph_node_id = 0;
};

enum class MemKind : uint8_t { kMemcpy = 0, kMemset = 1 };

// One memcpy or memset, as decoded from CUpti_ActivityMemcpy / CUpti_ActivityMemset.
struct MemRecord {
  MemKind kind = MemKind::kMemcpy;
  uint64_t bytes = 0;
  uint8_t copy_kind = 0;  // CUpti_ActivityMemcpyKind (HtoD=1, DtoH=2, DtoD=8, ...); 0 for memsets
  uint32_t device_id = 0;
  uint32_t context_id = 0;
  uint32_t stream_id = 0;
  uint32_t correlation_id = 0;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

// CUPTI's link from a launch's correlation id to the id pyprof pushed for the step (CUSTOM0).
struct ExternalCorrelation {
  uint32_t correlation_id = 0;
  uint64_t external_id = 0;
  uint32_t external_kind = 0;  // CUpti_ExternalCorrelationKind
};

// Records of one decoded activity buffer, handed to the aggregator under one lock.
struct RecordBatch {
  std::vector<ExternalCorrelation> externals;
  std::vector<KernelRecord> kernels;
  std::vector<MemRecord> mems;
  void clear() {
    externals.clear();
    kernels.clear();
    mems.clear();
  }
};

// One kernel of a closed window, with what the aggregator attached to it.
struct KernelDetail {
  std::string name;
  uint32_t device_id = 0, context_id = 0, stream_id = 0;
  int32_t grid[3] = {0, 0, 0};
  int32_t block[3] = {0, 0, 0};
  uint64_t start_ns = 0, end_ns = 0;
  uint32_t correlation_id = 0;
  uint32_t graph_id = 0;
  uint64_t graph_node_id = 0;
  uint64_t external_id = 0;    // 0: none seen
  double library_flops = 0;    // formula FLOPs of the library call bound to this launch; 0: none
  std::string precision;       // that call's precision class, empty when none
};

// What close_window() returns for kernels and memory operations that START in [start_ns, end_ns).
struct WindowSummary {
  uint64_t start_ns = 0, end_ns = 0;
  uint64_t kernel_count = 0;
  uint64_t kernel_ns = 0;                 // sum of kernel durations (concurrent kernels each count in full)
  std::map<uint32_t, uint64_t> busy_ns;   // per device: union of kernel intervals, clipped at end_ns
  std::map<uint32_t, uint64_t> idle_ns;   // per device: window length - busy_ns
  uint64_t uncounted_kernel_ns = 0;       // time of kernels with no library FLOPs attached
  std::map<std::string, double> library_flops;  // by precision class
  uint64_t library_kernel_count = 0;
  uint64_t memcpy_count = 0, memcpy_bytes = 0, memcpy_ns = 0;
  uint64_t memset_count = 0, memset_bytes = 0, memset_ns = 0;
  uint64_t discarded_before_start = 0;    // records of this call that started before start_ns (outside any window)
  bool has_records = false;               // keep_records was asked for
  std::vector<KernelDetail> records;      // at most Limits::max_window_records
  uint64_t records_truncated = 0;         // kernels of the window not in `records` because of that cap
};

// One row of the kernel table.
struct KernelTableRow {
  std::string name;
  int64_t device = 0;  // -1 for the "<other kernels>" overflow row
  int32_t grid[3] = {0, 0, 0};
  int32_t block[3] = {0, 0, 0};
  uint64_t count = 0;
  uint64_t total_ns = 0;
  uint64_t max_ns = 0;
  double library_flops = 0;
  uint64_t library_ns = 0;      // time of the kernels that carried library FLOPs (for achieved FLOP/s)
  uint64_t library_calls = 0;
  std::string precision;        // "" none, a class, or "mixed" when calls of several classes ran this kernel
};

class Aggregator {
 public:
  struct Limits {
    size_t max_kernel_keys = 4096;          // distinct (name, grid, block, device) rows; more go to "<other kernels>"
    size_t max_pending_records = 1 << 19;   // kernels + memory records waiting for a window (~64 MiB at most)
    size_t max_window_records = 1 << 16;    // per-kernel records returned by one close_window(keep_records=true)
    size_t max_external_ids = 1 << 16;      // correlation id -> external id links kept for records still to come
  };
  struct Stats {
    uint64_t kernels = 0, memcpys = 0, memsets = 0, externals = 0;
    uint64_t no_timestamp = 0;        // records with start = end = 0 (CUPTI could not time them): not aggregated
    uint64_t pending_dropped = 0;     // records refused because the pending list was full
    uint64_t keys_overflowed = 0;     // kernel records merged into the "<other kernels>" row
    uint64_t outside_windows = 0;     // records that started before the window being closed
    uint64_t external_evicted = 0;    // external-id links dropped (oldest first) at the cap
    uint64_t library_kernels = 0;     // kernel records that carried a library call
    uint64_t library_calls_untimed = 0;  // library calls whose kernel record had no timestamps (taken, not counted)
    uint64_t pending = 0;             // records waiting now
    uint64_t keys = 0;                // kernel-table rows now
  };

  static constexpr const char* kOtherKernels = "<other kernels>";

  Aggregator() = default;
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // Adds the records of one buffer under one lock: external links first, so kernels of the same buffer see them.
  void ingest(const RecordBatch& batch);
  void add_kernel(const KernelRecord& r);
  void add_mem(const MemRecord& r);
  void add_external(const ExternalCorrelation& r);

  // Takes the pending records that start in [start_ns, end_ns); see WindowSummary. Records that started before
  // start_ns are discarded and counted as outside any window; those at/after end_ns stay pending.
  WindowSummary close_window(uint64_t start_ns, uint64_t end_ns, bool keep_records);
  // The top_n rows by total time (all rows when top_n <= 0), longest first.
  std::vector<KernelTableRow> kernel_table(int top_n) const;

  Stats stats() const;
  void set_limits(const Limits& limits);
  Limits limits() const;
  // Forgets every record, row, link and counter (limits stay).
  void clear();

 private:
  struct Key {
    const std::string* name;
    uint32_t device;
    int32_t grid[3];
    int32_t block[3];
    bool operator==(const Key& o) const;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Row {
    uint64_t count = 0, total_ns = 0, max_ns = 0, library_ns = 0, library_calls = 0;
    double library_flops = 0;
    std::string precision;
  };
  struct PendingKernel {
    const std::string* name;
    KernelRecord rec;  // rec.name is not used once pending (it may dangle)
    uint64_t external_id;
    double library_flops;
    const std::string* precision;  // nullptr: no library call
  };

  void add_kernel_locked(const KernelRecord& r);
  void add_mem_locked(const MemRecord& r);
  void add_external_locked(const ExternalCorrelation& r);
  const std::string* intern_locked(std::string_view s);
  size_t pending_locked() const { return pending_kernels_.size() + pending_mems_.size(); }

  mutable std::mutex mu_;
  Limits limits_;
  Stats stats_;
  // Kernel names and precision classes, interned: records and rows point here. Bounded by the program's distinct
  // kernels, which the kernel-table cap does not bound; names are kept for the process (they are small and few).
  std::unordered_set<std::string> strings_;
  std::unordered_map<Key, Row, KeyHash> rows_;
  Row other_row_;
  std::vector<PendingKernel> pending_kernels_;
  std::vector<MemRecord> pending_mems_;
  std::unordered_map<uint32_t, uint64_t> external_by_corr_;
  std::deque<uint32_t> external_order_;  // insertion order, for evicting the oldest link at the cap
  std::unordered_set<uint32_t> devices_;  // every device seen: a window reports idle time for each
};

}  // namespace pyprof::cuda
