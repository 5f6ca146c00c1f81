// pyprof._C_cuda.testing: the seams pyprof's tests drive on a CPU (STYLE.md habit 4). Each entry point runs the real
// code path (decoder, aggregator, registry, hook callbacks, tracer lifecycle against a recording fake of CUPTI, pass
// bookkeeping, counter claims); nothing here is used by pyprof itself.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cupti.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/activity.h"
#include "cuda/aggregator.h"
#include "cuda/bind/bind.h"
#include "cuda/counter_claims.h"
#include "cuda/libcalls.h"
#include "cuda/libhooks.h"
#include "cuda/pm_sampler.h"
#include "cuda/range_profiler.h"
#include "cuda/testing/records.h"

namespace py = pybind11;

namespace pyprof::cuda::testing {
namespace {

std::vector<int32_t> to_int3(const py::tuple& t, const char* what) {
  if (t.size() != 3) throw py::value_error(std::string(what) + " must be a tuple of 3 ints");
  return {t[0].cast<int32_t>(), t[1].cast<int32_t>(), t[2].cast<int32_t>()};
}

// A fake CUPTI for the tracer's lifecycle: records every call as text and answers with chosen results.
struct CallLog {
  std::mutex mu;
  std::vector<std::string> calls;
  std::map<std::string, int> results;  // call name -> CUptiResult to return (default 0)
  int driver_version = 13000;
  uint64_t clock_ns = 1000;
};

class RecordingVendor final : public ActivityVendor {
 public:
  explicit RecordingVendor(std::shared_ptr<CallLog> log) : log_(std::move(log)) {}
  int driver_version(std::string* error) override {
    note("driver_version");
    if (log_->driver_version == 0 && error) *error = "fake: no driver";
    return log_->driver_version;
  }
  int subscribe(void** subscriber, std::string* holder) override {
    *subscriber = this;
    if (holder) holder->clear();
    return note("subscribe");
  }
  int unsubscribe(void*) override { return note("unsubscribe"); }
  int enable_callback(void*, int domain, uint32_t cbid, bool on) override {
    return note("enable_callback", std::to_string(domain) + "," + std::to_string(cbid) + "," + (on ? "1" : "0"));
  }
  int register_buffer_callbacks() override { return note("register_buffer_callbacks"); }
  int register_timestamp_callback() override { return note("register_timestamp_callback"); }
  int enable_kind(int kind, bool on) override {
    return note("enable_kind", std::to_string(kind) + "," + (on ? "1" : "0"));
  }
  int enable_api_record(int domain, uint32_t cbid, bool on) override {
    return note("enable_api_record", std::to_string(domain) + "," + std::to_string(cbid) + "," + (on ? "1" : "0"));
  }
  int flush_all(bool forced) override { return note("flush_all", forced ? "1" : "0"); }
  int timestamp(uint64_t* ns) override {
    *ns = log_->clock_ns;
    return note("timestamp");
  }

 private:
  int note(const std::string& name, const std::string& args = "") {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->calls.push_back(args.empty() ? name : name + "(" + args + ")");
    auto it = log_->results.find(name);
    return it == log_->results.end() ? 0 : it->second;
  }
  std::shared_ptr<CallLog> log_;
};

py::dict decode_counts(const DecodeCounts& c) {
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
}

}  // namespace
}  // namespace pyprof::cuda::testing

