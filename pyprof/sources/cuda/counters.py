"""Executed FLOPs from GPU hardware counters (CUPTI Range Profiler), on top of ``pyprof._C_cuda``.

What runs where:
    * The metric-set builder, :func:`flops_from_values`, :func:`percent_of_peak_from_values`,
      :func:`profiling_permission` and :func:`steps_mixed` are pure Python and run anywhere.
    * Pass counts come from CUPTI's host API (``counters_config``), which needs the CUDA part of pyprof but no GPU.
    * :class:`CounterSession` collects on a GPU; without one (or without permission, or with the counters held by
      DCGM / another profiler) ``start()`` returns False and ``reason`` says why. It never raises into the training loop.

The counters (GPU_COUNTERS.md, section 1):
    * SIMT: ``smsp__sass_thread_inst_executed_op_{f,d,h}{add,mul,fma}_pred_on.sum`` count thread instructions; FLOPs
      follow Nsight Compute's roofline definitions: fp32 = fadd + fmul + 2·ffma, fp64 = dadd + dmul + 2·dfma,
      fp16 = hadd + hmul + 2·hfma (ncu's half-precision roofline, also LIKWID's FLOPS_HP). An HFMA2 packs two FP16
      lanes; ncu counts the instruction once per thread, so this definition gives 2 FLOP per HFMA2 thread
      instruction (whether the counter ticks once or twice per HFMA2 is checked by ``bench/gpu_check.sh``).
      FP16 SIMT FLOPs are an upper bound: the compiler turns constant loads into ``HFMA2.MMA R, -RZ, RZ, imm`` and
      half->float conversions into ``HADD2.F32`` (sm_90a SASS), so FP32-only code reads FP16 SIMT work. They are
      reported apart (precision ``"fp16"``) and left out of :func:`executed_flops`.
    * Tensor cores: ``sm__ops_path_tensor_*`` already count FLOPs (2 per multiply-accumulate), weight 1.

"HFU vs MFU made concrete": executed FLOPs (these counters) over library FLOPs (2·M·N·K from the cuBLAS call) or over
analytic model FLOPs: :func:`executed_over_library`, :func:`executed_over_analytic`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pyprof._native import load_cuda

# ---------------------------------------------------------------------------------------------------------------
# Metric names

_ROLLUPS = (".sum", ".avg", ".max", ".min")

#: Where the SIMT weights come from: Nsight Compute's roofline sections (SpeedOfLight_*RooflineChart), which define
#: FP32 = fadd + fmul + 2·ffma, FP64 = dadd + dmul + 2·dfma and FP16 = hadd + hmul + 2·hfma per thread instruction,
#: with peak = 2 × the FMA's ``.sum.peak_sustained``. pyprof uses the same weights so its figures agree with ncu's
#: by construction (GPU_COUNTERS.md section 1; an earlier 2/2/4 FP16 weighting disagreed with ncu by 2×).
SIMT_FLOP_DEFINITION = "ncu roofline: fp32 = fadd + fmul + 2*ffma; fp64 = dadd + dmul + 2*dfma; fp16 = hadd + hmul + 2*hfma"

# SIMT instruction counters: (precision, op, FLOPs per thread instruction), SIMT_FLOP_DEFINITION.
_SIMT_TERMS: tuple[tuple[str, str, float], ...] = (
    ("fp32", "fadd", 1.0), ("fp32", "fmul", 1.0), ("fp32", "ffma", 2.0),
    ("fp64", "dadd", 1.0), ("fp64", "dmul", 1.0), ("fp64", "dfma", 2.0),
    # ncu counts a packed HADD2/HMUL2/HFMA2 once per thread: 1, 1 and 2 FLOPs, not 2, 2 and 4.
    ("fp16", "hadd", 1.0), ("fp16", "hmul", 1.0), ("fp16", "hfma", 2.0),
)
# Peak FLOP rate of a SIMT precision = weight × the peak instruction rate of its FMA (ncu: 2 × hfma peak for FP16).
_SIMT_PEAK_OP = {"fp32": ("ffma", 2.0), "fp64": ("dfma", 2.0), "fp16": ("hfma", 2.0)}


def simt_metric(op: str) -> str:
    """Base name of the SIMT thread-instruction counter for ``op`` (e.g. ``"ffma"``)."""
    return f"smsp__sass_thread_inst_executed_op_{op}_pred_on"


_T = "sm__ops_path_tensor_"
# Tensor-core FLOPs per precision, as tiers of base names. The first tier with at least one metric on the chip is
# used, and only that tier: a summed metric and its per-path components are never both counted (double counting).
#   tier 1: summed over both instruction paths (wgmma + mma.sync) and all destination types;
#   tier 2: summed over paths, split by destination type (GA100/GV100 fp16);
#   tier 3: per path (Hopper wgmma "hgmma"/"igmma" + mma.sync "hmma"/"imma").
TENSOR_TIERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "tensor_bf16": ((f"{_T}src_bf16_dst_fp32",),
                    (f"{_T}op_hgmma_src_bf16_dst_fp32", f"{_T}op_hmma_src_bf16_dst_fp32")),
    "tensor_fp16": ((f"{_T}src_fp16",),
                    (f"{_T}src_fp16_dst_fp32", f"{_T}src_fp16_dst_fp16"),
                    (f"{_T}op_hgmma_src_fp16", f"{_T}op_hmma_src_fp16_dst_fp32", f"{_T}op_hmma_src_fp16_dst_fp16")),
    "tensor_tf32": ((f"{_T}src_tf32_dst_fp32",),
                    (f"{_T}op_hgmma_src_tf32_dst_fp32", f"{_T}op_hmma_src_tf32_dst_fp32")),
    # GH100 has FP8 only as the summed src_fp8 (no hgmma-specific FP8 metric).
    "tensor_fp8": ((f"{_T}src_fp8",),),
    "tensor_fp64": ((f"{_T}src_fp64",),),
    "tensor_int8": ((f"{_T}src_int8",), (f"{_T}op_igmma_src_int8", f"{_T}op_imma_src_int8")),
}
# Dense peak rate per tensor precision: the first metric of this list on the chip gives `.sum.peak_sustained`
# (ops per cycle). `_sparsity_off` first: the plain metric's peak includes the 2x sparse rate.
TENSOR_PEAK_CANDIDATES: dict[str, tuple[str, ...]] = {
    "tensor_bf16": (f"{_T}src_bf16_dst_fp32_sparsity_off", f"{_T}op_hgmma_src_bf16_dst_fp32_sparsity_off",
                    f"{_T}op_hmma_src_bf16_dst_fp32_sparsity_off"),
    "tensor_fp16": (f"{_T}src_fp16_sparsity_off", f"{_T}op_hgmma_src_fp16_sparsity_off",
                    f"{_T}src_fp16_dst_fp32_sparsity_off", f"{_T}op_hmma_src_fp16_dst_fp32_sparsity_off"),
    "tensor_tf32": (f"{_T}src_tf32_dst_fp32_sparsity_off", f"{_T}op_hgmma_src_tf32_dst_fp32_sparsity_off",
                    f"{_T}op_hmma_src_tf32_dst_fp32_sparsity_off"),
    "tensor_fp8": (f"{_T}src_fp8_sparsity_off",),
    # FP64 tensor cores have no sparse mode, so the plain metric's peak is the dense one.
    "tensor_fp64": (f"{_T}src_fp64",),
    "tensor_int8": (f"{_T}src_int8_sparsity_off", f"{_T}op_igmma_src_int8_sparsity_off",
                    f"{_T}op_imma_src_int8_sparsity_off"),
}

TIME_METRIC = "gpu__time_duration.sum"                      # ns
CYCLES_METRIC = "sm__cycles_elapsed.avg"                    # cycles per SM
CLOCK_METRIC = "sm__cycles_elapsed.avg.per_second"          # Hz
DRAM_METRIC = "dram__bytes.sum"                             # bytes
_EXTRA = (TIME_METRIC, CYCLES_METRIC, CLOCK_METRIC, DRAM_METRIC)

PRECISIONS = ("fp64", "fp32", "fp16", "tensor_bf16", "tensor_fp16", "tensor_tf32", "tensor_fp8", "tensor_fp64",
              "tensor_int8")
# Integer tensor ops are operations, not floating-point operations: reported, left out of executed FLOPs.
NON_FLOP_PRECISIONS = frozenset({"tensor_int8"})
# FP16 SIMT counts include compiler artefacts (HFMA2.MMA constant loads, HADD2.F32 conversions: see the module
# docstring), so they are an upper bound on real FP16 work: reported apart, left out of executed FLOPs.
UPPER_BOUND_PRECISIONS = frozenset({"fp16"})


def base_name(metric: str) -> str:
    """``"x.sum.peak_sustained"`` -> ``"x"``: strips the rollup and sub-metric suffix."""
    for r in _ROLLUPS:
        i = metric.find(r)
        if i > 0:
            return metric[:i]
    return metric


@dataclass(frozen=True)
class FlopTerm:
    """One counter and the FLOPs each of its units is worth."""

    metric: str         # full metric name, e.g. "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum"
    precision: str      # one of PRECISIONS
    flops_per_unit: float  # FLOPs per counted thread instruction (SIMT) or per counted op (tensor: 1)


@dataclass(frozen=True)
class PeakTerm:
    """``metric`` (a ``.sum.peak_sustained``, units per cycle) × ``flops_per_unit`` = peak FLOPs per cycle."""

    metric: str
    precision: str
    flops_per_unit: float


@dataclass
class MetricSet:
    """The counters pyprof collects on one chip to count executed FLOPs.

    Attributes:
        chip: CUPTI chip name, e.g. "GH100".
        terms: FLOP counters with their weights.
        peaks: per-precision peak-rate metrics (``.sum.peak_sustained``), when the chip has them.
        extra: time, cycles, clock and DRAM bytes.
        missing: precisions the chip has no counter for (e.g. "tensor_fp8" on GA100).
        num_passes: passes CUPTI needs for :meth:`metrics` (queried via ``counters_config``), None if not queried.
        notes: choices made (which tier per precision).
    """

    chip: str
    terms: list[FlopTerm]
    peaks: list[PeakTerm]
    extra: list[str]
    missing: list[str]
    num_passes: int | None = None
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> list[str]:
        """All metric names to configure, each once, in a stable order."""
        out: list[str] = []
        for name in [t.metric for t in self.terms] + self.extra + [p.metric for p in self.peaks]:
            if name not in out:
                out.append(name)
        return out

    def precisions(self) -> list[str]:
        """Precisions with at least one FLOP counter on this chip."""
        return [p for p in PRECISIONS if any(t.precision == p for t in self.terms)]


def build_flop_metric_set(chip: str, available: Iterable[str] | None = None, *, include_peaks: bool = True,
                          include_int8: bool = False, query_passes: bool = True) -> MetricSet:
    """Chooses the FLOP counters that exist on ``chip``.

    Args:
        chip: CUPTI chip name ("GH100", "GA100", ...).
        available: the chip's metric names (base names or with rollups); by default ``counters_base_metrics(chip)``.
        include_peaks: add ``.sum.peak_sustained`` metrics for percent of peak (they cost no pass: CUPTI 13.0).
        include_int8: add integer tensor ops. Off by default: they are not FLOPs, and on GH100/GA100 they raise the
            set from 5 to 7 passes (``src_int8`` alone needs 2 on GH100; queried, CUPTI 13.0).
        query_passes: fill ``num_passes`` from CUPTI's host API (needs pyprof's CUDA part, no GPU).

    Returns:
        The :class:`MetricSet`.

    Raises:
        RuntimeError: ``available`` is None or ``query_passes`` is set, and pyprof's CUDA part cannot load.
    """
    if available is None:
        native = _require_native()
        available = native.counters_base_metrics(chip, "counter")
    names = {base_name(m) for m in available}

    terms: list[FlopTerm] = []
    peaks: list[PeakTerm] = []
    missing: list[str] = []
    notes: list[str] = []
    for precision, op, weight in _SIMT_TERMS:
        if simt_metric(op) in names:
            terms.append(FlopTerm(simt_metric(op) + ".sum", precision, weight))
    for precision, (op, weight) in _SIMT_PEAK_OP.items():
        if simt_metric(op) in names:
            if include_peaks:
                peaks.append(PeakTerm(simt_metric(op) + ".sum.peak_sustained", precision, weight))
        else:
            missing.append(precision)

    for precision, tiers in TENSOR_TIERS.items():
        if precision == "tensor_int8" and not include_int8:
            continue
        chosen = None
        for level, tier in enumerate(tiers, start=1):
            present = [m for m in tier if m in names]
            if present:
                chosen = present
                notes.append(f"{precision}: tier {level} ({', '.join(present)})")
                break
        if chosen is None:
            missing.append(precision)
            continue
        terms.extend(FlopTerm(m + ".sum", precision, 1.0) for m in chosen)
        if include_peaks:
            # Fall back to the chosen metric itself (its peak may include the sparse rate: noted).
            candidates = [m for m in TENSOR_PEAK_CANDIDATES[precision] if m in names]
            if candidates:
                peaks.append(PeakTerm(candidates[0] + ".sum.peak_sustained", precision, 1.0))
            else:
                peaks.append(PeakTerm(chosen[0] + ".sum.peak_sustained", precision, 1.0))
                if precision != "tensor_fp64":
                    notes.append(f"{precision}: no _sparsity_off metric; its peak may count the 2x sparse rate")

    extra = [m for m in _EXTRA if base_name(m) in names]
    ms = MetricSet(chip=chip, terms=terms, peaks=peaks, extra=extra, missing=missing, notes=notes)
    if query_passes:
        ms.num_passes = int(_require_native().counters_config(chip, ms.metrics())["num_passes"])
    return ms


def _require_native():
    native, reason = load_cuda()
    if native is None:
        raise RuntimeError(f"hardware counters need pyprof's CUDA part: {reason}")
    return native


# ---------------------------------------------------------------------------------------------------------------
# Values -> FLOPs


def flops_from_values(values: dict[str, float], metric_set: MetricSet) -> dict[str, float]:
    """Executed FLOPs by precision from evaluated counter values.

    Args:
        values: metric name -> value, as in a decoded range's ``"values"``.
        metric_set: the set the values were collected for.

    Returns:
        precision -> FLOPs ("tensor_int8": integer ops), for every precision the set has counters for.

    Raises:
        KeyError: a counter of the set is absent from ``values`` (named in the message).
    """
    absent = [t.metric for t in metric_set.terms if t.metric not in values]
    if absent:
        raise KeyError(f"counter values lack {', '.join(absent)}")
    out: dict[str, float] = {}
    for t in metric_set.terms:
        out[t.precision] = out.get(t.precision, 0.0) + t.flops_per_unit * float(values[t.metric])
    return out


def executed_flops(flops_by_precision: dict[str, float]) -> float:
    """Executed FLOPs: the sum over precisions, without integer tensor ops (:data:`NON_FLOP_PRECISIONS`) and
    without FP16 SIMT FLOPs (:data:`UPPER_BOUND_PRECISIONS`; see :func:`fp16_simt_upper_bound`)."""
    skip = NON_FLOP_PRECISIONS | UPPER_BOUND_PRECISIONS
    return float(sum(v for p, v in flops_by_precision.items() if p not in skip))


def fp16_simt_upper_bound(flops_by_precision: dict[str, float]) -> tuple[float | None, str]:
    """FP16 CUDA-core FLOPs as an upper bound, with the note a report shows next to it.

    Args:
        flops_by_precision: from :func:`flops_from_values`.

    Returns:
        ``(flops, note)``: the ``"fp16"`` value (None when the set has no FP16 SIMT counter) and a sentence saying why
        it is an upper bound and that it is not in the executed total ("" when None or 0).
    """
    v = flops_by_precision.get("fp16")
    if v is None:
        return None, ""
    if not v:
        return float(v), ""
    return float(v), (f"FP16 CUDA-core FLOPs ({v:.4g}, {SIMT_FLOP_DEFINITION.split('; ')[2]}) are an upper bound and "
                      "not in the executed total: the compiler emits HFMA2.MMA for constant loads and HADD2.F32 for "
                      "half->float conversions, which these counters also count")


def percent_of_peak_from_values(values: dict[str, float], metric_set: MetricSet) -> dict[str, float | None]:
    """Percent of each precision's dense peak over the range's elapsed SM cycles.

    ``100 · FLOPs / (peak_sustained [units/cycle] · flops_per_unit · sm__cycles_elapsed.avg)``: needs no clock value,
    so it is the utilization at the clock the GPU actually ran.

    Returns:
        precision -> percent, or None where the peak or cycle count is missing or zero.
    """
    flops = flops_from_values(values, metric_set)
    cycles = values.get(CYCLES_METRIC)
    out: dict[str, float | None] = {}
    for p in metric_set.peaks:
        if p.precision not in flops:
            continue
        peak = values.get(p.metric)
        if not cycles or not peak:
            out[p.precision] = None
            continue
        out[p.precision] = 100.0 * flops[p.precision] / (float(peak) * p.flops_per_unit * float(cycles))
    return out


def executed_over_library(executed: float | None, library: float | None) -> float | None:
    """Executed FLOPs (counters) / library FLOPs (2·M·N·K of the cuBLAS/cuDNN calls): ≥ 1 means padding, split-K
    or recomputation. None when either is missing or the library count is zero."""
    if executed is None or not library:
        return None
    return float(executed) / float(library)


def executed_over_analytic(executed: float | None, analytic: float | None) -> float | None:
    """Executed FLOPs (hardware FLOP utilization's numerator) / analytic model FLOPs (MFU's numerator): HFU vs MFU
    made concrete. None when either is missing or the analytic count is zero."""
    if executed is None or not analytic:
        return None
    return float(executed) / float(analytic)


# ---------------------------------------------------------------------------------------------------------------
# Permission

_CAP_SYS_ADMIN = 21
_CAP_PERFMON = 38
_FIX = ("run as root or with CAP_SYS_ADMIN/CAP_PERFMON, or let all users read counters: "
        "`options nvidia NVreg_RestrictProfilingToAdminUsers=0` in /etc/modprobe.d/, then reload the driver or reboot")


def _has_profiling_capability() -> bool:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    caps = int(line.split()[1], 16)
                    return bool(caps & (1 << _CAP_SYS_ADMIN) or caps & (1 << _CAP_PERFMON))
    except OSError:
        pass
    return False


def profiling_permission(params_path: str = "/proc/driver/nvidia/params",
                         is_admin: bool | None = None) -> tuple[bool | None, str]:
    """Whether this process may read GPU performance counters, from the driver's ``RmProfilingAdminOnly``.

    Args:
        params_path: the driver's procfs parameter file.
        is_admin: whether the process is root or has CAP_SYS_ADMIN/CAP_PERFMON; detected when None.

    Returns:
        ``(allowed, message)``; ``allowed`` is None when the file or the field is missing (no driver, or not Linux),
        with the reason in ``message``. A denial's message says how to fix it.
    """
    try:
        with open(params_path) as f:
            text = f.read()
    except OSError as e:
        return None, f"cannot tell whether counters are restricted: {params_path} unreadable ({e.strerror or e})"
    value = None
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "RmProfilingAdminOnly":
            value = rest.strip()
            break
    if value is None:
        return None, f"cannot tell whether counters are restricted: no RmProfilingAdminOnly in {params_path}"
    if value == "0":
        return True, "GPU performance counters are open to all users (RmProfilingAdminOnly: 0)"
    admin = _has_profiling_capability() if is_admin is None else is_admin
    if admin:
        return True, "GPU performance counters are restricted to admin users (RmProfilingAdminOnly: 1); this process is one"
    return False, ("GPU performance counters are restricted to admin users (RmProfilingAdminOnly: 1, "
                   f"CUPTI_ERROR_INSUFFICIENT_PRIVILEGES / ERR_NVGPUCTRPERM): {_FIX}; kernel tracing keeps working")


# ---------------------------------------------------------------------------------------------------------------
# Identical steps


def _normalize_signature(sig: Any) -> Any:
    if sig is None or isinstance(sig, (str, bytes, int)):
        return sig
    if isinstance(sig, Sequence):
        return tuple(sig)
    return sig


def steps_mixed(signatures: Sequence[tuple[int, Any]]) -> tuple[bool, str]:
    """Whether the steps that contributed counter passes ran different kernel sequences.

    Args:
        signatures: ``(step, kernel_signature)`` per contributing step; a signature is any comparable value (a
            tuple of kernel names, a hash); None means unknown.

    Returns:
        ``(mixed, reason)``: mixed is True when two known signatures differ; reason names the first differing step,
        or says that the check could not be made.
    """
    known = [(s, _normalize_signature(g)) for s, g in signatures if g is not None]
    if not known:
        return False, "no kernel signatures given: the steps were assumed identical" if signatures else ""
    first_step, first = known[0]
    for step, sig in known[1:]:
        if sig != first:
            return True, (f"kernel sequence of step {step} differs from step {first_step}: "
                          "its counter passes mix different work")
    unknown = len(signatures) - len(known)
    return False, (f"{unknown} step(s) had no kernel signature" if unknown else "")


# ---------------------------------------------------------------------------------------------------------------
# Session

# torch.distributed entry points whose NCCL kernels kernel mode keeps out of replay (a replayed collective hangs or
# corrupts its peers). The session stops the profiler around each call.
COMMUNICATION_FUNCTIONS = (
    "all_reduce", "all_gather", "all_gather_into_tensor", "all_gather_object", "reduce_scatter",
    "reduce_scatter_tensor", "all_to_all", "all_to_all_single", "broadcast", "reduce", "gather", "scatter",
    "send", "recv", "isend", "irecv", "batch_isend_irecv", "barrier",
)


@dataclass
class CounterResult:
    """What a :class:`CounterSession` collected.

    Attributes:
        mode: "kernel", "step" or "off".
        complete: True when every pass was collected (step mode: after ``num_passes`` steps).
        num_passes: passes the metric set needs (from CUPTI).
        chip: CUPTI chip name.
        metrics: the metrics configured.
        steps_profiled: steps that contributed data (step mode: one per pass).
        step_values: metric values of one step (step mode: assembled from the passes of successive steps; kernel
            mode: sum of the kernel rows divided by the number of steps).
        total_values: metric values summed over everything profiled (step mode: the same as step_values).
        kernels: kernel mode rows ``{"step", "index", "name", "values", "flops_by_precision"}``.
        flops_by_precision: executed FLOPs of one step by precision.
        executed_flops: their sum without integer ops; None when nothing was collected.
        percent_of_peak: per precision, of the dense peak at the achieved clock (kernel mode: None, the serialized
            cycles are not those of the real run).
        mixed: the kernel sequence changed between contributing steps; mixed_reason says where.
        excluded_kernels: communication calls (each launches one or more NCCL kernels) kept out of kernel replay.
        dropped_ranges: ranges CUPTI dropped (counter data image full).
        notes: caveats the report shows.
        reason: why nothing or only part was collected ("" when complete).
    """

    mode: str
    complete: bool = False
    num_passes: int | None = None
    chip: str = ""
    metrics: list[str] = field(default_factory=list)
    steps_profiled: list[int] = field(default_factory=list)
    step_values: dict[str, float] | None = None
    total_values: dict[str, float] | None = None
    kernels: list[dict[str, Any]] = field(default_factory=list)
    flops_by_precision: dict[str, float] = field(default_factory=dict)
    executed_flops: float | None = None
    percent_of_peak: dict[str, float | None] = field(default_factory=dict)
    mixed: bool = False
    mixed_reason: str = ""
    excluded_kernels: int = 0
    dropped_ranges: int = 0
    notes: list[str] = field(default_factory=list)
    reason: str = ""


_STATUS_OF_ERROR = {
    "CounterPermissionError": "insufficient_privileges",
    "CountersInUseError": "counters_in_use",
    "CounterUnsupportedError": "unsupported",
}


def _status_of(exc: BaseException) -> str:
    for cls in type(exc).__mro__:
        if cls.__name__ in _STATUS_OF_ERROR:
            return _STATUS_OF_ERROR[cls.__name__]
    return "error"


def _sum_values(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    """Sums counters over ranges. Valid for counts (`.sum`, cycles) only; ratios, peaks and clocks are kept from
    the last range (they are per-cycle constants or rates, not additive)."""
    out: dict[str, float] = {}
    for values in rows:
        for k, v in values.items():
            if k.endswith(".peak_sustained") or k.endswith(".per_second"):
                out[k] = float(v)
            else:
                out[k] = out.get(k, 0.0) + float(v)
    return out


class CounterSession:
    """Executed-FLOP counters over training steps.

    Modes:
        "step": CUPTI_UserRange + CUPTI_ApplicationReplay. Each step is one pass of the metric set; after
            ``num_passes`` successive steps the values of one step are complete. Kernels keep their concurrency and
            nothing is re-executed, but the steps must run the same kernels (checked through ``kernel_signature``).
        "kernel": CUPTI_AutoRange + CUPTI_KernelReplay. Exact per kernel; CUPTI serializes kernels and replays each
            ``num_passes`` times (saving/restoring memory), so step times are not those of the real run.
            Communication: NCCL kernels must never be replayed. The session stops the profiler around every
            torch.distributed collective/point-to-point call it wraps (COMMUNICATION_FUNCTIONS) and counts them in
            ``excluded_kernels``; since DDP/FSDP launch NCCL from C++ where no wrapper can see it, kernel mode refuses
            to start in a process group of more than one rank unless ``allow_distributed=True`` (caller's promise
            that all communication goes through the wrapped Python functions).
        "off": collects nothing.

    Usage::

        s = CounterSession("step")
        if s.start():
            for step in range(n):
                s.begin_step(step); train_step(); s.end_step(step)
        result = s.finish()
    """

    def __init__(self, mode: str = "step", device: int = 0, *, metric_set: MetricSet | None = None,
                 max_ranges: int = 2048, allow_distributed: bool = False) -> None:
        if mode not in ("kernel", "step", "off"):
            raise ValueError(f"mode must be 'kernel', 'step' or 'off', not {mode!r}")
        self.mode = mode
        self.device = device
        self.metric_set = metric_set
        self.max_ranges = max_ranges
        self.allow_distributed = allow_distributed
        self.reason = ""
        self.status = "not_started"
        self._profiler: Any = None  # native.RangeProfiler (untyped extension) between start() and finish()
        self._active = False       # between start() and finish(), and not failed
        self._in_step = False
        self._paused = False
        self._result = CounterResult(mode=mode)
        self._signatures: list[tuple[int, Any]] = []
        self._step_signature: Any = None
        self._decoded_ranges = 0
        self._patched: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Sets up the Range Profiler. Returns False with ``reason`` (and ``status``) when counters cannot run."""
        if self.mode == "off":
            return self._refuse("off", "hardware counters are off (mode='off')")
        native, why = load_cuda()
        if native is None:
            return self._refuse("unsupported", why)
        try:
            chip = native.counters_chip_name(self.device)
        except Exception as e:  # no GPU / driver: CounterUnsupportedError
            return self._refuse(_status_of(e), f"no GPU counters on device {self.device}: {e}")
        if self.mode == "kernel" and not self.allow_distributed:
            ranks = _distributed_world_size()
            if ranks > 1:
                return self._refuse("unsupported", (
                    f"kernel mode would replay NCCL kernels that DDP/FSDP launch from C++ ({ranks} ranks); "
                    "use mode='step', or allow_distributed=True if all communication goes through torch.distributed "
                    "Python calls"))
        try:
            if self.metric_set is None or self.metric_set.chip != chip:
                avail = native.counters_availability_image(self.device)
                self.metric_set = build_flop_metric_set(
                    chip, native.counters_base_metrics(chip, "counter", avail), query_passes=False)
            self._profiler = native.RangeProfiler(self.device, self.metric_set.metrics(), self.mode, self.max_ranges)
        except Exception as e:
            allowed, msg = profiling_permission()
            hint = f" ({msg})" if _status_of(e) == "insufficient_privileges" and allowed is False else ""
            return self._refuse(_status_of(e), f"{e}{hint}")
        self.metric_set.num_passes = int(self._profiler.num_passes)
        r = self._result
        r.chip, r.num_passes, r.metrics = chip, self.metric_set.num_passes, self.metric_set.metrics()
        if self.mode == "kernel":
            r.notes.append("kernel mode serializes kernels and replays each one: times and clocks are not those "
                           "of the real run")
            self._patch_communication()
        else:
            r.notes.append(f"step mode: one pass per step, {r.num_passes} identical steps make one complete step; "
                           "CUPTI's time metrics read high in user ranges (take durations from the kernel tracer)")
        self._active = True
        self.status = "ok"
        return True

    def reserve_ranges(self, kernels_per_step: int) -> None:
        """Kernel mode: size the next counter data image for ``kernels_per_step`` ranges (one per kernel), e.g. the
        kernel count the tracer saw in the last step. Between steps only; no-op otherwise. The native side also grows
        the image by itself after a step that dropped ranges (capped at 65536 ranges)."""
        if self.mode != "kernel" or not self._active or self._in_step or self._profiler is None:
            return
        try:
            self._profiler.reserve_ranges(int(kernels_per_step))
        except Exception as e:
            self._fail(e)

    def begin_step(self, step: int, kernel_signature: Any = None) -> None:
        """Marks the start of training step ``step`` (no-op when inactive or already complete)."""
        if not self._active or self._in_step:
            return
        if self.mode == "step" and self._result.complete:
            return
        try:
            self._profiler.start()
            if self.mode == "step":
                self._profiler.push_range("step")  # same name each pass: CUPTI joins the passes into one range
            self._in_step = True
            self._step_signature = kernel_signature
        except Exception as e:
            self._fail(e)

    def end_step(self, step: int, kernel_signature: Any = None) -> None:
        """Marks the end of step ``step``; ``kernel_signature`` (e.g. the tuple of kernel names the tracer saw)
        overrides the one given to :meth:`begin_step` for the identical-step check."""
        if not self._active or not self._in_step:
            return
        sig = kernel_signature if kernel_signature is not None else self._step_signature
        try:
            _synchronize(self.device)  # the range must close after the step's kernels ran
            if self.mode == "step":
                self._profiler.pop_range()
            done = self._profiler.stop()
            self._in_step = False
            self._signatures.append((step, sig))
            self._result.steps_profiled.append(step)
            if self.mode == "step":
                if done:
                    self._collect_step_mode()
            else:
                self._collect_kernel_rows(step)
        except Exception as e:
            self._fail(e)

    def finish(self) -> CounterResult:
        """Ends the session, releases the counters and returns what was collected."""
        r = self._result
        if self._active:
            if self._in_step:
                try:
                    self._profiler.stop()
                except Exception:
                    pass
                self._in_step = False
            if self.mode == "step" and not r.complete:
                r.reason = (f"incomplete: {len(r.steps_profiled)} of {r.num_passes} passes collected "
                            f"(run at least {r.num_passes} identical steps)")
            self._finalize_values()
        self._close()
        r.mixed, r.mixed_reason = steps_mixed(self._signatures)
        if r.mixed_reason and not r.mixed and r.mixed_reason not in r.notes:
            r.notes.append(r.mixed_reason)
        if not r.reason and self.reason:
            r.reason = self.reason
        return r

    # -- internals ---------------------------------------------------------------------------------------------
    def _refuse(self, status: str, reason: str) -> bool:
        self.status, self.reason = status, reason
        self._result.reason = reason
        return False

    def _fail(self, exc: BaseException) -> None:
        # The training loop must survive the profiler: keep what was decoded, release the counters, say why.
        self.status = _status_of(exc)
        self.reason = f"counter collection stopped: {exc}"
        self._result.reason = self.reason
        self._finalize_values()
        self._close()

    def _close(self) -> None:
        self._unpatch_communication()
        self._active = False
        if self._profiler is not None:
            try:
                self._profiler.close()
            except Exception:
                pass
            self._profiler = None

    def _collect_step_mode(self) -> None:
        decoded = self._profiler.decode()
        r = self._result
        r.dropped_ranges = int(decoded["dropped_ranges"])
        ranges = decoded["ranges"]
        if ranges:
            r.step_values = _sum_values(rg["values"] for rg in ranges)
            r.total_values = dict(r.step_values)
        r.complete = True

    def _collect_kernel_rows(self, step: int) -> None:
        decoded = self._profiler.decode(self._decoded_ranges)
        self._decoded_ranges = int(decoded["total_ranges"])
        self._result.dropped_ranges = int(decoded["dropped_ranges"])
        for rg in decoded["ranges"]:
            row = {"step": step, "index": len(self._result.kernels), "name": rg["name"], "values": rg["values"]}
            try:
                # start() set metric_set before the session became active, and nothing unsets it.
                row["flops_by_precision"] = flops_from_values(rg["values"], cast(MetricSet, self.metric_set))
            except KeyError:
                row["flops_by_precision"] = {}
            self._result.kernels.append(row)
        self._result.complete = True

    def _finalize_values(self) -> None:
        r = self._result
        if self.mode == "kernel" and r.kernels:
            r.total_values = _sum_values(row["values"] for row in r.kernels)
            n = max(1, len(r.steps_profiled))
            r.step_values = {k: (v if k.endswith((".peak_sustained", ".per_second")) else v / n)
                             for k, v in r.total_values.items()}
        if r.step_values and self.metric_set is not None:
            try:
                r.flops_by_precision = flops_from_values(r.step_values, self.metric_set)
                r.executed_flops = executed_flops(r.flops_by_precision)
                _fp16, fp16_note = fp16_simt_upper_bound(r.flops_by_precision)  # shown apart, as an upper bound
                if fp16_note:
                    r.notes.append(fp16_note)
                if self.mode == "step":
                    r.percent_of_peak = percent_of_peak_from_values(r.step_values, self.metric_set)
            except KeyError as e:
                r.notes.append(f"FLOPs not computed: {e}")
        if r.dropped_ranges:
            # The native image grows after a step that dropped ranges (kernel mode), up to its cap of 65536.
            held = getattr(self._profiler, "max_ranges", self.max_ranges) if self._profiler is not None else None
            r.notes.append(f"{r.dropped_ranges} range(s) dropped: the counter data image held "
                           f"{held if held is not None else self.max_ranges} ranges when they were lost "
                           "(raise max_ranges, or call reserve_ranges with the kernels of one step)")
        if self.mode == "kernel":
            r.notes.append(f"{r.excluded_kernels} communication call(s) kept out of kernel replay")

    def _patch_communication(self) -> None:
        dist = sys.modules.get("torch.distributed")
        if dist is None:
            return
        for name in COMMUNICATION_FUNCTIONS:
            original = getattr(dist, name, None)
            if original is None or name in self._patched:
                continue
            self._patched[name] = original
            setattr(dist, name, self._excluding(original))

    def _unpatch_communication(self) -> None:
        dist = sys.modules.get("torch.distributed")
        if dist is not None:
            for name, original in self._patched.items():
                setattr(dist, name, original)
        self._patched.clear()

    def _excluding(self, fn):
        session = self

        def wrapper(*args, **kwargs):
            if not (session._active and session._in_step and not session._paused):
                return fn(*args, **kwargs)
            # Stop the profiler so the collective's NCCL kernels launch outside kernel replay, then resume.
            session._paused = True
            try:
                session._profiler.stop()
                session._result.excluded_kernels += 1
                return fn(*args, **kwargs)
            finally:
                try:
                    session._profiler.start()
                except Exception as e:
                    session._in_step = False
                    session._fail(e)
                session._paused = False

        wrapper.__wrapped__ = fn
        wrapper.__name__ = getattr(fn, "__name__", "collective")
        return wrapper


def _distributed_world_size() -> int:
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_world_size())
    except Exception:
        pass
    return 1


def _synchronize(device: int) -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.cuda.synchronize(device)
        except Exception:
            pass
