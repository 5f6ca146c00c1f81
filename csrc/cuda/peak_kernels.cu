// GPU peak microkernels. Each kernel keeps independent chains of one instruction in registers and does nothing else in its
// timed loop, so its FLOP count is exact and stated next to it. All blocks are resident at once (one wave, sized with the
// occupancy API), so the kernel's time is the time of the slowest SM, and clock64() in one thread per block gives the SM
// clock over the run. Host side: one untimed warm-up launch (code load, clock ramp), then `repeats` launches between
// CUDA events; median and best are reported.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "check.h"
#include "peak_kernels.h"

namespace pyprof::cuda {
namespace {

// ------------------------------------------------------------------------------------------------ SIMT FMA chains
// kChains independent chains per thread hide FMA latency by ILP as well as by warps; kUnroll chain steps per loop trip
// give 64 FMA instructions per trip, so the loop's own compare/branch (about 3 instructions) costs < 5% of issue slots.
// (FP32 FFMA on sm_90 needs one warp-instruction per clock per SM sub-partition, the full issue rate.)
constexpr int kChains = 8;
constexpr int kUnroll = 8;

__device__ __forceinline__ float fma_op(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_op(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ __half2 fma_op(__half2 a, __half2 b, __half2 c) { return __hfma2(a, b, c); }
__device__ __forceinline__ float add_op(float a, float b) { return a + b; }
__device__ __forceinline__ double add_op(double a, double b) { return a + b; }
__device__ __forceinline__ __half2 add_op(__half2 a, __half2 b) { return __hadd2(a, b); }
template <typename T>
__device__ __forceinline__ T from_float(float x) { return static_cast<T>(x); }
template <>
__device__ __forceinline__ __half2 from_float<__half2>(float x) { return __float2half2_rn(x); }

// FLOPs per launch = FLOP_PER_INSTRUCTION x kChains x iterations x threads, iterations = trips x kUnroll, where
// FLOP_PER_INSTRUCTION (per thread) is 2 for FFMA (fp32) and DFMA (fp64): multiply + add, and 4 for HFMA2 (half2):
// two FP16 multiply-adds. `mul` and `add` are kernel arguments, so the compiler cannot fold the chains.
template <typename T>
__global__ void fma_chain_kernel(T* out, long long* cycles, int trips, T mul, T add) {
  T acc[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) acc[c] = from_float<T>(threadIdx.x * 1e-3f + c);
  const long long t0 = clock64();
  for (int i = 0; i < trips; ++i) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int c = 0; c < kChains; ++c) acc[c] = fma_op(acc[c], mul, add);
    }
  }
  const long long t1 = clock64();
  T s = acc[0];
#pragma unroll
  for (int c = 1; c < kChains; ++c) s = add_op(s, acc[c]);
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;  // keeps the chains alive
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

// ------------------------------------------------------------------------------------------------ mma.sync (warp MMA)
// Operands stay in registers (their values do not change the speed); kMmaAcc independent accumulator tiles per warp
// keep several MMAs in flight (latency ~30 clocks, issue one every few clocks per sub-partition).
constexpr int kMmaAcc = 4;
constexpr int kMmaUnroll = 4;
enum class Mma { bf16, fp16, tf32 };

// FLOP per warp-instruction: m16n8k16 (bf16, fp16) = 2*16*8*16 = 4096; m16n8k8 (tf32) = 2*16*8*8 = 2048.
template <Mma M>
constexpr double mma_flop_per_instruction() { return M == Mma::tf32 ? 2.0 * 16 * 8 * 8 : 2.0 * 16 * 8 * 16; }

template <Mma M>
__device__ __forceinline__ void mma_step(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (M == Mma::bf16) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else if constexpr (M == Mma::fp16) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#endif
}

// FLOPs per launch = mma_flop_per_instruction x kMmaAcc x iterations x warps, iterations = trips x kMmaUnroll.
// status[0] = 1 when this code was compiled for an arch below sm_80 (no such MMA there); the host also checks the
// device's compute capability before launching.
template <Mma M>
__global__ void mma_kernel(float* out, long long* cycles, int* status, int trips) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  // Small values of each type (2^-7 in bf16 and tf32, 2^-8 in fp16); the lane bit keeps operands thread-dependent.
  const uint32_t pattern = M == Mma::bf16 ? 0x3c003c00u : (M == Mma::fp16 ? 0x1c001c00u : 0x3c000000u);
  uint32_t a[4], b[2];
#pragma unroll
  for (int i = 0; i < 4; ++i) a[i] = pattern ^ (threadIdx.x & 1u);
  b[0] = pattern;
  b[1] = pattern ^ (threadIdx.x & 2u);
  // Distinct starting accumulators, and volatile asm: identical inputs would let the compiler merge the chains into
  // one and the kernel would do a quarter of the FLOPs it is credited with.
  float d[kMmaAcc][4];
#pragma unroll
  for (int k = 0; k < kMmaAcc; ++k)
#pragma unroll
    for (int j = 0; j < 4; ++j) d[k][j] = static_cast<float>(k * 4 + j) + threadIdx.x * 1e-3f;
  const long long t0 = clock64();
  for (int i = 0; i < trips; ++i) {
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
#pragma unroll
      for (int k = 0; k < kMmaAcc; ++k) mma_step<M>(d[k], a, b);
    }
  }
  const long long t1 = clock64();
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < kMmaAcc; ++k) s += d[k][0] + d[k][1] + d[k][2] + d[k][3];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
#else
  if (threadIdx.x == 0 && blockIdx.x == 0) status[0] = 1;
