"""Method 2 with a utilization prior: published assumption, published evidence, pyprof's own measurements."""

from __future__ import annotations

import json
import shutil

import pytest

from pyprof.accounting.estimate import method1
from pyprof.accounting.uncertainty import method2_interval, utilization_prior
from pyprof.errors import InvalidInputError

ALEXNET = dict(hardware="GTX 580 (AI and compute)", count=2, days=5.5)
#: 2 GPUs x 1.58e12 FLOP/s x 5.5 d x 86400 s/d = 1.50163e18 FLOP at 100% utilization
ALEXNET_FULL_FLOP = 2 * 1.58e12 * 5.5 * 86400


def test_published_assumption_is_a_point():
    iv = method2_interval(prior="published_assumption", **ALEXNET)
    # 1.50163e18 x 0.33 = 4.955e17 FLOP = 0.005735 pfs-days, no spread
    assert iv.is_point
    assert iv.flop == pytest.approx((4.955e17,) * 3, rel=1e-3)
    assert iv.pfs_days[1] == pytest.approx(ALEXNET_FULL_FLOP * 0.33 / 8.64e19)
    assert "point" in str(iv) and "33%" in iv.prior.source
    assert utilization_prior("published_assumption", "cpu").point == 0.17


def test_published_evidence_for_gpus_is_epochs_62_runs():
    prior = utilization_prior("published_evidence", "gpu")
    assert prior.n == 62 and not prior.is_point
    assert prior.median == pytest.approx(0.38105)          # Epoch AI median (SEED_DATA.md: 0.381)
    assert prior.quantile(0.25) == pytest.approx(0.3005) and prior.quantile(0.75) == pytest.approx(0.498375)
    assert min(prior.samples) == pytest.approx(0.171) and max(prior.samples) == pytest.approx(0.72)
    assert "Epoch AI" in prior.source
    iv = method2_interval(prior=prior, level=0.9, **ALEXNET)
    lo, mid, hi = iv.flop
    # median: 1.50163e18 x 0.38105 = 5.722e17 FLOP = 0.00662 pfs-days
    assert mid == pytest.approx(ALEXNET_FULL_FLOP * 0.38105)
    assert iv.utilization == pytest.approx((prior.quantile(0.05), 0.38105, prior.quantile(0.95)))
    # AlexNet's Method 1 (4.86e17 FLOP) lies inside Method 2's 90% interval, the flat 33% estimate too
    m1 = method1(macs_per_forward=0.75e9, examples=1.2e6, epochs=90).flop
    assert lo < m1 < hi and lo < 4.955e17 < hi
    assert "median of the published_evidence prior" in iv.median.inputs["utilization_source"]


def test_published_evidence_before_2020_has_median_near_0_30():
    prior = utilization_prior("published_evidence", "gpu", published_before="2020-01-01")
    assert prior.n == 6 and prior.median == pytest.approx(0.2966, abs=1e-3)   # SEED_DATA.md: "pre-2020 median ~0.30"


def test_cpu_evidence_is_the_13_to_18_percent_range():
    prior = utilization_prior("published_evidence", "cpu")
    assert prior.quantile(0.05) == pytest.approx(0.13) and prior.quantile(0.95) == pytest.approx(0.18)
    assert prior.median == pytest.approx((0.13 * 0.18) ** 0.5)   # geometric midpoint 0.153
    assert "no published measured CPU" in prior.source


def test_assumption_with_evidence_spread_keeps_33_percent_as_median():
    prior = utilization_prior("published_assumption", "gpu", spread="evidence")
    assert prior.median == pytest.approx(0.33) and not prior.is_point
    # relative spread of the evidence: q05 = 0.33 x 0.198305 / 0.38105 = 0.1717
    assert prior.quantile(0.05) == pytest.approx(0.33 * 0.198305 / 0.38105, rel=1e-6)


def _reports(tmp_path, utilizations, kind="cpu", name="digits-mlp"):
    """Write one real report, then copies of it with the given utilizations."""
    import torch

    import pyprof

    src = tmp_path / "src"
    model = torch.nn.Linear(4, 3)
    with pyprof.profile(model, schedule=None, measure_peak=False, hardware_counters=False, output_dir=src,
                        autosave_s=None, name=name) as prof:
        for _ in range(2):
            model(torch.randn(2, 4)).sum().backward()
            prof.step()
    d = json.loads((src / "report.json").read_text())
    out = tmp_path / "reports"
    out.mkdir(exist_ok=True)
    for i, u in enumerate(utilizations):
        d["device"]["kind"] = kind
        d["reconciliation"]["utilization_vs_spec"] = u
        (out / f"r{i}.json").write_text(json.dumps(d))
    shutil.rmtree(src)
    return out


def test_measured_prior_from_pyprof_reports(tmp_path):
    folder = _reports(tmp_path, [0.1, 0.2, 0.3])
    prior = utilization_prior("measured", "cpu", [folder])
    assert prior.n == 3 and prior.median == pytest.approx(0.2)
    assert "pyprof measured" in prior.source
    iv = method2_interval(peak_flops_per_s=1e12, days=1, prior=prior, level=0.5)
    # 1e12 FLOP/s x 86400 s x median 0.2 = 1.728e16 FLOP; quartiles 0.15 and 0.25 (linear between 3 values)
    assert iv.flop == pytest.approx((1e12 * 86400 * 0.15, 1.728e16, 1e12 * 86400 * 0.25))
    # the GPU prior finds no CPU report and says what it skipped
    with pytest.raises(InvalidInputError, match="no report gives a measured gpu utilization.*not gpu"):
        utilization_prior("measured", "gpu", [folder])


