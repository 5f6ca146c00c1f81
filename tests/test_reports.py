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


# --- issue 14: complete reports in every format, sized to the terminal


def test_error_factor_in_plain_words():
    from pyprof.report.rows import error_factor_sentence

    # assumed 17%, measured 17% / 3.5 = 4.86%: the assumption is 3.5x too high, so Method 2 overstates 3.5x
    assert error_factor_sentence(0.17, 3.5, "overestimate") == (
        "the 17% assumption overestimates this run's utilization 3.5x, so a Method 2 estimate from this hardware "
        "time would overstate the compute 3.5x")
    # assumed 33%, measured 66%: 2x too low -> understate
    assert "underestimates this run's utilization 2x" in error_factor_sentence(0.33, 2.0, "underestimate")
    assert "understate the compute 2x" in error_factor_sentence(0.33, 2.0, "underestimate")
    # 141.7 is written 142, not 1.4e+02
    assert "142x" in error_factor_sentence(0.17, 141.7, "overestimate")
    assert error_factor_sentence(None, 2.0, "overestimate") is None


def test_every_format_has_every_summary_line_and_the_module_table(result):
    from pyprof.report.html import render_profile_html
    from pyprof.report.rows import summary_rows, top_modules

    md = render_markdown(result)
    html = render_profile_html(result, with_plots=False)
    term = render_terminal(result, width=200)
    for _sec, label, _v in summary_rows(result):
        esc = label.replace("&", "&amp;").replace('"', "&#34;").replace("<", "&lt;")
        assert label in md and esc in html and label in term, label
    # Method 1 / Method 2 projection in pfs-days, HFU, hardware-FLOPs reason: in the HTML too (issue 14, 2)
    for needle in ("pfs-days", "HFU", "Method 1 (forward x 3)", "hardware FLOPs", "what the error factor compares"):
        assert needle in html, needle
    mods = top_modules(result.flop_counts)
    assert mods, "the MLP has modules"
    assert "## FLOPs by module" in md and f"`{mods[0][0]}`" in md
    assert 'id="modules"' in html and "<details" in html
    assert "top" in term and mods[0][0] in term
    assert 'id="uncounted"' in html  # the ledger of ops without a formula


@pytest.mark.parametrize("width", [80, 100, 132])
def test_terminal_tables_fit_the_width_without_breaking_words(result, width):
    from pyprof.report.rows import summary_rows

    out = render_terminal(result, width=width)
    assert max(len(line) for line in out.splitlines()) <= width
    # every ordinary word of the values is still whole somewhere: a mid-word wrap would split it
    flat = " ".join(out.replace("│", " ").split())
    words = {w for _s, _k, v in summary_rows(result) for w in v.split() if w.isalpha() and 3 < len(w) <= 18}
    assert words
    assert [w for w in words if w not in flat] == []


def test_terminal_width_comes_from_the_terminal(result, monkeypatch):
    monkeypatch.setenv("COLUMNS", "90")
    out = render_terminal(result)
    assert max(len(line) for line in out.splitlines()) <= 90


def test_bench_terminal_at_80_columns_and_skipped_rows_on_one_line():
    from pyprof.report.bench_text import render_bench_terminal
    from tests.test_html_report import sample_report

    d = sample_report()
    d["workloads"][1]["reason"] = "torchvision is not installed: " + "pip install torchvision " * 8
    out = render_bench_terminal(d, width=80)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    skipped = [line for line in lines if "VGG-11" in line]
    assert len(skipped) == 1 and skipped[0].startswith("skipped: VGG-11") and skipped[0].endswith("…")
    assert "util/spec" in out and "3.31x over" in out  # abbreviated header, the error factor kept on one line
    wide = render_bench_terminal(d, width=160)
    assert "util vs spec/theoretical" in wide and "178 GFLOP/s" in wide


def test_write_reports_default_is_every_format(result, tmp_path):
    import gzip

    from pyprof.report import write_reports
    from pyprof.report.writers import DEFAULT_FORMATS

    assert DEFAULT_FORMATS == ("json", "md", "html", "trace")
    paths = write_reports(result, tmp_path)
    assert sorted(p.name for p in paths) == ["report.html", "report.json", "report.md", "trace.json.gz"]
    trace = json.loads(gzip.open(tmp_path / "trace.json.gz", "rt").read())
    assert any(e["ph"] == "X" and e["name"].startswith("step ") for e in trace["traceEvents"])
    with pytest.raises(ValueError, match="unknown"):
        write_reports(result, tmp_path, ("json", "pdf"))


def test_markdown_learning_curve_section(result):
    from pyprof.accounting.efficiency import LearningCurve

    c = LearningCurve("mlp", metric_name="accuracy")
    c.log(8.64e19, 0.5)
    c.log(2 * 8.64e19, 0.75)
    result.learning_curves = [c.to_dict()]
    try:
        md = render_markdown(result)
    finally:
        result.learning_curves = []
    # 8.64e19 FLOP = 1 pfs-day; 1.728e20 FLOP = 2 pfs-days
    assert "## Learning curve: mlp (accuracy against training FLOPs)" in md
    assert "| 86.4 EFLOP | 1 | 0.5 | n/a |" in md and "| 173 EFLOP | 2 | 0.75 | n/a |" in md
