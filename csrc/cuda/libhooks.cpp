// Library-call hooks.
//
// Mechanism: the libraries' own logger callbacks, not symbol interposition.
// - cuBLASLt: cublasLtLoggerSetCallback + level 2 ("trace": one line per call that launches kernels, with every
//   layout, the compute descriptor and the stream). Legacy cuBLAS GEMMs in cuBLAS 13 run through the typed
//   cublasLt<XYZ>Matmul entry points, so this one callback sees cuBLAS and cuBLASLt callers alike.
// - cuDNN: cudnnSetCallback at the INFO severity (the API log: every call with all its descriptors).
// Why: a logger callback lives inside the library, so it sees every caller in the process - PyTorch, CuPy, JAX/XLA,
// TensorRT - with no patching of each importer. Interposition has worse reach: LD_PRELOAD / dlsym(RTLD_NEXT) only works
// when set before the process starts and misses libraries that bind cuBLAS with RTLD_DEEPBIND or call through their
// own dlsym'd pointers; patching PLT/GOT entries at run time must find and patch every importing library (and those
// loaded later), and misses calls internal to libcublas (legacy GEMM -> Lt). Interposing would also need the
// descriptor-query API to recover shapes, where the log already prints them.
// Cost: one formatted line per GEMM inside the library (microseconds) plus our parse, which rejects non-matmul lines
// on the function name and does no allocation until a line is known to be a matmul; per call, small against a GEMM
// large enough to matter. cuDNN's INFO log formats every API call (descriptor setters too), which costs more: only the
// convolution entries are parsed, the rest are rejected on a substring test.
// What it misses: calls made before install (install early); cuDNN graph-API executions (counted, not attributed, see
// libcalls.cpp); libraries linked statically into another binary (no separate logger to hook); a process that sets
// its own cuBLASLt logger callback after us (the library keeps one callback; ours is replaced).
//
// Callbacks never throw (noexcept, everything inside a catch-all) and never call back into the library.
#include "libhooks.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include "libcalls.h"

namespace pyprof::cuda {
namespace {

// Declared here instead of including cublasLt.h / cudnn.h: those headers are not a build dependency (the entry points
// are resolved at run time). Types follow the public headers of cuBLAS 12/13 and cuDNN 8/9.
using LtCallback = void (*)(int log_level, const char* function_name, const char* message);
using LtSetCallback = int (*)(LtCallback);
using LtSetLevel = int (*)(int);
using LtSetMask = int (*)(int);
using LtSetFile = int (*)(FILE*);
struct CudnnDebug {  // cudnnDebug_t (cudnn_graph.h in cuDNN 9, cudnn_ops_infer.h in cuDNN 8)
  unsigned cudnn_version;
  int cudnn_status;
  unsigned time_sec, time_usec, time_delta;
  void* handle;
  void* stream;
  unsigned long long pid, tid;
  int cuda_device_id;
  int reserved[15];
};
using CudnnCallback = void (*)(int severity, void* udata, const CudnnDebug* dbg, const char* msg);
using CudnnSetCallback = int (*)(unsigned mask, void* udata, CudnnCallback fptr);
using CudnnGetCallback = int (*)(unsigned* mask, void** udata, CudnnCallback* fptr);

constexpr int kLtLevelTrace = 2;      // CUBLASLT_LOG_LEVEL=2: API trace of calls that launch kernels
constexpr int kLtMaskTrace = 2;       // CUBLASLT_LOG_MASK bit for the trace level
constexpr unsigned kCudnnSevInfo = 3; // cudnnSeverity_t CUDNN_SEV_INFO
constexpr unsigned kCudnnInfoMask = 1u << kCudnnSevInfo;  // CUDNN_SEV_INFO_EN
constexpr size_t kMaxSamples = 8, kMaxSampleChars = 600;
constexpr size_t kMaxCudnnMessage = 1 << 16;

struct LtHook {
  void* handle = nullptr;
  std::string name;
  LtSetCallback set_callback = nullptr;
  LtSetLevel set_level = nullptr;
  LtSetFile set_file = nullptr;  // non-null when we redirected the logger's own output
};

// cuBLASLt writes every logged line to its file (stdout by default) as well as to the callback (seen with cuBLASLt
// 13.10 on a CPU-only machine: host-side API calls log without a GPU). Unless the user asked for the log through
// CUBLASLT_LOG_LEVEL / CUBLASLT_LOG_MASK, that output goes to /dev/null while the hook is in.
FILE* dev_null() {
  static FILE* f = std::fopen("/dev/null", "w");
  return f;
}
struct CudnnHook {
  void* handle = nullptr;
  std::string name;
  CudnnSetCallback set_callback = nullptr;
  unsigned prev_mask = 0;
  void* prev_udata = nullptr;
  CudnnCallback prev_fptr = nullptr;
};

struct State {
  std::mutex mu;  // install/uninstall and the samples
  std::vector<LtHook> lt;
  std::vector<CudnnHook> cudnn;
  std::vector<std::string> samples;
  std::atomic<uint64_t> lt_calls{0}, cudnn_calls{0}, cudnn_backend{0}, failures{0};
};

State& state() {
  static State* s = new State();  // never destroyed: a library may log during exit
  return *s;
}

void keep_sample(const char* fn, const char* msg) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.samples.size() >= kMaxSamples) return;
  std::string line = fn ? std::string(fn) + ": " : std::string();
  line.append(msg ? msg : "", msg ? std::min(std::strlen(msg), kMaxSampleChars) : 0);
  for (char& c : line) if (c == '\0') c = '\n';
  s.samples.push_back(std::move(line));
}

