"""pyprof.profile() end to end on a CPU: real training loops, counts checked against independent closed forms."""

import json

import pytest
import torch
import torch.nn as nn

import pyprof
from pyprof.bench.examples import closed_form_flops, make_cnn, make_mlp, run_example
from pyprof.errors import InvalidInputError, ProfilerStateError
from pyprof.report import read_report


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_counted_flops_match_closed_form(kind, tmp_report_dir):
    r = run_example(kind, batch=8, steps=3, warmup=1, output_dir=str(tmp_report_dir), measure_peak=False)
    cf = closed_form_flops(kind, 8)
    # mlp, batch 8: fwd = 2*8*(512*1024 + 1024*1024 + 1024*10) = 25,329,664; bwd = fwd - layer1 (no input grad)
    # = 2*25,329,664 - 2*8*512*1024 = 42,270,720; total 67,600,384.
    if kind == "mlp":
        assert cf["total"] == 67_600_384
    assert len(r.steps) == 3
    for s in r.steps:
        assert s.analytic_flops == cf["total"]
        assert s.analytic_forward_flops == cf["forward"]
        assert s.analytic_origin == "reused"  # counted during the warm-up step
        assert not s.perturbed
    assert r.totals.analytic_flops == 3 * cf["total"]
    assert r.totals.analytic_flops_per_example == cf["total"] / 8
    assert r.totals.counted_signatures == 1
    # the report on disk says the same thing
    back = read_report(tmp_report_dir / "report.json")
    assert back.totals.analytic_flops == 3 * cf["total"]
    assert (tmp_report_dir / "report.md").read_text().startswith("# pyprof report")


def test_reconciliation_uses_measured_time_and_peak():
    r = run_example("mlp", batch=8, steps=3, warmup=1, measure_peak=False)
    rec = r.reconciliation
    t = r.totals
    assert rec.achieved_flops_per_s == pytest.approx(t.timed_analytic_flops / t.timed_wall_time_s)
    spec = rec.peaks[0]
    assert spec.kind == "theoretical" and spec.precision == "fp32"
    assert rec.utilization_vs_spec == pytest.approx(rec.achieved_flops_per_s / spec.flops_per_s)
    assert rec.assumed_utilization == 0.17
    ef = max(0.17 / rec.utilization_vs_spec, rec.utilization_vs_spec / 0.17)
    assert rec.error_factor == pytest.approx(ef)
    tr = rec.training_run
    # Method 1 (forward x 3) over measured: forward x 3 / (forward + backward) with layer 1 getting no input grad
    cf = closed_form_flops("mlp", 8)
    assert tr["method1_x3_over_measured"] == pytest.approx(3 * cf["forward"] / cf["total"])
    assert tr["measured_flops"] == pytest.approx(cf["total"] / 8 * 50_000 * 30)


def test_schedule_matches_torch_profiler_schedule():
    from torch.profiler import schedule as tschedule

    for kw in [dict(wait=1, warmup=1, active=2, repeat=2), dict(wait=0, warmup=2, active=3, repeat=0, skip_first=3)]:
        ours, theirs = pyprof.Schedule(**kw), tschedule(**kw)
        for step in range(25):
            assert ours(step) == theirs(step).name.lower(), (kw, step)


def test_torch_schedule_accepted_and_only_active_steps_recorded():
    from torch.profiler import schedule as tschedule

    model = make_mlp(64, 32, 4)
    x = torch.randn(4, 64)
    with pyprof.profile(model, schedule=tschedule(wait=1, warmup=1, active=2, repeat=1), measure_peak=False) as prof:
        for _ in range(6):
            model(x).sum().backward()
            prof.step()
    assert [s.index for s in prof.result().steps] == [2, 3]


def test_warmup_zero_warns():
    with pytest.warns(UserWarning, match="warmup=0"):
        pyprof.schedule(warmup=0, active=1)


def test_step_outside_context_and_nested_profiles_are_errors():
    prof = pyprof.profile()
    with pytest.raises(ProfilerStateError, match="outside"):
        prof.step()
    with pyprof.profile(measure_peak=False):
        with pytest.raises(ProfilerStateError, match="do not nest"):
            with pyprof.profile():
                pass
    with pytest.raises(ProfilerStateError, match="outside"):
        prof.step()


@pytest.mark.parametrize("kwargs, match", [
    (dict(count_flops="sometimes"), "count_flops"),
    (dict(examples_per_step=0), "examples_per_step"),
    (dict(recomputation=1.5), "recomputation"),
    (dict(training_epochs=float("nan")), "training_epochs"),
    (dict(peak=-1.0), "peak"),
    (dict(report_formats=("pdf",)), "report_formats"),
])
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        pyprof.profile(**kwargs)


