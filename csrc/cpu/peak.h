// CPU peak microkernels: chains of independent FMAs, one thread per core, ISA chosen at run time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pyprof::cpu {

struct PeakRun {
  double seconds = 0;      // wall time from the common start to the last thread's end
  double flops = 0;        // FLOPs executed by all threads (2 per FMA lane)
  double flops_per_s = 0;
};

struct PeakResult {
  std::string isa;         // "avx512", "avx2", "scalar_fma", "scalar"
  std::string precision;   // "fp32" or "fp64"
  int threads = 0;
  int lanes = 0;           // SIMD lanes per instruction for this ISA and precision
  int chains = 0;          // independent accumulators per thread (hides FMA latency)
  uint64_t iterations = 0; // loop iterations per thread per repeat
  std::vector<PeakRun> runs;
  double best_flops_per_s = 0;
  double median_flops_per_s = 0;
};

// ISAs this CPU can run, best first.
std::vector<std::string> supported_isas();

// Measures achievable FLOP/s. isa "auto" picks the best supported; threads 0 means one per CPU this process may use.
// Throws std::invalid_argument for an unknown or unsupported isa/precision.
PeakResult measure_peak(const std::string& precision, const std::string& isa, int threads, double min_time_s,
                        int repeats);

// Clock of one core as it runs now, in Hz: a chain of dependent integer adds retires one add per cycle on every x86
// core pyprof targets, so adds / second = cycles / second. Turbo and VM-hidden clocks show up here, not in
// /proc/cpuinfo. Best of `repeats` runs of at least min_time_s each.
double measure_clock_hz(double min_time_s, int repeats);

}  // namespace pyprof::cpu
