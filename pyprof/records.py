"""Typed results of a profiled run: per-step records, totals, reconciliation. Plain data, JSON-serializable.

Data flows one way: measurements (profiler) -> these records -> reconciliation (:mod:`pyprof.reconcile`) -> writers
(:mod:`pyprof.report`). Nothing here measures anything.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar


@dataclass
class FlopFigure:
    """A FLOP figure and where it came from. ``value`` is None when the source could not measure it."""

    value: float | None
    source: str        # "analytic (aten, pyprof.flops)", "hardware (perf_event FP_ARITH_INST_RETIRED)", ...
    note: str = ""


@dataclass
class StepRecord:
    """One recorded (active) step."""

    index: int                         # step number counted from the start of the profile (0-based)
    wall_time_s: float
    cpu_time_s: float                  # process CPU time (all threads) during the step
    analytic_flops: int | None         # model FLOPs of this step (dense convention), None if not counted
    analytic_flops_effective: int | None  # with masked work skipped (causal attention)
    analytic_forward_flops: int | None  # the forward-pass share of analytic_flops
    analytic_origin: str               # "counted" (dispatch mode ran), "reused" (same signature), "derived"
                                       # (exact polynomial in tensor sizes, pyprof.session.counting), "missing"
    signature_id: int | None           # index into ProfileResult.flop_counts
    hardware_flops: float | None = None
    examples: int | None = None
    perturbed: bool = False            # analytic counting ran in this step: its time includes pyprof's counting cost
    gpu: GpuStep | None = None         # GPU figures of the step (pyprof.sources.cuda.session), None off the GPU

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["gpu"] = self.gpu.to_dict() if self.gpu is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepRecord:
        d = dict(d)
        g = d.get("gpu")
        d["gpu"] = GpuStep.from_dict(g) if g else None
        return cls(**d)


# ---------------------------------------------------------------------------------------------------------- GPU
# The GPU records keep the JSON report's "gpu" fields exactly (schema 1.1): a field a source did not measure is None
# in the record and absent from the JSON, as it was when these were dicts, so old reports read and write back the same.

def _present(obj: Any, *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of a record that were measured (not None), in field order; ``keep`` fields always."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
            if getattr(obj, f.name) is not None or f.name in keep}


def _known(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``d`` that are fields of ``cls`` (a report written by a newer minor version may have more)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass
class Status:
    """Whether a measurement source runs, and why not when it does not.

    Attributes:
        active: the source delivers figures.
        reason: why it does not (or a caveat while it does); "" when there is nothing to say.
        mode: the hardware counters' mode ("kernel" or "step"), None for other sources.
        libraries: the library hooks' native status per library (``"installed: <soname> (<path>)"``, ``"not
            loaded"``, an error), None for other sources; decide with ``active``, never by reading these texts.
    """

    active: bool
    reason: str = ""
    mode: str | None = None
    libraries: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _present(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Status:
        return cls(**_known(cls, d))


@dataclass
class NvmlStepWindow:
    """NVML figures of one device over one step (``pyprof.sources.cuda.nvml.NvmlWindow`` without the run-level
    facts). Means are over the samples inside the window; None where a field could not be read."""

    start_s: float
    end_s: float
    n_samples: int
    sm_clock_mhz_mean: float | None = None
    sm_clock_mhz_max: float | None = None
    mem_clock_mhz_mean: float | None = None
    mem_clock_mhz_max: float | None = None
    power_mw_mean: float | None = None
    power_mw_max: float | None = None
    energy_j: float | None = None
    energy_source: str | None = None
    temperature_c_max: float | None = None
    utilization_gpu_pct_mean: float | None = None
    utilization_memory_pct_mean: float | None = None
    throttle_reasons_seen: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NvmlStepWindow:
        d = _known(cls, d)
        d["throttle_reasons_seen"] = list(d.get("throttle_reasons_seen") or [])
        return cls(**d)


@dataclass
class GpuStep:
    """The GPU part of one step, merged from the sources' parts (``None``: that source did not measure it).

    Times in seconds, FLOPs as formula FLOPs of the library calls (cuBLAS/cuBLASLt/cuDNN) by precision class.

    Attributes:
        timing_source: "cupti" (kernel tracer) or "cuda events" (fallback without the tracer).
        window_time_s: the step window on the tracer's clock.
        busy_time_s: union of kernel intervals on the profiled device; idle_time_s the rest of the window.
        busy_time_s_by_device: busy time per device index (as a string, like the JSON).
        kernel_count, kernel_time_s: kernels that started in the window and the sum of their durations.
        uncounted_kernel_time_s: time of kernels with no library FLOPs attached.
        library_flops_by_precision, library_flops: library formula FLOPs of the step, by precision and in all.
        library_kernel_count: kernels that carried a library call.
        memcpy_count, memcpy_bytes, memcpy_time_s: memory copies that started in the window.
        kernels: per-kernel records of the native tracer, passed through as they come (only with
            ``kernel_records=True``).
        gpu_time_s: step time on the GPU from CUDA events (without the tracer).
        nvml: NVML figures of the step.
        counters_ran: hardware counters collected in this step (its time is left out of the rates).
        executed_flops: executed FLOPs of the step from hardware counters, when a source measured them per step.
    """

    timing_source: str | None = None
    window_time_s: float | None = None
    busy_time_s: float | None = None
    busy_time_s_by_device: dict[str, float] | None = None
    idle_time_s: float | None = None
    kernel_count: int | None = None
    kernel_time_s: float | None = None
    uncounted_kernel_time_s: float | None = None
    library_flops_by_precision: dict[str, float] | None = None
    library_flops: float | None = None
    library_kernel_count: int | None = None
    memcpy_count: int | None = None
    memcpy_bytes: int | None = None
    memcpy_time_s: float | None = None
    kernels: list[Mapping[str, Any]] | None = None
    gpu_time_s: float | None = None
    nvml: NvmlStepWindow | None = None
    counters_ran: bool | None = None
    executed_flops: float | None = None

    def merge(self, part: GpuStep) -> None:
        """Take every field ``part`` measured (sources measure disjoint fields; a later part wins a clash)."""
        for f in dataclasses.fields(part):
            v = getattr(part, f.name)
            if v is not None:
                setattr(self, f.name, v)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))

    def to_dict(self) -> dict[str, Any]:
        d = _present(self)
        for k in ("busy_time_s_by_device", "library_flops_by_precision"):
            if k in d:
                d[k] = dict(d[k])
        if self.nvml is not None:
            d["nvml"] = self.nvml.to_dict()
        if self.kernels is not None:
            d["kernels"] = [dict(k) for k in self.kernels]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GpuStep:
        d = _known(cls, d)
        if isinstance(d.get("nvml"), Mapping):
            d["nvml"] = NvmlStepWindow.from_dict(d["nvml"])
        return cls(**d)


@dataclass
class PrecisionUse:
    """Library FLOPs of one precision class over the timed steps, against that class's spec peak."""

    precision: str
    library_flops: float
    achieved_flops_per_s: float | None
    spec_peak_flops_per_s: float | None
    utilization_vs_spec: float | None


