"""Compute-to-target, efficiency factors (the paper's Table 1), FLOPs-based learning curves, the digits example."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from pyprof.accounting.efficiency import (
    LearningCurve,
    TargetNotReachedError,
    compute_to_target,
    efficiency_factor,
    efficiency_factor_from_results,
)
from pyprof.constants import TFS_DAY_FLOP
from pyprof.data import read_rows
from pyprof.errors import InvalidInputError


def _curve(name="run", points=((1e12, 0.5, 1), (2e12, 0.7, 2), (3e12, 0.9, 3)), **kw):
    return LearningCurve(name, points=points, **kw)


# ----------------------------------------------------------------------------- compute to target

def test_interpolates_between_evaluations_and_says_so():
    r = compute_to_target(_curve(), 0.8)
    # crossing between (2e12, 0.7) and (3e12, 0.9): fraction (0.8 - 0.7) / (0.9 - 0.7) = 0.5
    # flops = 2e12 + 0.5 x 1e12 = 2.5e12; epochs = 2 + 0.5 x 1 = 2.5
    assert r.reached and r.interpolated
    assert r.flops == pytest.approx(2.5e12)
    assert r.epochs == pytest.approx(2.5)
    assert r.pfs_days == pytest.approx(2.5e12 / 8.64e19)
    assert r.tfs_days == pytest.approx(2.5e12 / 8.64e16)
    assert r.flops_per_epoch == pytest.approx(1e12)
    assert (r.evaluated_flops, r.evaluated_epochs, r.evaluated_metric) == (3e12, 3, 0.9)
    assert "interpolated" in r.note


def test_paper_convention_takes_first_evaluation_at_or_above():
    r = compute_to_target(_curve(), 0.8, interpolate=False)
    assert r.reached and not r.interpolated
    assert (r.flops, r.epochs) == (3e12, 3)


def test_exact_hit_is_not_interpolated():
    r = compute_to_target(_curve(), 0.7)
    assert (r.flops, r.epochs, r.interpolated) == (2e12, 2, False)


def test_lower_is_better_metric():
    c = _curve(points=((1e12, 2.0, 1), (2e12, 1.0, 2), (3e12, 0.5, 3)), metric_name="loss", higher_is_better=False)
    r = compute_to_target(c, 0.8)
    # fraction (0.8 - 1.0) / (0.5 - 1.0) = 0.4 -> 2e12 + 0.4e12 = 2.4e12 FLOP, 2.4 epochs
    assert r.flops == pytest.approx(2.4e12) and r.epochs == pytest.approx(2.4)
    # read as higher-is-better, 0.8 is met by the first evaluation (2.0 >= 0.8)
    assert compute_to_target(c, 0.8, higher_is_better=True).flops == 1e12


def test_reached_at_first_evaluation_is_flagged():
    r = compute_to_target(_curve(), 0.4)
    assert r.reached and r.flops == 1e12 and "first evaluation" in r.note


def test_target_never_reached_reports_best_and_compute_spent():
    c = _curve()
    r = compute_to_target(c, 0.95)
    assert not r.reached and r.flops is None and r.pfs_days is None
    assert (r.best_metric, r.best_flops, r.flops_spent, r.epochs_spent) == (0.9, 3e12, 3e12, 3)
    assert "never reached" in r.note and "best 0.9" in r.note
    with pytest.raises(TargetNotReachedError, match="never reached: best 0.9") as ei:
        efficiency_factor(c, _curve("b"), 0.95)
    assert ei.value.result.flops_spent == 3e12


@pytest.mark.parametrize("points, match", [
    (((-1.0, 0.5, 1),), "negative"),
    (((2e12, 0.5, 1), (1e12, 0.6, 2)), "cumulative"),
    (((1e12, float("nan"), 1),), "not finite"),
    (((1e12, 0.5, 2), (2e12, 0.6, 1)), "epochs must not decrease"),
    ((("1e12", 0.5, 1),), "not a number"),
])
def test_bad_points_are_clear_errors(points, match):
    with pytest.raises(InvalidInputError, match=match):
        LearningCurve("r", points=points)


def test_empty_curve_is_an_error():
    with pytest.raises(InvalidInputError, match="no evaluations"):
        compute_to_target(LearningCurve("r"), 0.5)


# ----------------------------------------------------------------------------- the paper's Table 1

ALEXNET_EPOCHS = 90
#: AlexNet's compute to 79.1% top-5: 3.1 tfs-days (ai-and-efficiency efficiency_sota.csv) over 90 epochs.
ALEXNET_FLOPS_PER_EPOCH = 3.1 * TFS_DAY_FLOP / ALEXNET_EPOCHS


def _linear_curve(name, epochs_to_target, flops_per_epoch, target=0.791):
    """Accuracy rising linearly so that it crosses ``target`` exactly at ``epochs_to_target``."""
    n = math.ceil(epochs_to_target)
    return LearningCurve(name, metric_name="top-5", points=[
        # max(): at e == epochs_to_target, target * e / e can round to just below the target
        (e * flops_per_epoch, max(target * e / epochs_to_target, target) if e >= epochs_to_target
         else target * e / epochs_to_target, e) for e in range(0, n + 1)])


def test_table1_rows_reproduce_as_epochs_times_flops_per_epoch():
    rows = read_rows("efficiency_table1.csv")
    assert [r["experiment"] for r in rows] == ["AlexNet", "GoogleNet", "MobileNet_v1", "ShuffleNet_v1_1x",
                                               "ShuffleNet_v2_1x", "EfficientNet-b0"]
    alexnet = _linear_curve("AlexNet", ALEXNET_EPOCHS, ALEXNET_FLOPS_PER_EPOCH)
    got = {}
    for r in rows:
        ef, ff, printed = (float(r[k]) for k in ("training_epochs_factor", "flops_per_epoch_factor",
                                                  "training_efficiency_factor"))
        run = _linear_curve(r["experiment"], ALEXNET_EPOCHS / ef, ALEXNET_FLOPS_PER_EPOCH / ff)
        f = efficiency_factor(alexnet, run, 0.791)
        assert f.epochs_factor == pytest.approx(ef, rel=1e-9)
        assert f.flops_per_epoch_factor == pytest.approx(ff, rel=1e-9)
        assert f.total == pytest.approx(f.epochs_factor * f.flops_per_epoch_factor, rel=1e-12)
        # the printed factors are rounded: 11 x 0.38 = 4.18 (printed 4.3), 8.2 x 1.35 = 11.07 (11),
        # 3.8 x 5.5 = 20.9 (21), 4.5 x 5.5 = 24.75 (25), 22 x 2.0 = 44 (44)
        assert f.total == pytest.approx(printed, rel=0.03)
        got[r["experiment"]] = f.total
    assert got["GoogleNet"] == pytest.approx(4.18, abs=1e-9)
    assert got["EfficientNet-b0"] == pytest.approx(44.0)


def test_alexnet_at_62_of_90_epochs_gives_30x_not_44x():
    # AlexNet reached 78.8% top-5 (99.6% of its final 79.1%) after 62 of its 90 epochs.
    points = [(e * ALEXNET_FLOPS_PER_EPOCH, 0.788 * e / 62 if e <= 62 else 0.788 + 0.003 * (e - 62) / 28, e)
              for e in range(0, 91)]
    alexnet = LearningCurve("AlexNet", metric_name="top-5", points=points)
    effnet = _linear_curve("EfficientNet-b0", ALEXNET_EPOCHS / 22, ALEXNET_FLOPS_PER_EPOCH / 2.0)
    b = compute_to_target(effnet, 0.791)
    full = efficiency_factor_from_results(compute_to_target(alexnet, 0.791), b)
    at62 = efficiency_factor_from_results(compute_to_target(alexnet, 0.788), b)
    assert full.a.epochs == pytest.approx(90) and at62.a.epochs == pytest.approx(62)
    assert round(full.total) == 44
    assert at62.total == pytest.approx(44 * 62 / 90)  # = 30.3
    assert round(at62.total) == 30
    assert "different targets" in at62.notes[0]


def test_mixed_flop_sources_error_unless_allowed():
    a = _curve("a", flop_source="analytic")
    b = _curve("b", points=((0.5e12, 0.9, 1),), flop_source="hardware")
    with pytest.raises(InvalidInputError, match="mixed FLOP sources"):
        efficiency_factor(a, b, 0.8)
    f = efficiency_factor(a, b, 0.8, allow_mixed_sources=True)
    assert f.total == pytest.approx(2.5e12 / 0.5e12)
    assert any("MIXED FLOP SOURCES" in n for n in f.notes)


def test_different_metrics_are_not_compared():
    with pytest.raises(InvalidInputError, match="different things"):
        efficiency_factor(_curve("a"), _curve("b", metric_name="BLEU"), 0.8)


def test_missing_epochs_gives_total_without_split():
    a = _curve("a", points=((1e12, 0.5), (3e12, 0.9)))
    b = _curve("b", points=((1e12, 0.9),))
    f = efficiency_factor(a, b, 0.9)
    assert f.total == 3.0 and f.epochs_factor is None and f.flops_per_epoch_factor is None


# ----------------------------------------------------------------------------- from a running pyprof.profile()

def test_log_profile_reads_cumulative_analytic_flops():
    import torch

    import pyprof

    model = torch.nn.Linear(4, 3)
    curve = LearningCurve("linear")
    with pyprof.profile(model, schedule=None, measure_peak=False, hardware_counters=False, autosave_s=None) as prof:
        for step in range(1, 4):
            model(torch.randn(2, 4)).sum().backward()
            prof.step()
            curve.log_profile(prof, metric=float(step), epoch=step)
    # per step: forward 2 x batch 2 x 4 x 3 = 48 FLOP; backward weight gradient only (input needs no grad) = 48
    # -> 96 FLOP per step, cumulative 96, 192, 288
    assert [p.flops for p in curve.points] == [96, 192, 288]
    assert curve.flop_source.startswith("analytic")


def test_log_profile_refuses_a_schedule_that_skips_steps():
    import torch

    import pyprof

    model = torch.nn.Linear(4, 3)
    with pyprof.profile(model, schedule=pyprof.schedule(warmup=1, active=5), measure_peak=False,
                        hardware_counters=False, autosave_s=None) as prof:
        for _ in range(3):
            model(torch.randn(2, 4)).sum().backward()
            prof.step()
    with pytest.raises(InvalidInputError, match="recorded 2 of 3 steps.*schedule=None"):
        LearningCurve("x").log_profile(prof, 0.5)


def test_plot_learning_curves_writes_svg(tmp_path):
    pytest.importorskip("matplotlib")
    from pyprof.accounting.efficiency import plot_learning_curves
    out = tmp_path / "curves.svg"
    plot_learning_curves([_curve("a"), _curve("b", points=((0, 0.1, 0), (5e11, 0.85, 1)))], str(out), target=0.8,
                         x_unit="pfs_days")
    assert "<svg" in out.read_text()[:2000]
    with pytest.raises(InvalidInputError, match="x_unit"):
        plot_learning_curves([_curve()], x_unit="hours")


# ----------------------------------------------------------------------------- the digits example, end to end

def test_digits_example_trains_two_models_to_the_target(tmp_path):
    pytest.importorskip("sklearn")
    from bench.efficiency_digits import (
        closed_form_train_flops_per_example,
        format_result,
        run_digits_efficiency,
        write_report,
    )

    r = run_digits_efficiency(target=0.95, epochs=8, seed=0, threads=1)
    cnn, mlp = r.curves
    assert [c.name for c in r.curves] == ["cnn", "mlp"]
    # pyprof's count per epoch equals the closed form: 1,437 training images x FLOP per image
    # MLP 64-32-10: first layer 2 x (2 x 64 x 32) = 8,192; second 3 x (2 x 32 x 10) = 1,920 -> 10,112 per image
    assert closed_form_train_flops_per_example("mlp", hidden=32) == 10_112
    assert r.flops_per_epoch["mlp"] == 1437 * 10_112 == r.closed_form_flops_per_epoch["mlp"]
    # CNN: conv1 2 x (2 x 8 x 9 x 64) = 18,432; conv2 3 x (2 x 16 x 8 x 9 x 16) = 110,592; linear 3 x 1,280 = 3,840
    assert closed_form_train_flops_per_example("cnn", channels=8) == 18_432 + 110_592 + 3_840
    assert r.flops_per_epoch["cnn"] == r.closed_form_flops_per_epoch["cnn"]
    # cumulative: epoch e has spent e x FLOP per epoch
    assert [p.flops for p in mlp.points] == [e * 1437 * 10_112 for e in range(1, 9)]
    # both really train to the target
    assert all(t.reached for t in r.results), [t.note for t in r.results]
    assert all(0.95 <= t.best_metric <= 1.0 for t in r.results)
    f = r.factor
    assert f.total == pytest.approx(f.epochs_factor * f.flops_per_epoch_factor, rel=1e-12)
    # FLOPs per epoch factor = 132,864 / 10,112 = 13.14 whatever the epochs
    assert f.flops_per_epoch_factor == pytest.approx(132_864 / 10_112, rel=1e-9)
    assert f.total == pytest.approx(r.results[0].flops / r.results[1].flops)
    assert "efficiency factor" in format_result(r)
    # the report folder: the learning curves of both runs in one figure, embedded in report.md, figures in JSON
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib not installed: the report's figure needs it")
    write_report(r, str(tmp_path))
    svg = (tmp_path / "curves.svg").read_text()
    assert "<svg" in svg[:2000] and "cnn" in svg and "mlp" in svg
    assert "![FLOPs-based learning curves](curves.svg)" in (tmp_path / "report.md").read_text()
    back = json.loads((tmp_path / "report.json").read_text())
    assert back == json.loads(json.dumps(r.to_dict()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.svg", "report.json", "report.md"]
