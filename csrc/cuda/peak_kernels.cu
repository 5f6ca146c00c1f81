// FP32 peak: each thread runs kChains independent FFMA chains so that FMA latency is hidden by ILP as well as by warps.
// FLOPs = 2 (multiply + add) x kChains x iterations x threads: the kernel does nothing else inside the timed loop.
#include "check.h"
#include "peak_kernels.h"

namespace pyprof::cuda {
namespace {

constexpr int kChains = 8;

__global__ void ffma_chain_kernel(float* out, int iterations, float mul, float add) {
  float acc[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) acc[c] = threadIdx.x * 1e-3f + c;
  for (int i = 0; i < iterations; ++i) {
#pragma unroll
    for (int c = 0; c < kChains; ++c) acc[c] = fmaf(acc[c], mul, add);
  }
  float s = 0.f;
#pragma unroll
  for (int c = 0; c < kChains; ++c) s += acc[c];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;  // keeps the chains alive
}

}  // namespace

KernelPeak ffma_peak(int device, int blocks_per_sm, int threads_per_block, int iterations) {
  if (blocks_per_sm <= 0 || threads_per_block <= 0 || threads_per_block > 1024 || iterations <= 0)
    throw std::invalid_argument("ffma_peak: blocks_per_sm and iterations must be > 0, threads_per_block in 1..1024");
  PYPROF_CUDA_CALL(cudaSetDevice(device));
  int sms = 0;
  PYPROF_CUDA_CALL(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int blocks = sms * blocks_per_sm;
  float* out = nullptr;
  PYPROF_CUDA_CALL(cudaMalloc(&out, sizeof(float) * static_cast<size_t>(blocks) * threads_per_block));
  cudaEvent_t start, stop;
  PYPROF_CUDA_CALL(cudaEventCreate(&start));
  PYPROF_CUDA_CALL(cudaEventCreate(&stop));
  ffma_chain_kernel<<<blocks, threads_per_block>>>(out, iterations / 10 + 1, 0.999999f, 1e-6f);  // warm-up
  PYPROF_CUDA_CALL(cudaGetLastError());
  PYPROF_CUDA_CALL(cudaEventRecord(start));
  ffma_chain_kernel<<<blocks, threads_per_block>>>(out, iterations, 0.999999f, 1e-6f);
  PYPROF_CUDA_CALL(cudaGetLastError());
  PYPROF_CUDA_CALL(cudaEventRecord(stop));
  PYPROF_CUDA_CALL(cudaEventSynchronize(stop));
  float ms = 0.f;
  PYPROF_CUDA_CALL(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(out);
  KernelPeak r;
  r.blocks = blocks;
  r.threads_per_block = threads_per_block;
  r.iterations = iterations;
  r.flops = 2.0 * kChains * static_cast<double>(iterations) * blocks * threads_per_block;
  r.seconds = ms * 1e-3;
  r.flops_per_s = r.flops / r.seconds;
  return r;
}

}  // namespace pyprof::cuda
