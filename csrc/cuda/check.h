// The one checked-call vocabulary of the CUDA part (STYLE.md habit 5; Kineto's CUPTI_CALL, nvbench's NVBENCH_CUDA_CALL).
//
// Every vendor call (CUDA runtime, CUDA driver, CUPTI) goes through one of three forms:
//   PYPROF_<V>_CALL(call)              setup: throws std::runtime_error (pybind11 makes it Python's RuntimeError);
//   PYPROF_<V>_CALL_AS(call, thrower)  setup with a typed error: thrower(const CallFailure&) must throw
//                                      (the Range Profiler's CounterError, the PM sampler's status);
//   PYPROF_<V>_LOG(call, sink)         while collecting: sink(const CallFailure&) logs/counts, and the caller goes on;
//   PYPROF_<V>_FAILURE(call)           the failure as std::optional, for code that must roll back and return a status.
// <V> is CUDA (runtime, cudaError_t), DRIVER (CUresult) or CUPTI (CUptiResult). The text is always
// "<call text> failed at <file>:<line>: <vendor's error name/string> (<code>)".
#pragma once
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <cupti.h>
#include <dlfcn.h>

#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace pyprof::cuda {

enum class Vendor { kCudaRuntime, kCudaDriver, kCupti };

// One failed vendor call: what was called, where, the vendor's code and the full message.
struct CallFailure {
  Vendor vendor = Vendor::kCupti;
  const char* call = "";
  const char* file = "";
  int line = 0;
  int code = 0;      // cudaError_t, CUresult or CUptiResult
  std::string text;  // the message every error and log line carries
};

inline std::string cuda_error_text(const char* call, cudaError_t err, const char* file, int line) {
  std::ostringstream os;
  os << call << " failed at " << file << ":" << line << ": " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err)
     << ")";
  return os.str();
}

inline std::string cupti_error_text(const char* call, CUptiResult res, const char* file, int line) {
  const char* msg = nullptr;
  if (cuptiGetResultString(res, &msg) != CUPTI_SUCCESS || msg == nullptr) msg = "unknown CUPTI error";
  std::ostringstream os;
  os << call << " failed at " << file << ":" << line << ": " << msg << " (CUptiResult " << static_cast<int>(res) << ")";
  return os.str();
}

// The module links the static runtime and never libcuda itself (it must import on machines without a driver), so the
// driver's own error string is looked up in an already-loaded libcuda, if any.
inline std::string driver_error_text(const char* call, CUresult res, const char* file, int line) {
  const char* name = nullptr;
  using GetName = CUresult (*)(CUresult, const char**);
  if (void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD)) {
    if (auto fn = reinterpret_cast<GetName>(dlsym(lib, "cuGetErrorName"))) {
      if (fn(res, &name) != CUDA_SUCCESS) name = nullptr;
    }
    dlclose(lib);
  }
  std::ostringstream os;
  os << call << " failed at " << file << ":" << line << ": " << (name ? name : "CUDA driver error") << " (CUresult "
     << static_cast<int>(res) << ")";
  return os.str();
}

inline std::optional<CallFailure> check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return std::nullopt;
  return CallFailure{Vendor::kCudaRuntime, call, file, line, static_cast<int>(err),
                     cuda_error_text(call, err, file, line)};
}

inline std::optional<CallFailure> check_driver(CUresult res, const char* call, const char* file, int line) {
  if (res == CUDA_SUCCESS) return std::nullopt;
  return CallFailure{Vendor::kCudaDriver, call, file, line, static_cast<int>(res),
                     driver_error_text(call, res, file, line)};
}

inline std::optional<CallFailure> check_cupti(CUptiResult res, const char* call, const char* file, int line) {
  if (res == CUPTI_SUCCESS) return std::nullopt;
  return CallFailure{Vendor::kCupti, call, file, line, static_cast<int>(res), cupti_error_text(call, res, file, line)};
}

[[noreturn]] inline void throw_runtime_error(const CallFailure& f) { throw std::runtime_error(f.text); }

}  // namespace pyprof::cuda

#define PYPROF_CUDA_FAILURE(call) ::pyprof::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define PYPROF_DRIVER_FAILURE(call) ::pyprof::cuda::check_driver((call), #call, __FILE__, __LINE__)
#define PYPROF_CUPTI_FAILURE(call) ::pyprof::cuda::check_cupti((call), #call, __FILE__, __LINE__)

#define PYPROF_CHECKED_(failure, handler)                       \
  do {                                                          \
    if (const auto pyprof_failure_ = (failure)) handler(*pyprof_failure_); \
  } while (0)

#define PYPROF_CUDA_CALL(call) PYPROF_CHECKED_(PYPROF_CUDA_FAILURE(call), ::pyprof::cuda::throw_runtime_error)
#define PYPROF_DRIVER_CALL(call) PYPROF_CHECKED_(PYPROF_DRIVER_FAILURE(call), ::pyprof::cuda::throw_runtime_error)
#define PYPROF_CUPTI_CALL(call) PYPROF_CHECKED_(PYPROF_CUPTI_FAILURE(call), ::pyprof::cuda::throw_runtime_error)

#define PYPROF_CUDA_CALL_AS(call, thrower) PYPROF_CHECKED_(PYPROF_CUDA_FAILURE(call), thrower)
#define PYPROF_CUPTI_CALL_AS(call, thrower) PYPROF_CHECKED_(PYPROF_CUPTI_FAILURE(call), thrower)

#define PYPROF_CUDA_LOG(call, sink) PYPROF_CHECKED_(PYPROF_CUDA_FAILURE(call), sink)
#define PYPROF_CUPTI_LOG(call, sink) PYPROF_CHECKED_(PYPROF_CUPTI_FAILURE(call), sink)
