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
  {
    namespace pc = pyprof::cuda;
    auto& tracer = pc::ActivityTracer::instance();
    auto grid3 = [](const int32_t* v) { return py::make_tuple(v[0], v[1], v[2]); };
    auto to_int3 = [](const py::tuple& t, const char* what) {
      if (t.size() != 3) throw py::value_error(std::string(what) + " must be a tuple of 3 ints");
      return std::vector<int32_t>{t[0].cast<int32_t>(), t[1].cast<int32_t>(), t[2].cast<int32_t>()};
    };
    m.attr("CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED") = pc::kCuptiErrorMultipleSubscribers;
    m.attr("TRACER_NO_DRIVER") = pc::TracerStatus::kNoDriver;

    m.def("tracer_start", [&tracer](size_t buffer_bytes, size_t max_buffers) {
      pc::TracerOptions o;
      o.buffer_bytes = buffer_bytes;
      o.max_buffers = max_buffers;
      pc::TracerStatus s;
      {
        py::gil_scoped_release release;
        s = tracer.start(o);
      }
      py::dict d;
      d["ok"] = s.ok;
      d["code"] = s.code;
      d["message"] = s.message;
      d["holder"] = s.holder;
      return d;
    }, py::arg("buffer_bytes") = size_t{4} << 20, py::arg("max_buffers") = size_t{64},
       "Start the process-wide CUPTI kernel tracer. Returns {ok, code, message, holder}; code is a CUptiResult "
       "(CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED when another tool holds CUPTI) or TRACER_NO_DRIVER. "
       "Raises ValueError for bad options only.");
    m.def("tracer_stop", [&tracer] {
      py::gil_scoped_release release;
      tracer.stop();
    }, "Flush, disable the activity kinds and unsubscribe; no-op when not tracing.");
    m.def("tracer_flush", [&tracer] {
      py::gil_scoped_release release;
      tracer.flush();
    }, "Hand every CUPTI buffer (full or not) to the decoder; blocks until done.");
    m.def("tracer_now_ns", [&tracer] { return tracer.now_ns(); },
          "CUPTI's timestamp (ns), the clock of the kernel records.");
    m.def("tracer_active", [&tracer] { return tracer.active(); });
    m.def("tracer_close_window", [&tracer, grid3](uint64_t start_ns, uint64_t end_ns, bool keep_records) {
      const pc::WindowSummary w = tracer.aggregator().close_window(start_ns, end_ns, keep_records);
      py::dict busy, idle, flops;
      for (const auto& [dev, ns] : w.busy_ns) busy[py::int_(dev)] = ns;
      for (const auto& [dev, ns] : w.idle_ns) idle[py::int_(dev)] = ns;
      for (const auto& [prec, f] : w.library_flops) flops[py::str(prec)] = f;
      py::dict d;
      d["start_ns"] = w.start_ns;
      d["end_ns"] = w.end_ns;
      d["kernel_count"] = w.kernel_count;
      d["kernel_ns"] = w.kernel_ns;
      d["busy_ns"] = busy;
      d["idle_ns"] = idle;
      d["uncounted_kernel_ns"] = w.uncounted_kernel_ns;
      d["library_flops"] = flops;
      d["library_kernel_count"] = w.library_kernel_count;
      d["memcpy_count"] = w.memcpy_count;
      d["memcpy_bytes"] = w.memcpy_bytes;
      d["memcpy_ns"] = w.memcpy_ns;
      d["memset_count"] = w.memset_count;
      d["memset_bytes"] = w.memset_bytes;
      d["memset_ns"] = w.memset_ns;
      d["discarded_before_start"] = w.discarded_before_start;
      d["records_truncated"] = w.records_truncated;
      if (!w.has_records) {
        d["records"] = py::none();
      } else {
        py::list recs;
        for (const auto& k : w.records) {
          py::dict r;
          r["name"] = k.name;
          r["device"] = k.device_id;
          r["context"] = k.context_id;
          r["stream"] = k.stream_id;
          r["grid"] = grid3(k.grid);
          r["block"] = grid3(k.block);
          r["start_ns"] = k.start_ns;
          r["end_ns"] = k.end_ns;
          r["correlation_id"] = k.correlation_id;
          r["graph_id"] = k.graph_id;
          r["graph_node_id"] = k.graph_node_id;
          r["external_id"] = k.external_id;
          r["library_flops"] = k.library_flops;
          r["precision"] = k.precision.empty() ? py::object(py::none()) : py::object(py::str(k.precision));
          recs.append(r);
        }
        d["records"] = recs;
      }
      return d;
    }, py::arg("start_ns"), py::arg("end_ns"), py::arg("keep_records") = false,
       "Aggregate and remove the pending records that start in [start_ns, end_ns) (tracer_now_ns clock); "
       "earlier ones are discarded (counted as outside_windows), later ones stay pending. Does not flush.");
    m.def("tracer_kernel_table", [&tracer, grid3](int top_n) {
      py::list out;
      for (const auto& r : tracer.aggregator().kernel_table(top_n)) {
        py::dict d;
        d["name"] = r.name;
        d["device"] = r.device;
        d["grid"] = grid3(r.grid);
        d["block"] = grid3(r.block);
        d["count"] = r.count;
        d["total_ns"] = r.total_ns;
        d["max_ns"] = r.max_ns;
        d["library_flops"] = r.library_flops;
        d["library_ns"] = r.library_ns;
        d["precision"] = r.precision.empty() ? py::object(py::none()) : py::object(py::str(r.precision));
        d["library_calls"] = r.library_calls;
        out.append(d);
      }
      return out;
    }, py::arg("top_n") = 20,
       "Kernel rows keyed by (name, grid, block, device), longest total time first; top_n <= 0 gives all.");
    m.def("tracer_stats", [&tracer] {
      const pc::TracerStats s = tracer.stats();
      py::dict d;
      d["active"] = s.active;
      d["records_decoded"] = s.records_decoded;
      d["kernel_records"] = s.kernel_records;
      d["memcpy_records"] = s.memcpy_records;
      d["memset_records"] = s.memset_records;
      d["external_correlation_records"] = s.external_records;
      d["api_records"] = s.api_records;
      d["other_records"] = s.other_records;
      d["buffers_completed"] = s.buffers_completed;
      d["dropped_by_cupti"] = s.dropped_by_cupti;
      d["buffer_requests_refused"] = s.buffers.refused;
      d["buffers_allocated"] = s.buffers.allocated;
      d["buffers_in_use"] = s.buffers.in_use;
      d["decode_errors"] = s.decode_errors;
      d["callback_errors"] = s.callback_errors;
      d["last_error"] = s.last_error;
      d["launches_seen"] = s.launches_seen;
      d["launches_bound"] = s.launches_bound;
      d["pending_dropped"] = s.aggregator.pending_dropped;
      d["keys_overflowed"] = s.aggregator.keys_overflowed;
      d["outside_windows"] = s.aggregator.outside_windows;
      d["no_timestamp_records"] = s.aggregator.no_timestamp;
      d["external_ids_evicted"] = s.aggregator.external_evicted;
      d["library_kernels"] = s.aggregator.library_kernels;
      d["pending_records"] = s.aggregator.pending;
      d["kernel_keys"] = s.aggregator.keys;
      return d;
    }, "Counters of the tracer: records decoded, losses (CUPTI drops, refused buffers, pending drops, key overflow, "
       "records outside any window) and errors logged in callbacks.");
    m.def("tracer_push_external_id", [&tracer](uint64_t id) { tracer.push_external_id(id); }, py::arg("id"),
          "Tag this thread's next launches with id (CUSTOM0 external correlation); no-op when not tracing.");
    m.def("tracer_pop_external_id", [&tracer] { return tracer.pop_external_id(); },
          "End the innermost tag of this thread; returns its id, 0 when none or not tracing.");

    // ---- test seam: CUPTI-layout records through the real decoder, without a GPU ----
    m.def("activity_make_kernel_record",
          [to_int3](const std::string& name, uint64_t start_ns, uint64_t end_ns, uint32_t device, uint32_t stream,
                    const py::tuple& grid, const py::tuple& block, uint32_t correlation_id, uint32_t context,
                    uint32_t graph_id, uint64_t graph_node_id, bool concurrent) {
            const auto g = to_int3(grid, "grid");
            const auto b = to_int3(block, "block");
            return py::bytes(pc::make_kernel_record_bytes(name, start_ns, end_ns, device, context, stream, g.data(),
                                                          b.data(), correlation_id, graph_id, graph_node_id,
                                                          concurrent));
          },
          py::arg("name"), py::arg("start_ns"), py::arg("end_ns"), py::arg("device") = 0, py::arg("stream") = 7,
          py::arg("grid") = py::make_tuple(1, 1, 1), py::arg("block") = py::make_tuple(1, 1, 1),
          py::arg("correlation_id") = 0, py::arg("context") = 1, py::arg("graph_id") = 0,
          py::arg("graph_node_id") = 0, py::arg("concurrent") = true,
          "A CUpti_ActivityKernel10 record (kind CONCURRENT_KERNEL, or KERNEL when concurrent=False) as bytes.");
    m.def("activity_make_memcpy_record",
          [](uint64_t num_bytes, uint64_t start_ns, uint64_t end_ns, uint8_t copy_kind, uint32_t device,
             uint32_t stream, uint32_t correlation_id, uint32_t context) {
            return py::bytes(pc::make_memcpy_record_bytes(num_bytes, start_ns, end_ns, copy_kind, device, context,
                                                          stream, correlation_id));
          },
          py::arg("num_bytes"), py::arg("start_ns"), py::arg("end_ns"), py::arg("copy_kind") = 1,
          py::arg("device") = 0, py::arg("stream") = 7, py::arg("correlation_id") = 0, py::arg("context") = 1,
          "A CUpti_ActivityMemcpy6 record as bytes (copy_kind: CUpti_ActivityMemcpyKind, 1 = HtoD).");
    m.def("activity_make_memset_record",
          [](uint64_t num_bytes, uint64_t start_ns, uint64_t end_ns, uint32_t value, uint32_t device,
             uint32_t stream, uint32_t correlation_id, uint32_t context) {
            return py::bytes(pc::make_memset_record_bytes(num_bytes, start_ns, end_ns, value, device, context,
                                                          stream, correlation_id));
          },
          py::arg("num_bytes"), py::arg("start_ns"), py::arg("end_ns"), py::arg("value") = 0, py::arg("device") = 0,
          py::arg("stream") = 7, py::arg("correlation_id") = 0, py::arg("context") = 1,
          "A CUpti_ActivityMemset4 record as bytes.");
    m.def("activity_make_external_correlation_record",
          [](uint32_t correlation_id, uint64_t external_id, uint32_t external_kind) {
            return py::bytes(pc::make_external_correlation_record_bytes(correlation_id, external_id, external_kind));
          },
          py::arg("correlation_id"), py::arg("external_id"),
          py::arg("external_kind") = pc::kExternalKindCustom0,
          "A CUpti_ActivityExternalCorrelation record as bytes (kind CUSTOM0 by default).");
    m.def("activity_decode_for_test", [&tracer](const py::bytes& buffer) {
      const std::string raw = buffer;
      const pc::DecodeCounts c = tracer.ingest_bytes_for_test(raw.data(), raw.size());
      py::dict d;
      d["records"] = c.records;
      d["kernels"] = c.kernels;
      d["memcpys"] = c.memcpys;
      d["memsets"] = c.memsets;
      d["external_correlations"] = c.externals;
      d["api"] = c.api;
      d["other"] = c.other;
      d["error"] = c.error ? py::object(py::str(c.error_message)) : py::object(py::none());
      return d;
    }, py::arg("buffer"),
       "Decode concatenated CUPTI records with the tracer's own buffer path into the live aggregator.");
    m.def("activity_reset_for_test", [&tracer] {
      tracer.reset_for_test();
      tracer.aggregator().set_limits(pc::Aggregator::Limits{});
    }, "Forget records, rows, counters and pending library calls; restore the default limits.");
    m.def("activity_set_limits_for_test",
          [&tracer](size_t max_kernel_keys, size_t max_pending_records, size_t max_window_records,
                    size_t max_external_ids) {
            pc::Aggregator::Limits l;
            l.max_kernel_keys = max_kernel_keys;
            l.max_pending_records = max_pending_records;
            l.max_window_records = max_window_records;
            l.max_external_ids = max_external_ids;
            tracer.aggregator().set_limits(l);
          },
          py::arg("max_kernel_keys") = 4096, py::arg("max_pending_records") = size_t{1} << 19,
          py::arg("max_window_records") = size_t{1} << 16, py::arg("max_external_ids") = size_t{1} << 16,
          "Set the aggregator's caps (tests use small ones to reach the overflow paths).");
    m.def("activity_record_libcall_for_test",
          [](uint64_t thread_id, uint64_t stream, double flops, const std::string& precision) {
            pc::LibCall c;
            c.library = "test";
            c.op = "matmul";
            c.thread_id = thread_id;
            c.stream = stream;
            c.flops = flops;
            c.precision = precision;
            return pc::libcall_registry().record(std::move(c));
          },
          py::arg("thread_id"), py::arg("stream"), py::arg("flops"), py::arg("precision"),
          "Record a library call in the registry, as the hooks do (returns its id).");
    m.def("activity_bind_launch_for_test",
          [](uint64_t thread_id, uint64_t stream, uint32_t correlation_id) {
            return pc::libcall_registry().bind_launch(thread_id, stream, correlation_id);
          },
          py::arg("thread_id"), py::arg("stream"), py::arg("correlation_id"),
          "Bind the thread's pending library call to a launch, as the launch callback does (returns the call id, "
          "0 when none bound).");
  }
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
  {
    namespace pc = pyprof::cuda;
    // Exception classes Python acts on: all derive from CounterError (a RuntimeError); the message names the CUPTI
    // call and ends with "[status=...]" and the fix. Leaked on purpose: they live as long as the interpreter.
    static PyObject* counter_error =
        PyErr_NewExceptionWithDoc("pyprof._C_cuda.CounterError", "A CUPTI counter operation failed.",
                                  PyExc_RuntimeError, nullptr);
    static PyObject* permission_error = PyErr_NewExceptionWithDoc(
        "pyprof._C_cuda.CounterPermissionError",
        "GPU performance counters need admin rights here (CUPTI_ERROR_INSUFFICIENT_PRIVILEGES / ERR_NVGPUCTRPERM).",
        counter_error, nullptr);
    static PyObject* in_use_error = PyErr_NewExceptionWithDoc(
        "pyprof._C_cuda.CountersInUseError",
        "The counter hardware is held by another client (DCGM profiling, ncu/nsys, another CUPTI session).",
        counter_error, nullptr);
    static PyObject* unsupported_error = PyErr_NewExceptionWithDoc(
        "pyprof._C_cuda.CounterUnsupportedError",
        "No GPU/driver, or a device or configuration (MIG, vGPU, WSL, CMP, ...) the Range Profiler cannot serve.",
        counter_error, nullptr);
    m.attr("CounterError") = py::handle(counter_error);
    m.attr("CounterPermissionError") = py::handle(permission_error);
    m.attr("CountersInUseError") = py::handle(in_use_error);
    m.attr("CounterUnsupportedError") = py::handle(unsupported_error);
    py::register_exception_translator([](std::exception_ptr p) {
      try {
        if (p) std::rethrow_exception(p);
      } catch (const pc::CounterError& e) {
        PyObject* cls = counter_error;
        switch (e.status()) {
          case pc::CounterStatus::kInsufficientPrivileges: cls = permission_error; break;
          case pc::CounterStatus::kCountersInUse: cls = in_use_error; break;
          case pc::CounterStatus::kUnsupported: cls = unsupported_error; break;
          default: break;
        }
        PyErr_SetString(cls, e.what());
      }
    });

    m.def("counters_supported_chips", [] {
      py::gil_scoped_release release;
      return pc::supported_chips();
    }, "Chip names (e.g. 'GA100', 'GH100') the installed CUPTI host library can configure counters for; no GPU needed.");
    m.def("counters_base_metrics",
          [](const std::string& chip, const std::string& metric_type, std::optional<py::bytes> availability) {
            const CUpti_MetricType type = pc::parse_metric_type(metric_type);
            std::vector<uint8_t> image;
            if (availability) {
              const std::string s = *availability;
              image.assign(s.begin(), s.end());
            }
            py::gil_scoped_release release;
            pc::HostConfig host(chip, std::move(image));
            return host.base_metrics(type);
          },
          py::arg("chip"), py::arg("metric_type") = "counter", py::arg("counter_availability") = py::none(),
          "Base metric names (no rollup suffix) of one type ('counter', 'ratio', 'throughput') on a chip; "
          "counter_availability (from counters_availability_image) narrows them to what a live device offers.");
    m.def("counters_sub_metrics",
          [](const std::string& chip, const std::string& metric, const std::string& metric_type) {
            const CUpti_MetricType type = pc::parse_metric_type(metric_type);
            py::gil_scoped_release release;
            pc::HostConfig host(chip);
            return host.sub_metrics(metric, type);
          },
          py::arg("chip"), py::arg("metric"), py::arg("metric_type") = "counter",
          "Rollup/sub-metric suffixes of a base metric (e.g. '.sum', '.sum.peak_sustained').");
    m.def("counters_metric_properties",
          [](const std::string& chip, const std::string& metric) {
            pc::MetricProperties p;
            {
              py::gil_scoped_release release;
              pc::HostConfig host(chip);
              p = host.properties(metric);
            }
            py::dict d;
            d["name"] = p.name;
            d["description"] = p.description;
            d["hw_unit"] = p.hw_unit;
            d["dim_unit"] = p.dim_unit;
            d["metric_type"] = p.metric_type;
            return d;
          },
          py::arg("chip"), py::arg("metric"),
          "Description, hardware unit, dimension unit and type of one metric; ValueError naming it when unknown.");
    m.def("counters_config",
          [](const std::string& chip, const std::vector<std::string>& metrics, std::optional<py::bytes> availability) {
            std::vector<uint8_t> image;
            if (availability) {
              const std::string s = *availability;
              image.assign(s.begin(), s.end());
            }
            pc::CounterConfig c;
            {
              py::gil_scoped_release release;
              c = pc::make_counter_config(chip, metrics, image);
            }
            py::dict d;
            d["num_passes"] = c.num_passes;
            d["config_image_bytes"] = c.config_image.size();
            d["metrics"] = c.metrics;
            return d;
          },
          py::arg("chip"), py::arg("metrics"), py::arg("counter_availability") = py::none(),
          "Range Profiler configuration for a metric list on a chip: the number of passes CUPTI needs (queried) and "
          "the config image size; ValueError naming any unknown metric.");
    m.def("counters_chip_name", [](int device) {
      py::gil_scoped_release release;
      return pc::device_chip_name(device);
    }, py::arg("device") = 0, "CUPTI chip name of a live device (e.g. 'GH100'); CounterUnsupportedError without a GPU.");
    m.def("counters_availability_image", [](int device) {
      std::vector<uint8_t> image;
      {
        py::gil_scoped_release release;
        image = pc::counter_availability_image(device);
      }
      return py::bytes(reinterpret_cast<const char*>(image.data()), image.size());
    }, py::arg("device") = 0, "Counter availability image of a live device, for counters_config/counters_base_metrics.");

    py::class_<pc::RangeProfiler>(m, "RangeProfiler",
                                  "One CUPTI Range Profiler session on one device. mode 'kernel': one range per "
                                  "kernel, kernel replay (exact; serializes kernels). mode 'step': push/pop ranges, "
                                  "application replay with one pass per start()..stop() (run identical steps).")
        .def(py::init([](int device, const std::vector<std::string>& metrics, const std::string& mode,
                         size_t max_ranges) {
               const pc::RangeMode rm = pc::parse_range_mode(mode);
               py::gil_scoped_release release;
               return std::make_unique<pc::RangeProfiler>(device, metrics, rm, max_ranges);
             }),
             py::arg("device"), py::arg("metrics"), py::arg("mode"), py::arg("max_ranges") = 2048)
        .def_property_readonly("num_passes", &pc::RangeProfiler::num_passes)
        .def_property_readonly("chip", &pc::RangeProfiler::chip)
        .def_property_readonly("metrics", &pc::RangeProfiler::metrics)
        .def_property_readonly("last_pass_index", &pc::RangeProfiler::last_pass_index)
        .def_property_readonly("all_passes_submitted", &pc::RangeProfiler::all_passes_submitted)
        .def_property_readonly("closed", &pc::RangeProfiler::closed)
        .def("start", &pc::RangeProfiler::start, py::call_guard<py::gil_scoped_release>())
        .def("push_range", &pc::RangeProfiler::push_range, py::arg("name"), py::call_guard<py::gil_scoped_release>())
        .def("pop_range", &pc::RangeProfiler::pop_range, py::call_guard<py::gil_scoped_release>())
        .def("stop", &pc::RangeProfiler::stop, py::call_guard<py::gil_scoped_release>(),
             "Ends a pass; True once all passes have been submitted.")
        .def("decode",
             [](pc::RangeProfiler& self, size_t first_range) {
               pc::DecodedRanges d;
               {
                 py::gil_scoped_release release;
                 d = self.decode(first_range);
               }
               const auto& names = self.metrics();
               py::list ranges;
               for (const auto& r : d.ranges) {
                 py::dict values;
                 for (size_t i = 0; i < names.size() && i < r.values.size(); ++i) values[py::str(names[i])] = r.values[i];
                 py::dict rd;
                 rd["name"] = r.name;
                 rd["values"] = values;
                 ranges.append(rd);
               }
               py::dict out;
               out["ranges"] = ranges;
               out["dropped_ranges"] = d.dropped_ranges;
               out["total_ranges"] = d.total_ranges;
               return out;
             },
             py::arg("first_range") = 0,
             "Decodes collected data: {'ranges': [{'name', 'values': {metric: float}}], 'dropped_ranges', "
             "'total_ranges'}; ranges before first_range are skipped.")
        .def("close", &pc::RangeProfiler::close, py::call_guard<py::gil_scoped_release>());
  }
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
  m.def("gpu_peak_kinds", [] {
    py::gil_scoped_release release;
    return pyprof::cuda::peak_kinds();
  }, "Peak kernels this build can run: ffma, dfma, hfma2, mma_bf16/fp16/tf32 (sm_80+ code), wgmma_bf16 (sm_90a code;\n"
     "on a compute capability 9.0 GPU a one-thread probe confirms the sm_90a image).");
  m.def("gpu_peak", [](const std::string& kind, int device, int iterations, int repeats) {
    pyprof::cuda::PeakRun r;
    {
      py::gil_scoped_release release;
      r = pyprof::cuda::gpu_peak(kind, device, iterations, repeats);
    }
    py::dict out;
    out["kind"] = r.kind;
    out["precision"] = r.precision;
    out["formula"] = r.formula;
    out["flops"] = r.flops;
    out["seconds_median"] = r.seconds_median;
    out["seconds_best"] = r.seconds_best;
    out["seconds"] = r.seconds;
    out["flops_per_s"] = r.flops_per_s_median;
    out["flops_per_s_best"] = r.flops_per_s_best;
    out["sm_clock_hz"] = r.sm_clock_hz;
    out["sm_count"] = r.sm_count;
    out["blocks"] = r.blocks;
    out["threads_per_block"] = r.threads_per_block;
    out["iterations"] = r.iterations;
    out["repeats"] = r.repeats;
    out["warmup"] = r.warmup;
    return out;
  }, py::arg("kind"), py::arg("device") = 0, py::arg("iterations") = 0, py::arg("repeats") = 5,
     "Measure one peak kernel (see gpu_peak_kinds) on `device`: one warm-up launch, then `repeats` launches timed with\n"
     "CUDA events. iterations=0 takes the kind's default. Returns flops (exact, per launch), seconds_median/best,\n"
     "flops_per_s (median) and flops_per_s_best, sm_clock_hz (clock64 cycles / time of the median launch), the launch\n"
     "shape and the FLOP formula. ValueError for a bad kind/device/iterations/repeats; RuntimeError for CUDA errors,\n"
     "a GPU that cannot run the kind, or wgmma code not built for sm_90a.");
  // ==== end section peaks ====
}
