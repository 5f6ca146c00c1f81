"""Reconcile measured FLOPs and time with the two published estimation methods ("AI and compute", 2018).

Method 1 counts operations (multiply-adds per forward x 2 x 3 x examples x epochs); pyprof replaces the x3 rule and the
hand count with the FLOPs it counted for the real forward and backward. Method 2 multiplies device time by a peak and an
assumed utilization (33% GPU, 17% CPU); pyprof measures the utilization the assumption stands for and reports the error
factor of the assumption.
"""

from __future__ import annotations

from typing import Any

from pyprof.accounting.estimate import error_direction, error_factor
from pyprof.constants import FORWARD_BACKWARD_FACTOR, PFS_DAY_FLOP, SECONDS_PER_DAY
from pyprof.records import (
    GpuTotals,
    PeakReport,
    PrecisionUse,
    Reconciliation,
    StepRecord,
    Totals,
    sum_or_none,
)


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return num / den


def training_run_projection(
    *,
    flops_per_example: float,
    forward_flops_per_example: float | None,
    time_s_per_example: float,
    examples: float,
    epochs: float,
    peak_flops_per_s: float | None,
    assumed_utilization: float,
    devices: int = 1,
) -> dict[str, Any]:
    """Method 1 and Method 2 for a full training run, from one profiled window.

    Args:
        flops_per_example: FLOPs measured per training example (forward + backward + whatever the step ran).
        forward_flops_per_example: forward FLOPs per example, for the seeds' "x 3" rule (None to skip it).
        time_s_per_example: measured wall time per example on this device.
        examples: examples per epoch of the full run.
        epochs: epochs of the full run.
        peak_flops_per_s: the peak Method 2 multiplies by (spec, or theoretical for CPUs).
        assumed_utilization: Method 2's assumption (0.33 GPU, 0.17 CPU).
        devices: devices the run is spread over (time divides, FLOPs do not).

    Returns:
        dict with measured FLOPs of the run, Method 1 (x3 rule), Method 2, their pfs-days, and the ratios.
    """
    n = examples * epochs
    measured = flops_per_example * n
    days = time_s_per_example * n / devices / SECONDS_PER_DAY
    out: dict[str, Any] = {
        "examples": examples,
        "epochs": epochs,
        "devices": devices,
        "measured_flops": measured,
        "measured_pfs_days": measured / PFS_DAY_FLOP,
        "projected_days": days,
        "method1_x3_flops": None,
        "method1_x3_pfs_days": None,
        "method1_x3_formula": None,
        "method2_flops": None,
        "method2_pfs_days": None,
        "method2_formula": None,
        "method2_over_measured": None,
        "method1_x3_over_measured": None,
    }
    if forward_flops_per_example:
        m1 = forward_flops_per_example * FORWARD_BACKWARD_FACTOR * n
        out.update(
            method1_x3_flops=m1,
            method1_x3_pfs_days=m1 / PFS_DAY_FLOP,
            method1_x3_formula=f"{forward_flops_per_example:.4g} FLOP/forward x 3 x {examples:.4g} examples x {epochs:g} epochs",
            method1_x3_over_measured=m1 / measured if measured else None,
        )
    if peak_flops_per_s:
        m2 = devices * peak_flops_per_s * days * SECONDS_PER_DAY * assumed_utilization
        out.update(
            method2_flops=m2,
            method2_pfs_days=m2 / PFS_DAY_FLOP,
            method2_formula=(f"{devices} device(s) x {peak_flops_per_s:.4g} FLOP/s x {days:.4g} d x 86400 s/d "
                             f"x {assumed_utilization:g}"),
            method2_over_measured=m2 / measured if measured else None,
        )
    return out


