"""Zero code change: profile a whole training script (``pyprof run -- python train.py args``).

The script runs in this process (``runpy``) with ``sys.argv`` set as if it had been started directly. Steps are
inferred from the optimizer: a global optimizer step post-hook (``torch.optim.optimizer.
register_optimizer_step_post_hook``) calls ``prof.step()`` after every ``step()`` of the first optimizer instance that
steps (a script with two optimizers, a GAN say, gets one profile step per step of the first one). Gradient
accumulation needs nothing: the optimizer steps once per accumulated batch. With ``steps_from="none"`` (or a script
that never steps an optimizer) the whole run is one range. No model is given to the profiler, so the outermost module
call marks each step's work (``pyprof.profile(model=None)``).

The script's exit code and exceptions propagate; the report is always written, marked partial when the script
raised or exited with a non-zero code, and a report that cannot be written is a warning, never a changed exit code.
SIGTERM writes a partial report, then the process dies by SIGTERM as it would without pyprof (or the script's own
handler runs). A script that opens its own ``pyprof.profile()`` wins: pyprof run steps aside (says so on stderr) and
its report keeps the steps recorded before. Under ``torchrun`` each rank writes ``<out>/rank<N>/`` and rank 0 gathers the
job report into ``<out>/`` if the script left the process group initialized.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyprof.errors import InvalidInputError

STEPS_FROM = ("optimizer", "none")
_PYTHONS = ("python", "python3", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14")


@dataclass
class RunOutcome:
    """What :func:`run_script` did: the script's exit code, its result, and where the reports are."""

    exit_code: int
    result: Any                   # ProfileResult, or None if the profile could not even start
    output_dir: Path | None
    optimizer_steps: int          # optimizer steps the hook saw (of the optimizer that drives the profile)
    job_report: Any = None        # JobReport on rank 0 of a distributed run


