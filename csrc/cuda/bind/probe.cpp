// Bindings: driver/runtime/CUPTI probe and the FFMA peak kernel (probe.h, peak_kernels.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda/bind/bind.h"
#include "cuda/probe.h"
#include "cuda/peak_kernels.h"

namespace py = pybind11;

namespace pyprof::cuda::bind {

void bind_probe(py::module_& m) {
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

}

}  // namespace pyprof::cuda::bind
