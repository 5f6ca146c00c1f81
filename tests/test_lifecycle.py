"""Every way a run ends leaves a report, and pyprof never raises into the user's code after training (issue 13 item 1).

The signal cases send real signals to a real child process and read the report it left.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import pyprof
import pyprof.session.profile as profile_mod
from pyprof.errors import InvalidInputError
from pyprof.report.json_report import read_report

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _mlp():
    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))


def _child(code: str, tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen([sys.executable, str(script), *args], env=ENV, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    """Wait until ``path`` exists (the child's first report, or its ready marker)."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited {proc.returncode} early: {proc.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} never appeared: {proc.communicate()[1][-3000:]}")
        time.sleep(0.05)


LOOP = """
    import sys, time, torch, pyprof
    from torch import nn
    out, ready = sys.argv[1], sys.argv[2]
    {setup}
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    with pyprof.profile(model, output_dir=out, measure_peak=False) as prof:
        for i in range(10**9):
            model(torch.randn(4, 16)).sum().backward()
            prof.step()
            if i == 3:
                open(ready, "w").close()
            time.sleep(0.01)
"""


# ---------------------------------------------------------------------------------------------------- SIGTERM
def test_sigterm_writes_a_partial_report_then_the_process_dies_by_sigterm(tmp_path):
    out, ready = tmp_path / "out", tmp_path / "ready"
    p = _child(LOOP.format(setup=""), tmp_path, str(out), str(ready))
    _wait_for(ready, p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGTERM, err  # the default action, as without pyprof
    r = read_report(out / "report.json")
    assert r.partial and r.partial_reason == "stopped by SIGTERM"
    assert r.totals.steps >= 4  # the ready marker was written after the 4th recorded step


def test_sigterm_chains_the_users_handler(tmp_path):
    out, ready = tmp_path / "out", tmp_path / "ready"
    setup = """
    import signal
    def on_term(signum, frame):
        open(out + ".user-handler-ran", "w").close()
        sys.exit(3)
    signal.signal(signal.SIGTERM, on_term)
    """
    p = _child(LOOP.format(setup=textwrap.indent(textwrap.dedent(setup), "    ").strip()), tmp_path, str(out),
               str(ready))
    _wait_for(ready, p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 3, err  # the user's handler ran and chose the outcome
    assert Path(str(out) + ".user-handler-ran").exists()
    r = read_report(out / "report.json")
    # the handler's SystemExit went through the with-block: the final report says so
    assert r.partial and r.partial_reason == "SystemExit: 3" and r.totals.steps >= 4
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # this process: no handler left behind by tests


def test_first_report_is_written_after_the_first_recorded_step(tmp_report_dir):
    model = _mlp()
    with pyprof.profile(model, output_dir=tmp_report_dir, measure_peak=False) as prof:  # autosave_s=60 by default
        model(torch.randn(2, 16)).sum().backward()
        prof.step()
        prof._reports.join()  # the save runs on a background thread
        d = json.loads((tmp_report_dir / "report.json").read_text())
        assert d["partial"] and d["totals"]["steps"] == 1


def test_sigterm_under_pyprof_run(tmp_path):
    train = tmp_path / "train.py"
    ready = tmp_path / "ready"
    train.write_text(textwrap.dedent(f"""
        import time, torch
        from torch import nn
        model = nn.Linear(16, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for i in range(10**9):
            model(torch.randn(4, 16)).sum().backward()
            opt.step(); opt.zero_grad()
            if i == 3:
                open({str(ready)!r}, "w").close()
            time.sleep(0.01)
    """))
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "pyprof.cli.run_cmd", "--out", str(out), "--no-measure-peak", "--",
                          "python", str(train)], env=ENV, cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    _wait_for(ready, p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGTERM, err
    r = read_report(out / "report.json")
    assert r.partial and r.partial_reason == "stopped by SIGTERM" and r.totals.steps >= 3


# ---------------------------------------------------------------------------------------------------- Ctrl-C at exit
def test_ctrl_c_during_the_peak_measurement_keeps_the_report(tmp_path):
    """The loop ends; while the CPU peak is measured (made slow here, 60 s) Ctrl-C arrives: the report without the
    measured peak is on disk, then the interrupt propagates."""
    out = tmp_path / "out"
    code = """
    import sys, time, torch, pyprof
    from torch import nn
    import pyprof.peaks.cpu as host  # the CPU peak lives in pyprof.peaks.cpu
    def slow_measure(precision):  # stands in for a slow microkernel run
        time.sleep(60)
        raise AssertionError("not interrupted")
    host.measure_peak = slow_measure
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    with pyprof.profile(model, output_dir=sys.argv[1], device="cpu") as prof:
        for i in range(5):
            model(torch.randn(4, 16)).sum().backward()
            prof.step()
    print("after the with-block", flush=True)
    """
    p = _child(code, tmp_path, str(out))
    line = ""
    deadline = time.monotonic() + 120
    while "measuring the CPU peak" not in line:
        line = p.stderr.readline()
        if not line and p.poll() is not None:
            pytest.fail(f"child exited {p.returncode} without announcing the peak measurement")
        if time.monotonic() > deadline:
            p.kill()
            pytest.fail("no peak announcement")
    assert line.strip() == "pyprof: measuring the CPU peak (~1 s; Ctrl-C skips it)"
    p.send_signal(signal.SIGINT)
    so, err = p.communicate(timeout=120)
    assert "after the with-block" not in so  # the KeyboardInterrupt propagated out of the with-block
    assert "KeyboardInterrupt" in err and p.returncode != 0
    r = read_report(out / "report.json")
    assert r.totals.steps == 5 and not r.partial  # the loop itself finished
    assert "measured" not in r.cpu_peaks


def test_the_held_interrupt_is_delivered_after_the_critical_section():
    from pyprof.session import saving

    reached = []
    with pytest.raises(KeyboardInterrupt), saving.deferred_signals():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        reached.append("end of the critical section")
    assert reached == ["end of the critical section"]  # the write was not cut short


# ---------------------------------------------------------------------------------------------------- failed start
def test_a_rejected_model_leaves_no_state_behind():
    with pytest.raises(InvalidInputError, match="not a torch.nn.Module"):
        pyprof.profile(lambda x: x * 2)
    model = _mlp()
    with pyprof.profile(model, measure_peak=False) as prof:  # no "profiles do not nest"
        model(torch.randn(2, 16)).sum().backward()
        prof.step()
    assert prof.result().totals.steps == 1


@pytest.mark.parametrize("with_model", [True, False])
def test_a_bogus_schedule_fails_before_any_hook(with_model):
    model = _mlp()
    prof = pyprof.profile(model if with_model else None, schedule=lambda s: "bogus", measure_peak=False)
    with pytest.raises(InvalidInputError, match="bogus"):
        prof.__enter__()
    assert profile_mod._ACTIVE is None
    assert not model._forward_pre_hooks and not model._forward_hooks
    assert not nn.modules.module._global_forward_pre_hooks and not nn.modules.module._global_forward_hooks
    model(torch.randn(2, 16))  # plain use outside any profile works
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("with_model", [True, False])
def test_a_failure_inside_enter_is_rolled_back(monkeypatch, with_model):
    """Whatever fails after the hooks are installed (here the first step's start), everything is undone."""
    model = _mlp()
    prof = pyprof.profile(model if with_model else None, measure_peak=False)

    def broken_begin_step():
        raise RuntimeError("injected")

    monkeypatch.setattr(prof, "_begin_step", broken_begin_step)
    with pytest.raises(RuntimeError, match="injected"):
        prof.__enter__()
    assert profile_mod._ACTIVE is None
    assert not model._forward_pre_hooks and not model._forward_hooks
    assert not nn.modules.module._global_forward_pre_hooks and not nn.modules.module._global_forward_hooks
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the SIGTERM handler was put back
    model(torch.randn(2, 16))
    with pyprof.profile(model, measure_peak=False) as p2:
        model(torch.randn(2, 16))
        p2.step()


# ---------------------------------------------------------------------------------------------------- output folder
def test_output_dir_that_is_a_file_fails_before_training(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(InvalidInputError, match="existing file"):
        pyprof.profile(_mlp(), output_dir=f)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into a chmod 555 folder")
def test_output_dir_without_write_permission_fails_before_training(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        with pytest.raises(InvalidInputError, match="not writable"):
            pyprof.profile(_mlp(), output_dir=d)
    finally:
        d.chmod(0o755)


def test_a_write_error_at_the_end_is_a_warning_and_the_last_report_survives(tmp_report_dir, monkeypatch):
    from pyprof import report

    model = _mlp()
    real_write = report.write_reports
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pyprof.profile(model, output_dir=tmp_report_dir, measure_peak=False) as prof:
            for _ in range(3):
                model(torch.randn(2, 16)).sum().backward()
                prof.step()
            prof._reports.join()
            first = (tmp_report_dir / "report.json").read_text()  # the report written after the first step

            def disk_full(*a, **k):
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(report, "write_reports", disk_full)
        after = "the code after the with-block runs"
    assert after
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(str(tmp_report_dir) in m and "No space left" in m and "prof.result()" in m for m in msgs), msgs
    assert prof.result().totals.steps == 3 and not prof.result().partial  # kept in memory
    assert (tmp_report_dir / "report.json").read_text() == first  # the last good report on disk is unchanged
    monkeypatch.setattr(report, "write_reports", real_write)


def test_pyprof_run_keeps_the_scripts_exit_code_when_the_report_cannot_be_written(tmp_path, monkeypatch):
    from pyprof import report
    from pyprof.session.run import run_script

    train = tmp_path / "train.py"
    train.write_text("import torch\nm = torch.nn.Linear(4, 2)\no = torch.optim.SGD(m.parameters(), lr=0.1)\n"
                     "for _ in range(3):\n    m(torch.randn(2, 4)).sum().backward(); o.step()\n")

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_reports", disk_full)
    with pytest.warns(RuntimeWarning, match="could not write the report"):
        outcome = run_script(["python", str(train)], output_dir=tmp_path / "out", measure_peak=False)
    assert outcome.exit_code == 0 and outcome.result.totals.steps == 3


# ---------------------------------------------------------------------------------------------------- pyprof run + profile
INNER = """
import sys, torch, pyprof
m = torch.nn.Linear(4, 2)
o = torch.optim.SGD(m.parameters(), lr=0.1)
for _ in range(2):  # seen by pyprof run's profile
    m(torch.randn(2, 4)).sum().backward(); o.step(); o.zero_grad()
with pyprof.profile(m, output_dir=sys.argv[1], measure_peak=False) as prof:
    for _ in range(5):
        m(torch.randn(2, 4)).sum().backward(); o.step(); o.zero_grad()
        prof.step()
"""


def test_the_scripts_own_profile_wins_under_pyprof_run(tmp_path, capfd):
    from pyprof.session.run import run_script

    train = tmp_path / "train.py"
    train.write_text(INNER)
    outcome = run_script(["python", str(train), str(tmp_path / "inner")], output_dir=tmp_path / "outer",
                         measure_peak=False)
    assert outcome.exit_code == 0
    err = capfd.readouterr().err
    assert "pyprof run: the script opened its own pyprof.profile(); that profile takes over" in err
    inner = read_report(tmp_path / "inner" / "report.json")
    assert inner.totals.steps == 5 and not inner.partial
    outer = read_report(tmp_path / "outer" / "report.json")
    assert outer.totals.steps == 2  # the optimizer steps before the script's profile opened
    assert any("stepped aside" in n for n in outer.notes)
    assert profile_mod._ACTIVE is None


def test_pyprof_run_writes_nothing_over_the_scripts_report_in_the_same_folder(tmp_path):
    from pyprof.session.run import run_script

    train = tmp_path / "train.py"
    train.write_text(INNER)
    out = tmp_path / "same"
    outcome = run_script(["python", str(train), str(out)], output_dir=out, measure_peak=False)
    assert outcome.exit_code == 0
    assert read_report(out / "report.json").totals.steps == 5  # the script's report, not pyprof run's 2 steps


# ---------------------------------------------------------------------------------------------------- numbers
def test_a_numpy_peak_is_accepted_and_serialized(tmp_report_dir):
    model = _mlp()
    with pyprof.profile(model, peak=np.float32(1e12), output_dir=tmp_report_dir, measure_peak=False) as prof:
        model(torch.randn(2, 16)).sum().backward()
        prof.step()
    d = json.loads((tmp_report_dir / "report.json").read_text())
    # float32 has a 24-bit mantissa: 1e12 rounds to 999,999,995,904 (= 2**39 * 1.8189894...), kept as that float
    assert d["config"]["peak"] == 999999995904.0
    assert d["reconciliation"]["peaks"][0]["flops_per_s"] == 999999995904.0


def test_ctrl_c_mid_loop_leaves_a_partial_report(tmp_path):
    out, ready = tmp_path / "out", tmp_path / "ready"
    p = _child(LOOP.format(setup=""), tmp_path, str(out), str(ready))
    _wait_for(ready, p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode != 0 and "KeyboardInterrupt" in err
    r = read_report(out / "report.json")
    assert r.partial and r.partial_reason == "KeyboardInterrupt" and r.totals.steps >= 4


def test_sigterm_during_the_peak_measurement_keeps_the_report(tmp_path):
    """SIGTERM at the end of the run (the loop finished, the peak is being measured): the report is on disk and
    the process dies by SIGTERM."""
    out = tmp_path / "out"
    code = """
    import sys, time, torch, pyprof
    from torch import nn
    import pyprof.peaks.cpu as host  # the CPU peak lives in pyprof.peaks.cpu
    def slow_measure(precision):  # stands in for a slow microkernel run
        time.sleep(60)
        raise AssertionError("not interrupted")
    host.measure_peak = slow_measure
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    with pyprof.profile(model, output_dir=sys.argv[1], device="cpu") as prof:
        for i in range(5):
            model(torch.randn(4, 16)).sum().backward()
            prof.step()
    """
    p = _child(code, tmp_path, str(out))
    deadline = time.monotonic() + 120
    line = ""
    while "measuring the CPU peak" not in line:
        line = p.stderr.readline()
        if (not line and p.poll() is not None) or time.monotonic() > deadline:
            p.kill()
            pytest.fail("no peak announcement")
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=120)
    assert p.returncode == -signal.SIGTERM
    r = read_report(out / "report.json")
    assert r.totals.steps == 5 and not r.partial and "measured" not in r.cpu_peaks


def test_a_chained_handler_that_lets_the_run_go_on(tmp_report_dir):
    """A trainer's own SIGTERM handler that only asks for a graceful stop: pyprof writes a partial report, calls it,
    and the run goes on to its normal end and final report."""
    asked = []

    def graceful(signum, frame):
        asked.append(signum)

    prev = signal.signal(signal.SIGTERM, graceful)
    try:
        model = _mlp()
        with pyprof.profile(model, output_dir=tmp_report_dir, measure_peak=False) as prof:
            for i in range(4):
                model(torch.randn(2, 16)).sum().backward()
                prof.step()
                if i == 1:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.01)  # delivered by now (Python runs the handler at the next bytecode)
                    d = json.loads((tmp_report_dir / "report.json").read_text())
                    assert d["partial_reason"] == "stopped by SIGTERM" and d["totals"]["steps"] == 2
        assert asked == [signal.SIGTERM]
        r = read_report(tmp_report_dir / "report.json")
        assert not r.partial and r.totals.steps == 4
        assert signal.getsignal(signal.SIGTERM) is graceful  # ours is gone, the user's is back
    finally:
        signal.signal(signal.SIGTERM, prev)


def test_ctrl_c_in_the_loop_skips_the_peak_measurement(tmp_report_dir, monkeypatch):
    import pyprof.peaks.cpu as host  # the CPU peak lives in pyprof.peaks.cpu

    monkeypatch.setattr(host, "measure_peak", lambda precision: pytest.fail("the peak must not be measured"))
    model = _mlp()
    with pytest.raises(KeyboardInterrupt):
        with pyprof.profile(model, output_dir=tmp_report_dir, device="cpu") as prof:
            model(torch.randn(2, 16)).sum().backward()
            prof.step()
            raise KeyboardInterrupt
    r = read_report(tmp_report_dir / "report.json")
    assert r.partial and "the CPU peak was not measured: the run was interrupted (Ctrl-C)" in r.notes
