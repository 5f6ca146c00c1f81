"""The bench runner end to end on a tiny subset: statuses, arithmetic, outputs, failures recorded not raised."""

import gzip
import json

import pytest
from typer.testing import CliRunner

from pyprof.bench import micro, runner, workloads
from pyprof.report.bench_schema import KIND, SCHEMA_VERSION, read_bench_report
from pyprof.report.html import render_any

TINY = micro.MicroPreset(gemm_square=(64,), gemm_skinny=(), dtypes=("fp32", "tf32"), conv=((1, 4, 8, 4, 3),),
                         attention=((1, 1, 16, 8),), elementwise_n=1 << 12, bandwidth_n=1 << 16, repeats=2, warmup=1,
                         min_time_s=0.0)


def _boom(preset, device):
    raise RuntimeError("workload exploded <b>")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(micro, "QUICK", TINY)
    mp.setattr(workloads, "WORKLOADS", workloads.WORKLOADS + (workloads.Workload("boom", "Boom", "cnn", _boom),))
    opts = runner.Options(preset="quick", device="cpu", only=("micro", "lstm_seq2seq", "shufflenet_v1", "boom"), warmup=1,
                          active=2)
    rep = runner.run_suite(opts, progress=False)
    out = tmp_path_factory.mktemp("bench")
    paths = runner.write_outputs(rep, out)
    mp.undo()
    return rep.to_dict(), out, paths


def test_statuses_and_reasons(suite):
    d, _, _ = suite
    by = {w["id"]: w for w in d["workloads"]}
    assert by["lstm_seq2seq"]["status"] == "ok"
    assert by["boom"]["status"] == "failed" and "exploded" in by["boom"]["reason"]
    # a seed CNN torchvision lacks runs from pyprof's definition, with or without torchvision: never skipped
    assert by["shufflenet_v1"]["status"] == "ok"
    assert by["shufflenet_v1"]["source"] == "pyprof.bench.models.mobile.shufflenet_v1"
    assert by["shufflenet_v1"]["config"]["model_definition"] == "pyprof"
    tf32 = [m for m in d["microbenchmarks"] if m["dtype"] == "tf32"]
    assert tf32 and all(m["status"] == "skipped" and "GPU" in m["reason"] for m in tf32)


def test_workload_arithmetic(suite):
    d, _, _ = suite
    w = next(x for x in d["workloads"] if x["id"] == "lstm_seq2seq")
    assert w["flops_per_step"] > 0 and w["step_time_s_median"] > 0
    spec = d["peaks"]["spec"]["flops_per_s"]
    assert w["utilization_vs_spec"] == pytest.approx(w["achieved_flops_per_s"] / spec)
    u, a = w["utilization_vs_spec"], d["assumed_utilization"]
    assert a == 0.17
    assert w["error_factor"] == pytest.approx(max(a / u, u / a))
    assert w["error_direction"] == ("overestimate" if a > u else "underestimate")
    assert set(w["kernel_time_s"]) == {"gemm", "conv", "attention", "elementwise", "other"}
    assert w["kernel_time_s"]["gemm"] > 0  # LSTM layers and the output projection are GEMMs
    assert w["profile"]["totals"]["timed_steps"] == 2 and "steps" not in w["profile"]


def test_micro_roofline(suite):
    d, _, _ = suite
    bw = d["peaks"]["memory_bandwidth"]["bytes_per_s"]
    for m in d["microbenchmarks"]:
        if m["status"] != "ok":
            continue
        assert m["achieved_flops_per_s"] == pytest.approx(m["flops"] / m["time_s_median"])
        roof = min(m["peak_flops_per_s"], m["intensity_flop_per_byte"] * bw)
        assert m["roofline_bound_flops_per_s"] == pytest.approx(roof)
        assert m["bound"] == ("memory" if m["intensity_flop_per_byte"] * bw < m["peak_flops_per_s"] else "compute")
    gemm = next(m for m in d["microbenchmarks"] if m["id"] == "gemm/fp32/64x64x64")
    assert gemm["flops"] == 2 * 64 ** 3                     # 2 x M x N x K = 524,288
    assert gemm["bytes"] == 4 * (64 * 64 * 3)               # A, B read, C written, fp32


