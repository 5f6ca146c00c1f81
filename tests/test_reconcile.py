"""Reconciliation arithmetic on hand-made totals (the hand calculation is written next to each assertion)."""

import pytest

from pyprof.accounting.reconcile import reconcile, training_run_projection
from pyprof.records import PeakReport, StepRecord, summarize_steps


def _steps(n, flops, fwd, t, examples=32, perturbed_first=False):
    return [StepRecord(index=i, wall_time_s=t, cpu_time_s=2 * t, analytic_flops=flops, analytic_flops_effective=flops,
                       analytic_forward_flops=fwd, analytic_origin="reused", signature_id=0, examples=examples,
                       perturbed=perturbed_first and i == 0) for i in range(n)]


def test_perturbed_steps_are_left_out_of_rates():
    steps = _steps(4, 3e9, 1e9, 0.5, perturbed_first=True)
    steps[0].wall_time_s = 5.0  # the counting step was slow
    t = summarize_steps(steps, counting_time_s=4.5, counted_signatures=1)
    assert t.steps == 4 and t.timed_steps == 3 and t.perturbed_steps == 1
    assert t.timed_wall_time_s == pytest.approx(1.5)      # 3 x 0.5 s
    assert t.timed_analytic_flops == 9e9                   # 3 x 3e9
    assert t.analytic_flops == 12e9                        # all 4 recorded steps
    assert t.step_time_s_median == 0.5


def test_utilization_error_factor_and_method2_window():
    t = summarize_steps(_steps(4, 3e9, 1e9, 0.5), 0.0, 1)
    spec = PeakReport(100e9, "theoretical", "fp32", "test")
    meas = PeakReport(80e9, "measured", "fp32", "test")
    r = reconcile(t, spec_peak=spec, measured_peak=meas, assumed_utilization=0.17, assumed_utilization_source="t")
    # achieved = 4 x 3e9 FLOP / (4 x 0.5 s) = 6e9 FLOP/s
    assert r.achieved_flops_per_s == pytest.approx(6e9)
    assert r.utilization_vs_spec == pytest.approx(0.06)      # 6e9 / 100e9
    assert r.utilization_vs_measured == pytest.approx(0.075)  # 6e9 / 80e9
    assert r.mfu == r.hfu == pytest.approx(0.06)              # no recomputation, no hardware counters
    assert r.error_factor == pytest.approx(0.17 / 0.06)       # = 2.83x
    assert r.error_direction == "overestimate"
    # Method 2 on the window: 100e9 FLOP/s x 2 s x 0.17 = 3.4e10 FLOP, against 1.2e10 measured
    assert r.method2_window_flops == pytest.approx(3.4e10)
    assert r.measured_window_flops == pytest.approx(1.2e10)


def test_recomputation_moves_mfu_not_hfu():
    t = summarize_steps(_steps(2, 4e9, 1e9, 1.0), 0.0, 1)   # 4e9 executed per step, 1e9 of it forward
    spec = PeakReport(10e9, "spec", "fp32", "test")
    r = reconcile(t, spec_peak=spec, measured_peak=None, assumed_utilization=0.33, assumed_utilization_source="t",
                  recomputation=1.0)
    assert r.hfu == pytest.approx(0.4)   # 8e9 / 2 s / 10e9
    assert r.mfu == pytest.approx(0.3)   # (8e9 - 2e9) / 2 s / 10e9: HFU = 4/3 x MFU, as for full checkpointing
    assert r.hfu / r.mfu == pytest.approx(4 / 3)


def test_training_run_projection_arithmetic():
    p = training_run_projection(flops_per_example=3e9, forward_flops_per_example=1e9, time_s_per_example=0.01,
                                examples=1.2e6, epochs=90, peak_flops_per_s=1e12, assumed_utilization=0.33)
    # measured: 3e9 x 1.2e6 x 90 = 3.24e17 FLOP = 3.24e17 / 8.64e19 = 0.00375 pfs-days
    assert p["measured_flops"] == pytest.approx(3.24e17)
    assert p["measured_pfs_days"] == pytest.approx(0.00375)
    # time: 0.01 s x 1.08e8 examples = 1.08e6 s = 12.5 days
    assert p["projected_days"] == pytest.approx(12.5)
    # Method 2: 1e12 x 1.08e6 s x 0.33 = 3.564e17 FLOP; Method 1 (x3): 1e9 x 3 x 1.08e8 = 3.24e17 FLOP
    assert p["method2_flops"] == pytest.approx(3.564e17)
    assert p["method1_x3_flops"] == pytest.approx(3.24e17)
    assert p["method2_over_measured"] == pytest.approx(1.1)


def test_no_peak_means_no_utilization_but_no_crash():
    t = summarize_steps(_steps(1, 1e9, 5e8, 0.1), 0.0, 1)
    r = reconcile(t, spec_peak=None, measured_peak=None, assumed_utilization=0.33, assumed_utilization_source="t")
    assert r.achieved_flops_per_s == pytest.approx(1e10)
    assert r.utilization_vs_spec is None and r.error_factor is None and r.error_direction == "unknown"


def test_unknown_examples_make_totals_none_not_partial_sums():
    steps = _steps(2, 1e9, 5e8, 0.1)
    steps[1].examples = None
    t = summarize_steps(steps, 0.0, 1)
    assert t.examples is None and t.timed_examples is None
