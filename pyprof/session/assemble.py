"""Assembling a :class:`~pyprof.records.ProfileResult` from what a profile collected: step totals, the GPU hardware
counters' executed FLOPs, peaks, reconciliation (Method 1 / Method 2) and the run's GPU section.

Pure with respect to the session: everything comes in as arguments, nothing here starts or stops a source.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import socket
import statistics
from collections.abc import Callable
from typing import Any

from pyprof.constants import ASSUMED_UTILIZATION_CPU, ASSUMED_UTILIZATION_GPU
from pyprof.peaks.resolve import PeakSet
from pyprof.records import (
    DeviceReport,
    GpuRun,
    ProfileResult,
    StepAggregate,
    StepRecord,
    StepsWindowInfo,
    Totals,
    summarize_steps,
)


def counting_time_s(steps: list[StepRecord]) -> float:
    """Time spent in analytic counting: each counted step's excess over the median of the steps without counting."""
    counted_steps = [s for s in steps if s.perturbed]
    clean = [s.wall_time_s for s in steps if not s.perturbed]
    if not (counted_steps and clean):
        return 0.0
    med = statistics.median(clean)
    return sum(max(0.0, s.wall_time_s - med) for s in counted_steps)


def observed_sm_clock_hz(steps: list[StepRecord]) -> float | None:
    """Median over the recorded steps of NVML's mean SM clock, in Hz; None without NVML samples."""
    vals = [s.gpu.nvml.sm_clock_mhz_mean for s in steps
            if s.gpu is not None and s.gpu.nvml is not None and s.gpu.nvml.sm_clock_mhz_mean]
    return statistics.median(vals) * 1e6 if vals else None


def build_result(*, name: str, started_at: str, device: DeviceReport | None, config: dict[str, Any],
                 steps: list[StepRecord], flop_counts: list[Any], hw_info: dict[str, Any],
                 cpu_peaks: dict[str, Any], notes: list[str], partial_reason: str | None,
                 peaks: Callable[[list[StepRecord]], PeakSet], recomputation: float,
                 training_examples: float | None, training_epochs: float | None,
                 gpu_section: GpuRun | None, gpu_spec_peaks: Callable[[], dict[str, Any]],
                 aggregate: StepAggregate | None = None, steps_window: StepsWindowInfo | None = None) -> ProfileResult:
    """The result of a profile (or a snapshot of one while it runs).

    Args:
        steps: the per-step rows the result keeps (all of them, or a bounded window of a long run).
        aggregate: running totals over every recorded step (:mod:`pyprof.session.window`); None: totals from
            ``steps``, which are then every step.
        steps_window: which rows ``steps`` keeps, for the report.
        peaks: resolves the peaks for these steps (called inside a guard: a failure becomes a note).
        cpu_peaks: the profile's CPU peak table; the resolved peaks' table is merged into it.
        gpu_section: the GPU session's run section (``GpuSession.finish``), None on the CPU or while running.
        gpu_spec_peaks: spec peak per library precision class of the GPU (only called on CUDA devices).
    """
    from pyprof import __version__
    from pyprof.accounting.reconcile import reconcile
    if aggregate is not None:
        totals = aggregate.totals(aggregate.counting_time_s(), len(flop_counts))
    else:
        totals = summarize_steps(steps, counting_time_s(steps), len(flop_counts))
    notes = list(notes)
    if steps_window is not None and steps_window.rows < steps_window.recorded_steps:
        notes.append(f"per-step rows: {steps_window.rows} of {steps_window.recorded_steps} recorded steps are kept "
                     f"({steps_window.selection}); totals cover all {steps_window.recorded_steps}, and the median "
                     "step time past 3072 steps comes from a log-spaced histogram (within 0.5%)")
        if device is not None and device.kind == "cuda":
            notes.append("the GPU section's totals cover the kept per-step rows only")
    hw_info = apply_gpu_counters(gpu_section, totals, notes, hw_info)
    rec = None
    try:
        ps = peaks(steps)
        for k, v in ps.cpu_peaks.items():
            cpu_peaks.setdefault(k, {}).update(v)
        notes += ps.notes
        kind = device.kind if device else "cpu"
        assumed = ASSUMED_UTILIZATION_CPU if kind == "cpu" else ASSUMED_UTILIZATION_GPU
        src = ('"AI and compute" (2018): 17% for CPUs' if kind == "cpu" else '"AI and compute" (2018): 33% for GPUs')
        if totals.steps:
            rec = reconcile(totals, spec_peak=ps.spec, measured_peak=ps.measured, assumed_utilization=assumed,
                            assumed_utilization_source=src, recomputation=recomputation,
                            training_examples=training_examples, training_epochs=training_epochs)
            rec.peaks += list(ps.extra)
    except Exception as e:
        notes.append(f"reconciliation failed: {e}")
    gpu = None
    if device is not None and device.kind == "cuda":
        gpu = gpu_result(gpu_section, steps, totals, gpu_spec_peaks, notes)
    import torch

    return ProfileResult(
        schema_version=_schema_version(),
        run={
            "name": name,
            "started_at": started_at,
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "pyprof_version": __version__,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        },
        device=device or DeviceReport(kind="unknown", name="unknown", supported=False),
        config=config,
        steps=list(steps),
        totals=totals,
        flop_counts=[fc.to_dict() for fc in flop_counts],
        hardware_counters=dict(hw_info),
        cpu_peaks=dict(cpu_peaks),
        reconciliation=rec,
        partial=partial_reason is not None,
        partial_reason=partial_reason,
        notes=notes,
        gpu=gpu,
        steps_window=steps_window,
    )