def reconcile(
    totals: Totals,
    *,
    spec_peak: PeakReport | None,
    measured_peak: PeakReport | None,
    assumed_utilization: float,
    assumed_utilization_source: str,
    recomputation: float = 0.0,
    training_examples: float | None = None,
    training_epochs: float | None = None,
) -> Reconciliation:
    """Utilization of the profiled window against the peaks, and Method 2's assumption against it.

    Args:
        totals: aggregates of the recorded steps.
        spec_peak: the vendor/theoretical peak (the one Method 2 uses).
        measured_peak: the peak pyprof measured on this machine with its microkernel.
        assumed_utilization: Method 2's assumption for this kind of device.
        assumed_utilization_source: where that assumption comes from.
        recomputation: fraction of the forward pass recomputed in backward (1.0 = full activation checkpointing).
            The analytic counter counts what executes, so model FLOPs (MFU) = counted - recomputation x forward.
        training_examples: examples per epoch of a full training run to project to (optional).
        training_epochs: epochs of that run (optional).
    """
    notes: list[str] = []
    time_s = totals.timed_wall_time_s
    hw = totals.timed_hardware_flops
    analytic = totals.timed_analytic_flops
    if totals.timed_steps < totals.steps:
        notes.append(f"rates use {totals.timed_steps} of {totals.steps} recorded steps: the others ran pyprof's "
                     "analytic counting, which slows a step down")
    elif totals.perturbed_steps:
        notes.append("every recorded step ran analytic counting, so the step times include its cost and utilization "
                     "reads low: add warm-up steps (schedule warmup >= 1) so counting happens before recording")
    if analytic is None and totals.analytic_steps_missing:
        notes.append(f"{totals.analytic_steps_missing} recorded step(s) have no analytic count; no FLOP rate")
    counted_time = time_s if time_s > 0 else None

    executed = hw if hw is not None else analytic
    flop_source = "hardware counters" if hw is not None else "analytic count"
    model_flops = None
    if analytic is not None:
        model_flops = analytic - recomputation * (totals.timed_forward_flops or 0.0)
    achieved = _ratio(model_flops, counted_time)
    executed_rate = _ratio(executed, counted_time)
    spec = spec_peak.flops_per_s if spec_peak else None
    meas = measured_peak.flops_per_s if measured_peak else None

    util_spec = _ratio(achieved, spec)
    util_meas = _ratio(achieved, meas)
    hfu = _ratio(executed_rate, spec)
    if hw is None and recomputation == 0:
        hfu_source = "analytic count (no hardware counters, no recomputation declared: HFU equals MFU)"
    elif hw is None:
        hfu_source = f"analytic count including the recomputed forward ({recomputation:g} of it)"
    else:
        hfu_source = "hardware counters (executed FP operations)"

    ef = error_factor(assumed_utilization, util_spec) if util_spec else None
    direction = error_direction(assumed_utilization, util_spec) if util_spec else "unknown"
    m2_window = spec * time_s * assumed_utilization if spec else None

    training = None
    ex = totals.timed_examples
    if training_examples and training_epochs and ex and model_flops is not None and counted_time:
        fwd = totals.timed_forward_flops
        training = training_run_projection(
            flops_per_example=model_flops / ex,
            forward_flops_per_example=(fwd / ex) if fwd else None,
            time_s_per_example=counted_time / ex,
            examples=training_examples,
            epochs=training_epochs,
            peak_flops_per_s=spec,
            assumed_utilization=assumed_utilization,
        )
    elif training_examples or training_epochs:
        notes.append("training-run projection needs training_examples, training_epochs and examples per step")

    return Reconciliation(
        flop_source=flop_source,
        achieved_flops_per_s=achieved,
        peaks=[p for p in (spec_peak, measured_peak) if p is not None],
        utilization_vs_spec=util_spec,
        utilization_vs_measured=util_meas,
        mfu=util_spec,
        hfu=hfu,
        hfu_source=hfu_source,
        assumed_utilization=assumed_utilization,
        assumed_utilization_source=assumed_utilization_source,
        error_factor=ef,
        error_direction=direction,
        method2_window_flops=m2_window,
        measured_window_flops=model_flops,
        training_run=training,
        notes=notes,
    )


def peak_time_equivalent_s(flops_by_precision: dict[str, float],
                           peaks: dict[str, float | None]) -> tuple[float | None, list[str]]:
    """Seconds the GPU would need at peak for this work, each precision against its own peak.

    A BF16 GEMM is measured against the BF16 tensor peak and an FP32 SIMT GEMM against the FP32 peak, so a step that
    mixes precisions still has one utilization: ``sum_p flops_p / peak_p`` divided by the step time.

    Returns:
        (seconds, precisions that had FLOPs but no peak and were left out); seconds is None when nothing had a peak.
    """
    total = 0.0
    missing: list[str] = []
    seen = False
    for p, f in sorted(flops_by_precision.items()):
        if not f:
            continue
        pk = peaks.get(p)
        if not pk:
            missing.append(p)
            continue
        total += f / pk
        seen = True
    return (total if seen else None), missing