namespace pyprof::cuda::bind {

void bind_testing(py::module_& t) {
  namespace pc = pyprof::cuda;
  namespace pt = pyprof::cuda::testing;
  auto& tracer = pc::ActivityTracer::instance();

  // ---- CUPTI-layout records through the real decoder ----
  t.def("make_kernel_record",
        [](const std::string& name, uint64_t start_ns, uint64_t end_ns, uint32_t device, uint32_t stream,
           const py::tuple& grid, const py::tuple& block, uint32_t correlation_id, uint32_t context, uint32_t graph_id,
           uint64_t graph_node_id, bool concurrent) {
          const auto g = pt::to_int3(grid, "grid");
          const auto b = pt::to_int3(block, "block");
          return py::bytes(pt::make_kernel_record_bytes(name, start_ns, end_ns, device, context, stream, g.data(),
                                                        b.data(), correlation_id, graph_id, graph_node_id, concurrent));
        },
        py::arg("name"), py::arg("start_ns"), py::arg("end_ns"), py::arg("device") = 0, py::arg("stream") = 7,
        py::arg("grid") = py::make_tuple(1, 1, 1), py::arg("block") = py::make_tuple(1, 1, 1),
        py::arg("correlation_id") = 0, py::arg("context") = 1, py::arg("graph_id") = 0, py::arg("graph_node_id") = 0,
        py::arg("concurrent") = true,
        "A CUpti_ActivityKernel10 record (kind CONCURRENT_KERNEL, or KERNEL when concurrent=False) as bytes.");
  t.def("make_memcpy_record",
        [](uint64_t num_bytes, uint64_t start_ns, uint64_t end_ns, uint8_t copy_kind, uint32_t device,
           uint32_t stream, uint32_t correlation_id, uint32_t context) {
          return py::bytes(pt::make_memcpy_record_bytes(num_bytes, start_ns, end_ns, copy_kind, device, context,
                                                        stream, correlation_id));
        },
        py::arg("num_bytes"), py::arg("start_ns"), py::arg("end_ns"), py::arg("copy_kind") = 1,
        py::arg("device") = 0, py::arg("stream") = 7, py::arg("correlation_id") = 0, py::arg("context") = 1,
        "A CUpti_ActivityMemcpy6 record as bytes (copy_kind: CUpti_ActivityMemcpyKind, 1 = HtoD).");
  t.def("make_memset_record",
        [](uint64_t num_bytes, uint64_t start_ns, uint64_t end_ns, uint32_t value, uint32_t device, uint32_t stream,
           uint32_t correlation_id, uint32_t context) {
          return py::bytes(pt::make_memset_record_bytes(num_bytes, start_ns, end_ns, value, device, context, stream,
                                                        correlation_id));
        },
        py::arg("num_bytes"), py::arg("start_ns"), py::arg("end_ns"), py::arg("value") = 0, py::arg("device") = 0,
        py::arg("stream") = 7, py::arg("correlation_id") = 0, py::arg("context") = 1,
        "A CUpti_ActivityMemset4 record as bytes.");
  t.def("make_external_correlation_record",
        [](uint32_t correlation_id, uint64_t external_id, uint32_t external_kind) {
          return py::bytes(pt::make_external_correlation_record_bytes(correlation_id, external_id, external_kind));
        },
        py::arg("correlation_id"), py::arg("external_id"), py::arg("external_kind") = pc::kExternalKindCustom0,
        "A CUpti_ActivityExternalCorrelation record as bytes (kind CUSTOM0 by default).");
  t.def("decode", [&tracer](const py::bytes& buffer) {
    const std::string raw = buffer;
    return pt::decode_counts(tracer.ingest_bytes_for_test(raw.data(), raw.size()));
  }, py::arg("buffer"), "Decode concatenated CUPTI records with the tracer's own buffer path into the live aggregator.");
  t.def("complete_buffer", [&tracer](const py::bytes& buffer, bool from_pool) {
    // The buffer-completed callback's whole body, on a buffer from the tracer's pool or on one it never handed out
    // (another CUPTI client's).
    const std::string raw = buffer;
    if (from_pool) {
      uint8_t* b = nullptr;
      size_t size = 0, max_records = 0;
      tracer.on_buffer_requested(&b, &size, &max_records);
      if (b == nullptr || raw.size() > size) throw std::runtime_error("the pool handed out no buffer big enough");
      std::memcpy(b, raw.data(), raw.size());
      tracer.on_buffer_completed(nullptr, 0, b, size, raw.size());
      return;
    }
    std::vector<uint64_t> foreign((raw.size() + 7) / 8 + 1);
    std::memcpy(foreign.data(), raw.data(), raw.size());
    tracer.on_buffer_completed(nullptr, 0, reinterpret_cast<uint8_t*>(foreign.data()), foreign.size() * 8,
                               raw.size());
  }, py::arg("buffer"), py::arg("from_pool"),
     "Run the buffer-completed callback on `buffer`, in a pool buffer (from_pool) or a foreign one.");
  t.def("reset", [&tracer] {
    tracer.reset_for_test();
    tracer.aggregator().set_limits(pc::Aggregator::Limits{});
    pc::libcall_registry().set_max_bound(pc::LibCallRegistry::kMaxBound);
  }, "Forget records, rows, counters and pending library calls; restore the default limits.");
  t.def("set_limits",
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

  // ---- the tracer's lifecycle against a recording fake of CUPTI ----
  py::class_<pt::CallLog, std::shared_ptr<pt::CallLog>>(t, "FakeCupti",
      "A recording stand-in for CUPTI's activity API. install() puts it under the process tracer (not while "
      "tracing); uninstall() restores the real CUPTI.")
      .def(py::init<>())
      .def_property_readonly("calls", [](pt::CallLog& l) {
        std::lock_guard<std::mutex> lock(l.mu);
        return l.calls;
      })
      .def("clear", [](pt::CallLog& l) {
        std::lock_guard<std::mutex> lock(l.mu);
        l.calls.clear();
      })
      .def("fail", [](pt::CallLog& l, const std::string& call, int cupti_result) {
        std::lock_guard<std::mutex> lock(l.mu);
        l.results[call] = cupti_result;
      }, py::arg("call"), py::arg("cupti_result"), "Make `call` return this CUptiResult from now on.")
      .def_readwrite("driver_version", &pt::CallLog::driver_version)
      .def("install", [&tracer](std::shared_ptr<pt::CallLog> self) {
        tracer.set_vendor(std::make_unique<pt::RecordingVendor>(std::move(self)));
      })
      .def_static("uninstall", [&tracer] { tracer.set_vendor(nullptr); });

  // ---- the buffer pool alone ----
  py::class_<pc::BufferPool>(t, "BufferPool", "The tracer's bounded pool of CUPTI activity buffers.")
      .def(py::init([](size_t buffer_bytes, size_t max_buffers) {
        auto p = std::make_unique<pc::BufferPool>();
        p->configure(buffer_bytes, max_buffers);
        return p;
      }), py::arg("buffer_bytes"), py::arg("max_buffers"))
      .def("acquire", [](pc::BufferPool& p) { return reinterpret_cast<uintptr_t>(p.acquire()); },
           "A buffer's address, 0 at the cap.")
      .def("release", [](pc::BufferPool& p, uintptr_t address) {
        return p.release(reinterpret_cast<uint8_t*>(address));
      }, py::arg("address"), "Hand a buffer back; False (and counted as foreign) for one the pool never handed out.")
      .def("release_foreign", [](pc::BufferPool& p) {
        // A heap block the pool never allocated, as another CUPTI client's buffer would be. Freed here after the
        // call: had the pool kept it, its next acquire() would hand out freed memory.
        auto* other = static_cast<uint8_t*>(std::malloc(64));
        const bool taken = p.release(other);
        std::free(other);
        return taken;
      })
      .def("stats", [](const pc::BufferPool& p) {
        const auto s = p.stats();
        py::dict d;
        d["allocated"] = s.allocated;
        d["in_use"] = s.in_use;
        d["refused"] = s.refused;
        d["foreign"] = s.foreign;
        return d;
      });

  // ---- library-call registry and hooks ----
  t.def("hooks_feed", [](const std::string& library, const std::string& function_name, const std::string& message,
                         uint64_t stream) {
    if (library == "cublasLt") pc::hooks_on_cublaslt_message(2, function_name.c_str(), message.c_str());
    else pc::hooks_on_cudnn_message(message.c_str(), stream);
  }, py::arg("library"), py::arg("function_name"), py::arg("message"), py::arg("stream") = 0,
     "Run a logger callback's body (parse, count, record on this thread) on one message.");
  t.def("libcall_record", [](uint64_t thread_id, uint64_t stream, int64_t m_, int64_t n, int64_t k, int64_t batch,
                             const std::string& op, std::optional<double> flops, const std::string& precision) {
    pc::LibCall c;
    c.library = "test";
    c.op = op;
    c.m = m_;
    c.n = n;
    c.k = k;
    c.batch = batch;
    c.flops = flops ? *flops : 2.0 * static_cast<double>(m_) * n * k * batch;
    c.precision = precision;
    c.thread_id = thread_id;
    c.stream = stream;
    return pc::libcall_registry().record(std::move(c));
  }, py::arg("thread_id"), py::arg("stream") = 0, py::arg("m") = 1, py::arg("n") = 1, py::arg("k") = 1,
     py::arg("batch") = 1, py::arg("op") = "matmul", py::arg("flops") = py::none(), py::arg("precision") = "",
     "Record a call as the hooks do (flops default 2*m*n*k*batch); returns its id.");
  t.def("libcall_bind_launch", [](uint64_t thread_id, uint64_t stream, uint32_t correlation_id) {
    return pc::libcall_registry().bind_launch(thread_id, stream, correlation_id);
  }, py::arg("thread_id"), py::arg("stream"), py::arg("correlation_id"),
     "Bind the thread's pending call to a launch, as the launch callback does; returns the call id or 0.");
  t.def("libcall_take", [](uint32_t correlation_id) {
    return libcall_to_python(pc::libcall_registry().take(correlation_id));
  }, py::arg("correlation_id"), "Take the call bound to a correlation id, or None.");
  t.def("libcall_clear", [] { pc::libcall_registry().clear(); }, "Empty the library-call registry and its counters.");
  t.def("libcall_set_max_bound", [](size_t n) { pc::libcall_registry().set_max_bound(n); }, py::arg("max_bound"),
        "Cap on calls waiting for their kernel record (default 65536); oldest evicted first.");

  // ---- Range Profiler bookkeeping (pure) ----
  py::class_<pc::PassBookkeeper>(t, "PassBookkeeper",
      "The Range Profiler's pass bookkeeping: what SetConfig gets before each Start, from what Stop reported.")
      .def(py::init([](const std::string& mode) { return pc::PassBookkeeper(pc::parse_range_mode(mode)); }),
           py::arg("mode"))
      .def("before_start", [](pc::PassBookkeeper& b) -> py::object {
        const auto pc_ = b.before_start();
        if (!pc_) return py::none();
        return py::make_tuple(pc_->pass_index, pc_->target_nesting_level);
      }, "(pass_index, target_nesting_level) for the SetConfig before the next Start, or None for no SetConfig.")
      .def("after_stop", &pc::PassBookkeeper::after_stop, py::arg("next_pass_index"),
           py::arg("next_target_nesting_level"), py::arg("all_passes_submitted"))
      .def("after_decode", &pc::PassBookkeeper::after_decode)
      .def_property_readonly("all_passes_submitted", &pc::PassBookkeeper::all_passes_submitted)
      .def_property_readonly("passes_submitted", &pc::PassBookkeeper::passes_submitted);
  t.def("next_max_ranges", &pc::next_max_ranges, py::arg("current"), py::arg("decoded"), py::arg("dropped"),
        py::arg("cap") = pc::kMaxRangesCap, "Ranges the next counter data image holds after one decode.");

  // ---- counter claims (Range Profiler vs PM sampling on one device) ----
  py::class_<pc::CounterClaim>(t, "CounterClaim", "A held claim on a device's counters; release() frees it.")
      .def_static("acquire", [](int device, const std::string& who) -> py::object {
        if (who != "range_profiler" && who != "pm_sampling")
          throw py::value_error("who must be 'range_profiler' or 'pm_sampling'");
        std::string refusal;
        auto c = pc::CounterClaim::acquire(
            device, who == "range_profiler" ? pc::CounterUser::kRangeProfiler : pc::CounterUser::kPmSampling,
            &refusal);
        if (!c) return py::str(refusal);
        return py::cast(std::move(*c));
      }, py::arg("device"), py::arg("who"), "The claim, or the refusal message (str) when the device is held.")
      .def("release", [](pc::CounterClaim& c) { pc::CounterClaim gone(std::move(c)); });

  // ---- PM sampling's bounded ring ----
  py::class_<pc::PmSampleRing>(t, "PmSampleRing", "The ring the PM decode thread writes to (oldest dropped, counted).")
      .def(py::init<std::size_t>(), py::arg("capacity"))
      .def("push", [](pc::PmSampleRing& r, uint64_t start_ns, uint64_t end_ns, std::vector<double> values) {
        r.push(pc::PmSample{start_ns, end_ns, std::move(values)});
      }, py::arg("start_ns"), py::arg("end_ns"), py::arg("values"))
      .def("drain", [](pc::PmSampleRing& r) {
        py::list out;
        for (const auto& s : r.drain()) out.append(py::make_tuple(s.start_ns, s.end_ns, s.values));
        return out;
      })
      .def_property_readonly("dropped", &pc::PmSampleRing::dropped)
      .def("__len__", &pc::PmSampleRing::size);
}

}  // namespace pyprof::cuda::bind
