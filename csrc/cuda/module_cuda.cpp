// pybind11 surface of the CUDA/CUPTI part. It is a sibling of pyprof._C rather than part of it so that a machine where
// libcupti cannot be loaded still has the whole CPU path (pyprof._C imports without any CUDA library).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "peak_kernels.h"
#include "probe.h"
// section includes (one line per concern)
#include "activity.h"
#include "aggregator.h"
#include "libcalls.h"
#include "libhooks.h"
#include "range_profiler.h"
#include "pm_sampler.h"

namespace py = pybind11;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "pyprof CUDA/CUPTI part: device probe and GPU peak microkernels";
  m.def("probe", [] {
    const auto p = pyprof::cuda::probe();
    py::list devices;
    for (const auto& d : p.devices) {
      py::dict dd;
      dd["index"] = d.index;
      dd["name"] = d.name;
      dd["compute_capability"] = py::make_tuple(d.cc_major, d.cc_minor);
      dd["sm_count"] = d.sm_count;
      dd["sm_clock_khz"] = d.sm_clock_khz;
      dd["memory_clock_khz"] = d.memory_clock_khz;
      dd["memory_bytes"] = d.memory_bytes;
      devices.append(dd);
    }
    py::dict out;
    out["runtime_version"] = p.runtime_version;
    out["driver_version"] = p.driver_version;
    out["cupti_version"] = p.cupti_version;
    out["device_count"] = p.device_count;
    out["status"] = p.status;
    out["devices"] = devices;
    return out;
  }, "Driver, runtime, CUPTI versions and the GPUs present; never raises for a missing driver or GPU.");
  m.def("ffma_peak", [](int device, int blocks_per_sm, int threads_per_block, int iterations) {
    pyprof::cuda::KernelPeak r;
    {
      py::gil_scoped_release release;
      r = pyprof::cuda::ffma_peak(device, blocks_per_sm, threads_per_block, iterations);
    }
    py::dict out;
    out["flops"] = r.flops;
    out["seconds"] = r.seconds;
    out["flops_per_s"] = r.flops_per_s;
    out["blocks"] = r.blocks;
    out["threads_per_block"] = r.threads_per_block;
    out["iterations"] = r.iterations;
    return out;
  }, py::arg("device") = 0, py::arg("blocks_per_sm") = 8, py::arg("threads_per_block") = 256,
     py::arg("iterations") = 1 << 16,
     "FP32 FFMA-chain peak of one GPU, timed with CUDA events.");

  // ==== section activity: activity tracer and aggregator (activity.h, aggregator.h) ====
  // ==== end section activity ====

  // ==== section libhooks: library-call hooks and parsers (libhooks.h, libcalls.h) ====
  {
    namespace pc = pyprof::cuda;
    auto call_dict = [](const pc::LibCall& c) {
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
    };
    auto opt_dict = [call_dict](const std::optional<pc::LibCall>& c) -> py::object {
      if (!c) return py::none();
      return call_dict(*c);
    };
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
    m.def("hooks_feed_for_test", [](const std::string& library, const std::string& function_name,
                                    const std::string& message, uint64_t stream) {
      if (library == "cublasLt") pc::hooks_on_cublaslt_message(2, function_name.c_str(), message.c_str());
      else pc::hooks_on_cudnn_message(message.c_str(), stream);
    }, py::arg("library"), py::arg("function_name"), py::arg("message"), py::arg("stream") = 0,
       "Test seam: run a logger callback's body (parse, count, record on this thread) on one message.");
    m.def("libcall_record_for_test", [](uint64_t thread_id, uint64_t stream, int64_t m_, int64_t n, int64_t k,
                                        int64_t batch, const std::string& op) {
      pc::LibCall c;
      c.library = "test";
      c.op = op;
      c.m = m_;
      c.n = n;
      c.k = k;
      c.batch = batch;
      c.flops = 2.0 * static_cast<double>(m_) * n * k * batch;
      c.thread_id = thread_id;
      c.stream = stream;
      return pc::libcall_registry().record(std::move(c));
    }, py::arg("thread_id"), py::arg("stream") = 0, py::arg("m") = 1, py::arg("n") = 1, py::arg("k") = 1,
       py::arg("batch") = 1, py::arg("op") = "matmul", "Test seam: record a call; returns its id.");
    m.def("libcall_bind_launch_for_test", [](uint64_t thread_id, uint64_t stream, uint32_t correlation_id) {
      return pc::libcall_registry().bind_launch(thread_id, stream, correlation_id);
    }, py::arg("thread_id"), py::arg("stream"), py::arg("correlation_id"),
       "Test seam: bind the thread's pending call to a launch; returns the call id or 0.");
    m.def("libcall_take_for_test", [opt_dict](uint32_t correlation_id) {
      return opt_dict(pc::libcall_registry().take(correlation_id));
    }, py::arg("correlation_id"), "Test seam: take the call bound to a correlation id, or None.");
    m.def("libcall_clear_for_test", [] { pc::libcall_registry().clear(); },
          "Test seam: empty the library-call registry and its counters.");
    m.def("current_thread_id", [] { return pc::current_thread_id(); },
          "The id the hooks record for the calling thread (pthread_self).");
  }
  // ==== end section libhooks ====

  // ==== section range_profiler: Range Profiler and host-side metric configuration (range_profiler.h) ====
  // ==== end section range_profiler ====

  // ==== section pm_sampler: PM sampling (pm_sampler.h) ====
  {
    using pyprof::cuda::PmSample;
    using pyprof::cuda::PmSampler;
    using pyprof::cuda::PmSampleRing;
    auto sample_dict = [](const PmSample& s, const std::vector<std::string>& names) {
      py::dict values;
      for (std::size_t i = 0; i < names.size() && i < s.values.size(); ++i) values[py::str(names[i])] = s.values[i];
      py::dict d;
      d["start_ns"] = s.start_ns;
      d["end_ns"] = s.end_ns;
      d["values"] = values;
      return d;
    };
    m.def("pm_config", [](const std::string& chip, const std::vector<std::string>& metrics, bool require_one_pass) {
      pyprof::cuda::PmConfig c;
      {
        py::gil_scoped_release release;
        c = pyprof::cuda::pm_config(chip, metrics, {}, require_one_pass);
      }
      py::dict out;
      out["num_passes"] = c.num_passes;
      out["config_image_bytes"] = c.config_image.size();
      out["metrics"] = c.metrics;
      return out;
    }, py::arg("chip"), py::arg("metrics"), py::arg("require_one_pass") = true,
       "PM-sampling config image size and pass count for `metrics` on `chip` (CUPTI host API, no GPU needed). "
       "Raises RuntimeError naming a metric CUPTI rejects, or (require_one_pass) the one that makes the set need > 1 pass.");
    m.def("pm_base_metrics", [](const std::string& chip) {
      py::gil_scoped_release release;
      return pyprof::cuda::pm_base_metrics(chip);
    }, py::arg("chip"), "Base metric names PM sampling offers on `chip` (no rollup suffixes); no GPU needed.");
    m.def("pm_chip_name", [](int device) {
      py::gil_scoped_release release;
      return pyprof::cuda::pm_chip_name(device);
    }, py::arg("device") = 0, "CUPTI chip name of a CUDA device (e.g. 'GH100'); RuntimeError without a driver/GPU.");

    py::class_<PmSampler>(m, "PmSampler",
                          "Device-wide PM sampling of `metrics` every `interval_ns`, decoded by a C++ thread into a "
                          "ring of at most `max_samples` samples (oldest overwritten and counted).")
        .def(py::init<int, std::vector<std::string>, uint64_t, std::size_t>(), py::arg("device"), py::arg("metrics"),
             py::arg("interval_ns") = 2'000'000, py::arg("max_samples") = 100'000)
        .def("start", [](PmSampler& s) {
          py::gil_scoped_release release;
          return s.start();
        }, "Start sampling. Never raises; returns 'running' or the failure status ('permission_denied', "
           "'no_device', 'not_supported', 'error') with the text in stats()['error'].")
        .def("stop", [](PmSampler& s) {
          py::gil_scoped_release release;
          s.stop();
        }, "Stop, decode what is left, join the decode thread, disable PM sampling. Never raises.")
        .def("samples", [sample_dict](PmSampler& s) {
          std::vector<PmSample> v;
          {
            py::gil_scoped_release release;
            v = s.samples();
          }
          py::list out;
          for (const auto& x : v) out.append(sample_dict(x, s.metrics()));
          return out;
        }, "Drain the samples decoded so far: [{'start_ns', 'end_ns', 'values': {metric: float}}].")
        .def("stats", [](const PmSampler& s) {
          const auto st = s.stats();
          py::dict d;
          d["decoded"] = st.decoded;
          d["dropped"] = st.dropped;
          d["overflows"] = st.overflows;
          d["decode_errors"] = st.decode_errors;
          d["status"] = st.status;
          d["error"] = st.error;
          d["chip"] = st.chip;
          d["trigger_mode"] = st.trigger_mode;
          d["interval_ns"] = st.interval_ns;
          d["cupti_ts_at_start_ns"] = st.cupti_ts_at_start_ns;
          d["monotonic_ns_at_start"] = st.monotonic_ns_at_start;
          return d;
        })
        .def_property_readonly("metrics", &PmSampler::metrics);

    // The ring the decode thread writes to, bound so that its bound-and-count behaviour is tested on a CPU.
    py::class_<PmSampleRing>(m, "_PmSampleRing")
        .def(py::init<std::size_t>(), py::arg("capacity"))
        .def("push", [](PmSampleRing& r, uint64_t start_ns, uint64_t end_ns, std::vector<double> values) {
          r.push(PmSample{start_ns, end_ns, std::move(values)});
        }, py::arg("start_ns"), py::arg("end_ns"), py::arg("values"))
        .def("drain", [](PmSampleRing& r) {
          py::list out;
          for (const auto& s : r.drain()) out.append(py::make_tuple(s.start_ns, s.end_ns, s.values));
          return out;
        })
        .def_property_readonly("dropped", &PmSampleRing::dropped)
        .def("__len__", &PmSampleRing::size);
  }
  // ==== end section pm_sampler ====

  // ==== section peaks: peak microkernels beyond ffma_peak (peak_kernels.h) ====
  // ==== end section peaks ====
}