def _sum_dicts(ds: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in ds:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + float(v or 0.0)
    return out


def gpu_totals(steps: list[StepRecord], peaks_by_precision: dict[str, float | None]) -> GpuTotals:
    """GPU figures over the timed steps: busy time, kernels, library FLOPs by precision and their utilization.

    Args:
        steps: the timed :class:`~pyprof.records.StepRecord` s (their ``gpu`` parts come from
            :class:`pyprof.sources.cuda.session.GpuSession`).
        peaks_by_precision: spec peak FLOP/s per precision class of this GPU (None where unknown).

    Returns:
        A :class:`~pyprof.records.GpuTotals`; figures a source did not measure in every step are None (a partial
        sum would read as a wrong total).
    """
    g = [s.gpu for s in steps if s.gpu is not None]
    with_gpu = [s for s in steps if s.gpu is not None]
    if not g:
        return GpuTotals(steps=0, reason="no timed step has GPU figures")
    wall = sum(s.wall_time_s for s in with_gpu)
    busy = sum_or_none([x.busy_time_s for x in g])
    kernel_time = sum_or_none([x.kernel_time_s for x in g])
    uncounted = sum_or_none([x.uncounted_kernel_time_s for x in g])
    lib_by_p = _sum_dicts([x.library_flops_by_precision or {} for x in g])
    lib_total = float(sum(lib_by_p.values())) if lib_by_p else None
    eq_s, missing = peak_time_equivalent_s(lib_by_p, peaks_by_precision)
    by_precision = []
    for p, f in sorted(lib_by_p.items(), key=lambda kv: -kv[1]):
        pk = peaks_by_precision.get(p)
        by_precision.append(PrecisionUse(
            precision=p,
            library_flops=f,
            achieved_flops_per_s=f / wall if wall else None,
            spec_peak_flops_per_s=pk,
            utilization_vs_spec=(f / wall / pk) if (wall and pk) else None,
        ))
    executed_steps = [x.executed_flops for x in g if x.executed_flops is not None]
    executed = float(sum(executed_steps)) if len(executed_steps) == len(g) else None
    analytic = sum_or_none([s.analytic_flops for s in with_gpu])
    nv = [x.nvml for x in g if x.nvml is not None]
    energy = sum_or_none([x.energy_j for x in nv]) if nv and len(nv) == len(g) else None
    power_mw = _mean([x.power_mw_mean for x in nv])
    return GpuTotals(
        steps=len(g),
        wall_time_s=wall,
        timing_source=g[0].timing_source,
        busy_time_s=busy,
        busy_fraction=(busy / wall) if (busy is not None and wall) else None,
        gpu_time_s=sum_or_none([x.gpu_time_s for x in g]),
        kernel_count=sum_or_none([x.kernel_count for x in g]),
        kernel_time_s=kernel_time,
        uncounted_kernel_time_s=uncounted,
        uncounted_kernel_time_share=(uncounted / kernel_time) if (uncounted is not None and kernel_time) else None,
        library_flops=lib_total,
        library_flops_by_precision=lib_by_p,
        library_peak_time_s=eq_s,
        library_utilization=(eq_s / wall) if (eq_s is not None and wall) else None,
        library_utilization_missing_peaks=missing,
        by_precision=by_precision,
        executed_flops=executed,
        executed_over_library=(executed / lib_total) if (executed is not None and lib_total) else None,
        executed_over_analytic=(executed / analytic) if (executed is not None and analytic) else None,
        library_over_analytic=(lib_total / analytic) if (lib_total is not None and analytic) else None,
        energy_j=energy,
        energy_per_analytic_flop_j=(energy / analytic) if (energy is not None and analytic) else None,
        energy_per_library_flop_j=(energy / lib_total) if (energy is not None and lib_total) else None,
        nvml_utilization_gpu_pct_mean=_mean([x.utilization_gpu_pct_mean for x in nv]),
        sm_clock_mhz_mean=_mean([x.sm_clock_mhz_mean for x in nv]),
        power_w_mean=power_mw / 1e3 if power_mw is not None else None,
    )


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None

