"""Typed results of a profiled run: per-step records, totals, reconciliation. Plain data, JSON-serializable.

Data flows one way: measurements (profiler) -> these records -> reconciliation (:mod:`pyprof.reconcile`) -> writers
(:mod:`pyprof.report`). Nothing here measures anything.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


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
    analytic_origin: str               # "counted" (dispatch mode ran), "reused" (same signature), "missing"
    signature_id: int | None           # index into ProfileResult.flop_counts
    hardware_flops: float | None = None
    examples: int | None = None
    perturbed: bool = False            # analytic counting ran in this step: its time includes pyprof's counting cost
    gpu: dict[str, Any] | None = None  # GPU figures of the step (pyprof.gpu.session: busy time, kernels, library FLOPs)


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
    gpu: dict[str, Any] | None = None     # GPU section: sources' status, totals, per-precision utilization, kernels
    learning_curves: list[dict[str, Any]] = field(default_factory=list)  # LearningCurve.to_dict() per logged metric

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProfileResult":
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
            steps=[StepRecord(**s) for s in d["steps"]],
            totals=Totals(**d["totals"]),
            flop_counts=d["flop_counts"],
            hardware_counters=d["hardware_counters"],
            cpu_peaks=d["cpu_peaks"],
            reconciliation=rec,
            partial=d.get("partial", False),
            partial_reason=d.get("partial_reason"),
            notes=d.get("notes", []),
            gpu=d.get("gpu"),
            learning_curves=d.get("learning_curves") or [],
        )


def sum_or_none(values: list) -> float | None:
    """Sum when every value is known, else None (a partial sum would read as a wrong total)."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))


def summarize_steps(steps: list[StepRecord], counting_time_s: float, counted_signatures: int) -> Totals:
    """Aggregate step records into :class:`Totals`."""
    clean = [s for s in steps if not s.perturbed]
    timed = clean or steps
    times = [s.wall_time_s for s in timed]
    counted = [s for s in steps if s.analytic_flops is not None]
    ex_counted = [s for s in counted if s.examples]
    examples = sum_or_none([s.examples for s in steps])
    timed_examples = sum_or_none([s.examples for s in timed])
    return Totals(
        steps=len(steps),
        wall_time_s=sum(s.wall_time_s for s in steps),
        cpu_time_s=sum(s.cpu_time_s for s in steps),
        perturbed_steps=len(steps) - len(clean),
        timed_steps=len(timed),
        timed_wall_time_s=sum(times),
        timed_analytic_flops=sum_or_none([s.analytic_flops for s in timed]),
        timed_forward_flops=sum_or_none([s.analytic_forward_flops for s in timed]),
        timed_hardware_flops=sum_or_none([s.hardware_flops for s in timed]),
        timed_examples=int(timed_examples) if timed_examples is not None else None,
        step_time_s_median=statistics.median(times) if times else None,
        step_time_s_min=min(times) if times else None,
        step_time_s_max=max(times) if times else None,
        analytic_flops=float(sum(s.analytic_flops for s in counted)) if counted else None,
        analytic_flops_effective=float(sum(s.analytic_flops_effective or 0 for s in counted)) if counted else None,
        analytic_forward_flops=float(sum(s.analytic_forward_flops or 0 for s in counted)) if counted else None,
        analytic_steps_missing=len(steps) - len(counted),
        hardware_flops=sum_or_none([s.hardware_flops for s in steps]),
        examples=int(examples) if examples is not None else None,
        analytic_flops_per_example=(sum(s.analytic_flops for s in ex_counted) / sum(s.examples for s in ex_counted))
        if ex_counted else None,
        counting_time_s=counting_time_s,
        counted_signatures=counted_signatures,
    )
