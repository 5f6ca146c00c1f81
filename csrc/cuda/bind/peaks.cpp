// Bindings: the GPU peak microkernels beyond ffma_peak (peak_kernels.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda/bind/bind.h"
#include "cuda/peak_kernels.h"

namespace py = pybind11;

namespace pyprof::cuda::bind {

void bind_peaks(py::module_& m) {
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
}

}  // namespace pyprof::cuda::bind