@dataclass
class GpuTotals:
    """GPU figures over the timed steps (:func:`pyprof.accounting.reconcile.gpu_totals`); None: not measured.

    With no timed GPU step only ``steps`` (0) and ``reason`` are set.
    """

    steps: int
    reason: str | None = None
    wall_time_s: float | None = None
    timing_source: str | None = None
    busy_time_s: float | None = None
    busy_fraction: float | None = None
    gpu_time_s: float | None = None
    kernel_count: float | None = None
    kernel_time_s: float | None = None
    uncounted_kernel_time_s: float | None = None
    uncounted_kernel_time_share: float | None = None
    library_flops: float | None = None
    library_flops_by_precision: dict[str, float] = field(default_factory=dict)
    library_peak_time_s: float | None = None
    library_utilization: float | None = None
    library_utilization_missing_peaks: list[str] = field(default_factory=list)
    by_precision: list[PrecisionUse] = field(default_factory=list)
    executed_flops: float | None = None
    executed_over_library: float | None = None
    executed_over_analytic: float | None = None
    library_over_analytic: float | None = None
    energy_j: float | None = None
    energy_per_analytic_flop_j: float | None = None
    energy_per_library_flop_j: float | None = None
    nvml_utilization_gpu_pct_mean: float | None = None
    sm_clock_mhz_mean: float | None = None
    power_w_mean: float | None = None
    executed_flops_per_step: float | None = None  # set when the hardware counters completed

    def to_dict(self) -> dict[str, Any]:
        if not self.steps:
            return {"steps": self.steps, "reason": self.reason}
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name not in ("reason", "executed_flops_per_step", "executed_flops", "executed_over_library",
                               "executed_over_analytic")}
        d["by_precision"] = [asdict(p) for p in self.by_precision]
        d["library_flops_by_precision"] = dict(self.library_flops_by_precision)
        d["library_utilization_missing_peaks"] = list(self.library_utilization_missing_peaks)
        # the JSON's key order (schema 1.1): executed_* sit after by_precision, executed_flops_per_step at the end
        out: dict[str, Any] = {}
        for k, v in d.items():
            out[k] = v
            if k == "by_precision":
                out.update(executed_flops=self.executed_flops, executed_over_library=self.executed_over_library,
                           executed_over_analytic=self.executed_over_analytic)
        if self.executed_flops_per_step is not None:
            out["executed_flops_per_step"] = self.executed_flops_per_step
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GpuTotals:
        d = _known(cls, d)
        d["by_precision"] = [PrecisionUse(**_known(PrecisionUse, p)) for p in d.get("by_precision") or []]
        return cls(**d)