def split_command(command: list[str]) -> tuple[str, str, list[str]]:
    """``[python] script.py args`` or ``[python] -m module args`` -> (kind, target, args).

    Raises:
        InvalidInputError: nothing to run; a python interpreter option pyprof cannot apply in-process (``-u``,
            ``-X``, ``-c``); an option where the script should be (a pyprof option placed after the command, or a
            mistyped one); a script file that does not exist.
    """
    cmd = list(command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    python_given = bool(cmd) and (os.path.basename(cmd[0]) in _PYTHONS or
                                  os.path.realpath(cmd[0]) == os.path.realpath(sys.executable))
    if python_given:
        cmd = cmd[1:]
    if not cmd:
        raise InvalidInputError("pyprof run: no script given; use `pyprof run [options] -- python train.py args...`")
    if cmd[0] == "-m":
        if len(cmd) < 2 or cmd[1].startswith("-"):
            raise InvalidInputError("pyprof run: `-m` needs a module name: `pyprof run -- python -m pkg.train args`")
        return "module", cmd[1], cmd[2:]
    if cmd[0].startswith("-"):
        if python_given:
            raise InvalidInputError(f"pyprof run: python option {cmd[0]!r} is not supported (the script runs inside "
                                    "pyprof's interpreter); set it in the environment (e.g. PYTHONUNBUFFERED=1 for "
                                    "-u) or drop it")
        raise InvalidInputError(f"pyprof run: {cmd[0]!r} is where the script should be, and it is not a script: "
                                "pyprof run's own options go before the command, the script's after it: "
                                "`pyprof run --out DIR -- python train.py --lr 1e-3` (see `pyprof run --help`)")
    if not Path(cmd[0]).is_file():
        raise InvalidInputError(f"pyprof run: script {cmd[0]!r} not found (relative to {os.getcwd()})")
    return "path", cmd[0], cmd[1:]


class _OptimizerStepDriver:
    """Calls ``prof.step()`` after each step of the first optimizer that steps; never breaks the optimizer."""

    def __init__(self, prof: Any) -> None:
        self.prof = prof
        self.owner: int | None = None
        self.steps = 0
        self.ignored = 0
        self.failed = False
        self.handle: Any = None

    def install(self) -> None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.handle = register_optimizer_step_post_hook(self._hook)

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None

    def _hook(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self.failed:
            return
        if self.owner is None:
            self.owner = id(optimizer)
        if id(optimizer) != self.owner:
            self.ignored += 1
            return
        self.steps += 1
        try:
            self.prof.step()
        except Exception as e:  # the training script must not die because of pyprof
            self.failed = True
            warnings.warn(f"pyprof run: stepping the profile failed and step inference is off: {e!r}",
                          RuntimeWarning, stacklevel=2)


def _exit_code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)  # sys.exit("message") prints the message and exits 1, as python does
    return 1


def run_script(
    command: list[str],
    *,
    output_dir: str | os.PathLike | None = "pyprof-report",
    steps_from: str = "optimizer",
    warmup: int = 0,
    measure_peak: bool = True,
    peak: str | float | None = None,
    examples_per_step: int | None = None,
    name: str | None = None,
    aggregate_timeout_s: float = 60.0,
) -> RunOutcome:
    """Run a Python script (or ``-m`` module) under ``pyprof.profile`` without changing it.

    Args:
        command: ``["python", "train.py", "--lr", "1e-3"]``, ``["train.py", ...]`` or ``["-m", "pkg.train", ...]``.
        output_dir: where report.json / report.md go (per rank under torchrun: ``<dir>/rank<N>``).
        steps_from: "optimizer" (a profile step per optimizer step) or "none" (the whole run is one range).
        warmup: optimizer steps not recorded at the start (counting still happens there); 0 records every step.
        measure_peak: measure this CPU's peak at the end (about a second).
        peak: hardware name or FLOP/s for utilization (as ``pyprof.profile(peak=)``).
        examples_per_step: the batch size, for per-example figures.
        name: the run's name in the report (default: the script's name).
        aggregate_timeout_s: bound on rank 0's wait for the other ranks under torchrun.

    Returns:
        A :class:`RunOutcome`; ``exit_code`` is the script's (0, its ``sys.exit`` code, 1 when it raised, 130 on
        Ctrl-C).

    Raises:
        InvalidInputError: bad options or no script (before the script runs).
    """
    if steps_from not in STEPS_FROM:
        raise InvalidInputError(f"--steps-from {steps_from!r}: use 'optimizer' (a step per optimizer.step()) or "
                                "'none' (the whole run as one range)")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise InvalidInputError(f"--warmup {warmup!r} must be a whole number >= 0")
    kind, target, args = split_command(command)
    if output_dir is not None:
        from pyprof.report.atomic import check_output_dir

        check_output_dir(output_dir, option="output_dir")  # before the script runs, not after its training
    from pyprof.session.profile import Profile, schedule

    rank, world = int(os.environ.get("RANK", "0") or 0), int(os.environ.get("WORLD_SIZE", "1") or 1)
    out = Path(output_dir) if output_dir is not None else None
    rank_out = (out / f"rank{rank}") if (out is not None and world > 1) else out
    sched = None
    if warmup and steps_from == "optimizer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched = schedule(warmup=warmup, active=2**62, repeat=1)
    prof = Profile(None, schedule=sched, output_dir=rank_out, measure_peak=measure_peak, peak=peak,
                   examples_per_step=examples_per_step, name=name or Path(target).name)
    prof._yield_label = "pyprof run"  # the script's own pyprof.profile(), if it opens one, takes over
    driver = _OptimizerStepDriver(prof) if steps_from == "optimizer" else None

    old_argv, old_path0 = sys.argv[:], sys.path[0] if sys.path else None
    sys.argv = [target, *args]  # runpy.run_module(alter_sys=True) puts the module's file in argv[0]
    # sys.path[0] as python itself sets it: the script's folder for `python train.py`, the current folder for
    # `python -m pkg.train` (so a package in the folder the user stands in imports, as with plain `python -m`).
    path0 = str(Path(target).resolve().parent) if kind == "path" else os.getcwd()
    if sys.path:
        sys.path[0] = path0
    else:
        sys.path.insert(0, path0)
    code = 0
    try:
        try:
            with prof:
                if driver is not None:
                    driver.install()
                try:
                    if kind == "path":
                        runpy.run_path(target, run_name="__main__")
                    else:
                        runpy.run_module(target, run_name="__main__", alter_sys=True)
                except SystemExit as e:
                    code = _exit_code(e)
                    if code != 0:
                        raise  # through the profile, so the report is marked partial
                finally:
                    if driver is not None:
                        driver.remove()
        except SystemExit:
            pass
        except KeyboardInterrupt:
            traceback.print_exc()
            code = 130
        except BaseException:
            traceback.print_exc()  # the script's own traceback, as python would print it
            code = 1
    finally:
        sys.argv = old_argv
        if old_path0 is not None and sys.path:
            sys.path[0] = old_path0
    result = prof._result
    if driver is not None and driver.ignored:
        warnings.warn(f"pyprof run: {driver.ignored} step(s) of other optimizers were not counted as profile steps "
                      "(the first optimizer that stepped drives the profile)", RuntimeWarning, stacklevel=2)
    job = None
    try:
        import torch.distributed as dist

        if result is not None and world > 1:
            if dist.is_available() and dist.is_initialized():
                from pyprof.session.distributed import aggregate
                job = aggregate(result, timeout_s=aggregate_timeout_s, output_dir=out)
            elif rank == 0:
                print("pyprof run: the script destroyed its process group before the end, so no job report was "
                      f"gathered; each rank's report is in {out}/rank<N>/", file=sys.stderr)
    except Exception as e:
        warnings.warn(f"pyprof run: gathering the job report failed: {e!r}", RuntimeWarning, stacklevel=2)
    return RunOutcome(exit_code=code, result=result, output_dir=rank_out,
                      optimizer_steps=driver.steps if driver is not None else 0, job_report=job)
