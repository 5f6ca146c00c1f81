// FMA-chain microkernels. Each thread keeps kChains independent accumulators so that the FMA latency (4 cycles on
// recent x86) times the number of FMA ports is covered; the loop body is nothing but FMAs. An empty asm statement on
// every accumulator keeps the compiler from folding the chains or (for the scalar variants) packing them into SIMD.
#include "peak.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace pyprof::cpu {
namespace {

constexpr int kChains = 12;  // 12 accumulators + 2 constants fit the 16 architectural ymm registers of AVX2.

using Clock = std::chrono::steady_clock;

// Twelve named accumulators (not an array: GCC keeps an indexed array in memory, and the loop would then measure
// load/store throughput). The empty asm ties every accumulator to a register each iteration, which also stops the
// compiler from packing the scalar chains into SIMD or folding the chain algebraically.
#define PYPROF_DEFINE_CHAIN(NAME, TARGET, V, SET1, FMA, TO_DOUBLE)                                              \
  __attribute__((target(TARGET))) double NAME(uint64_t iters) {                                                 \
    const V mul = SET1(0.999999), add = SET1(1e-6);                                                             \
    V a0 = SET1(1.000), a1 = SET1(1.001), a2 = SET1(1.002), a3 = SET1(1.003), a4 = SET1(1.004), a5 = SET1(1.005); \
    V a6 = SET1(1.006), a7 = SET1(1.007), a8 = SET1(1.008), a9 = SET1(1.009), a10 = SET1(1.010), a11 = SET1(1.011); \
    for (uint64_t it = 0; it < iters; ++it) {                                                                   \
      a0 = FMA(a0, mul, add); a1 = FMA(a1, mul, add); a2 = FMA(a2, mul, add); a3 = FMA(a3, mul, add);           \
      a4 = FMA(a4, mul, add); a5 = FMA(a5, mul, add); a6 = FMA(a6, mul, add); a7 = FMA(a7, mul, add);           \
      a8 = FMA(a8, mul, add); a9 = FMA(a9, mul, add); a10 = FMA(a10, mul, add); a11 = FMA(a11, mul, add);       \
      asm volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),         \
                   "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));                                                   \
    }                                                                                                           \
    return TO_DOUBLE(a0) + TO_DOUBLE(a1) + TO_DOUBLE(a2) + TO_DOUBLE(a3) + TO_DOUBLE(a4) + TO_DOUBLE(a5) +      \
           TO_DOUBLE(a6) + TO_DOUBLE(a7) + TO_DOUBLE(a8) + TO_DOUBLE(a9) + TO_DOUBLE(a10) + TO_DOUBLE(a11);     \
  }

__attribute__((target("avx512f"))) inline __m512 set1_512ps(double v) { return _mm512_set1_ps(static_cast<float>(v)); }
__attribute__((target("avx512f"))) inline double sum_512ps(__m512 v) { return _mm512_reduce_add_ps(v); }
__attribute__((target("avx512f"))) inline double sum_512pd(__m512d v) { return _mm512_reduce_add_pd(v); }
__attribute__((target("avx2,fma"))) inline __m256 set1_256ps(double v) { return _mm256_set1_ps(static_cast<float>(v)); }
__attribute__((target("avx2,fma"))) inline double sum_256ps(__m256 v) {
  float out[8];
  _mm256_storeu_ps(out, v);
  double r = 0;
  for (float x : out) r += x;
  return r;
}
__attribute__((target("avx2,fma"))) inline double sum_256pd(__m256d v) {
  double out[4];
  _mm256_storeu_pd(out, v);
  return out[0] + out[1] + out[2] + out[3];
}
inline float set1_f(double v) { return static_cast<float>(v); }
inline double set1_d(double v) { return v; }
inline double as_double(double v) { return v; }
// No FMA instruction: a multiply and an add, still 2 FLOP per element.
inline float muladd_f(float a, float b, float c) { return a * b + c; }
inline double muladd_d(double a, double b, double c) { return a * b + c; }

PYPROF_DEFINE_CHAIN(chain_avx512_fp32, "avx512f", __m512, set1_512ps, _mm512_fmadd_ps, sum_512ps)
PYPROF_DEFINE_CHAIN(chain_avx512_fp64, "avx512f", __m512d, _mm512_set1_pd, _mm512_fmadd_pd, sum_512pd)
PYPROF_DEFINE_CHAIN(chain_avx2_fp32, "avx2,fma", __m256, set1_256ps, _mm256_fmadd_ps, sum_256ps)
PYPROF_DEFINE_CHAIN(chain_avx2_fp64, "avx2,fma", __m256d, _mm256_set1_pd, _mm256_fmadd_pd, sum_256pd)
PYPROF_DEFINE_CHAIN(chain_scalar_fma_fp32, "fma", float, set1_f, __builtin_fmaf, as_double)
PYPROF_DEFINE_CHAIN(chain_scalar_fma_fp64, "fma", double, set1_d, __builtin_fma, as_double)
PYPROF_DEFINE_CHAIN(chain_scalar_fp32, "no-fma", float, set1_f, muladd_f, as_double)
PYPROF_DEFINE_CHAIN(chain_scalar_fp64, "no-fma", double, set1_d, muladd_d, as_double)

using ChainFn = double (*)(uint64_t);

struct Variant {
  ChainFn fn;
  int lanes;
};

Variant pick(const std::string& isa, const std::string& precision) {
  const bool fp64 = precision == "fp64";
  if (!fp64 && precision != "fp32")
    throw std::invalid_argument("precision must be 'fp32' or 'fp64', got '" + precision + "'");
  if (isa == "avx512") return fp64 ? Variant{chain_avx512_fp64, 8} : Variant{chain_avx512_fp32, 16};
  if (isa == "avx2") return fp64 ? Variant{chain_avx2_fp64, 4} : Variant{chain_avx2_fp32, 8};
  if (isa == "scalar_fma") return fp64 ? Variant{chain_scalar_fma_fp64, 1} : Variant{chain_scalar_fma_fp32, 1};
  if (isa == "scalar") return fp64 ? Variant{chain_scalar_fp64, 1} : Variant{chain_scalar_fp32, 1};
  throw std::invalid_argument("unknown isa '" + isa + "': use one of auto, avx512, avx2, scalar_fma, scalar");
}

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  if (cpus.empty()) {
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) cpus.push_back(static_cast<int>(i));
  }
  return cpus;
}