def apply_gpu_counters(section: GpuRun | None, totals: Totals, notes: list[str],
                       hw_info: dict[str, Any]) -> dict[str, Any]:
    """Executed FLOPs per step from the GPU hardware counters (once collected) become the run's hardware FLOPs.

    Sets ``totals.hardware_flops`` / ``timed_hardware_flops`` and returns the ``hardware_counters`` section
    (``hw_info`` unchanged when the counters gave nothing).
    """
    c = section.counters if section is not None else None
    if c is None:
        return hw_info
    ex = c.executed_flops
    if not c.complete or ex is None:
        notes.append(f"GPU hardware counters ({c.mode} mode) gave no executed FLOPs: "
                     f"{c.reason or 'nothing collected'}")
        return hw_info
    if c.mixed:
        notes.append("GPU counter totals are mixed: " + (c.mixed_reason or "the kernel sequence changed "
                     "between the steps that contributed passes"))
    totals.timed_hardware_flops = ex * totals.timed_steps
    totals.hardware_flops = ex * totals.steps
    if c.mode == "kernel":
        notes.append("GPU counters in kernel mode serialize and replay every kernel of the counted step: that "
                     "step is left out of the rates")
    return {"available": True, "mode": c.mode,
            "source": (f"CUPTI Range Profiler, {c.mode} mode, {c.num_passes} pass(es): "
                       "executed FLOPs of one step (SIMT FP instructions + tensor-core ops), applied to "
                       "every recorded step"),
            "reason": ""}


def gpu_result(section: GpuRun | None, steps: list[StepRecord], totals: Totals,
               spec_peaks: Callable[[], dict[str, Any]], notes: list[str]) -> GpuRun:
    """The run's GPU section: the sources' own section plus totals and per-precision utilization."""
    from pyprof.accounting.reconcile import gpu_totals
    section = dataclasses.replace(section) if section is not None else GpuRun()
    try:
        peaks = {p: (sp.flops_per_s if sp is not None else None) for p, sp in spec_peaks().items()}
    except Exception as e:
        peaks = {}
        notes.append(f"GPU spec peaks unavailable: {e!r}")
    clean = [s for s in steps if not s.perturbed] or list(steps)
    section.totals = t = gpu_totals(clean, peaks)
    c = section.counters
    ex = c.executed_flops if c is not None and c.complete else None
    if ex is not None and t.steps:
        lib = t.library_flops
        ana = totals.timed_analytic_flops
        t.executed_flops_per_step = ex
        t.executed_flops = ex * t.steps
        t.executed_over_library = (ex * t.steps / lib) if lib else None
        t.executed_over_analytic = (ex * totals.timed_steps / ana) if ana else None
    return section


def _schema_version() -> str:
    from pyprof.report.json_report import SCHEMA_VERSION
    return SCHEMA_VERSION