#endif
}

// ------------------------------------------------------------------------------------------------ wgmma (sm_90a)
// One warpgroup (4 warps, 128 threads) issues wgmma.mma_async m64n256k16 BF16 x BF16 -> FP32, A and B read from shared
// memory through matrix descriptors, the 64x256 FP32 accumulator in registers (128 per thread). Two warpgroups per
// block, one block per SM. FLOP per warpgroup-instruction = 2*64*256*16 = 524288.
// FLOPs per launch = 524288 x iterations x warpgroups, iterations = trips x kWgmmaUnroll.
// Successive wgmmas on the same accumulator are ordered by the hardware, so a trip issues kWgmmaUnroll of them, commits
// them as one group and waits for it (the wait costs a pipeline drain per trip, hidden by the other warpgroup).
constexpr int kWgmmaUnroll = 8;
constexpr int kWgmmaThreads = 256;
constexpr double kWgmmaFlopPerInstruction = 2.0 * 64 * 256 * 16;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Matrix descriptor (PTX ISA, "Matrix Descriptor Format" for wgmma): bits 0-13 start address >> 4, 16-29 leading
// dimension byte offset >> 4, 32-45 stride dimension byte offset >> 4, 49-51 base offset (0), 62-63 swizzle (0 = none).
// No swizzle, K-major: 8x16-byte core matrices, 128 B apart along K (LBO) and 256 B apart along M/N (SBO). Either reading
// of LBO/SBO keeps every address inside the buffers below, and the values do not matter for the timing.
__device__ __forceinline__ uint64_t smem_desc(const void* p, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  uint64_t d = 0;
  d |= static_cast<uint64_t>((addr & 0x3FFFFu) >> 4);
  d |= static_cast<uint64_t>((lbo_bytes & 0x3FFFFu) >> 4) << 16;
  d |= static_cast<uint64_t>((sbo_bytes & 0x3FFFFu) >> 4) << 32;
  return d;
}

__device__ __forceinline__ void wgmma_m64n256k16_bf16(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(desc_a), "l"(desc_b), "r"(1)
      : "memory");
}
#endif

