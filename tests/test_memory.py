"""Bounded memory and constant-time saves over long runs (issue 13 item 2)."""

import random
import threading

import pytest
import torch
from torch import nn

import pyprof
import pyprof.session.profile as profile_mod
from pyprof.records import LogHistogram, StepAggregate, StepRecord, summarize_steps
from pyprof.report.json_report import read_report, to_json
from pyprof.session.assemble import counting_time_s
from pyprof.session.window import StepWindow


def _rec(i, wall, *, perturbed=False, flops=100, hw=None, examples=4):
    return StepRecord(index=i, wall_time_s=wall, cpu_time_s=wall / 2, analytic_flops=flops,
                      analytic_flops_effective=flops, analytic_forward_flops=flops // 3 if flops else None,
                      analytic_origin="reused", signature_id=0, hardware_flops=hw, examples=examples,
                      perturbed=perturbed)


def test_window_keeps_first_last_and_a_sample_between():
    w = StepWindow(2)
    for i in range(10):
        w.add(_rec(i, 0.1))
    rows = [s.index for s in w.rows()]
    # first 2 (0, 1), last 2 (8, 9), and 2 of the 6 steps between (2..7) sampled
    assert rows[:2] == [0, 1] and rows[-2:] == [8, 9] and len(rows) == 6
    assert all(2 <= i <= 7 for i in rows[2:4]) and rows[2] < rows[3]
    info = w.info()
    assert (info.recorded_steps, info.rows, info.first, info.last, info.sampled) == (10, 6, 2, 2, 2)
    assert "uniform random sample" in info.selection and "of the 6 steps between" in info.selection


def test_window_keeps_every_row_of_a_short_run():
    w = StepWindow(3)
    for i in range(9):  # 3 x 3 = 9: nothing dropped yet
        w.add(_rec(i, 0.1))
    assert [s.index for s in w.rows()] == list(range(9))
    assert w.info().selection.startswith("every recorded step")


def test_window_sample_is_uniform():
    """Algorithm R: each of the middle steps is kept with probability n / middle = 4 / 96; over 2000 windows each
    step index is kept about 2000 * 4/96 = 83.3 times (binomial sd ~ 8.9); a biased sampler (keeping the first or
    the latest) puts 0 or 2000 on some."""
    hits = [0] * 104
    for seed in range(2000):
        w = StepWindow(4)
        w._rng = random.Random(seed)
        for i in range(104):
            w.add(_rec(i, 0.1))
        for s in w.sample:
            hits[s.index] += 1
    middle = hits[4:100]
    assert sum(middle) == 2000 * 4
    assert min(middle) > 40 and max(middle) < 130  # 83.3 +- 4.8 sd


def test_aggregate_equals_summarize_steps_on_a_short_run():
    rng = random.Random(1)
    steps = [_rec(i, rng.uniform(0.01, 0.2), perturbed=(i % 7 == 0), hw=rng.choice([None, 1e6]),
                  flops=rng.choice([None, 300]), examples=rng.choice([None, 4])) for i in range(50)]
    agg = StepAggregate()
    for s in steps:
        agg.add(s)
    # the same values, field by field, as the list-based summary (the old code path) with its counting time
    assert agg.totals(agg.counting_time_s(), 2) == summarize_steps(steps, counting_time_s(steps), 2)
    assert agg.counting_time_s() == counting_time_s(steps)


def test_histogram_median_past_the_exact_times():
    agg = StepAggregate(exact_times=10)
    for i in range(1, 1002):
        agg.add(_rec(i, i * 1e-3))  # 1 ms .. 1001 ms
    t = agg.totals(0.0, 1)
    # exact median of 1..1001 ms is the 501st value, 0.501 s; the histogram's bin middle is within 0.5% of it
    assert t.step_time_s_median == pytest.approx(0.501, rel=0.005)
    assert t.step_time_s_median != 0.501  # it did come from the histogram
    assert t.step_time_s_min == 1 * 1e-3 and t.step_time_s_max == 1001 * 1e-3  # min and max stay exact
    assert t.steps == 1001 and t.wall_time_s == pytest.approx(sum(i * 1e-3 for i in range(1, 1002)))
    assert t.analytic_flops == 100 * 1001  # 100 FLOPs per step


def test_log_histogram_by_hand():
    h = LogHistogram(lo=1.0, ratio=2.0)  # bins [1,2), [2,4), [4,8), ...
    for x in (1.5, 3.0, 5.0, 6.0):
        h.add(x)
    assert h.counts == {0: 1, 1: 1, 2: 2}
    # median of 4 values: the mean of the 2nd and 3rd values' bin middles: (2*sqrt2 + 4*sqrt2) / 2 = 3*sqrt2
    assert h.quantile(0.5) == pytest.approx(3 * 2 ** 0.5)
    assert LogHistogram().quantile(0.5) is None