void lt_callback(int level, const char* fn, const char* msg) { hooks_on_cublaslt_message(level, fn, msg); }

// cuDNN may hand over a multi-line entry as lines separated by '\0' and ended by "\0\0" (the cuDNN 8 developer guide's
// description of cudnnCallback_t's msg; not verified on cuDNN 9). Join them with '\n', stopping at a double NUL, at a
// NUL followed by a non-text byte, or at kMaxCudnnMessage.
std::string join_cudnn_lines(const char* msg) {
  std::string out;
  if (msg == nullptr) return out;
  size_t i = 0;
  for (;;) {
    const size_t len = std::strlen(msg + i);
    out.append(msg + i, len);
    i += len + 1;
    const unsigned char next = static_cast<unsigned char>(msg[i]);
    if (next == 0 || out.size() >= kMaxCudnnMessage || !(next == ' ' || next == '\t' || (next >= 0x21 && next < 0x7f)))
      break;
    out.push_back('\n');
  }
  return out;
}

void cudnn_callback(int severity, void*, const CudnnDebug* dbg, const char* msg) {
  try {
    if (severity != static_cast<int>(kCudnnSevInfo) || msg == nullptr) return;
    // Cheap reject before joining lines: the first line names the function.
    if (std::strstr(msg, "cudnnConvolution") == nullptr && std::strstr(msg, "cudnnBackendExecute") == nullptr) return;
    hooks_on_cudnn_message(join_cudnn_lines(msg).c_str(),
                           dbg ? static_cast<uint64_t>(reinterpret_cast<uintptr_t>(dbg->stream)) : 0);
  } catch (...) {
  }
}

std::string loaded_path(void* handle, void* symbol) {
  Dl_info info{};
  if (symbol && dladdr(symbol, &info) && info.dli_fname) return info.dli_fname;
  (void)handle;
  return "?";
}