def test_measured_prior_filters_and_single_report(tmp_path):
    folder = _reports(tmp_path, [0.25, 1.7])
    prior = utilization_prior("measured", "cpu", [folder], workload="digits")
    # 1.7 > 1 is skipped (its peak is wrong); one measurement left: a point
    assert prior.is_point and prior.point == 0.25
    assert any("> 1" in n for n in prior.notes)
    with pytest.raises(InvalidInputError, match="is not workload 'resnet'"):
        utilization_prior("measured", "cpu", [folder], workload="resnet")


@pytest.mark.parametrize("call, match", [
    (lambda: utilization_prior("vibes"), "prior kind 'vibes'"),
    (lambda: utilization_prior("published_evidence", "fpga"), "device_kind"),
    (lambda: utilization_prior("measured", "cpu"), "needs reports"),
    (lambda: utilization_prior("measured", "cpu", ["/no/such/report.json"]), "does not exist"),
    (lambda: method2_interval(level=1.5, **ALEXNET), "level"),
    (lambda: method2_interval(prior=utilization_prior("published_evidence", "cpu"), **ALEXNET), "prior is for cpu"),
    (lambda: method2_interval(days=5.5), "needs a peak"),
])
def test_bad_input(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_not_a_report_is_a_clear_error(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{}")
    with pytest.raises(InvalidInputError, match="none of the 1 file"):
        utilization_prior("measured", "cpu", [f])


def test_cli_estimate_interval():
    import typer
    from typer.testing import CliRunner

    from pyprof.cli.efficiency_cmd import estimate_interval
    app = typer.Typer()
    app.command("estimate-interval")(estimate_interval)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    r = runner.invoke(app, ["estimate-interval", "--hardware", "GTX 580 (AI and compute)", "--count", "2",
                            "--days", "5.5", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["utilization"][1] == pytest.approx(0.38105) and out["prior"]["n"] == 62
    r = runner.invoke(app, ["estimate-interval", "--hardware", "GTX 580 (AI and compute)", "--days", "5.5",
                            "--prior", "published_assumption"])
    assert r.exit_code == 0 and "point estimate" in r.stdout
    r = runner.invoke(app, ["estimate-interval", "--count", "2"])
    assert r.exit_code == 2 and "--days is required" in r.output


def _bench_report(folder, utils, device_kind="cpu"):
    """A minimal `pyprof bench` report.json: one ok workload per utilization, plus one failed workload."""
    from pyprof.report.bench_schema import KIND, SCHEMA_VERSION

    ws = [{"id": f"w{i}", "name": f"model{i}", "family": "cnn", "status": "ok", "utilization_vs_spec": u}
          for i, u in enumerate(utils)]
    ws.append({"id": "bad", "name": "bad", "family": "cnn", "status": "failed", "reason": "x"})
    d = {"kind": KIND, "schema_version": SCHEMA_VERSION, "run": {}, "device": {"kind": device_kind, "name": "cpu0"},
         "sources": {}, "peaks": {}, "assumed_utilization": 0.17, "assumed_utilization_source": "x",
         "throttle": {}, "workloads": ws, "microbenchmarks": []}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(d))
    return folder


def test_measured_prior_reads_a_bench_folder(tmp_path):
    folder = _bench_report(tmp_path / "bench", [0.10, 0.20, 0.40])
    prior = utilization_prior("measured", "cpu", [folder])
    # Each ok workload counts once; the failed one is left out: median of (0.1, 0.2, 0.4) is 0.2.
    assert prior.n == 3 and prior.median == pytest.approx(0.20)
    only = utilization_prior("measured", "cpu", [folder], workload="model2")
    assert only.median == pytest.approx(0.40)  # one report: a point at its value


def test_cli_estimate_interval_measured_prior_from_a_bench_folder(tmp_path):
    import typer
    from typer.testing import CliRunner

    from pyprof.cli.efficiency_cmd import estimate_interval
    app = typer.Typer()
    app.command("estimate-interval")(estimate_interval)
    app.command("noop")(lambda: None)
    folder = _bench_report(tmp_path / "bench", [0.10, 0.20, 0.40])
    r = CliRunner().invoke(app, ["estimate-interval", "--peak-tflops", "2", "--device-kind", "cpu", "--days", "3",
                                 "--prior", "measured", "--report", str(folder), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["kind"] == "pyprof.estimate_interval" and out["schema_version"] == "1.0"
    # median: 2e12 FLOP/s × 3 d × 86400 s/d × 0.20 = 1.0368e17 FLOP
    assert out["flop"][1] == pytest.approx(2e12 * 3 * 86400 * 0.20, rel=1e-6)
    r = CliRunner().invoke(app, ["estimate-interval", "--peak-tflops", "-1", "--days", "3"])
    assert r.exit_code == 2 and "--peak-tflops -1 must be > 0; pass --peak-tflops in TFLOP/s" in r.stderr


def test_interval_from_gpu_hours_equals_count_times_days():
    # 1,720,320 GPU-hours = 1 device for 71,680 days: the same interval, utilization for utilization.
    a = method2_interval(peak_flops_per_s=312e12, device_hours=1_720_320, prior="published_assumption")
    b = method2_interval(peak_flops_per_s=312e12, count=1, days=71_680, prior="published_assumption")
    assert a.flop == pytest.approx(b.flop)
    assert a.median.flop == pytest.approx(1_720_320 * 3600 * 312e12 * 0.33)  # GPU-h x s/h x FLOP/s x 33%
