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
  // ==== end section libhooks ====

  // ==== section range_profiler: Range Profiler and host-side metric configuration (range_profiler.h) ====
  // ==== end section range_profiler ====

  // ==== section pm_sampler: PM sampling (pm_sampler.h) ====
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
