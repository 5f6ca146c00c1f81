// The only pybind11 surface of pyprof's CPU core (pyprof._C). The CUDA/CUPTI part binds itself in
// csrc/cuda/module_cuda.cpp as pyprof._C_cuda; see the comment there for why it is a separate module.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cpu/peak.h"
#include "cpu/perf_counters.h"

namespace py = pybind11;
using namespace pyprof::cpu;

namespace {

py::dict peak_to_dict(const PeakResult& r) {
  py::list runs;
  for (const auto& run : r.runs) {
    py::dict d;
    d["seconds"] = run.seconds;
    d["flops"] = run.flops;
    d["flops_per_s"] = run.flops_per_s;
    runs.append(d);
  }
  py::dict out;
  out["isa"] = r.isa;
  out["precision"] = r.precision;
  out["threads"] = r.threads;
  out["lanes"] = r.lanes;
  out["chains"] = r.chains;
  out["iterations"] = r.iterations;
  out["runs"] = runs;
  out["best_flops_per_s"] = r.best_flops_per_s;
  out["median_flops_per_s"] = r.median_flops_per_s;
  return out;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pyprof CPU core: peak microkernels and perf_event FP counters";
  m.attr("with_cuda") = false;  // the CUDA part, when built, is pyprof._C_cuda

  auto cpu = m.def_submodule("cpu", "CPU measurements");
  cpu.def("supported_isas", &supported_isas, "FMA microkernel ISAs this CPU can run, best first.");
  cpu.def("vendor", &cpu_vendor, "CPU vendor from CPUID: 'intel', 'amd' or 'unknown'.");
  cpu.def(
      "measure_peak",
      [](const std::string& precision, const std::string& isa, int threads, double min_time_s, int repeats) {
        PeakResult r;
        {
          py::gil_scoped_release release;
          r = measure_peak(precision, isa, threads, min_time_s, repeats);
        }
        return peak_to_dict(r);
      },
      py::arg("precision") = "fp32", py::arg("isa") = "auto", py::arg("threads") = 0, py::arg("min_time_s") = 0.2,
      py::arg("repeats") = 3, "Achievable FLOP/s from FMA chains, one thread per allowed CPU (threads=0).");

  cpu.def("measure_clock_hz", [](double min_time_s, int repeats) {
    py::gil_scoped_release release;
    return measure_clock_hz(min_time_s, repeats);
  }, py::arg("min_time_s") = 0.05, py::arg("repeats") = 3,
     "Clock of one core as it runs now (dependent integer-add chain: one add per cycle).");
  cpu.def("fp_events", [](const std::string& vendor) {
    py::list out;
    for (const auto& e : fp_events(vendor)) {
      py::dict d;
      d["name"] = e.name;
      d["config"] = e.config;
      d["lanes"] = e.lanes;
      d["precision"] = e.precision;
      out.append(d);
    }
    return out;
  }, py::arg("vendor"), "The PMU events pyprof programs for a vendor, with the FLOPs each count is worth.");
  cpu.def("flops_from_counts", &flops_from_counts, py::arg("vendor"), py::arg("counts"),
          "Raw event counts -> FLOPs by precision (the decode step, usable without a PMU).");
  cpu.def("probe_counters", [] {
    const auto p = FpCounters::probe();
    py::dict d;
    d["available"] = p.available;
    d["vendor"] = p.vendor;
    d["reason"] = p.reason;
    d["events"] = p.events;
    return d;
  }, "Whether perf_event_open can count FP instructions here, and why not.");

  py::class_<FpCounters>(cpu, "FpCounters", "FP instruction counters for every thread of this process.")
      .def(py::init<>())
      .def("start", &FpCounters::start, "Open and start the counters; False (see .reason) when the PMU is unusable.")
      .def("read", &FpCounters::read, "Raw counts since start(), scaled for multiplexing.")
      .def("stop", &FpCounters::stop)
      .def_property_readonly("reason", &FpCounters::reason)
      .def_property_readonly("vendor", &FpCounters::vendor)
      .def_property_readonly("running", &FpCounters::running);
}