// status[0] = 1 when this code was not compiled for sm_90a (wgmma exists only there).
__global__ void __launch_bounds__(kWgmmaThreads, 1) wgmma_kernel(float* out, long long* cycles, int* status,
                                                                 int trips) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __shared__ __align__(128) uint16_t smem_a[64 * 16];   // A: 64 x 16 bf16, 2 KiB
  __shared__ __align__(128) uint16_t smem_b[256 * 16];  // B: 256 x 16 bf16, 8 KiB
  for (int i = threadIdx.x; i < 64 * 16; i += blockDim.x) smem_a[i] = 0x3c00;  // bf16 2^-7
  for (int i = threadIdx.x; i < 256 * 16; i += blockDim.x) smem_b[i] = 0x3c00;
  // wgmma reads shared memory through the async proxy: make the generic-proxy writes above visible to it.
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  const uint64_t desc_a = smem_desc(smem_a, 128, 256);
  const uint64_t desc_b = smem_desc(smem_b, 128, 256);
  float d[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) d[i] = 0.f;
  const long long t0 = clock64();
  for (int i = 0; i < trips; ++i) {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int u = 0; u < kWgmmaUnroll; ++u) wgmma_m64n256k16_bf16(d, desc_a, desc_b);
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  }
  // Tie every accumulator to a volatile statement after the last wait, so no read of it moves above the wait.
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
  const long long t1 = clock64();
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 128; ++i) s += d[i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
#else
  if (threadIdx.x == 0 && blockIdx.x == 0) status[0] = 1;
#endif
}

// Writes 1 when the code the driver picked for this GPU was compiled for sm_90a.
__global__ void wgmma_built_kernel(int* flag) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  *flag = 1;
#else
  *flag = 0;
#endif
}

// ------------------------------------------------------------------------------------------------ host helpers

