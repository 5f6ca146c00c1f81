"""Reports: atomic writes, versioned JSON read back with clear errors, Markdown, and the CLI that renders them."""

import json
import os

import pytest
from typer.testing import CliRunner

from pyprof.cli import app
from pyprof.errors import ReportError
from pyprof.bench.examples import run_example
from pyprof.report import SCHEMA_VERSION, atomic_write_text, read_report, render_markdown, render_terminal, to_json

runner = CliRunner()


@pytest.fixture(scope="module")
def result():
    return run_example("mlp", batch=4, steps=2, warmup=1, measure_peak=False)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "r.json"
    atomic_write_text(p, "old")
    atomic_write_text(p, "new")
    assert p.read_text() == "new"
    assert os.listdir(tmp_path) == ["r.json"]


def test_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    p = tmp_path / "r.json"
    atomic_write_text(p, "complete old report")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(p, "half")
    monkeypatch.undo()
    assert p.read_text() == "complete old report"
    assert os.listdir(tmp_path) == ["r.json"]  # the temp file was removed


def test_json_roundtrip(result, tmp_path):
    p = tmp_path / "report.json"
    p.write_text(to_json(result))
    back = read_report(p)
    assert back.totals == result.totals
    assert back.steps == result.steps
    assert back.reconciliation.utilization_vs_spec == pytest.approx(result.reconciliation.utilization_vs_spec)
    assert json.loads(p.read_text())["schema_version"] == SCHEMA_VERSION


def test_reader_errors_name_the_problem(result, tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        read_report(tmp_path / "nope.json")
    trunc = tmp_path / "trunc.json"
    trunc.write_text(to_json(result)[:200])
    with pytest.raises(ReportError, match="not valid JSON"):
        read_report(trunc)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(ReportError, match="not a pyprof profile report"):
        read_report(other)
    d = json.loads(to_json(result))
    d["schema_version"] = "9.0"
    future = tmp_path / "future.json"
    future.write_text(json.dumps(d))
    with pytest.raises(ReportError, match="schema version 9.0"):
        read_report(future)
    d["schema_version"] = SCHEMA_VERSION.split(".")[0] + ".99"
    minor = tmp_path / "minor.json"
    minor.write_text(json.dumps(d))
    with pytest.warns(UserWarning, match="differs"):
        read_report(minor)


def test_nan_is_written_as_null_not_invalid_json(result):
    import dataclasses

    r = dataclasses.replace(result, totals=dataclasses.replace(result.totals, step_time_s_max=float("nan")))
    assert json.loads(to_json(r))["totals"]["step_time_s_max"] is None


def test_markdown_and_terminal_carry_the_key_figures(result):
    md = render_markdown(result)
    for s in ("## Utilization", "## Method 2", "## Training run", "aten.addmm", "## Ops without a FLOP formula",
              "17.0%", "hardware FLOPs"):
        assert s in md, s
    assert "pyprof: example-mlp" in render_terminal(result)


def test_markdown_escapes_table_breakers(result):
    import dataclasses

    r = dataclasses.replace(result, notes=["a | b\nc"])
    assert "a \\| b c" in render_markdown(r)


def test_cli_report_renders_and_rejects_bad_files(result, tmp_path):
    p = tmp_path / "report.json"
    p.write_text(to_json(result))
    out = runner.invoke(app, ["report", str(p), "--format", "md"])
    assert out.exit_code == 0 and out.stdout.startswith("# pyprof report")
    out = runner.invoke(app, ["report", str(tmp_path / "missing.json")])
    assert out.exit_code == 2 and "does not exist" in out.stderr


def test_cli_env_json_is_complete():
    out = runner.invoke(app, ["env", "--json"])
    assert out.exit_code == 0, out.output
    env = json.loads(out.stdout)
    assert env["extension"]["pyprof._C"] is True
    assert env["cpu"]["isas"][-1] == "scalar"
    assert env["cpu_peaks"]["fp32"]["theoretical_flops_per_s"] > 0
    assert "reason" in env["nvml"] or env["nvml"]["available"]
    assert "available" in env["cpu_counters"]


def test_cli_estimate_through_the_real_app():
    out = runner.invoke(app, ["estimate", "--hardware", "GTX 580 (AI and compute)", "--count", "2", "--days", "5.5",
                              "--json"])
    assert out.exit_code == 0, out.output
    est = json.loads(out.stdout)["estimates"][0]
    # 2 x 1.58e12 FLOP/s x 5.5 d x 86400 s/d x 0.33 = 4.955e17 FLOP
    assert est["flop"] == pytest.approx(2 * 1.58e12 * 5.5 * 86400 * 0.33)
    out = runner.invoke(app, ["estimate", "--hardware", "GTX 580", "--count", "2", "--days", "-1"])
    assert out.exit_code == 2 and "days" in out.stderr


def test_cli_example_writes_report(tmp_path):
    out = runner.invoke(app, ["example", "--model", "mlp", "--steps", "2", "--warmup", "1", "--batch", "4",
                              "--out", str(tmp_path / "rep")])
    assert out.exit_code == 0, out.output
    assert read_report(tmp_path / "rep" / "report.json").totals.steps == 2
    out = runner.invoke(app, ["example", "--model", "resnet"])
    assert out.exit_code == 2 and "unknown" in out.stderr
