// Checked vendor calls: the message carries the call text, file:line and the vendor's own error string.
// Setup code throws (pybind11 turns std::runtime_error into Python's RuntimeError); telemetry code logs and goes on.
#pragma once
#include <cuda_runtime_api.h>
#include <cupti.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace pyprof::cuda {

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

}  // namespace pyprof::cuda

#define PYPROF_CUDA_CALL(call)                                                                     \
  do {                                                                                             \
    cudaError_t pyprof_err_ = (call);                                                              \
    if (pyprof_err_ != cudaSuccess)                                                                \
      throw std::runtime_error(pyprof::cuda::cuda_error_text(#call, pyprof_err_, __FILE__, __LINE__)); \
  } while (0)

#define PYPROF_CUPTI_CALL(call)                                                                     \
  do {                                                                                              \
    CUptiResult pyprof_res_ = (call);                                                               \
    if (pyprof_res_ != CUPTI_SUCCESS)                                                               \
      throw std::runtime_error(pyprof::cuda::cupti_error_text(#call, pyprof_res_, __FILE__, __LINE__)); \
  } while (0)