def test_aggregate_memory_stops_growing():
    agg = StepAggregate(exact_times=100)
    for i in range(5000):
        agg.add(_rec(i, 0.01 + (i % 10) * 1e-3))
    # after the exact times are dropped only histogram bins remain: 10 distinct step times -> at most 10 bins
    assert agg.all.times is None and len(agg.all.hist.counts) <= 10


def _profile_steps(n, window_n, monkeypatch, **kw):
    monkeypatch.setattr(profile_mod, "DEFAULT_WINDOW_N", window_n)
    model = nn.Linear(4, 2)
    with pyprof.profile(model, measure_peak=False, hardware_counters=False, **kw) as prof:
        for _ in range(n):
            model(torch.randn(2, 4))
            prof.step()
    return prof


def test_a_long_profile_keeps_a_window_and_totals_over_every_step(monkeypatch, tmp_report_dir):
    prof = _profile_steps(50, 4, monkeypatch, output_dir=tmp_report_dir)
    r = prof.result()
    assert r.totals.steps == 50 and len(r.steps) == 12  # 3 x 4 rows kept of 50 steps
    assert r.steps_window.recorded_steps == 50 and r.steps_window.rows == 12
    assert any("12 of 50 recorded steps" in n for n in r.notes)
    back = read_report(tmp_report_dir / "report.json")
    assert back.steps_window == r.steps_window and back.totals.steps == 50


def test_a_short_profile_reports_what_it_did_before(monkeypatch):
    prof = _profile_steps(5, 4, monkeypatch)
    r = prof.result()
    assert [s.index for s in r.steps] == [0, 1, 2, 3, 4]
    rebuilt = summarize_steps(r.steps, counting_time_s(r.steps), r.totals.counted_signatures)
    assert r.totals == rebuilt  # the totals a list of every step gives, exactly
    assert not any("recorded steps are kept" in n for n in r.notes)


def test_save_cost_is_bounded_by_the_window(monkeypatch):
    """What an autosave serializes does not grow with the run: the same number of rows at 200 and 2000 steps."""
    sizes = []
    for n in (200, 2000):
        prof = _profile_steps(n, 8, monkeypatch)
        sizes.append((len(prof.result().steps), len(to_json(prof.result()))))
    assert sizes[0][0] == sizes[1][0] == 24
    assert abs(sizes[0][1] - sizes[1][1]) < 2000  # a few digits' difference, not 1800 more rows (~700 B each)


def test_autosave_runs_off_the_training_thread(monkeypatch, tmp_report_dir):
    from pyprof import report

    release, started = threading.Event(), threading.Event()
    real = report.write_reports

    def slow_write(*a, **k):
        started.set()
        release.wait(60)
        return real(*a, **k)

    monkeypatch.setattr(report, "write_reports", slow_write)
    model = nn.Linear(4, 2)
    with pyprof.profile(model, output_dir=tmp_report_dir, measure_peak=False) as prof:
        model(torch.randn(2, 4))
        prof.step()  # the first recorded step: a save starts, and is blocked in slow_write
        assert started.wait(60)
        model(torch.randn(2, 4))
        prof.step()  # returns although the save has not finished
        assert prof._reports.busy and prof._reports._saver is not threading.current_thread()
        release.set()
    assert read_report(tmp_report_dir / "report.json").totals.steps == 2  # the final report won


def test_driver_metrics_use_only_the_steps_since_the_last_log(monkeypatch):
    from pyprof.session.integrations import StepDriver

    d = StepDriver(None, log_every_n_steps=2, peak=1e12, measure_peak=False, hardware_counters=False)
    d.start()
    monkeypatch.setattr(d.prof, "result", lambda: pytest.fail("metrics() must not build a full result"))
    m = nn.Linear(4, 2)
    logged = []
    for _ in range(8):
        m(torch.randn(2, 4))
        d.on_optimizer_step()
        if d.should_log():
            logged.append(([s.index for s in d._since_log], list(d._since_log), d.metrics()))
    monkeypatch.undo()
    d.stop()
    assert [w for w, _, _ in logged] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    checked = 0
    for _, w, met in logged:
        clean = [s for s in w if not s.perturbed]
        if clean:
            # model FLOPs / time over this window's clean steps only, against the 1e12 FLOP/s peak
            rate = sum(s.analytic_flops for s in clean) / sum(s.wall_time_s for s in clean)
            assert met["pyprof/tflops_per_s"] == pytest.approx(rate / 1e12)
            assert met["pyprof/mfu"] == pytest.approx(rate / 1e12)
            checked += 1
        else:
            assert met == {}
    assert checked >= 2  # steps 4-7 reuse the count: clean
