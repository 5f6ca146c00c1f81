"""Microbenchmarks: GEMM sweep, convolution, attention (SDPA, causal and not), elementwise, and a streaming bandwidth test.

Each result has analytic FLOPs, minimal bytes (inputs read once, output written once), the median time over repeats
after warm-up, utilization, and the roofline bound min(peak, intensity x bandwidth). Timing: CUDA events on a GPU,
``time.perf_counter`` on a CPU. Before every timed repeat a buffer of twice the last-level cache is rewritten, so each
repeat starts with cold caches (nvbench's L2 flush, done on the CPU's LLC).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyprof.report.bench_schema import MicroResult


@dataclass(frozen=True)
class MicroPreset:
    gemm_square: tuple[int, ...]
    gemm_skinny: tuple[tuple[int, int, int], ...]     # (M, N, K)
    dtypes: tuple[str, ...]
    conv: tuple[tuple[int, int, int, int, int], ...]   # (N, C, H=W, K, R=S)
    attention: tuple[tuple[int, int, int, int], ...]   # (B, heads, L, head_dim)
    elementwise_n: int
    bandwidth_n: int
    repeats: int
    warmup: int
    min_time_s: float                                  # each timed repeat runs the op until this much time has passed


QUICK = MicroPreset(gemm_square=(256, 1024), gemm_skinny=((16, 1024, 1024), (4096, 64, 1024)), dtypes=("fp32", "bf16"),
                    conv=((8, 64, 28, 64, 3),), attention=((2, 8, 256, 64),), elementwise_n=1 << 25,
                    bandwidth_n=1 << 25, repeats=5, warmup=2, min_time_s=0.01)
FULL = MicroPreset(gemm_square=(1024, 2048, 4096, 8192), gemm_skinny=((16, 8192, 8192), (8192, 128, 8192), (65536, 1024, 1024)),
                   dtypes=("fp32", "tf32", "bf16", "fp16", "fp8"), conv=((64, 64, 56, 64, 3), (64, 256, 14, 256, 3)),
                   attention=((8, 16, 2048, 128), (4, 32, 4096, 128)), elementwise_n=1 << 28, bandwidth_n=1 << 28,
                   repeats=20, warmup=5, min_time_s=0.05)

_DTYPES = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16", "fp8": "float8_e4m3fn"}


def _llc_bytes() -> int:
    """Size of the CPU's last-level cache (sysfs), 32 MiB when unknown."""
    import glob

    best = 0
    for p in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(p) as f:
                s = f.read().strip()
            best = max(best, int(s[:-1]) * (1024 if s.endswith("K") else 1024 * 1024 if s.endswith("M") else 1))
        except (OSError, ValueError):
            continue
    return best or 32 << 20


class Timer:
    """Times a callable: warm-up, cache flush before each repeat, medians over repeats.

    On CUDA, CUDA events bracket the calls; on CPU, ``time.perf_counter``. A repeat runs the op ``inner`` times,
    with ``inner`` chosen at warm-up so that one repeat lasts at least ``min_time_s``; its first call is cold.
    """

    def __init__(self, device: str, repeats: int, warmup: int, min_time_s: float) -> None:
        import torch

        self.device, self.repeats, self.warmup, self.min_time_s = device, repeats, warmup, min_time_s
        self.cuda = device.startswith("cuda")
        # Twice the LLC, capped: VMs often report the whole host's L3 (hundreds of MiB).
        n = min(2 * (_llc_bytes() if not self.cuda else 64 << 20), 256 << 20) // 4
        self._flush = torch.empty(n, dtype=torch.float32, device=device)
        self.flush_bytes = n * 4
        self.source = ("CUDA events" if self.cuda else "time.perf_counter") + \
            f"; median of {repeats} repeats after {warmup} warm-up calls; {self.flush_bytes >> 20} MiB cache flush " \
            "before each repeat"

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def time(self, fn: Callable[[], Any]) -> tuple[float, float]:
        """Return (median, min) seconds per call."""
        import torch

        for _ in range(self.warmup):
            fn()
        self._sync()
        t0 = time.perf_counter()
        fn()
        self._sync()
        one = max(time.perf_counter() - t0, 1e-7)
        inner = max(1, min(1000, int(self.min_time_s / one)))
        per_call = []
        for _ in range(self.repeats):
            self._flush.fill_(1.0)
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(inner):
                    fn()
                end.record()
                end.synchronize()
                per_call.append(start.elapsed_time(end) * 1e-3 / inner)
            else:
                t0 = time.perf_counter()
                for _ in range(inner):
                    fn()
                per_call.append((time.perf_counter() - t0) / inner)
        return statistics.median(per_call), min(per_call)


