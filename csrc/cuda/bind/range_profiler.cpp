// Bindings: the Range Profiler and its host-side metric configuration (range_profiler.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda/bind/bind.h"
#include "cuda/range_profiler.h"

namespace py = pybind11;

namespace pyprof::cuda::bind {

void bind_range_profiler(py::module_& m) {
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
        .def_property_readonly("max_ranges", &pc::RangeProfiler::max_ranges,
                               "Ranges the current counter data image holds (grows after a stop that dropped some).")
        .def("reserve_ranges", &pc::RangeProfiler::reserve_ranges, py::arg("max_ranges"),
             py::call_guard<py::gil_scoped_release>(),
             "Size the next counter data image for at least max_ranges ranges (e.g. the kernels of one step); "
             "between stop() and start() only; capped at 65536.")
        .def("start", &pc::RangeProfiler::start, py::call_guard<py::gil_scoped_release>())
        .def("push_range", &pc::RangeProfiler::push_range, py::arg("name"), py::call_guard<py::gil_scoped_release>())
        .def("pop_range", &pc::RangeProfiler::pop_range, py::call_guard<py::gil_scoped_release>())
        .def("stop", &pc::RangeProfiler::stop, py::call_guard<py::gil_scoped_release>(),
             "Ends a pass; True once all passes have been submitted. Mode 'kernel' decodes here and re-initializes "
             "the counter data image, so stop/start pairs within a step lose nothing.")
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
}

}  // namespace pyprof::cuda::bind
