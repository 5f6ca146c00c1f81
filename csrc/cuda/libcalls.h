// Library compute calls (cuBLAS, cuBLASLt, cuDNN) and their binding to the kernels they launch.
// Pure C++ (no CUDA library calls): the hooks (libhooks.cpp) record calls, the activity tracer's launch callback binds
// each call to the correlation id of the next kernel launch on the same thread and stream, and the aggregator takes the
// call back when that kernel's activity record arrives. Testable on a CPU by calling the three steps directly.
#pragma once
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace pyprof::cuda {

struct LibCall {
  uint64_t id = 0;
  std::string library;        // "cublasLt", "cudnn"
  std::string op;             // "matmul", "conv_fwd", "conv_bwd_data", "conv_bwd_filter"
  int64_t m = 0, n = 0, k = 0, batch = 1;
  std::string a_type, b_type, c_type, d_type, compute_type;  // as the library prints them (R_16BF, COMPUTE_32F, ...)
  bool trans_a = false, trans_b = false;
  uint64_t stream = 0;        // 0: default stream or not printed
  uint64_t thread_id = 0;
  double flops = 0;           // formula FLOPs: 2*M*N*K*batch for GEMMs, the convolution formula for convs
  std::string precision;      // peak class it is measured against: fp64 fp32 tf32 fp16 bf16 fp8 int8
  std::string detail;         // anything else worth showing (conv shapes, algo), free text
};

// Thread-safe. Binding rule: a recorded call binds the next kernel launch made on the same thread (and the same stream,
// when both are known); a newer call on the same thread replaces an unbound older one (counted as unbound).
// Bounded: at most max_bound() calls wait for their kernel's activity record; at the cap the OLDEST bound call is
// dropped and counted (its kernel record is the one most likely lost or never coming).
class LibCallRegistry {
 public:
  static constexpr size_t kMaxBound = 1 << 16;

  // Changes the cap (tests use small ones); evicts oldest-first down to it. At least 1.
  void set_max_bound(size_t max_bound);
  size_t max_bound() const;

  uint64_t record(LibCall call);
  uint64_t bind_launch(uint64_t thread_id, uint64_t stream, uint32_t correlation_id);
  std::optional<LibCall> take(uint32_t correlation_id);

  struct Stats {
    uint64_t calls = 0, bound = 0, unbound = 0, dropped = 0, pending = 0, waiting = 0;
  };
  Stats stats() const;
  // Formula FLOPs of every call recorded so far, by precision class (running totals; bound or not). Without the kernel
  // tracer nothing binds, and a step's library FLOPs are the difference of two snapshots.
  std::unordered_map<std::string, double> recorded_flops_by_precision() const;
  void clear();

 private:
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, LibCall> pending_by_thread_;  // thread id -> call waiting for its launch
  // correlation id -> call waiting for its kernel record, and the binding order for oldest-first eviction
  struct Bound {
    LibCall call;
    std::list<uint32_t>::iterator order;
  };
  std::unordered_map<uint32_t, Bound> by_correlation_;
  std::list<uint32_t> bound_order_;  // oldest first
  size_t max_bound_ = kMaxBound;
  void evict_oldest_locked();
  Stats stats_;
  std::unordered_map<std::string, double> flops_by_precision_;
};

LibCallRegistry& libcall_registry();
uint64_t current_thread_id();

// ---- Pure log parsers (no library calls; testable on a CPU) -------------------------------------------------------
// Each returns nullopt for a line that is not a compute call (descriptor creation, heuristics, ...) without allocating,
// so the logger callbacks can run them on every line. A compute line whose fields cannot be read also returns nullopt;
// parse_status() tells the two apart for the hooks' failure counter.

enum class ParseStatus { kNotCompute, kParsed, kMalformed };

// One cuBLASLt logger line. function_name is what the logger callback passes ("cublasLtMatmul", "cublasLtSSSMatmul",
// ...); it may be empty or null, in which case the "[Trace][name]" prefix of a full log-file line is used.
// message is the callback's message (the part after the prefix) or a whole log-file line.
std::optional<LibCall> parse_cublaslt_log(const char* function_name, const char* message,
                                          ParseStatus* status = nullptr);

// One cuDNN API-log entry (the multi-line "function cudnnConvolutionForward() called:" block, lines separated by
// '\n' or '\0'). Legacy convolution entry points only: see libcalls.cpp for what the cuDNN 9 graph API logs lack.
std::optional<LibCall> parse_cudnn_log(const std::string& message, ParseStatus* status = nullptr);

// Precision class of a cuBLASLt matmul from its A/B data types and compute type (documented in libcalls.cpp).
std::string cublaslt_precision(const std::string& a_type, const std::string& b_type, const std::string& compute_type);

}  // namespace pyprof::cuda