@dataclass
class KernelStat:
    """One row of the run's kernel table: a kernel name at one launch shape on one device, over the whole run.

    ``"<other kernels>"`` (device -1) gathers the kernels below the table's top N. ``achieved_flops_per_s`` is the
    library FLOPs over the time of the executions that carried them; None when none did.
    """

    name: str
    device: int
    grid: list[int]
    block: list[int]
    count: int
    total_time_s: float
    max_time_s: float
    library_flops: float
    precision: str | None
    library_calls: int
    achieved_flops_per_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KernelStat:
        d = _known(cls, d)
        d["grid"], d["block"] = list(d["grid"]), list(d["block"])
        return cls(**d)


@dataclass
class GpuCounters:
    """What the GPU hardware counters (CUPTI Range Profiler) collected, as the run's accounting reads it.

    Attributes:
        mode: "kernel", "step" or "off".
        complete: every pass collected (step mode: after ``num_passes`` steps).
        num_passes: passes the metric set needs.
        executed_flops: executed FLOPs of one step (no integer ops); None when nothing was collected.
        mixed: the kernel sequence changed between contributing steps; ``mixed_reason`` says where.
        reason: why nothing or only part was collected ("" when complete).
        detail: the rest of the counter session's result (chip, metrics, values, kernel rows, notes), kept for the
            report as the source wrote it; pyprof's accounting never reads it.
    """

    mode: str
    complete: bool = False
    num_passes: int | None = None
    executed_flops: float | None = None
    mixed: bool = False
    mixed_reason: str = ""
    reason: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    key_order: tuple[str, ...] = field(default=(), repr=False, compare=False)  # the source's key order, for JSON

    _TYPED = ("mode", "complete", "num_passes", "executed_flops", "mixed", "mixed_reason", "reason")

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.detail)
        for k in self._TYPED:
            d[k] = getattr(self, k)
        order = [k for k in self.key_order if k in d] + [k for k in d if k not in self.key_order]
        return {k: d[k] for k in order}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GpuCounters:
        typed = {k: d[k] for k in cls._TYPED if k in d}
        return cls(**typed, detail={k: v for k, v in d.items() if k not in cls._TYPED}, key_order=tuple(d))


