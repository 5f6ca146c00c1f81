// Bindings: the CUPTI activity tracer and its aggregator (activity.h, aggregator.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda/bind/bind.h"
#include "cuda/activity.h"
#include "cuda/aggregator.h"

namespace py = pybind11;

namespace pyprof::cuda::bind {

void bind_activity(py::module_& m) {
  {
    namespace pc = pyprof::cuda;
    auto& tracer = pc::ActivityTracer::instance();
    auto grid3 = [](const int32_t* v) { return py::make_tuple(v[0], v[1], v[2]); };
    m.attr("CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED") = pc::kCuptiErrorMultipleSubscribers;
    m.attr("TRACER_NO_DRIVER") = pc::TracerStatus::kNoDriver;

    m.def("tracer_start", [&tracer](size_t buffer_bytes, size_t max_buffers, bool external_correlation) {
      pc::TracerOptions o;
      o.buffer_bytes = buffer_bytes;
      o.max_buffers = max_buffers;
      o.external_correlation = external_correlation;
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
       py::arg("external_correlation") = false,
       "Start the process-wide CUPTI kernel tracer (external_correlation: also record per-launch API records so that "
       "tracer_push_external_id tags reach the kernels; off by default, it costs time on every launch). Returns {ok, code, message, holder}; code is a CUptiResult "
       "(CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED when another tool holds CUPTI) or TRACER_NO_DRIVER. "
       "Raises ValueError for bad options only.");
    m.def("tracer_stop", [&tracer] {
      py::gil_scoped_release release;
      tracer.stop();
    }, "Flush, disable the activity kinds and unsubscribe; no-op when not tracing.");
    m.def("tracer_flush", [&tracer](bool forced) {
      py::gil_scoped_release release;
      tracer.flush(forced);
    }, py::arg("forced") = false,
       "Hand CUPTI's buffers whose records are all complete (full or not) to the decoder; forced=True also those with "
       "incomplete records (end of a session only). Blocks until done.");
    m.def("tracer_reset", [&tracer] {
      py::gil_scoped_release release;
      tracer.reset();
    }, "Decode what CUPTI completed, then forget the aggregator's records, rows and counters: a new profile starts "
       "empty. The tracer stays as it is.");
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
      d["clock"] = s.monotonic_clock ? "monotonic" : "cupti";
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
      d["foreign_buffers"] = s.buffers.foreign;
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
      d["library_calls_untimed"] = s.aggregator.library_calls_untimed;
      d["pending_records"] = s.aggregator.pending;
      d["kernel_keys"] = s.aggregator.keys;
      return d;
    }, "Counters of the tracer: records decoded, losses (CUPTI drops, refused buffers, pending drops, key overflow, "
       "records outside any window) and errors logged in callbacks.");
    m.def("tracer_push_external_id", [&tracer](uint64_t id) { tracer.push_external_id(id); }, py::arg("id"),
          "Tag this thread's next launches with id (CUSTOM0 external correlation); no-op when not tracing.");
    m.def("tracer_pop_external_id", [&tracer] { return tracer.pop_external_id(); },
          "End the innermost tag of this thread; returns its id, 0 when none or not tracing.");

  }
}

}  // namespace pyprof::cuda::bind
