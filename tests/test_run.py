"""`pyprof run -- python script.py`: a script profiled without edits; steps from the optimizer, FLOPs in closed form."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyprof.errors import InvalidInputError
from pyprof.report import read_report
from pyprof.session.run import run_script, split_command

SCRIPT = Path(__file__).parent / "data" / "train_small.py"
# train_small.py: MLP 32 -> 64 -> 10, micro-batch 8. Per micro-batch: forward 2*8*(32*64 + 64*10) = 43,008;
# backward = layer 1 (no input grad) 2*8*32*64 = 32,768 + 2 x layer 2 (2*8*64*10 = 10,240) = 20,480 -> 53,248;
# total 96,256 per micro-batch (the loss and ReLU are not counted, as in pyprof's convention).
FLOPS_PER_MICROBATCH = 96_256


def _registered() -> bool:
    from pyprof.cli import app
    return any(c.name == "run" for c in app.registered_commands)


def _pyprof_run() -> list[str]:
    # `python -m pyprof run` once the command is registered in pyprof.cli; the same command function otherwise.
    return [sys.executable, "-m", "pyprof", "run"] if _registered() else [sys.executable, "-m", "pyprof.cli.run_cmd"]


def _run(out, *script_args, opts=()):
    return subprocess.run([*_pyprof_run(), "--out", str(out), "--no-measure-peak", *opts, "--", "python", str(SCRIPT),
                           *script_args], capture_output=True, text=True, timeout=120)


def test_steps_from_optimizer_with_gradient_accumulation(tmp_path):
    p = _run(tmp_path, "--steps", "4", "--accum", "2")
    assert p.returncode == 0, p.stderr
    assert "train_small done: 4 optimizer steps, argv=['--steps', '4', '--accum', '2']" in p.stdout
    r = read_report(tmp_path / "report.json")
    assert not r.partial
    assert r.totals.steps == 4  # one profile step per optimizer step, not per micro-batch
    # 2 micro-batches per optimizer step: 2 * 96,256 = 192,512 per step; 4 steps -> 770,048
    assert [s.analytic_flops for s in r.steps] == [192_512] * 4
    assert r.totals.analytic_flops == 770_048
    assert r.run["name"] == "train_small.py"


def test_exit_code_propagates_and_report_is_partial(tmp_path):
    p = _run(tmp_path, "--steps", "2", "--exit-code", "3")
    assert p.returncode == 3, p.stderr
    r = read_report(tmp_path / "report.json")
    assert r.partial and "SystemExit" in r.partial_reason
    assert r.totals.steps == 2 and r.totals.analytic_flops == 2 * FLOPS_PER_MICROBATCH


def test_whole_run_as_one_range(tmp_path):
    p = _run(tmp_path, "--steps", "3", opts=("--steps-from", "none"))
    assert p.returncode == 0, p.stderr
    r = read_report(tmp_path / "report.json")
    # one range over 3 optimizer steps of 1 micro-batch: 3 * 96,256 = 288,768
    assert r.totals.steps == 1 and r.totals.analytic_flops == 288_768


def test_script_exception_in_process(tmp_path, capsys):
    import sys as _sys

    argv = list(_sys.argv)
    out = run_script(["python", str(SCRIPT), "--steps", "4", "--raise-at", "2"], output_dir=tmp_path,
                     measure_peak=False)
    assert _sys.argv == argv  # restored
    assert out.exit_code == 1 and out.optimizer_steps == 2
    assert "ValueError: train_small failed at step 2 on purpose" in capsys.readouterr().err
    r = json.loads((tmp_path / "report.json").read_text())
    assert r["partial"] and "ValueError" in r["partial_reason"]
    assert r["totals"]["steps"] == 2 and r["totals"]["analytic_flops"] == 2 * FLOPS_PER_MICROBATCH


def test_bad_input():
    assert split_command([sys.executable, str(SCRIPT), "-x"]) == ("path", str(SCRIPT), ["-x"])
    assert split_command(["--", str(SCRIPT)]) == ("path", str(SCRIPT), [])
    assert split_command(["python3", "-m", "pkg.train", "--lr", "1"]) == ("module", "pkg.train", ["--lr", "1"])
    with pytest.raises(InvalidInputError, match="no script given"):
        split_command(["python"])
    with pytest.raises(InvalidInputError, match="not found"):
        split_command(["does_not_exist.py"])
    with pytest.raises(InvalidInputError, match="not supported"):
        split_command(["python", "-O", "x.py"])
    with pytest.raises(InvalidInputError, match="steps-from"):
        run_script([str(SCRIPT)], steps_from="batch")
    p = subprocess.run([*_pyprof_run(), "--", "python", "nope.py"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "not found" in p.stderr


def test_registered_as_pyprof_run():
    assert _registered(), ("`pyprof run` is not registered in pyprof/cli/__init__.py: add `from .run_cmd import run` "
                           "and `app.command(\"run\", context_settings={\"allow_extra_args\": True, "
                           "\"ignore_unknown_options\": True})(run)`")


# ----------------------------------------------------------------------------- argument splitting and --json

_PKG_TRAIN = """
import json, sys
import torch
m = torch.nn.Linear(4, 2)
opt = torch.optim.SGD(m.parameters(), lr=0.1)
for _ in range(3):
    m(torch.ones(2, 4)).sum().backward()
    opt.step()
    opt.zero_grad()
