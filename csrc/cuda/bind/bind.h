// One binding function per concern of pyprof._C_cuda; module_cuda.cpp calls each. Test-only entry points live apart,
// in the pyprof._C_cuda.testing submodule (csrc/cuda/testing/), so the public surface is what Python code may use.
#pragma once
#include <pybind11/pybind11.h>

#include <optional>

#include "cuda/libcalls.h"

namespace pyprof::cuda::bind {

void bind_probe(pybind11::module_& m);           // probe(), ffma_peak()
void bind_peaks(pybind11::module_& m);           // gpu_peak_kinds(), gpu_peak()
void bind_activity(pybind11::module_& m);        // tracer_*
void bind_libcalls(pybind11::module_& m);        // parse_*_log, hooks_*, current_thread_id
void bind_range_profiler(pybind11::module_& m);  // counters_*, RangeProfiler, the CounterError family
void bind_pm(pybind11::module_& m);              // pm_*, PmSampler
void bind_testing(pybind11::module_& testing);   // pyprof._C_cuda.testing (csrc/cuda/testing/bind_testing.cpp)

// A library call as the dict Python sees (None for nullopt); shared by bind/libcalls.cpp and the testing submodule.
pybind11::object libcall_to_python(const std::optional<LibCall>& call);

}  // namespace pyprof::cuda::bind
