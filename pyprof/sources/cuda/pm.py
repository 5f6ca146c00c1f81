"""Utilization over time from CUPTI PM sampling: SM activity and tensor / FMA / FP64 pipe activity per sample.

PM sampling reads device-wide hardware counters every ~1-10 ms in one pass, without replaying kernels, so it is cheap
enough to leave on during training. What it yields are **pipe-activity ratios, not FLOP counts**: on GH100 the
FLOP counters (``sm__ops_path_tensor_*``) are not available to PM sampling. A ratio equals FLOP utilization only
when kernels issue the highest-rate instruction for their precision (GPU_COUNTERS.md section 4).

The native part is ``pyprof._C_cuda`` (``pm_config``, ``pm_base_metrics``, ``pm_chip_name``, ``PmSampler``);
:func:`pm_series` is pure and turns raw samples into ratios with the formula written next to each line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from pyprof._native import load_cuda

PM_DISCLAIMER = (
    "PM sampling gives pipe-activity ratios, not FLOP counts; on GH100 the FLOP counters are not available to "
    "PM sampling. A ratio equals FLOP utilization only when kernels issue the highest-rate instruction for their "
    "precision."
)

PERMISSION_HINT = (
    "GPU performance counters are restricted to admin users: run as root or with CAP_SYS_ADMIN / CAP_PERFMON, or load "
    "the driver with NVreg_RestrictProfilingToAdminUsers=0 (see RmProfilingAdminOnly in /proc/driver/nvidia/params); "
    "kernel tracing and NVML keep working without it"
)

#: What ``sm__pipe_tensor_op_hmma_cycles_active`` measures, in the words a report may show. CUPTI 13.0's description of
#: the metric on GH100 lists HMMA, HFMA2.MMA, HGMMA and QGMMA (GPU_COUNTERS.md section 2): it includes wgmma (HGMMA,
#: QGMMA) and even the HFMA2.MMA the compiler emits for constant loads, so it must never be read as "mma.sync only"
#: or used to split mma.sync from wgmma.
HMMA_PIPE_LABEL = "tensor pipe, hmma sub-pipe (on GH100: HMMA, HFMA2.MMA, HGMMA and QGMMA; not mma.sync alone)"

# Role -> candidate metric names, the first one the chip offers wins. The TriageCompute names (GH100 and later) come
# from GPU_COUNTERS.md section 2; the plain names are GA100's. `peak` roles also collect `<metric>.peak_sustained`
# (a per-chip constant: the most the counter can advance per cycle over the whole GPU; it costs no counter).
_ROLES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("sm_cycles_active", ("TPC.TriageCompute.sm__cycles_active.sum", "sm__cycles_active.sum"), True),
    ("tensor_pipe_cycles_active",
     ("TPC.TriageCompute.sm__pipe_tensor_cycles_active_realtime.sum", "sm__pipe_tensor_cycles_active_realtime.sum"),
     True),
    ("hmma_pipe_cycles_active", ("TPC.TriageCompute.sm__pipe_tensor_op_hmma_cycles_active_realtime.sum",), True),
    ("fma_pipe_inst",
     ("TPC.TriageCompute.sm__inst_executed_pipe_fma_realtime.sum", "sm__inst_executed_pipe_fma_realtime.sum"), True),
    ("fp64_pipe_cycles_active",
     ("TPC.TriageCompute.sm__pipe_fp64_cycles_active_realtime.sum", "sm__pipe_fp64_cycles_active.sum"), True),
    ("warps_active", ("TPC.TriageCompute.tpc__warps_active_realtime.sum", "tpc__warps_active_realtime.sum"), True),
    ("dram_cycles_elapsed", ("FBSP.TriageCompute.dramc__cycles_elapsed.sum", "dramc__cycles_elapsed.sum"), False),
    ("gpc_cycles_elapsed", ("gpc__cycles_elapsed.max",), False),
    ("dram_bytes", ("dram__bytes.sum",), False),
)
_REQUIRED_ROLES = ("sm_cycles_active", "gpc_cycles_elapsed")
_PEAK_SUFFIX = ".peak_sustained"
_ROLLUP = re.compile(r"\.(sum|avg|max|min)(\..*)?$")


def _base_name(metric: str) -> str:
    """``TPC.TriageCompute.sm__cycles_active.sum`` -> ``TPC.TriageCompute.sm__cycles_active`` (as the host API lists)."""
    return _ROLLUP.sub("", metric)


@dataclass(frozen=True)
class PmMetricSet:
    """The metrics one PM-sampling session collects on a chip.

    Attributes:
        chip: CUPTI chip name, e.g. ``"GH100"``.
        roles: role -> metric name (roles the chip lacks are absent).
        peaks: role -> ``<metric>.peak_sustained`` name, for the ratio roles.
        metrics: every metric to collect, in collection order.
        num_passes: passes CUPTI's host API reports for the set (1), or None when it could not be checked.
    """

    chip: str
    roles: dict[str, str]
    peaks: dict[str, str]
    metrics: list[str]
    num_passes: int | None


def pm_metric_set(chip: str, available: Iterable[str] | None = None, verify: bool = True) -> PmMetricSet:
    """Choose the TriageCompute metric set for ``chip`` from the names it actually has, and check it is one pass.

    Args:
        chip: CUPTI chip name (``"GH100"``, ``"GA100"``, ...).
        available: base metric names of the chip (as :func:`pyprof._C_cuda.pm_base_metrics` returns them); read from
            CUPTI's host API when None.
        verify: check the pass count through ``pm_config`` (raises when it is not 1).

    Returns:
        The chosen :class:`PmMetricSet`.

    Raises:
        RuntimeError: the CUDA part is missing and ``available`` was not given, the chip lacks a required role
            (SM active cycles, GPC elapsed cycles), or the set does not fit one pass (the message names the metric).
    """
    mod, why = load_cuda()
    if available is None:
        if mod is None:
            raise RuntimeError(f"cannot list PM-sampling metrics for {chip}: {why}")
        available = mod.pm_base_metrics(chip)
    have = set(available)
    roles: dict[str, str] = {}
    peaks: dict[str, str] = {}
    for role, candidates, with_peak in _ROLES:
        for name in candidates:
            if _base_name(name) in have:
                roles[role] = name
                if with_peak:
                    peaks[role] = name + _PEAK_SUFFIX
                break
    missing = [r for r in _REQUIRED_ROLES if r not in roles]
    if missing:
        raise RuntimeError(f"PM sampling on {chip} offers none of the candidate metrics for {', '.join(missing)}")
    metrics = list(roles.values()) + list(peaks.values())
    num_passes: int | None = None
    if verify and mod is not None:
        num_passes = int(mod.pm_config(chip, metrics)["num_passes"])  # raises naming a metric when > 1 pass
    return PmMetricSet(chip=chip, roles=roles, peaks=peaks, metrics=metrics, num_passes=num_passes)


@dataclass
class PmSeries:
    """Utilization over time from PM samples (numpy arrays, one entry per sample; None where not collected).

    All ``*_ratio`` fields are busy/issue ratios of a pipe, not FLOP utilization (see :data:`PM_DISCLAIMER`).

    Attributes:
        t_s: sample start, seconds after the first sample's start.
        duration_s: sample length in seconds.
        sm_active_ratio: fraction of SM-cycles with at least one warp resident.
        tensor_pipe_active_ratio: fraction of SM-cycles the tensor pipe was busy (all tensor instructions).
        hmma_pipe_active_ratio: the same for the "hmma" tensor sub-pipe (:data:`HMMA_PIPE_LABEL`: on GH100 CUPTI's
            description covers HMMA, HFMA2.MMA, HGMMA and QGMMA, so it is NOT mma.sync alone and never separates
            mma.sync from wgmma); None where the chip has no such PM metric.
        fma_pipe_inst_ratio: FMA-pipe warp instructions issued / the most the FMA pipes can issue.
        fp64_pipe_active_ratio: fraction of SM-cycles the FP64 pipe was busy.
        warps_active_ratio: resident warps / the most that fit (achieved occupancy).
        dram_bytes_per_s: DRAM bytes read + written per second.
        sm_clock_hz: GPC (= SM) cycles elapsed per second: the clock actually achieved.
        t0_monotonic_s: the first sample's start on ``time.monotonic()``'s clock, when known (aligns with NVML).
        chip: CUPTI chip name.
        disclaimer: :data:`PM_DISCLAIMER`.
    """

    t_s: np.ndarray
    duration_s: np.ndarray
    sm_active_ratio: np.ndarray
    tensor_pipe_active_ratio: np.ndarray | None
    hmma_pipe_active_ratio: np.ndarray | None
    fma_pipe_inst_ratio: np.ndarray | None
    fp64_pipe_active_ratio: np.ndarray | None
    warps_active_ratio: np.ndarray | None
    dram_bytes_per_s: np.ndarray | None
    sm_clock_hz: np.ndarray
    t0_monotonic_s: float | None = None
    chip: str = ""
    disclaimer: str = field(default=PM_DISCLAIMER)

    def __len__(self) -> int:
        return int(self.t_s.shape[0])


def pm_series(samples: Sequence[Mapping[str, Any]], metric_set: PmMetricSet,
              clock_sync: Mapping[str, int] | None = None) -> PmSeries:
    """Turn raw PM samples into utilization ratios over time.

    Args:
        samples: ``[{"start_ns", "end_ns", "values": {metric: float}}]`` as ``PmSampler.samples()`` returns them.
        metric_set: the set the samples were collected with.
        clock_sync: ``PmSampler.stats()`` (its ``cupti_ts_at_start_ns`` / ``monotonic_ns_at_start`` pair), to place
            the series on ``time.monotonic()``; optional.

    Returns:
        A :class:`PmSeries` (empty arrays for no samples).
    """
    ordered = sorted(samples, key=lambda s: int(s["start_ns"]))
    start_ns = np.array([int(s["start_ns"]) for s in ordered], dtype=np.int64)
    end_ns = np.array([int(s["end_ns"]) for s in ordered], dtype=np.int64)

    def column(name: str) -> np.ndarray:
        return np.array([float(s["values"].get(name, math.nan)) for s in ordered], dtype=np.float64)

    def col(name: str | None) -> np.ndarray | None:
        if name is None:
            return None
        return column(name)

    roles, peaks = metric_set.roles, metric_set.peaks
    elapsed = column(roles["gpc_cycles_elapsed"])  # GPC cycles in the sample (max over GPCs); GPC clock = SM clock

    def ratio(role: str) -> np.ndarray | None:
        # counter / (counter's peak per cycle over the whole GPU x cycles elapsed); e.g. for SM active cycles the peak
        # is the SM count, so 132 SMs all active for 1e6 cycles gives 1.32e8 / (132 x 1e6) = 1.0.
        if role not in roles:
            return None
        num, peak = column(roles[role]), col(peaks.get(role))
        if peak is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / (peak * elapsed)

    duration_s = (end_ns - start_ns) / 1e9
    t_s = (start_ns - start_ns[0]) / 1e9 if len(start_ns) else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sm_clock_hz = elapsed / duration_s  # cycles elapsed / seconds elapsed
        dram = col(roles.get("dram_bytes"))
        dram_bytes_per_s = None if dram is None else dram / duration_s  # bytes in the sample / its length

    t0_monotonic_s = None
    if clock_sync and len(start_ns) and clock_sync.get("cupti_ts_at_start_ns"):
        # CUPTI and CLOCK_MONOTONIC were read back to back at start: shift by their difference.
        t0_monotonic_s = (int(clock_sync["monotonic_ns_at_start"])
                          + int(start_ns[0]) - int(clock_sync["cupti_ts_at_start_ns"])) / 1e9

    return PmSeries(
        t_s=t_s,
        duration_s=duration_s,
        # SM active cycles / (SMs x elapsed cycles); a required role with a peak, so never None (see pm_metric_set)
        sm_active_ratio=cast(np.ndarray, ratio("sm_cycles_active")),
        tensor_pipe_active_ratio=ratio("tensor_pipe_cycles_active"),  # tensor-busy cycles / (SMs x elapsed)
        hmma_pipe_active_ratio=ratio("hmma_pipe_cycles_active"),  # hmma-sub-pipe busy cycles / (SMs x elapsed)
        fma_pipe_inst_ratio=ratio("fma_pipe_inst"),  # FMA warp insts / (max FMA warp insts per cycle x elapsed)
        fp64_pipe_active_ratio=ratio("fp64_pipe_cycles_active"),  # FP64-busy cycles / (SMs x elapsed)
        warps_active_ratio=ratio("warps_active"),  # resident warps summed per cycle / (max warps x elapsed)
        dram_bytes_per_s=dram_bytes_per_s,
        sm_clock_hz=sm_clock_hz,
        t0_monotonic_s=t0_monotonic_s,
        chip=metric_set.chip,
    )


def _explain(status: str, error: str) -> str:
    if status == "permission_denied":
        return f"PM sampling is not permitted: {PERMISSION_HINT} ({error})"
    if status == "no_device":
        return f"PM sampling needs a GPU with a driver: {error}"
    if status == "not_supported":
        return f"PM sampling is not supported on this device/configuration: {error}"
    if status == "counters_in_use":  # the native message names the holder (a Range Profiler) and the fix
        return f"PM sampling refused: {error}"
    return f"PM sampling failed to start: {error}"


class PmSession:
    """One device's PM-sampling session: start, stop, then read :meth:`series`.

    Nothing here raises into the caller: :meth:`start` returns False and :attr:`reason` says why.

    Args:
        device: CUDA device index.
        interval_ms: sampling interval in milliseconds (1-10 is the useful range).
        max_samples: most samples kept (the oldest are dropped and counted beyond that).
        metric_set: metrics to collect; :func:`pm_metric_set` for the device's chip when None.
    """

    def __init__(self, device: int = 0, interval_ms: float = 2.0, max_samples: int = 100_000,
                 metric_set: PmMetricSet | None = None) -> None:
        self.device = device
        self.interval_ms = interval_ms
        self.max_samples = max_samples
        self.metric_set = metric_set
        self.reason = ""
        self.status = "idle"
        self._sampler: Any = None
        self._raw: list[dict[str, Any]] = []
        self._dropped_here = 0
        self._stats: dict[str, Any] = {}

    def start(self) -> bool:
        """Start sampling; False with :attr:`reason` when PM sampling is unavailable (no GPU, no permission, ...)."""
        try:
            mod, why = load_cuda()
            if mod is None:
                return self._refuse("unavailable", why)
            try:
                chip = mod.pm_chip_name(self.device)
            except RuntimeError as e:
                return self._refuse("no_device", f"PM sampling needs a GPU with a driver: {e}")
            if self.metric_set is None or self.metric_set.chip != chip:
                self.metric_set = pm_metric_set(chip)
            interval_ns = max(1, round(self.interval_ms * 1e6))
            self._sampler = mod.PmSampler(self.device, self.metric_set.metrics, interval_ns, self.max_samples)
            status = self._sampler.start()
            if status != "running":
                return self._refuse(status, _explain(status, self._sampler.stats().get("error", "")))
            self.status, self.reason = "running", ""
            return True
        except Exception as e:  # the training loop must not die because of the profiler
            return self._refuse("error", f"PM sampling failed to start: {type(e).__name__}: {e}")

    def _refuse(self, status: str, reason: str) -> bool:
        self.status, self.reason = status, reason
        self._sampler = None
        return False

    def _drain(self) -> None:
        if self._sampler is None:
            return
        try:
            self._raw.extend(self._sampler.samples())
            self._stats = dict(self._sampler.stats())
        except Exception as e:
            self.reason = f"reading PM samples failed: {type(e).__name__}: {e}"
        if len(self._raw) > self.max_samples:
            extra = len(self._raw) - self.max_samples
            del self._raw[:extra]
            self._dropped_here += extra

    def stop(self) -> None:
        """Stop sampling and collect what is left (safe to call when not started)."""
        if self._sampler is None:
            return
        try:
            self._sampler.stop()
        except Exception as e:
            self.reason = f"stopping PM sampling failed: {type(e).__name__}: {e}"
        self._drain()
        self.status = "stopped"

    def stats(self) -> dict[str, Any]:
        """The sampler's counters (decoded, dropped, overflows, decode_errors, status, error, chip, trigger_mode)."""
        self._drain()
        out = dict(self._stats)
        out["dropped"] = int(out.get("dropped", 0)) + self._dropped_here
        return out

    def series(self) -> PmSeries:
        """Everything sampled so far as a :class:`PmSeries` (an empty series when nothing was sampled)."""
        self._drain()
        if self.metric_set is None:
            empty = np.zeros(0)
            return PmSeries(t_s=empty, duration_s=empty, sm_active_ratio=empty, tensor_pipe_active_ratio=None,
                            hmma_pipe_active_ratio=None, fma_pipe_inst_ratio=None, fp64_pipe_active_ratio=None,
                            warps_active_ratio=None, dram_bytes_per_s=None, sm_clock_hz=empty)
        return pm_series(self._raw, self.metric_set, self._stats or None)
