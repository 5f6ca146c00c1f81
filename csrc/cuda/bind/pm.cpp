// Bindings: PM sampling (pm_sampler.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda/bind/bind.h"
#include "cuda/pm_sampler.h"

namespace py = pybind11;

namespace pyprof::cuda::bind {

void bind_pm(py::module_& m) {
  {
    using pyprof::cuda::PmSample;
    using pyprof::cuda::PmSampler;
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
           "'no_device', 'not_supported', 'counters_in_use' (a Range Profiler holds the device), 'error') with the text in stats()['error'].")
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

  }
}

}  // namespace pyprof::cuda::bind