def test_outputs_written_and_readable(suite):
    d, out, paths = suite
    assert {"json", "md", "html", "trace"} <= set(paths)
    rd = read_bench_report(out / "report.json")
    assert rd["kind"] == KIND and rd["schema_version"] == SCHEMA_VERSION
    assert rd["trace"]["events_dropped"] == 0 and rd["trace"]["events_written"] > 0
    tr = json.load(gzip.open(out / "trace.json.gz", "rt"))
    # events written + metadata (the process name and one thread name per track)
    assert len([e for e in tr["traceEvents"] if e["ph"] != "M"]) == rd["trace"]["events_written"]
    for fmt in ("html", "md", "terminal", "json"):
        assert "LSTM seq2seq" in render_any(out / "report.json", fmt)


def test_every_seed_cnn_is_a_default_workload():
    # the ten architectures of "Measuring the Algorithmic Efficiency of Neural Networks", Table 1 and Figure 4
    ids = [w.id for w in workloads.select(None)]
    assert {"alexnet", "vgg11", "googlenet", "resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2", "shufflenet_v1",
            "shufflenet_v2", "efficientnet_b0"} <= set(ids)
    assert len(workloads.VISION) == 10
    # each has pyprof's own definition, so none is skipped where torchvision does not import
    assert all(v.own for v in workloads.VISION.values())


class _FakeTorchvision:
    """Stands in for ``torchvision.models``: records the builder calls, returns a tiny module."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        import torch

        def build(**kwargs):
            self.calls.append((name, kwargs))
            return torch.nn.Linear(1, 1)
        return build


def test_vision_model_comes_from_torchvision_when_it_imports():
    tvm = _FakeTorchvision()
    _, source, definition, notes = workloads.build_vision_model(workloads.VISION["googlenet"], tvm, "")
    assert (source, definition, notes) == ("torchvision.models.googlenet", "torchvision", [])
    assert tvm.calls == [("googlenet", {"aux_logits": False, "init_weights": True})]
    # torchvision has no MobileNet v1: pyprof's definition even where torchvision imports
    _, source, definition, notes = workloads.build_vision_model(workloads.VISION["mobilenet_v1"], tvm, "")
    assert (source, definition) == ("pyprof.bench.models.mobile.mobilenet_v1", "pyprof")
    assert "no such model" in notes[0] and len(tvm.calls) == 1


def test_vision_model_falls_back_to_pyprof_with_the_reason():
    why = "torchvision.models does not import (RuntimeError: operator torchvision::nms does not exist)"
    model, source, definition, notes = workloads.build_vision_model(workloads.VISION["shufflenet_v2"], None, why)
    assert (source, definition) == ("pyprof.bench.models.mobile.shufflenet_v2_x1_0", "pyprof")
    assert notes[0].startswith(why) and "torchvision.models.shufflenet_v2_x1_0" in notes[0]
    # 2,278,604 parameters: torchvision's published num_params for shufflenet_v2_x1_0
    assert sum(p.numel() for p in model.parameters()) == 2_278_604


def test_bad_only_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown workload"):
        workloads.select(["resnet-18"])


def test_cli_bad_options_exit_2(tmp_path):
    import typer

    from pyprof.cli.bench_cmd import bench
    app = typer.Typer()
    app.command()(bench)
    r = CliRunner().invoke(app, ["--only", "nope", "--out", str(tmp_path), "--no-progress", "--device", "cpu"])
    assert r.exit_code == 2 and "unknown workload" in r.output
    r = CliRunner().invoke(app, ["--quick", "--full"])
    assert r.exit_code == 2
