"""Reports: atomic writes, versioned JSON read back with clear errors, Markdown, and the CLI that renders them."""

import json
import os

import pytest
from typer.testing import CliRunner

from pyprof.bench.examples import run_example
from pyprof.cli import app
from pyprof.errors import ReportError
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


def test_stale_temps_of_the_same_target_are_cleaned_on_the_next_write(tmp_path):
    import time

    p = tmp_path / "report.json"
    dead = tmp_path / ".report.json.999999999.0badf00d.tmp"  # pid 999999999 exceeds Linux's pid_max: never alive
    old_style = tmp_path / ".report.json.ab12cd34.tmp"       # mkstemp's name in earlier releases, an hour old
    live = tmp_path / f".report.json.{os.getpid()}.12345678.tmp"  # a write of this very process: kept
    other = tmp_path / ".other.json.999999999.0badf00d.tmp"       # another target's temp: not ours to remove
    for f in (dead, old_style, live, other):
        f.write_text("x" * 10)
    hour_ago = time.time() - 3700
    os.utime(old_style, (hour_ago, hour_ago))
    atomic_write_text(p, "new")
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name, "report.json"])


def test_kill_9_leftovers_do_not_accumulate(tmp_path):
    # 50 interrupted writes of dead processes leave 50 temps; the next write leaves none of them.
    for i in range(50):
        (tmp_path / f".report.json.{999999000 + i}.{i:08x}.tmp").write_text("partial")
    atomic_write_text(tmp_path / "report.json", "{}")
    assert os.listdir(tmp_path) == ["report.json"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        p = atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode  # 0o666 & ~umask, as open() gives


def test_check_output_dir_catches_unwritable_folders_before_work(tmp_path):
    from pyprof.errors import InvalidInputError
    from pyprof.report.atomic import check_output_dir

    made = check_output_dir(tmp_path / "a" / "b")
    assert made.is_dir() and os.listdir(made) == []  # created, and the probe file is gone
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InvalidInputError, match=r"--out '.*file' is an existing file, not a folder: pass --out"):
        check_output_dir(f)
    with pytest.raises(InvalidInputError, match=r"output_dir '.*file/sub' cannot be created .*pass output_dir"):
        check_output_dir(f / "sub", option="output_dir")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into a chmod 555 folder")
def test_check_output_dir_catches_chmod_555(tmp_path):
    from pyprof.errors import InvalidInputError
    from pyprof.report.atomic import check_output_dir

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InvalidInputError, match="is not writable"):
            check_output_dir(ro)
    finally:
        ro.chmod(0o755)


def test_check_output_dir_catches_a_read_only_filesystem(tmp_path, monkeypatch):
    # A read-only mount answers EROFS on create; root is not exempt, so this runs everywhere.
    import builtins
    import errno

    from pyprof.errors import InvalidInputError
    from pyprof.report.atomic import check_output_dir

    real_open = builtins.open

    def erofs(file, *a, **k):
        if ".pyprof-write-check" in str(file):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", erofs)
    with pytest.raises(InvalidInputError, match="not writable .Read-only file system.: pass --out a folder"):
        check_output_dir(tmp_path)


# ----------------------------------------------------------------------------- reading reports (issue 13 item 5)

def _write(tmp_path, d, name="r.json"):
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


def test_newer_minor_version_with_added_fields_reads_with_one_warning(result, tmp_path):
    import warnings

    d = json.loads(to_json(result))
    major, minor = SCHEMA_VERSION.split(".")
    d["schema_version"] = f"{major}.{int(minor) + 1}"  # the next minor version adds a key in totals, steps, device
    d["totals"]["new_total"] = 1.0
    for s in d["steps"]:
        s["new_step_field"] = {"x": 1}
    d["device"]["new_device_field"] = "y"
    d["new_top_level"] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_report(_write(tmp_path, d))
    assert back.totals == result.totals and back.steps == result.steps  # the known fields read as written
    assert len(caught) == 1  # one warning, not one per field or per step
    msg = str(caught[0].message)
    for f in ("totals.new_total", "steps[*].new_step_field", "device.new_device_field", "new_top_level"):
        assert f in msg, f


@pytest.mark.parametrize("edit, field, expected", [
    (lambda d: d.update(notes=None), "'notes' is None", "a list"),
    (lambda d: d["totals"].update(steps="12"), "'totals.steps' is '12'", "a whole number"),
    (lambda d: d["steps"][0].update(wall_time_s="fast"), "'steps[0].wall_time_s' is 'fast'", "a number"),
    (lambda d: d["device"].update(name=7), "'device.name' is 7", "a string"),
    (lambda d: d.update(steps={"0": {}}), "'steps' is", "a list"),
    (lambda d: d["totals"].pop("wall_time_s"), "'totals.wall_time_s' is missing", "re-run"),
    (lambda d: d["reconciliation"].update(peaks=[{"kind": 1}]), "'reconciliation.peaks[0]", ""),
    (lambda d: d.update(schema_version=1.1), "'schema_version' is 1.1", "version string"),
])
def test_malformed_reports_name_the_field(result, tmp_path, edit, field, expected):
    d = json.loads(to_json(result))
    edit(d)
    with pytest.raises(ReportError) as e:
        read_report(_write(tmp_path, d))
    assert field in str(e.value) and expected in str(e.value)
    r = runner.invoke(app, ["report", str(tmp_path / "r.json")])  # the CLI: one line, exit 2, no traceback
    assert r.exit_code == 2 and "Traceback" not in r.output and field in r.stderr


def test_a_report_of_another_kind_is_named(tmp_path):
    bench = {"kind": "pyprof.bench", "schema_version": "1.0"}
    with pytest.raises(ReportError, match=r"is a pyprof bench report \(kind 'pyprof.bench'\), not a pyprof profile "
                                          r"report: `pyprof report .*` renders any kind"):
        read_report(_write(tmp_path, bench))


def test_malformed_bench_report_names_the_field(tmp_path):
    from pyprof.report.bench_schema import KIND, read_bench_report
    from pyprof.report.bench_schema import SCHEMA_VERSION as BV

    d = {"kind": KIND, "schema_version": BV, "run": {}, "device": {}, "sources": {}, "peaks": {},
         "assumed_utilization": 0.17, "assumed_utilization_source": "x", "throttle": {}, "microbenchmarks": [],
         "workloads": [{"id": "a", "name": "a", "family": "cnn", "step_time_s_median": "slow"}]}
    with pytest.raises(ReportError, match=r"'workloads\[0\].step_time_s_median' is 'slow', expected a number"):
        read_bench_report(_write(tmp_path, d))
    d["workloads"][0]["step_time_s_median"] = 0.5
    d["notes"] = None
    with pytest.raises(ReportError, match="'notes' is None, expected a list"):
        read_bench_report(_write(tmp_path, d))


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


def test_share_of_op_calls_without_a_formula_stands_next_to_mfu():
    from pyprof.report.rows import uncounted_share

    class R:  # the two fields the share reads
        flop_counts = [{"op_calls": 0, "uncounted": []},
                       {"op_calls": 40, "uncounted": [{"name": "aten.view", "calls": 6, "kind": "view"},
                                                      {"name": "aten.relu", "calls": 4, "kind": "elementwise"}]}]

    # (6 + 4) / 40 = 0.25: the first count with op calls is read
    assert uncounted_share(R()) == 0.25
    R.flop_counts = []
    assert uncounted_share(R()) is None