with open(sys.argv[sys.argv.index("--out") + 1], "w") as f:  # the script's own --out: it must reach the script
    json.dump(sys.argv[1:], f)
"""


def _invoke(*args):
    from typer.testing import CliRunner

    from pyprof.cli import app
    return CliRunner().invoke(app, ["run", *args])


def test_python_m_pkg_from_the_folder_that_holds_it_and_the_scripts_own_out(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(_PKG_TRAIN)
    monkeypatch.chdir(tmp_path)  # as a user would: `cd project && pyprof run -- python -m pkg.train`
    prof_out = tmp_path / "prof"
    # No `--`: pyprof's options end at "python", so the script's own --out is the script's, not pyprof's.
    r = _invoke("--out", str(prof_out), "--no-measure-peak", "--no-summary", "--json", "python", "-m", "pkg.train",
                "--out", "script_args.json")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "script_args.json").read_text()) == ["--out", "script_args.json"]
    assert (prof_out / "report.json").is_file()
    doc = json.loads(r.stdout)
    assert doc["kind"] == "pyprof.profile" and "schema_version" in doc
    assert doc["totals"]["steps"] == 3  # one profile step per optimizer step


@pytest.mark.parametrize("args, message, absent", [
    (("--bogus-flag", "--", "python", "x.py"), "No such option: --bogus-flag", "python option"),
    (("--peek", "h100", "--", "python", "x.py"), "(Possible options: --peak)", "python option"),
    (("--peak", "nonsense", "--", "python", "x.py"), "--peak 'nonsense': Unknown hardware", "--peak-tflops"),
    (("--peak", "-1", "--", "python", "x.py"), "--peak -1 is not a positive finite FLOP/s", "--peak-tflops"),
    (("--peak", "19.5", "--", "python", "x.py"), "takes FLOP/s (1.95e13), not TFLOP/s", "--peak-tflops"),
    (("--", "--bogus-flag"), "'--bogus-flag' is where the script should be", "python option"),
    (("--steps-from", "batch", "--", "python", "x.py"), "--steps-from 'batch'", "Traceback"),
])
def test_run_bad_options_are_named_in_runs_own_terms(args, message, absent):
    r = _invoke(*args)
    assert r.exit_code == 2
    assert message in r.output and absent not in r.output


def test_run_checks_out_before_the_script_runs(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    marker = tmp_path / "ran"
    script = tmp_path / "s.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('1')\n")
    r = _invoke("--out", str(f), "--", "python", str(script))
    assert r.exit_code == 2 and "--out" in r.output and "is an existing file, not a folder" in r.output
    assert not marker.exists()  # the script never started


def test_help_keeps_literal_brackets():
    from typer.testing import CliRunner

    from pyprof.cli import app
    # With rich markup on, "[options]" was read as a style tag and vanished from the help.
    r = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "pyprof run [options] -- python train.py args" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "--install-completion" in r.output  # shell completion on
