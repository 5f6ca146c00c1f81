// pybind11 surface of the CUDA/CUPTI part. It is a sibling of pyprof._C rather than part of it so that a machine where
// libcupti cannot be loaded still has the whole CPU path (pyprof._C imports without any CUDA library).
// One binding file per concern (bind/*.cpp); test-only entry points in the `testing` submodule (testing/*.cpp).
#include <pybind11/pybind11.h>

#include "cuda/bind/bind.h"

namespace bind = pyprof::cuda::bind;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "pyprof CUDA/CUPTI part: device probe, kernel tracer, library-call hooks, counters, PM sampling, peaks";
  bind::bind_probe(m);
  bind::bind_activity(m);
  bind::bind_libcalls(m);
  bind::bind_range_profiler(m);
  bind::bind_pm(m);
  bind::bind_peaks(m);
  auto testing = m.def_submodule(
      "testing", "Test seams: CUPTI-layout record builders, direct entry points into the registry, the hooks, the "
                 "tracer's vendor seam and pure bookkeeping. Not for use outside pyprof's tests.");
  bind::bind_testing(testing);
}