std::string basename_of(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

bool already_hooked(const std::vector<LtHook>& v, void* h) {
  for (const auto& x : v) if (x.handle == h) return true;
  return false;
}
bool already_hooked(const std::vector<CudnnHook>& v, void* h) {
  for (const auto& x : v) if (x.handle == h) return true;
  return false;
}

// Hooks one cuBLASLt copy; returns "" or the error text. Caller holds state().mu.
std::string hook_lt(void* h, const std::string& label) {
  State& s = state();
  if (already_hooked(s.lt, h)) { dlclose(h); return ""; }
  dlerror();
  auto set_cb = reinterpret_cast<LtSetCallback>(dlsym(h, "cublasLtLoggerSetCallback"));
  auto set_level = reinterpret_cast<LtSetLevel>(dlsym(h, "cublasLtLoggerSetLevel"));
  auto set_mask = reinterpret_cast<LtSetMask>(dlsym(h, "cublasLtLoggerSetMask"));
  if (!set_cb || !set_level) {
    const char* e = dlerror();
    return "missing cublasLtLoggerSetCallback/SetLevel in " + label + (e ? std::string(": ") + e : "");
  }
  auto set_file = reinterpret_cast<LtSetFile>(dlsym(h, "cublasLtLoggerSetFile"));
  const bool user_logging = std::getenv("CUBLASLT_LOG_LEVEL") != nullptr || std::getenv("CUBLASLT_LOG_MASK") != nullptr;
  if (user_logging || dev_null() == nullptr) set_file = nullptr;
  int rc = set_file ? set_file(dev_null()) : 0;
  if (rc == 0) rc = set_cb(&lt_callback);
  if (rc == 0) rc = set_level(kLtLevelTrace);
  if (rc == 0 && set_mask) rc = set_mask(kLtMaskTrace);
  if (rc != 0) {
    set_cb(nullptr);
    set_level(0);
    if (set_file) set_file(stdout);
    return "cuBLASLt logger setup failed in " + label + " (cublasStatus_t " + std::to_string(rc) + ")";
  }
  s.lt.push_back(LtHook{h, label, set_cb, set_level, set_file});
  return "";
}

std::string hook_cudnn(void* h, const std::string& label) {
  State& s = state();
  if (already_hooked(s.cudnn, h)) { dlclose(h); return ""; }
  dlerror();
  auto set_cb = reinterpret_cast<CudnnSetCallback>(dlsym(h, "cudnnSetCallback"));
  auto get_cb = reinterpret_cast<CudnnGetCallback>(dlsym(h, "cudnnGetCallback"));
  if (!set_cb) {
    const char* e = dlerror();
    return "missing cudnnSetCallback in " + label + (e ? std::string(": ") + e : "");
  }
  CudnnHook hook{h, label, set_cb};
  if (get_cb) get_cb(&hook.prev_mask, &hook.prev_udata, &hook.prev_fptr);
  const int rc = set_cb(kCudnnInfoMask, nullptr, &cudnn_callback);
  if (rc != 0) return "cudnnSetCallback failed in " + label + " (cudnnStatus_t " + std::to_string(rc) + ")";
  s.cudnn.push_back(hook);
  return "";
}

struct Lib {
  const char* key;
  std::vector<const char*> sonames;
  const char* prefix;  // basename prefix of a path given for this library
};
const Lib kLibs[] = {
    {"cublasLt", {"libcublasLt.so.13", "libcublasLt.so.12"}, "libcublasLt.so"},
    {"cudnn", {"libcudnn.so.9"}, "libcudnn.so"},
};

}  // namespace

void hooks_on_cublaslt_message(int log_level, const char* function_name, const char* message) noexcept {
  try {
    (void)log_level;  // the line's form decides (see parse_cublaslt_log), not the level number
    ParseStatus st;
    std::optional<LibCall> call = parse_cublaslt_log(function_name, message, &st);
    if (call) {
      call->thread_id = current_thread_id();
      libcall_registry().record(std::move(*call));
      state().lt_calls.fetch_add(1, std::memory_order_relaxed);
    } else if (st == ParseStatus::kMalformed) {
      state().failures.fetch_add(1, std::memory_order_relaxed);
      keep_sample(function_name, message);
    }
  } catch (...) {
  }
}