template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t n) {
    PYPROF_CUDA_CALL(cudaMalloc(&ptr, sizeof(T) * std::max<size_t>(n, 1)));
    PYPROF_CUDA_CALL(cudaMemset(ptr, 0, sizeof(T) * std::max<size_t>(n, 1)));
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

struct Event {
  cudaEvent_t e = nullptr;
  Event() { PYPROF_CUDA_CALL(cudaEventCreate(&e)); }
  ~Event() { cudaEventDestroy(e); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

constexpr const char* kKinds[] = {"ffma", "dfma", "hfma2", "mma_bf16", "mma_fp16", "mma_tf32", "wgmma_bf16"};

std::string kinds_text() {
  std::string s;
  for (const char* k : kKinds) s += (s.empty() ? "" : ", ") + std::string(k);
  return s;
}

bool arch_list_has(int lo, int hi) {
#ifdef __CUDA_ARCH_LIST__
  constexpr int archs[] = {__CUDA_ARCH_LIST__};
  for (int a : archs)
    if (a >= lo && a <= hi) return true;
#endif
  return false;
}

// Blocks per SM that are resident together for `kernel` at `threads` per block (so the grid is one wave).
template <typename Kernel>
int resident_blocks_per_sm(Kernel kernel, int threads) {
  int n = 0;
  PYPROF_CUDA_CALL(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, 0));
  if (n < 1) throw std::runtime_error("peak kernel cannot be resident on this GPU (occupancy 0)");
  return n;
}

// One untimed warm-up launch, then `repeats` launches between CUDA events. Fills seconds, median/best and the SM clock
// of the median launch (its longest block's clock64 cycles over its event time).
template <typename Launch>
void time_launches(Launch&& launch, int repeats, const long long* d_cycles, PeakRun& r) {
  Event start, stop;
  launch();
  PYPROF_CUDA_CALL(cudaGetLastError());
  PYPROF_CUDA_CALL(cudaDeviceSynchronize());
  r.warmup = 1;
  std::vector<long long> cycles(r.blocks);
  std::vector<double> clock_hz;
  for (int i = 0; i < repeats; ++i) {
    PYPROF_CUDA_CALL(cudaEventRecord(start.e));
    launch();
    PYPROF_CUDA_CALL(cudaGetLastError());
    PYPROF_CUDA_CALL(cudaEventRecord(stop.e));
    PYPROF_CUDA_CALL(cudaEventSynchronize(stop.e));
    float ms = 0.f;
    PYPROF_CUDA_CALL(cudaEventElapsedTime(&ms, start.e, stop.e));
    PYPROF_CUDA_CALL(cudaMemcpy(cycles.data(), d_cycles, sizeof(long long) * cycles.size(), cudaMemcpyDeviceToHost));
    const double s = ms * 1e-3;
    r.seconds.push_back(s);
    const long long longest = *std::max_element(cycles.begin(), cycles.end());
    clock_hz.push_back(s > 0 ? static_cast<double>(longest) / s : 0.0);
  }
  std::vector<int> order(r.seconds.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return r.seconds[a] < r.seconds[b]; });
  const int med = order[(order.size() - 1) / 2];  // lower median: an actual launch, so its clock belongs to it
  r.repeats = repeats;
  r.seconds_best = r.seconds[order.front()];
  r.seconds_median = r.seconds[med];
  r.sm_clock_hz = clock_hz[med];
  r.flops_per_s_best = r.seconds_best > 0 ? r.flops / r.seconds_best : 0.0;
  r.flops_per_s_median = r.seconds_median > 0 ? r.flops / r.seconds_median : 0.0;
}

struct DeviceFacts {
  int sm_count = 0, cc_major = 0, cc_minor = 0;
};

DeviceFacts device_facts(int device) {
  DeviceFacts f;
  PYPROF_CUDA_CALL(cudaDeviceGetAttribute(&f.sm_count, cudaDevAttrMultiProcessorCount, device));
  PYPROF_CUDA_CALL(cudaDeviceGetAttribute(&f.cc_major, cudaDevAttrComputeCapabilityMajor, device));
  PYPROF_CUDA_CALL(cudaDeviceGetAttribute(&f.cc_minor, cudaDevAttrComputeCapabilityMinor, device));
  return f;
}

int round_up_trips(int iterations, int unroll) { return (iterations + unroll - 1) / unroll; }

template <typename T>
void fma_chain_peak(PeakRun& r, int sm_count, int iterations, int repeats, T mul, T add, double flop_per_instruction) {
  constexpr int threads = 256;
  const int trips = round_up_trips(iterations, kUnroll);
  r.sm_count = sm_count;
  r.threads_per_block = threads;
  r.blocks = sm_count * resident_blocks_per_sm(fma_chain_kernel<T>, threads);
  r.iterations = trips * kUnroll;
  r.flops = flop_per_instruction * kChains * static_cast<double>(r.iterations) * r.blocks * threads;
  DeviceBuffer<T> out(static_cast<size_t>(r.blocks) * threads);
  DeviceBuffer<long long> cycles(r.blocks);
  time_launches([&] { fma_chain_kernel<T><<<r.blocks, threads>>>(out.ptr, cycles.ptr, trips, mul, add); }, repeats,
                cycles.ptr, r);
}

template <Mma M>
void mma_peak(PeakRun& r, int sm_count, int iterations, int repeats) {
  constexpr int threads = 256;
  const int trips = round_up_trips(iterations, kMmaUnroll);
  r.sm_count = sm_count;
  r.threads_per_block = threads;
  r.blocks = sm_count * resident_blocks_per_sm(mma_kernel<M>, threads);
  r.iterations = trips * kMmaUnroll;
  const double warps = static_cast<double>(r.blocks) * (threads / 32);
  r.flops = mma_flop_per_instruction<M>() * kMmaAcc * static_cast<double>(r.iterations) * warps;
  DeviceBuffer<float> out(static_cast<size_t>(r.blocks) * threads);
  DeviceBuffer<long long> cycles(r.blocks);
  DeviceBuffer<int> status(1);
  time_launches([&] { mma_kernel<M><<<r.blocks, threads>>>(out.ptr, cycles.ptr, status.ptr, trips); }, repeats,
                cycles.ptr, r);
  int st = 0;
  PYPROF_CUDA_CALL(cudaMemcpy(&st, status.ptr, sizeof(int), cudaMemcpyDeviceToHost));
  if (st != 0) throw std::runtime_error(r.kind + ": this build has no sm_80+ code for this GPU (mma.sync needs sm_80)");
}

void wgmma_peak(PeakRun& r, int sm_count, int iterations, int repeats) {
  const int trips = round_up_trips(iterations, kWgmmaUnroll);
  r.sm_count = sm_count;
  r.threads_per_block = kWgmmaThreads;
  r.blocks = sm_count * resident_blocks_per_sm(wgmma_kernel, kWgmmaThreads);
  r.iterations = trips * kWgmmaUnroll;
  const double warpgroups = static_cast<double>(r.blocks) * (kWgmmaThreads / 128);
  r.flops = kWgmmaFlopPerInstruction * static_cast<double>(r.iterations) * warpgroups;
  DeviceBuffer<float> out(static_cast<size_t>(r.blocks) * kWgmmaThreads);
  DeviceBuffer<long long> cycles(r.blocks);
  DeviceBuffer<int> status(1);
  // A one-trip launch first: a build without sm_90a code returns at once, and we say so before timing anything.
  wgmma_kernel<<<1, kWgmmaThreads>>>(out.ptr, cycles.ptr, status.ptr, 1);
  PYPROF_CUDA_CALL(cudaGetLastError());
  PYPROF_CUDA_CALL(cudaDeviceSynchronize());
  int st = 0;
  PYPROF_CUDA_CALL(cudaMemcpy(&st, status.ptr, sizeof(int), cudaMemcpyDeviceToHost));
  if (st != 0)
    throw std::runtime_error(
        "wgmma_bf16: not built for sm_90a (wgmma needs the arch-specific target; rebuild with "
        "PYPROF_CUDA_ARCHS including 90a, e.g. \"80;90a\")");
  time_launches([&] { wgmma_kernel<<<r.blocks, kWgmmaThreads>>>(out.ptr, cycles.ptr, status.ptr, trips); }, repeats,
                cycles.ptr, r);
}

}  // namespace

