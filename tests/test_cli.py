"""CLI conventions shared by every command: outputs checked before work, --json documents with kind and
schema_version, --only ids listed, errors as one line on stderr with exit code 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pyprof.cli import app


def _invoke(*args):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "not_a_folder"
    f.write_text("x")
    return f


def test_bench_out_on_a_file_fails_before_the_run(a_file, monkeypatch):
    from pyprof.bench import runner

    def must_not_run(*a, **k):
        raise AssertionError("the suite ran although --out was unusable")

    monkeypatch.setattr(runner, "run_suite", must_not_run)
    r = _invoke("bench", "--only", "micro", "--out", str(a_file), "--no-progress", "--device", "cpu")
    assert r.exit_code == 2 and "--out" in r.output and "is an existing file, not a folder" in r.output
    r = _invoke("bench", "--only", "micro", "--out", str(a_file / "sub"), "--no-progress", "--device", "cpu")
    assert r.exit_code == 2 and "cannot be created" in r.output


def test_example_out_on_a_file_fails_before_the_run(a_file, monkeypatch):
    import pyprof.bench.examples as ex

    monkeypatch.setattr(ex, "run_example", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    r = _invoke("example", "--model", "mlp", "--out", str(a_file))
    assert r.exit_code == 2 and "--out" in r.output and "not a folder" in r.output and "Traceback" not in r.output


def test_bench_only_lists_valid_ids_in_help_and_error():
    from pyprof.cli.bench_cmd import ONLY_IDS

    assert {"micro", "resnet18", "gpt2_small", "cupy_gemm"} <= set(ONLY_IDS)
    help_text = " ".join(_invoke("bench", "--help").output.split())
    assert all(i in help_text for i in ONLY_IDS)
    r = _invoke("bench", "--only", "resnet-18,micro", "--device", "cpu")
    assert r.exit_code == 2
    assert "unknown workload id(s) resnet-18; choose from micro, alexnet" in r.output and "resnet18" in r.output
    r = _invoke("bench", "--only", ",", "--device", "cpu")
    assert r.exit_code == 2 and "(none given)" in r.output


def test_bench_json_prints_the_report_with_kind_and_schema_version(tmp_path, monkeypatch):
    from pyprof.bench import runner
    from pyprof.report.bench_schema import KIND, SCHEMA_VERSION, BenchReport

    report = BenchReport(run={"preset": "quick", "wall_time_s": 1.0}, device={"kind": "cpu", "name": "cpu"},
                         sources={}, peaks={}, assumed_utilization=0.17, assumed_utilization_source="x",
                         throttle={"note": ""})
    monkeypatch.setattr(runner, "run_suite", lambda opts, progress=True: report)
    monkeypatch.setattr(runner, "write_outputs", lambda *a, **k: {"json": tmp_path / "report.json"})
    r = CliRunner().invoke(app, ["bench", "--only", "micro", "--out", str(tmp_path), "--no-progress", "--device",
                                 "cpu", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["kind"] == KIND and d["schema_version"] == SCHEMA_VERSION


def test_env_json_carries_kind_and_schema_version():
    r = CliRunner().invoke(app, ["env", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["kind"] == "pyprof.env" and d["schema_version"] == "1.0" and "pyprof_version" in d


def test_errors_strip_terminal_escape_sequences(tmp_path):
    # A file name (or a report's content) quoted in an error must not act on the terminal.
    r = CliRunner().invoke(app, ["report", str(tmp_path / "x\x1b]0;pwned\x07.json")])
    assert r.exit_code == 2 and "does not exist" in r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr


@pytest.mark.parametrize("args, kind", [
    (["estimate", "--peak-tflops", "1.58", "--days", "1"], "pyprof.estimate"),
    (["estimate-interval", "--peak-tflops", "1.58", "--days", "1"], "pyprof.estimate_interval"),
    (["trend", "ai_and_compute", "--bootstrap", "0"], "pyprof.trend"),
    (["env"], "pyprof.env"),
])
def test_every_json_output_carries_kind_and_schema_version(args, kind):
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["kind"] == kind and isinstance(d["schema_version"], str)


def test_report_command_prints_no_control_sequences_from_the_file(tmp_path):
    from pyprof.bench.examples import run_example
    from pyprof.report import to_json

    r = run_example("mlp", batch=4, steps=1, warmup=1, measure_peak=False)
    d = json.loads(to_json(r))
    d["run"]["name"] = "x\x1b]0;owned\x07[/y]"
    d["notes"] = ["\x1b[2J cleared", "<script>alert(1)</script>"]
    p = tmp_path / "report.json"
    p.write_text(json.dumps(d))
    for fmt in ("terminal", "md"):
        out = CliRunner().invoke(app, ["report", str(p), "-f", fmt])
        assert out.exit_code == 0, out.output
        assert "\x1b" not in out.stdout and "\x07" not in out.stdout and "cleared" in out.stdout
    assert "<script>" not in CliRunner().invoke(app, ["report", str(p), "-f", "md"]).stdout