def test_loop_exception_propagates_unchanged_and_leaves_partial_report(tmp_report_dir):
    model = make_mlp(32, 16, 2)
    x = torch.randn(2, 32)
    boom = ValueError("data loader broke")
    with pytest.raises(ValueError) as ei:
        with pyprof.profile(model, output_dir=tmp_report_dir, measure_peak=False) as prof:
            for i in range(5):
                model(x).sum().backward()
                prof.step()
                if i == 2:
                    raise boom
    assert ei.value is boom
    r = read_report(tmp_report_dir / "report.json")
    assert r.partial and "ValueError: data loader broke" in r.partial_reason
    assert len(r.steps) == 3
    assert "Partial report" in (tmp_report_dir / "report.md").read_text()


def test_keyboard_interrupt_still_writes_report(tmp_report_dir):
    model = make_mlp(32, 16, 2)
    with pytest.raises(KeyboardInterrupt):
        with pyprof.profile(model, output_dir=tmp_report_dir, measure_peak=False) as prof:
            model(torch.randn(2, 32)).sum().backward()
            prof.step()
            raise KeyboardInterrupt
    r = read_report(tmp_report_dir / "report.json")
    assert r.partial and r.partial_reason == "KeyboardInterrupt" and len(r.steps) == 1


def test_shape_change_is_recounted_and_counts_scale_with_batch():
    model = make_mlp(64, 32, 4)
    with pyprof.profile(model, measure_peak=False) as prof:
        for b in (4, 4, 8, 8, 4):
            model(torch.randn(b, 64)).sum().backward()
            prof.step()
    steps = prof.result().steps
    assert [s.analytic_origin for s in steps] == ["counted", "reused", "counted", "reused", "reused"]
    assert steps[2].analytic_flops == 2 * steps[0].analytic_flops  # everything is linear in the batch
    assert steps[4].analytic_flops == steps[0].analytic_flops
    assert prof.result().totals.counted_signatures == 2


def test_count_every_step_and_off():
    model = make_mlp(64, 32, 4)
    x = torch.randn(4, 64)
    with pyprof.profile(model, count_flops="every", measure_peak=False) as prof:
        for _ in range(3):
            model(x).sum().backward()
            prof.step()
    assert [s.analytic_origin for s in prof.result().steps] == ["counted"] * 3
    with pyprof.profile(model, count_flops="off", measure_peak=False) as prof:
        model(x).sum().backward()
        prof.step()
    s = prof.result().steps[0]
    assert s.analytic_flops is None and s.analytic_origin == "off"


def test_without_model_the_outermost_module_call_is_counted():
    model = make_cnn(4)
    x = torch.randn(2, 3, 32, 32)
    with pyprof.profile(measure_peak=False) as prof:
        for _ in range(2):
            model(x).sum().backward()
            prof.step()
    cf = closed_form_flops("cnn", 2, channels=4)
    assert [s.analytic_flops for s in prof.result().steps] == [cf["total"]] * 2


def test_hooks_are_removed_after_the_profile():
    model = make_mlp(16, 8, 2)
    with pyprof.profile(model, measure_peak=False):
        assert len(model._forward_pre_hooks) == 1
    assert len(model._forward_pre_hooks) == 0


def test_gradient_accumulation_counts_every_forward():
    model = make_mlp(64, 32, 4)
    one = pyprof.count_flops(lambda: model(torch.randn(4, 64)).sum().backward()).total_flops
    with pyprof.profile(model, measure_peak=False) as prof:
        for _ in range(2):
            for _micro in range(3):
                model(torch.randn(4, 64)).sum().backward()
            prof.step()
    assert [s.analytic_flops for s in prof.result().steps] == [3 * one, 3 * one]


def test_activation_checkpointing_mfu_excludes_recompute_hfu_includes_it():
    from torch.utils.checkpoint import checkpoint

    class Ckpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = make_mlp(64, 128, 8)

        def forward(self, x):
            return checkpoint(self.body, x, use_reentrant=False)

    plain_model, ck = make_mlp(64, 128, 8), Ckpt()
    x = torch.randn(16, 64)
    plain = pyprof.count_flops(lambda: plain_model(x).sum().backward())
    with pyprof.profile(ck, recomputation=1.0, measure_peak=False, schedule=pyprof.schedule(warmup=1, active=2)) as prof:
        for _ in range(3):
            ck(x).sum().backward()
            prof.step()
    r = prof.result()
    executed = r.steps[0].analytic_flops
    # The forward runs again in backward, except the last Linear: non-reentrant checkpointing stops recomputing once
    # every saved tensor backward needs is back, and nothing saved depends on the last layer's output.
    last_layer_fwd = 2 * 16 * 128 * 8  # = 32,768
    assert executed == plain.total_flops + plain.forward_flops - last_layer_fwd
    rec = r.reconciliation
    # Declared recomputation=1.0: model FLOPs = executed - 1.0 x forward (over-subtracts the early stop above).
    assert rec.measured_window_flops == 2 * (executed - plain.forward_flops)
    assert rec.hfu / rec.mfu == pytest.approx(executed / (executed - plain.forward_flops))


