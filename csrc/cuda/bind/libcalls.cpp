// Bindings: library-call hooks, log parsers and the call registry (libhooks.h, libcalls.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda/bind/bind.h"
#include "cuda/libcalls.h"
#include "cuda/libhooks.h"

namespace py = pybind11;

namespace pyprof::cuda::bind {

py::object libcall_to_python(const std::optional<LibCall>& call) {
  if (!call) return py::none();
  const LibCall& c = *call;
  py::dict d;
  d["id"] = c.id;
  d["library"] = c.library;
  d["op"] = c.op;
  d["m"] = c.m;
  d["n"] = c.n;
  d["k"] = c.k;
  d["batch"] = c.batch;
  d["a_type"] = c.a_type;
  d["b_type"] = c.b_type;
  d["c_type"] = c.c_type;
  d["d_type"] = c.d_type;
  d["compute_type"] = c.compute_type;
  d["trans_a"] = c.trans_a;
  d["trans_b"] = c.trans_b;
  d["stream"] = c.stream;
  d["thread_id"] = c.thread_id;
  d["flops"] = c.flops;
  d["precision"] = c.precision;
  d["detail"] = c.detail;
  return d;
}

void bind_libcalls(py::module_& m) {
  {
    namespace pc = pyprof::cuda;
    auto opt_dict = [](const std::optional<pc::LibCall>& c) { return libcall_to_python(c); };
    m.def("parse_cublaslt_log", [opt_dict](const std::string& function_name, const std::string& message) {
      return opt_dict(pc::parse_cublaslt_log(function_name.c_str(), message.c_str()));
    }, py::arg("function_name"), py::arg("message"),
       "Parse one cuBLASLt logger line (callback message or whole log-file line) into a call dict, or None.");
    m.def("parse_cudnn_log", [opt_dict](const std::string& message) {
      return opt_dict(pc::parse_cudnn_log(message));
    }, py::arg("message"), "Parse one cuDNN API-log entry (a convolution call) into a call dict, or None.");
    m.def("hooks_install", [](const std::vector<std::string>& paths) {
      py::gil_scoped_release release;
      return pc::hooks_install(paths);
    }, py::arg("paths") = std::vector<std::string>{},
       "Install the cuBLASLt/cuDNN logger hooks; returns library -> status. Never raises.");
    m.def("hooks_uninstall", [] {
      py::gil_scoped_release release;
      pc::hooks_uninstall();
    }, "Remove the hooks and restore the loggers.");
    m.def("hooks_stats", [] {
      const pc::HookStats h = pc::hooks_stats();
      const auto r = pc::libcall_registry().stats();
      py::dict d, by_lib;
      by_lib["cublasLt"] = h.cublaslt_calls;
      by_lib["cudnn"] = h.cudnn_calls;
      d["calls_by_library"] = by_lib;
      d["cudnn_backend_executes"] = h.cudnn_backend_executes;
      d["parse_failures"] = h.parse_failures;
      d["sample_unparsed"] = h.sample_unparsed;
      d["installed"] = h.installed;
      d["calls"] = r.calls;
      d["bound"] = r.bound;
      d["unbound"] = r.unbound;
      d["dropped"] = r.dropped;
      d["pending"] = r.pending;
      d["waiting"] = r.waiting;
      py::dict fl;
      for (const auto& kv : pc::libcall_registry().recorded_flops_by_precision()) fl[py::str(kv.first)] = kv.second;
      d["recorded_flops_by_precision"] = fl;
      return d;
    }, "Hook counters (calls_by_library, cudnn_backend_executes, parse_failures, sample_unparsed, installed) and the "
       "library-call registry's (calls, bound, unbound, dropped, pending, waiting).");
    m.def("current_thread_id", [] { return pc::current_thread_id(); },
          "The id the hooks record for the calling thread (pthread_self).");
  }
}

}  // namespace pyprof::cuda::bind