KernelPeak ffma_peak(int device, int blocks_per_sm, int threads_per_block, int iterations) {
  if (blocks_per_sm <= 0 || threads_per_block <= 0 || threads_per_block > 1024 || iterations <= 0)
    throw std::invalid_argument("ffma_peak: blocks_per_sm and iterations must be > 0, threads_per_block in 1..1024");
  PYPROF_CUDA_CALL(cudaSetDevice(device));
  int sms = 0;
  PYPROF_CUDA_CALL(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int blocks = sms * blocks_per_sm;
  const int trips = round_up_trips(iterations, kUnroll);
  DeviceBuffer<float> out(static_cast<size_t>(blocks) * threads_per_block);
  DeviceBuffer<long long> cycles(blocks);
  Event start, stop;
  // FLOPs = 2 (multiply + add) x kChains x iterations x threads, iterations = trips x kUnroll.
  fma_chain_kernel<float><<<blocks, threads_per_block>>>(out.ptr, cycles.ptr, trips / 10 + 1, 0.999999f, 1e-6f);
  PYPROF_CUDA_CALL(cudaGetLastError());  // warm-up
  PYPROF_CUDA_CALL(cudaEventRecord(start.e));
  fma_chain_kernel<float><<<blocks, threads_per_block>>>(out.ptr, cycles.ptr, trips, 0.999999f, 1e-6f);
  PYPROF_CUDA_CALL(cudaGetLastError());
  PYPROF_CUDA_CALL(cudaEventRecord(stop.e));
  PYPROF_CUDA_CALL(cudaEventSynchronize(stop.e));
  float ms = 0.f;
  PYPROF_CUDA_CALL(cudaEventElapsedTime(&ms, start.e, stop.e));
  KernelPeak r;
  r.blocks = blocks;
  r.threads_per_block = threads_per_block;
  r.iterations = trips * kUnroll;
  r.flops = 2.0 * kChains * static_cast<double>(r.iterations) * blocks * threads_per_block;
  r.seconds = ms * 1e-3;
  r.flops_per_s = r.flops / r.seconds;
  return r;
}

std::vector<std::string> peak_kinds() {
  std::vector<std::string> kinds = {"ffma", "dfma", "hfma2"};
  if (arch_list_has(800, 100000)) {
    kinds.insert(kinds.end(), {"mma_bf16", "mma_fp16", "mma_tf32"});
  }
  if (arch_list_has(900, 909)) {
    // The arch list cannot tell sm_90 from sm_90a; a compute capability 9.0 GPU can: ask the code it runs.
    bool listed = true;
    int count = 0, major = 0, minor = 0;
    if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0 &&
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess &&
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) == cudaSuccess && major == 9 &&
        minor == 0) {
      int* flag = nullptr;
      int built = 0;
      if (cudaMalloc(&flag, sizeof(int)) == cudaSuccess) {
        wgmma_built_kernel<<<1, 1>>>(flag);
        if (cudaDeviceSynchronize() == cudaSuccess &&
            cudaMemcpy(&built, flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess)
          listed = built == 1;
        cudaFree(flag);
      }
    }
    cudaGetLastError();  // a failed probe must not leave an error behind for the caller's next check
    if (listed) kinds.push_back("wgmma_bf16");
  }
  return kinds;
}