@dataclass
class GpuRun:
    """The run's GPU section: each source's status, the kernel table, per-source statistics and series, and the
    totals over the timed steps. None: that source did not run (absent from the JSON).

    ``tracer_stats``, ``library_hooks_stats``, ``nvml`` (run-level NVML facts: throttle-reason meanings and what
    NVML's utilization means), ``pm_sampling`` and ``pm_sampling_stats`` are the sources' own payloads, stored as they
    came (the report shows them; the accounting does not compute with them).
    """

    status: dict[str, Status] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kernels: list[KernelStat] | None = None
    tracer_stats: Mapping[str, Any] | None = None
    library_hooks_stats: Mapping[str, Any] | None = None
    nvml: Mapping[str, Any] | None = None
    counters: GpuCounters | None = None
    pm_sampling: Mapping[str, Any] | None = None
    pm_sampling_stats: Mapping[str, Any] | None = None
    totals: GpuTotals | None = None

    def to_dict(self) -> dict[str, Any]:
        d = _present(self, keep=("status", "notes"))
        d["status"] = {k: v.to_dict() for k, v in self.status.items()}
        d["notes"] = list(self.notes)
        if self.kernels is not None:
            d["kernels"] = [k.to_dict() for k in self.kernels]
        if self.counters is not None:
            d["counters"] = self.counters.to_dict()
        if self.totals is not None:
            d["totals"] = self.totals.to_dict()
        for k in ("tracer_stats", "library_hooks_stats", "nvml", "pm_sampling", "pm_sampling_stats"):
            if d.get(k) is not None:
                d[k] = dict(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GpuRun:
        d = _known(cls, d)
        d["status"] = {k: Status.from_dict(v) for k, v in (d.get("status") or {}).items()}
        d["notes"] = list(d.get("notes") or [])
        if d.get("kernels") is not None:
            d["kernels"] = [KernelStat.from_dict(k) for k in d["kernels"]]
        if d.get("counters") is not None:
            d["counters"] = GpuCounters.from_dict(d["counters"])
        if d.get("totals") is not None:
            d["totals"] = GpuTotals.from_dict(d["totals"])
        return cls(**d)


@dataclass
class DeviceReport:
    """The device the profiled work ran on, and what pyprof can measure on it."""

    kind: str                 # "cpu", "cuda", "mps", ...
    name: str
    supported: bool           # full measurement path available
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PeakReport:
    """A peak FLOP/s figure with its provenance."""

    flops_per_s: float | None
    kind: str                 # "spec", "theoretical", "measured"
    precision: str
    source: str


@dataclass
class Reconciliation:
    """Measured utilization set against Method 1 and Method 2 ("AI and compute")."""

    flop_source: str
    achieved_flops_per_s: float | None
    peaks: list[PeakReport]
    utilization_vs_spec: float | None       # achieved / spec (or theoretical, for CPUs) peak
    utilization_vs_measured: float | None   # achieved / peak measured on this machine by pyprof's microkernel
    mfu: float | None                       # model FLOPs (no recomputation) / (time x spec peak)
    hfu: float | None                       # executed FLOPs (recomputation included) / (time x spec peak)
    hfu_source: str
    assumed_utilization: float              # Method 2's assumption: 0.33 GPU, 0.17 CPU
    assumed_utilization_source: str
    error_factor: float | None              # max(assumed/measured, measured/assumed) >= 1
    error_direction: str                    # "overestimate" when the assumption is above the measured utilization
    method2_window_flops: float | None      # Method 2 applied to the profiled window: peak x time x assumed
    measured_window_flops: float | None     # FLOPs measured in the same window
    training_run: dict[str, Any] | None     # Method 1 / Method 2 extrapolated to a full training run, when given
    notes: list[str] = field(default_factory=list)


@dataclass
class Totals:
    """Aggregates over the recorded steps.

    Rates use the *timed* steps: the recorded steps in which analytic counting did not run (counting slows a step
    down); when every recorded step was counted, all of them, with a note in the report.
    """

    steps: int
    wall_time_s: float
    cpu_time_s: float
    perturbed_steps: int         # recorded steps in which analytic counting ran
    timed_steps: int
    timed_wall_time_s: float
    timed_analytic_flops: float | None
    timed_forward_flops: float | None
    timed_hardware_flops: float | None
    timed_examples: int | None
    step_time_s_median: float | None
    step_time_s_min: float | None
    step_time_s_max: float | None
    analytic_flops: float | None
    analytic_flops_effective: float | None
    analytic_forward_flops: float | None
    analytic_steps_missing: int
    hardware_flops: float | None
    examples: int | None
    analytic_flops_per_example: float | None
    counting_time_s: float       # time spent in pyprof's analytic counting (its overhead, measured)
    counted_signatures: int


@dataclass
class StepsWindowInfo:
    """Which per-step rows a report keeps (:mod:`pyprof.session.window`); totals always cover every recorded step."""

    recorded_steps: int      # recorded steps summarized in the totals
    rows: int                # rows kept in ProfileResult.steps
    first: int               # of which the first recorded steps
    last: int                # the last recorded steps
    sampled: int             # a uniform sample (reservoir) of the steps between
    selection: str           # the same in words, for the report


#: Job report schema (``kind`` and version of a multi-rank ``report.json``, :mod:`pyprof.session.distributed`).
JOB_SCHEMA_VERSION = "1.0"
JOB_KIND = "pyprof.job"

# What JobReport.from_dict returns when called on a subclass (typing.Self is Python 3.11+; pyprof supports 3.10).
_JobReportT = TypeVar("_JobReportT", bound="JobReport")


@dataclass
class JobReport:
    """One report for a multi-rank job: a row per rank that reported, job totals, skew, missing ranks.

    ``totals["utilization"]`` is the job-level utilization: total model FLOPs of the timed steps of every reporting
    rank / (sum of their peaks x job wall time), with job wall time = the longest timed window of any rank (in
    synchronous data-parallel training the slowest rank sets the pace). With equal peaks the denominator is
    ranks x peak x wall time.
    """

    world_size: int
    rows: list[dict[str, Any]]
    missing_ranks: list[int]
    missing_reasons: dict[int, str]
    totals: dict[str, Any]
    skew: dict[str, Any]
    comm: dict[str, Any]
    gather: dict[str, Any]
    partial: bool
    notes: list[str] = field(default_factory=list)
    schema_version: str = JOB_SCHEMA_VERSION
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["missing_reasons"] = {str(k): v for k, v in self.missing_reasons.items()}
        return {"kind": JOB_KIND, **d}

    @classmethod
    def from_dict(cls: type[_JobReportT], d: dict[str, Any]) -> _JobReportT:
        d = {k: v for k, v in d.items() if k != "kind"}
        d["missing_reasons"] = {int(k): v for k, v in (d.get("missing_reasons") or {}).items()}
        return cls(**d)


@dataclass
class ProfileResult:
    """Everything a profile produced. ``partial`` is True when the profiled code raised or was interrupted."""

    schema_version: str
    run: dict[str, Any]
    device: DeviceReport
    config: dict[str, Any]
    steps: list[StepRecord]
    totals: Totals
    flop_counts: list[dict[str, Any]]     # FlopCount.to_dict() per distinct step signature
    hardware_counters: dict[str, Any]     # availability, source, reason
    cpu_peaks: dict[str, Any]             # theoretical and measured CPU peaks, when measured
    reconciliation: Reconciliation | None
    partial: bool = False
    partial_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    gpu: GpuRun | None = None             # GPU section: sources' status, totals, per-precision utilization, kernels
    learning_curves: list[dict[str, Any]] = field(default_factory=list)  # LearningCurve.to_dict() per logged metric
    steps_window: StepsWindowInfo | None = None  # which rows ``steps`` keeps (schema 1.2; None in older reports)

    def to_dict(self) -> dict[str, Any]:
        # steps and the GPU section serialize themselves (they leave unmeasured GPU fields out); converting them
        # through asdict first would copy every step twice
        d = asdict(dataclasses.replace(self, steps=[], gpu=None))
        d["steps"] = [s.to_dict() for s in self.steps]
        d["gpu"] = self.gpu.to_dict() if self.gpu is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProfileResult:
        d = dict(d)
        rec = d.get("reconciliation")
        if rec is not None:
            rec = dict(rec)
            rec["peaks"] = [PeakReport(**p) for p in rec.get("peaks", [])]
            rec = Reconciliation(**rec)
        return cls(
            schema_version=d["schema_version"],
            run=d["run"],
            device=DeviceReport(**d["device"]),
            config=d["config"],
            steps=[StepRecord.from_dict(s) for s in d["steps"]],
            totals=Totals(**d["totals"]),
            flop_counts=d["flop_counts"],
            hardware_counters=d["hardware_counters"],
            cpu_peaks=d["cpu_peaks"],
            reconciliation=rec,
            partial=d.get("partial", False),
            partial_reason=d.get("partial_reason"),
            notes=d.get("notes", []),
            gpu=GpuRun.from_dict(d["gpu"]) if d.get("gpu") is not None else None,
            learning_curves=d.get("learning_curves") or [],
            steps_window=StepsWindowInfo(**d["steps_window"]) if d.get("steps_window") else None,
        )


def sum_or_none(values: Sequence[float | None]) -> float | None:
    """Sum when every value is known, else None (a partial sum would read as a wrong total)."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))


class LogHistogram:
    """Counts of positive values in fixed log-spaced bins: bin ``i`` holds ``[lo * r**i, lo * r**(i+1))``.

    With ``r = 1.01`` a quantile read back is within 0.5% of a value of the data (the bin's geometric middle is at
    most ``sqrt(1.01) - 1 = 0.4988%`` from either edge). Bins are kept sparse (a dict), so memory is bounded by the
    number of distinct bins touched: at most ``log(hi / lo) / log(r)`` = 3240 for step times between 1 ns and a day.
    Values at or below ``lo`` count in bin 0.
    """

    __slots__ = ("counts", "lo", "log_r", "n")

    def __init__(self, lo: float = 1e-9, ratio: float = 1.01) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self.lo = lo
        self.log_r = math.log(ratio)

    def add(self, x: float) -> None:
        i = int(math.log(x / self.lo) / self.log_r) if x > self.lo else 0
        self.counts[i] = self.counts.get(i, 0) + 1
        self.n += 1

    def mid(self, i: int) -> float:
        """The geometric middle of bin ``i`` (seconds, for step times)."""
        return self.lo * math.exp((i + 0.5) * self.log_r)

    def bins(self) -> list[tuple[float, int]]:
        """(geometric middle, count) of every non-empty bin, in increasing order."""
        return [(self.mid(i), c) for i, c in sorted(self.counts.items())]

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1) as its bin's middle; the median of an even count averages the two middle
        values' bins, as :func:`statistics.median` does. None when empty."""
        if self.n == 0:
            return None
        ranks = (math.floor(q * (self.n - 1)), math.ceil(q * (self.n - 1)))
        found: list[float] = []
        seen = 0
        for i, c in sorted(self.counts.items()):
            while len(found) < 2 and ranks[len(found)] < seen + c:
                found.append(self.mid(i))
            seen += c
            if len(found) == 2:
                break
        return (found[0] + found[1]) / 2

    def copy(self) -> LogHistogram:
        h = LogHistogram.__new__(LogHistogram)
        h.counts, h.n, h.lo, h.log_r = dict(self.counts), self.n, self.lo, self.log_r
        return h


class _Group:
    """Running sums over one group of steps (all recorded steps, or those without counting)."""

    __slots__ = (
        "analytic",
        "analytic_none",
        "cpu",
        "exact_cap",
        "examples",
        "examples_none",
        "forward",
        "forward_none",
        "hardware",
        "hardware_none",
        "hist",
        "n",
        "t_max",
        "t_min",
        "times",
        "wall",
    )

    def __init__(self, exact_cap: int) -> None:
        self.n = 0
        self.wall: float = 0
        self.cpu: float = 0
        self.times: list[float] | None = []   # every step time while n <= exact_cap (exact median), then None
        self.hist = LogHistogram()
        self.exact_cap = exact_cap
        self.t_min = math.inf
        self.t_max = -math.inf
        self.analytic = 0
        self.analytic_none = False
        self.forward = 0
        self.forward_none = False
        self.hardware: float = 0  # int + int stays exact, as in sum()
        self.hardware_none = False
        self.examples = 0
        self.examples_none = False

    def add(self, s: StepRecord) -> None:
        w = s.wall_time_s
        self.n += 1
        # Plain left-to-right float addition: the same value Python 3.11's sum() gives over the list.
        self.wall += w
        self.cpu += s.cpu_time_s
        if self.times is not None:
            if self.n <= self.exact_cap:
                self.times.append(w)  # the histogram is filled from these only when the cap is passed
            else:
                for t in self.times:  # the histogram takes over, filled with every time so far
                    self.hist.add(t)
                self.times = None
        if self.times is None:
            self.hist.add(w)
        if w < self.t_min:
            self.t_min = w
        if w > self.t_max:
            self.t_max = w
        if s.analytic_flops is None:
            self.analytic_none = True
        else:
            self.analytic += s.analytic_flops
        if s.analytic_forward_flops is None:
            self.forward_none = True
        else:
            self.forward += s.analytic_forward_flops
        if s.hardware_flops is None:
            self.hardware_none = True
        else:
            self.hardware += s.hardware_flops
        if s.examples is None:
            self.examples_none = True
        else:
            self.examples += s.examples

    def median(self) -> float | None:
        if self.n == 0:
            return None
        if self.times is not None:
            return statistics.median(self.times)
        return self.hist.quantile(0.5)

    def copy(self) -> _Group:
        g = _Group.__new__(_Group)
        for k in _Group.__slots__:
            setattr(g, k, getattr(self, k))
        g.times = list(self.times) if self.times is not None else None
        g.hist = self.hist.copy()
        return g


def _sum_if_known(none_seen: bool, n: int, total: float) -> float | None:
    # sum_or_none's rule: a partial sum would read as a wrong total
    return None if (none_seen or n == 0) else float(total)


class StepAggregate:
    """Running aggregates of every recorded step, O(1) memory (bounded by ``exact_times`` floats and the histogram
    bins) and O(1) time per step.

    Args:
        exact_times: step times kept exactly (for an exact median, as :func:`statistics.median`) before the
            histogram's median (within 0.5%) takes over; also the bound on counted steps' times kept for the
            counting-time estimate.
    """

    __slots__ = (
        "all",
        "clean",
        "counted_effective",
        "counted_flops",
        "counted_forward",
        "counted_n",
        "ex_counted_examples",
        "ex_counted_flops",
        "ex_counted_n",
        "perturbed_hist",
        "perturbed_times",
    )

    def __init__(self, exact_times: int = 3072) -> None:
        self.all = _Group(exact_times)
        self.clean = _Group(exact_times)
        self.counted_n = 0
        self.counted_flops = 0
        self.counted_effective = 0
        self.counted_forward = 0
        self.ex_counted_flops = 0
        self.ex_counted_examples = 0
        self.ex_counted_n = 0
        self.perturbed_times: list[float] | None = []
        self.perturbed_hist = LogHistogram()

    @property
    def steps(self) -> int:
        return self.all.n

    def add(self, s: StepRecord) -> None:
        self.all.add(s)
        if not s.perturbed:
            self.clean.add(s)
        else:
            self.perturbed_hist.add(s.wall_time_s)
            if self.perturbed_times is not None:
                if len(self.perturbed_times) < self.all.exact_cap:
                    self.perturbed_times.append(s.wall_time_s)
                else:
                    self.perturbed_times = None
        if s.analytic_flops is not None:
            self.counted_n += 1
            self.counted_flops += s.analytic_flops
            self.counted_effective += s.analytic_flops_effective or 0
            self.counted_forward += s.analytic_forward_flops or 0
            if s.examples:
                self.ex_counted_n += 1
                self.ex_counted_flops += s.analytic_flops
                self.ex_counted_examples += s.examples

    def snapshot(self) -> StepAggregate:
        """An independent copy (a few scalars, at most ``exact_times`` floats per group, the histogram bins)."""
        a = StepAggregate.__new__(StepAggregate)
        for k in StepAggregate.__slots__:
            setattr(a, k, getattr(self, k))
        a.all, a.clean = self.all.copy(), self.clean.copy()
        a.perturbed_times = list(self.perturbed_times) if self.perturbed_times is not None else None
        a.perturbed_hist = self.perturbed_hist.copy()
        return a

    def counting_time_s(self) -> float:
        """Time spent in analytic counting: each counted step's excess over the median of the steps without counting
        (as :func:`pyprof.session.assemble.counting_time_s`; from the histogram of counted steps' times, bin
        middles, once more than ``exact_times`` steps were counted)."""
        med = self.clean.median()
        if med is None or self.all.n == self.clean.n:
            return 0.0
        if self.perturbed_times is not None:
            return sum(max(0.0, w - med) for w in self.perturbed_times)
        return sum(c * max(0.0, m - med) for m, c in self.perturbed_hist.bins())

    def totals(self, counting_time_s: float, counted_signatures: int) -> Totals:
        """:class:`~pyprof.records.Totals` over every step added (the same values
        :func:`~pyprof.records.summarize_steps` gives over the full list, while the exact times are kept)."""
        a = self.all
        timed = self.clean if self.clean.n else a
        examples = _sum_if_known(a.examples_none, a.n, a.examples)
        timed_examples = _sum_if_known(timed.examples_none, timed.n, timed.examples)
        counted = self.counted_n > 0
        return Totals(
            steps=a.n,
            wall_time_s=a.wall,
            cpu_time_s=a.cpu,
            perturbed_steps=a.n - self.clean.n,
            timed_steps=timed.n,
            timed_wall_time_s=timed.wall,
            timed_analytic_flops=_sum_if_known(timed.analytic_none, timed.n, timed.analytic),
            timed_forward_flops=_sum_if_known(timed.forward_none, timed.n, timed.forward),
            timed_hardware_flops=_sum_if_known(timed.hardware_none, timed.n, timed.hardware),
            timed_examples=int(timed_examples) if timed_examples is not None else None,
            step_time_s_median=timed.median(),
            step_time_s_min=timed.t_min if timed.n else None,
            step_time_s_max=timed.t_max if timed.n else None,
            analytic_flops=float(self.counted_flops) if counted else None,
            analytic_flops_effective=float(self.counted_effective) if counted else None,
            analytic_forward_flops=float(self.counted_forward) if counted else None,
            analytic_steps_missing=a.n - self.counted_n,
            hardware_flops=_sum_if_known(a.hardware_none, a.n, a.hardware),
            examples=int(examples) if examples is not None else None,
            analytic_flops_per_example=(self.ex_counted_flops / self.ex_counted_examples)
            if self.ex_counted_n else None,
            counting_time_s=counting_time_s,
            counted_signatures=counted_signatures,
        )


def summarize_steps(steps: list[StepRecord], counting_time_s: float, counted_signatures: int) -> Totals:
    """Aggregate a list of step records into :class:`Totals` (every step time kept: the median is exact)."""
    agg = StepAggregate(exact_times=2**62)
    for s in steps:
        agg.add(s)
    return agg.totals(counting_time_s, counted_signatures)

