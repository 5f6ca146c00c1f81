// GPU peak microkernels: chains of the highest-rate instruction of one precision on every SM, timed with CUDA events.
// Each kernel's FLOP count is exact (a formula in peak_kernels.cu next to the kernel); nothing else runs in the timed loop.
#pragma once
#include <string>
#include <vector>

namespace pyprof::cuda {

struct KernelPeak {
  double flops = 0;
  double seconds = 0;
  double flops_per_s = 0;
  int blocks = 0, threads_per_block = 0, iterations = 0;
};

// FP32 FFMA chains on every SM, timed with CUDA events. Throws std::runtime_error (with the CUDA call that failed).
KernelPeak ffma_peak(int device, int blocks_per_sm, int threads_per_block, int iterations);

// One peak measurement: warm-up launch, then `repeats` timed launches of the same kernel.
struct PeakRun {
  std::string kind;        // "ffma", "dfma", "hfma2", "mma_bf16", "mma_fp16", "mma_tf32", "wgmma_bf16"
  std::string precision;   // peak class: fp32, fp64, fp16_simt (HFMA2 on the FMA pipe), bf16, fp16, tf32 (tensor)
  std::string formula;     // how `flops` was counted, in words
  double flops = 0;        // FLOPs of one launch (exact)
  double seconds_median = 0, seconds_best = 0;
  double flops_per_s_median = 0, flops_per_s_best = 0;
  // SM clock over the median launch: the longest block's clock64() cycles / that launch's event time. All blocks are
  // resident at once (one wave), so the longest block spans nearly the whole launch; 0 when not measured.
  double sm_clock_hz = 0;
  int sm_count = 0, blocks = 0, threads_per_block = 0, iterations = 0, repeats = 0, warmup = 0;
  std::vector<double> seconds;  // every timed launch, in order
};

// Kinds this build has kernels for. wgmma_bf16 is listed when the build targets sm_90 and, if device 0 is a compute
// capability 9.0 GPU, a one-thread probe confirms its code was compiled for sm_90a (without a GPU that cannot be asked).
std::vector<std::string> peak_kinds();

// Measure one kind on `device`. iterations <= 0 picks the kind's default (a few ms on an H100). Throws
// std::invalid_argument for a bad kind/repeats and std::runtime_error for CUDA failures, a GPU that cannot run the
// kind, or a wgmma kernel that was not built for sm_90a.
PeakRun gpu_peak(const std::string& kind, int device, int iterations, int repeats);

}  // namespace pyprof::cuda