PeakRun gpu_peak(const std::string& kind, int device, int iterations, int repeats) {
  if (std::find(std::begin(kKinds), std::end(kKinds), kind) == std::end(kKinds))
    throw std::invalid_argument("gpu_peak: unknown kind '" + kind + "'; use one of " + kinds_text());
  if (device < 0) throw std::invalid_argument("gpu_peak: device must be >= 0, got " + std::to_string(device));
  if (iterations < 0)
    throw std::invalid_argument("gpu_peak: iterations must be >= 0 (0 = the kind's default), got " +
                                std::to_string(iterations));
  if (repeats < 1 || repeats > 1000)
    throw std::invalid_argument("gpu_peak: repeats must be in 1..1000, got " + std::to_string(repeats));
  PYPROF_CUDA_CALL(cudaSetDevice(device));
  const DeviceFacts f = device_facts(device);
  PeakRun r;
  r.kind = kind;
  const auto need_cc = [&](int major, int minor, bool exact, const char* what) {
    const bool ok = exact ? (f.cc_major == major && f.cc_minor == minor)
                          : (f.cc_major > major || (f.cc_major == major && f.cc_minor >= minor));
    if (!ok) {
      std::ostringstream os;
      os << "gpu_peak: " << kind << " needs compute capability " << major << "." << minor << (exact ? "" : " or newer")
         << " (" << what << "); device " << device << " is " << f.cc_major << "." << f.cc_minor;
      throw std::runtime_error(os.str());
    }
  };
  if (kind == "ffma") {
    r.precision = "fp32";
    r.formula = "2 FLOP (FFMA) x 8 chains x iterations x threads";
    fma_chain_peak<float>(r, f.sm_count, iterations ? iterations : 1 << 16, repeats, 0.999999f, 1e-6f, 2.0);
  } else if (kind == "dfma") {
    r.precision = "fp64";
    r.formula = "2 FLOP (DFMA) x 8 chains x iterations x threads";
    fma_chain_peak<double>(r, f.sm_count, iterations ? iterations : 1 << 15, repeats, 0.999999, 1e-6, 2.0);
  } else if (kind == "hfma2") {
    r.precision = "fp16_simt";
    r.formula = "4 FLOP (HFMA2: two FP16 multiply-adds) x 8 chains x iterations x threads";
    fma_chain_peak<__half2>(r, f.sm_count, iterations ? iterations : 1 << 16, repeats, __float2half2_rn(0.999f),
                            __float2half2_rn(1e-3f), 4.0);
  } else if (kind == "mma_bf16" || kind == "mma_fp16" || kind == "mma_tf32") {
    need_cc(8, 0, false, "mma.sync with bf16/tf32 operands");
    const int it = iterations ? iterations : 1 << 15;
    if (kind == "mma_bf16") {
      r.precision = "bf16";
      r.formula = "4096 FLOP (mma.sync m16n8k16: 2*16*8*16) x 4 accumulators x iterations x warps";
      mma_peak<Mma::bf16>(r, f.sm_count, it, repeats);
    } else if (kind == "mma_fp16") {
      r.precision = "fp16";
      r.formula = "4096 FLOP (mma.sync m16n8k16: 2*16*8*16) x 4 accumulators x iterations x warps";
      mma_peak<Mma::fp16>(r, f.sm_count, it, repeats);
    } else {
      r.precision = "tf32";
      r.formula = "2048 FLOP (mma.sync m16n8k8: 2*16*8*8) x 4 accumulators x iterations x warps";
      mma_peak<Mma::tf32>(r, f.sm_count, it, repeats);
    }
  } else {  // wgmma_bf16
    need_cc(9, 0, true, "wgmma, compiled for sm_90a");
    r.precision = "bf16";
    r.formula = "524288 FLOP (wgmma m64n256k16: 2*64*256*16) x iterations x warpgroups";
    wgmma_peak(r, f.sm_count, iterations ? iterations : 1 << 15, repeats);
  }
  return r;
}

}  // namespace pyprof::cuda