def measure_bandwidth(device: str, n: int, repeats: int = 5) -> dict[str, Any]:
    """Streaming triad ``a = b + s*c`` (torch, all threads) on arrays far larger than the caches.

    Bytes per call = 3 x n x 4 (read b and c, write a; write-allocate traffic not counted, as STREAM does).

    Returns:
        ``{"bytes_per_s": median, "bytes_per_s_best", "runs_bytes_per_s", "method"}``.
    """
    import torch

    b = torch.rand(n, device=device)
    c = torch.rand(n, device=device)
    a = torch.empty(n, device=device)
    timer = Timer(device, repeats, 1, 0.0)
    runs: list[float] = []
    for _ in range(repeats):
        med, _ = Timer(device, 1, 1 if not runs else 0, 0.0).time(lambda: torch.add(b, c, alpha=3.0, out=a))
        runs.append(3 * n * 4 / med)
    del timer
    return {"bytes_per_s": statistics.median(runs), "bytes_per_s_best": max(runs), "runs_bytes_per_s": runs,
            "method": f"triad a = b + 3c with torch.add on {device}, {n:,} fp32 elements ({3 * n * 4 >> 20} MiB moved "
                      f"per call), median of {repeats}; write-allocate traffic not counted"}


def _roofline(m: MicroResult, peak: float | None, bw: float | None) -> MicroResult:
    if m.flops and m.time_s_median:
        m.achieved_flops_per_s = m.flops / m.time_s_median
    if m.bytes and m.time_s_median:
        m.achieved_bytes_per_s = m.bytes / m.time_s_median
    if m.flops and m.bytes:
        m.intensity_flop_per_byte = m.flops / m.bytes
    m.peak_flops_per_s = peak
    if peak and bw and m.intensity_flop_per_byte:
        mem_roof = m.intensity_flop_per_byte * bw
        m.roofline_bound_flops_per_s = min(peak, mem_roof)
        m.bound = "memory" if mem_roof < peak else "compute"
    if m.achieved_flops_per_s and peak:
        m.utilization_vs_peak = m.achieved_flops_per_s / peak
    if m.achieved_flops_per_s and m.roofline_bound_flops_per_s:
        m.fraction_of_roofline = m.achieved_flops_per_s / m.roofline_bound_flops_per_s
    return m


def dtype_supported(dtype: str, device: str) -> str:
    """Empty string when ``dtype`` matmuls are supported on ``device``, else the reason."""
    import torch

    if dtype in ("tf32", "fp8") and not device.startswith("cuda"):
        return f"{dtype} is a GPU tensor-core format; not available on {device}"
    if device.startswith("cuda"):
        cc = torch.cuda.get_device_capability()
        if dtype in ("tf32", "bf16") and cc < (8, 0):
            return f"{dtype} needs compute capability >= 8.0 (this GPU: {cc[0]}.{cc[1]})"
        if dtype == "fp8" and (cc < (8, 9) or not hasattr(torch, "_scaled_mm")):
            return f"fp8 GEMM needs compute capability >= 8.9 and torch._scaled_mm (this GPU: {cc[0]}.{cc[1]})"
    return ""