// One timed run: all threads start together; the run ends when the last thread finishes.
PeakRun run_once(ChainFn fn, uint64_t iters, const std::vector<int>& cpus, int threads, double flops_per_iter) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<Clock::time_point> ends(threads);
  std::vector<double> sinks(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpus[t % cpus.size()], &set);
      pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  // best effort: a refusal only costs accuracy
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      sinks[t] = fn(iters);
      ends[t] = Clock::now();
    });
  }
  while (ready.load() < threads) {
  }
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  const auto end = *std::max_element(ends.begin(), ends.end());
  PeakRun run;
  run.seconds = std::chrono::duration<double>(end - start).count();
  run.flops = flops_per_iter * static_cast<double>(iters) * threads;
  run.flops_per_s = run.flops / run.seconds;
  volatile double sink = 0;
  for (double s : sinks) sink = sink + s;
  (void)sink;
  return run;
}

}  // namespace

std::vector<std::string> supported_isas() {
  __builtin_cpu_init();
  std::vector<std::string> isas;
  if (__builtin_cpu_supports("avx512f")) isas.push_back("avx512");
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isas.push_back("avx2");
  if (__builtin_cpu_supports("fma")) isas.push_back("scalar_fma");
  isas.push_back("scalar");
  return isas;
}

PeakResult measure_peak(const std::string& precision, const std::string& isa_in, int threads, double min_time_s,
                        int repeats) {
  const auto isas = supported_isas();
  const std::string isa = isa_in == "auto" ? isas.front() : isa_in;
  const Variant v = pick(isa, precision);  // validates both names
  if (std::find(isas.begin(), isas.end(), isa) == isas.end())
    throw std::invalid_argument("this CPU does not support isa '" + isa + "'; supported: " + isas.front() + " ...");
  if (repeats < 1) throw std::invalid_argument("repeats must be >= 1");
  if (!(min_time_s > 0)) throw std::invalid_argument("min_time_s must be > 0");
  const auto cpus = allowed_cpus();
  if (threads <= 0) threads = static_cast<int>(cpus.size());

  const double flops_per_iter = 2.0 * kChains * v.lanes;
  // Calibrate on one thread: grow the iteration count until a run takes at least 20 ms, then scale to min_time_s.
  uint64_t iters = 1 << 14;
  for (;;) {
    PeakRun probe = run_once(v.fn, iters, cpus, 1, flops_per_iter);
    if (probe.seconds >= 0.02) {
      iters = static_cast<uint64_t>(static_cast<double>(iters) * min_time_s / probe.seconds) + 1;
      break;
    }
    iters *= 4;
  }
  run_once(v.fn, iters / 4 + 1, cpus, threads, flops_per_iter);  // warm-up: let clocks settle at the SIMD licence

  PeakResult result;
  result.isa = isa;
  result.precision = precision;
  result.threads = threads;
  result.lanes = v.lanes;
  result.chains = kChains;
  result.iterations = iters;
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    result.runs.push_back(run_once(v.fn, iters, cpus, threads, flops_per_iter));
    rates.push_back(result.runs.back().flops_per_s);
  }
  std::sort(rates.begin(), rates.end());
  result.best_flops_per_s = rates.back();
  result.median_flops_per_s = rates.size() % 2 ? rates[rates.size() / 2]
                                                : 0.5 * (rates[rates.size() / 2 - 1] + rates[rates.size() / 2]);
  return result;
}

namespace {

// 100 dependent register-register adds per iteration; the loop counter runs on other ports in parallel with the
// chain. Register operands matter: Golden Cove and later fold chains of small-immediate adds in the renamer, where an
// `add $1, reg` chain runs several per cycle (it read 21 GHz on our CI VM).
uint64_t add_chain(uint64_t iters) {
  uint64_t x = 0, one = 1;
  asm volatile("" : "+r"(one));  // the compiler must not know it is 1
  for (uint64_t i = 0; i < iters; ++i) {
    asm volatile(
        ".rept 100\n\t"
        "add %1, %0\n\t"
        ".endr"
        : "+r"(x)
        : "r"(one));
  }
  return x;
}

}  // namespace

double measure_clock_hz(double min_time_s, int repeats) {
  if (!(min_time_s > 0) || repeats < 1) throw std::invalid_argument("min_time_s must be > 0 and repeats >= 1");
  uint64_t iters = 1 << 16;
  double best = 0;
  for (int r = 0; r < repeats;) {
    const auto t0 = Clock::now();
    volatile uint64_t sink = add_chain(iters);
    (void)sink;
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s < min_time_s) {
      iters = static_cast<uint64_t>(static_cast<double>(iters) * std::max(2.0, 1.2 * min_time_s / std::max(s, 1e-9)));
      continue;
    }
    best = std::max(best, 100.0 * static_cast<double>(iters) / s);
    ++r;
  }
  return best;
}

}  // namespace pyprof::cpu
