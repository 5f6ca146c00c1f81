#pragma once

namespace pyprof::cuda {

struct KernelPeak {
  double flops = 0;
  double seconds = 0;
  double flops_per_s = 0;
  int blocks = 0, threads_per_block = 0, iterations = 0;
};

// FP32 FFMA chains on every SM, timed with CUDA events. Throws std::runtime_error (with the CUDA call that failed).
KernelPeak ffma_peak(int device, int blocks_per_sm, int threads_per_block, int iterations);

}  // namespace pyprof::cuda