void hooks_on_cudnn_message(const char* message, uint64_t stream) noexcept {
  try {
    if (message == nullptr) return;
    if (std::strstr(message, "function cudnnBackendExecute()") != nullptr) {
      state().cudnn_backend.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    ParseStatus st;
    std::optional<LibCall> call = parse_cudnn_log(message, &st);
    if (call) {
      if (call->stream == 0) call->stream = stream;
      call->thread_id = current_thread_id();
      libcall_registry().record(std::move(*call));
      state().cudnn_calls.fetch_add(1, std::memory_order_relaxed);
    } else if (st == ParseStatus::kMalformed) {
      state().failures.fetch_add(1, std::memory_order_relaxed);
      keep_sample(nullptr, message);
    }
  } catch (...) {
  }
}

std::map<std::string, std::string> hooks_install(const std::vector<std::string>& paths) {
  std::map<std::string, std::string> status;
  try {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    for (const Lib& lib : kLibs) {
      std::vector<std::string> ok, errors;
      auto hook = [&](void* h, const std::string& label) {
        const std::string err = std::string(lib.key) == "cublasLt" ? hook_lt(h, label) : hook_cudnn(h, label);
        if (err.empty()) ok.push_back(label);
        else errors.push_back(err);
      };
      // 1. Copies already in the process, by soname: the ones the framework calls.
      for (const char* soname : lib.sonames) {
        void* h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
        if (h) hook(h, std::string(soname) + " (" + loaded_path(h, dlsym(h, lib.key == std::string("cudnn") ? "cudnnSetCallback" : "cublasLtLoggerSetCallback")) + ")");
      }
      // 2. Not loaded yet (PyTorch loads cuBLASLt at the first matmul): load the given path ourselves. Same soname, so
      //    the framework's later dlopen/DT_NEEDED resolves to this copy and its calls reach our callback.
      if (ok.empty()) {
        for (const std::string& p : paths) {
          if (basename_of(p).rfind(lib.prefix, 0) != 0) continue;
          dlerror();
          void* h = dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL);
          if (!h) {
            const char* e = dlerror();
            errors.push_back("dlopen failed: " + std::string(e ? e : p));
            continue;
          }
          hook(h, basename_of(p) + " (" + p + ")");
          if (!ok.empty()) break;
        }
      }
      std::string st;
      if (!ok.empty()) {
        st = "installed: ";
        for (size_t i = 0; i < ok.size(); ++i) st += (i ? "; " : "") + ok[i];
      } else if (!errors.empty()) {
        for (size_t i = 0; i < errors.size(); ++i) st += (i ? "; " : "") + errors[i];
      } else {
        st = "not loaded";
      }
      status[lib.key] = st;
    }
    for (const std::string& p : paths) {
      const std::string b = basename_of(p);
      bool known = false;
      for (const Lib& lib : kLibs) known = known || b.rfind(lib.prefix, 0) == 0;
      if (!known) status[p] = "ignored: not a cuBLASLt or cuDNN library";
    }
  } catch (const std::exception& e) {
    status["error"] = e.what();
  } catch (...) {
    status["error"] = "unknown error";
  }
  return status;
}

void hooks_uninstall() {
  try {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    for (LtHook& h : s.lt) {
      h.set_callback(nullptr);
      h.set_level(0);
      if (h.set_file) h.set_file(stdout);
    }
    // The handles stay open on purpose: unloading a CUDA library the framework may still call (or that registered
    // exit handlers) is never worth the few pages it would free.
    s.lt.clear();
    for (CudnnHook& h : s.cudnn) {
      h.set_callback(h.prev_mask, h.prev_udata, h.prev_fptr);
    }
    s.cudnn.clear();
  } catch (...) {
  }
}

HookStats hooks_stats() {
  State& s = state();
  HookStats out;
  out.cublaslt_calls = s.lt_calls.load();
  out.cudnn_calls = s.cudnn_calls.load();
  out.cudnn_backend_executes = s.cudnn_backend.load();
  out.parse_failures = s.failures.load();
  std::lock_guard<std::mutex> lock(s.mu);
  out.sample_unparsed = s.samples;
  for (const auto& h : s.lt) out.installed.push_back(h.name);
  for (const auto& h : s.cudnn) out.installed.push_back(h.name);
  return out;
}

}  // namespace pyprof::cuda
