// Library-call hooks: the cuBLASLt and cuDNN logger callbacks, installed into the copies of those libraries that the
// process (PyTorch, CuPy, JAX, ...) uses, feeding parsed compute calls to libcall_registry(). See libhooks.cpp for why
// the loggers and not symbol interposition.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pyprof::cuda {

// Hooks every already-loaded copy of libcublasLt (.so.13, .so.12) and libcudnn (.so.9), then dlopens each path in
// `paths` (RTLD_NOW | RTLD_GLOBAL: same soname, so the framework's later load resolves to this copy) for a library not
// loaded yet. Never throws. Returns library ("cublasLt", "cudnn", or a path that names neither) -> status:
// "installed: <soname> (<path>)", "not loaded", or the dlopen/dlsym error text.
std::map<std::string, std::string> hooks_install(const std::vector<std::string>& paths);

// Restores the loggers (cuBLASLt: callback null, level 0; cuDNN: the callback and mask found at install). Never throws.
void hooks_uninstall();

struct HookStats {
  uint64_t cublaslt_calls = 0;          // matmul lines parsed and recorded
  uint64_t cudnn_calls = 0;             // convolution entries parsed and recorded
  uint64_t cudnn_backend_executes = 0;  // cudnnBackendExecute entries seen (graph API: not attributed, see libcalls.cpp)
  uint64_t parse_failures = 0;          // compute lines whose fields could not be read
  std::vector<std::string> sample_unparsed;  // the first few of those, truncated
  std::vector<std::string> installed;        // "<soname> (<path>)" of each hooked copy
};
HookStats hooks_stats();

// The callbacks' bodies, callable directly so tests can drive the whole path (parse -> count -> record) on a CPU.
void hooks_on_cublaslt_message(int log_level, const char* function_name, const char* message) noexcept;
void hooks_on_cudnn_message(const char* message, uint64_t stream) noexcept;

}  // namespace pyprof::cuda