def test_a_failing_counter_never_breaks_the_loop(monkeypatch):
    from pyprof.sources.flops import FlopCounter
    def broken(self):
        raise RuntimeError("counter exploded")

    monkeypatch.setattr(FlopCounter, "start", broken)
    model = make_mlp(16, 8, 2)
    with pytest.warns(RuntimeWarning, match="counting failed"):
        with pyprof.profile(model, measure_peak=False) as prof:
            for _ in range(2):
                model(torch.randn(2, 16)).sum().backward()
                prof.step()
    r = prof.result()
    assert len(r.steps) == 2 and all(s.analytic_flops is None for s in r.steps)
    assert any("counter exploded" in n for n in r.notes)


def test_steps_are_timed_and_examples_recorded():
    model = make_mlp(64, 32, 4)
    with pyprof.profile(model, measure_peak=False) as prof:
        for b in (4, 6):
            model(torch.randn(b, 64)).sum().backward()
            prof.step(examples=b)
    r = prof.result()
    assert [s.examples for s in r.steps] == [4, 6] and r.totals.examples == 10
    assert all(s.wall_time_s > 0 and s.cpu_time_s >= 0 for s in r.steps)
    with pytest.raises(InvalidInputError):
        with pyprof.profile(model, measure_peak=False) as prof:
            prof.step(examples=-1)


def test_block_without_step_calls_is_one_step():
    model = make_mlp(16, 8, 2)
    with pyprof.profile(model, measure_peak=False) as prof:
        model(torch.randn(2, 16)).sum().backward()
    assert len(prof.result().steps) == 1 and prof.result().steps[0].analytic_flops > 0


def test_autosave_writes_a_readable_partial_report(tmp_report_dir):
    model = make_mlp(16, 8, 2)
    # The first report is written right after the first recorded step (on the autosave thread: wait for it), whatever
    # autosave_s is (0 is no longer accepted: the interval must be > 0).
    with pyprof.profile(model, output_dir=tmp_report_dir, measure_peak=False) as prof:
        model(torch.randn(2, 16)).sum().backward()
        prof.step()
        prof._reports.join()
        mid = json.loads((tmp_report_dir / "report.json").read_text())
        assert mid["partial"] and "in progress" in mid["partial_reason"]
    assert not read_report(tmp_report_dir / "report.json").partial


def test_named_hardware_peak_and_unknown_name():
    model = make_mlp(16, 8, 2)
    with pyprof.profile(model, peak="Xeon 8380", measure_peak=False) as prof:
        model(torch.randn(2, 16)).sum().backward()
        prof.step()
    assert prof.result().reconciliation.peaks[0].kind == "spec"
    from pyprof.errors import UnknownHardwareError
    # an unknown name fails when the profile is created, before any training, and suggests close matches
    with pytest.raises(UnknownHardwareError, match="H100"):
        pyprof.profile(model, peak="H100 SXM9")


def test_log_metric_puts_a_flops_based_learning_curve_in_the_report(tmp_path):
    """A plain loop (no trainer) logs its loss: the report carries the curve against cumulative training FLOPs.
    Linear(4, 2) without bias on 3 rows: fwd 2*3*4*2 = 48, dW 48 (x needs no grad) -> 96 FLOP per step, so the
    points sit at 96, 192, 288."""
    import torch
    from torch import nn

    from pyprof.report import read_report

    torch.manual_seed(0)
    m = nn.Linear(4, 2, bias=False)
    x = torch.randn(3, 4)
    with pyprof.profile(m, measure_peak=False, output_dir=tmp_path, report_formats=("json", "md")) as prof:
        for i in range(3):
            loss = m(x).pow(2).sum()
            loss.backward()
            prof.step()
            prof.log_metric("loss", loss.detach(), epoch=i + 1)
    curves = read_report(tmp_path / "report.json").learning_curves
    assert len(curves) == 1 and curves[0]["name"] == "loss"
    assert [p["flops"] for p in curves[0]["points"]] == [96, 192, 288]
    assert "Learning curve: loss" in (tmp_path / "report.md").read_text()