def run_micro(preset: MicroPreset, device: str, peak_for: Callable[[str], tuple[float | None, str]],
              bandwidth: float | None, progress: Callable[[str], None] = lambda s: None) -> tuple[list[MicroResult], str]:
    """Run every microbenchmark of ``preset`` on ``device``.

    Args:
        preset: shapes and repeats.
        device: "cpu" or "cuda[:i]".
        peak_for: dtype -> (peak FLOP/s to compare with, which peak it is).
        bandwidth: memory bandwidth in B/s for the roofline (None: no roofline bound).
        progress: called with each benchmark's id before it runs.

    Returns:
        (results, timing source). A benchmark that raises is recorded as failed with its error; the rest go on.
    """
    import torch
    import torch.nn.functional as F

    timer = Timer(device, preset.repeats, preset.warmup, preset.min_time_s)
    out: list[MicroResult] = []

    def run(m: MicroResult, setup: Callable[[], Callable[[], Any]]) -> None:
        progress(m.id)
        try:
            fn = setup()
            m.time_s_median, m.time_s_min = timer.time(fn)
            m.repeats = preset.repeats
            peak, kind = peak_for(m.dtype)
            m.peak_kind = kind
            _roofline(m, peak, bandwidth)
        except Exception as e:  # one benchmark's failure is data, not the end of the suite
            m.status, m.reason = "failed", f"{type(e).__name__}: {e}"
        out.append(m)

    gemms = [(s, s, s) for s in preset.gemm_square] + list(preset.gemm_skinny)
    for dt in preset.dtypes:
        why = dtype_supported(dt, device)
        for (M, N, K) in gemms:
            m = MicroResult(id=f"gemm/{dt}/{M}x{N}x{K}", family="gemm", name=f"GEMM {M}x{N}x{K}", dtype=dt,
                            shape=f"M={M} N={N} K={K}")
            if why:
                m.status, m.reason = "skipped", why
                out.append(m)
                continue
            esize = 1 if dt == "fp8" else 2 if dt in ("bf16", "fp16") else 4
            m.flops = 2.0 * M * N * K                           # M*N outputs, K multiply-adds each
            m.bytes = float(esize * (M * K + K * N) + (2 if dt == "fp8" else esize) * M * N)

            def setup_gemm(M=M, N=N, K=K, dt=dt):
                tdt = getattr(torch, _DTYPES[dt])
                if dt == "fp8":
                    a = torch.randn(M, K, device=device).to(tdt)
                    b = torch.randn(N, K, device=device).to(tdt).t()  # _scaled_mm wants the second operand column-major
                    one = torch.ones((), device=device)
                    return lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
                a = torch.randn(M, K, device=device, dtype=tdt)
                b = torch.randn(K, N, device=device, dtype=tdt)
                if device.startswith("cuda"):
                    torch.backends.cuda.matmul.allow_tf32 = dt == "tf32"
                return lambda: torch.mm(a, b)

            run(m, setup_gemm)
    for (N, C, H, K, R) in preset.conv:
        m = MicroResult(id=f"conv/fp32/{N}x{C}x{H}x{H}-k{K}r{R}", family="conv", name=f"Conv2d {C}->{K} {R}x{R}",
                        dtype="fp32", shape=f"N={N} C={C} H=W={H} K={K} R=S={R} pad={R // 2}")
        m.flops = 2.0 * N * K * H * H * C * R * R           # output N*K*H*W, each C*R*S multiply-adds
        m.bytes = 4.0 * (N * C * H * H + K * C * R * R + N * K * H * H)

        def setup_conv(N=N, C=C, H=H, K=K, R=R):
            x = torch.randn(N, C, H, H, device=device)
            w = torch.randn(K, C, R, R, device=device)
            return lambda: F.conv2d(x, w, padding=R // 2)

        run(m, setup_conv)
    for (B, Hh, L, D) in preset.attention:
        for causal in (False, True):
            tag = "causal" if causal else "full"
            m = MicroResult(id=f"attention/fp32/{tag}/{B}x{Hh}x{L}x{D}", family="attention",
                            name=f"SDPA {tag} L={L}", dtype="fp32", shape=f"B={B} heads={Hh} L={L} d={D}")
            dense = 4.0 * B * Hh * L * L * D                # QK^T and PV: 2 x (L x L x D multiply-adds) per head
            m.flops_dense = dense
            # Causal: only the L(L+1)/2 unmasked (query, key) pairs are work; kernels that skip masked blocks do
            # about that much. Utilization uses this effective count; the dense count stays beside it.
            m.flops = dense * (L + 1) / (2 * L) if causal else dense
            m.bytes = 4.0 * 4 * B * Hh * L * D               # q, k, v read, output written

            def setup_attention(B=B, Hh=Hh, L=L, D=D, causal=causal):
                q, k, v = (torch.randn(B, Hh, L, D, device=device) for _ in range(3))
                return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)

            run(m, setup_attention)
    n = preset.elementwise_n
    m = MicroResult(id=f"elementwise/fp32/add/{n}", family="elementwise", name="add (memory-bound contrast)",
                    dtype="fp32", shape=f"n={n:,}", flops=float(n), bytes=12.0 * n)  # 1 add; read 2, write 1 fp32

    def setup_ew():
        a, b = torch.rand(n, device=device), torch.rand(n, device=device)
        c = torch.empty(n, device=device)
        return lambda: torch.add(a, b, out=c)

    run(m, setup_ew)
    return out, timer.source
