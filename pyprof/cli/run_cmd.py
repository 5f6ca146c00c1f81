"""``pyprof run [options] -- python train.py args...``: profile a script without editing it.

Registered in :mod:`pyprof.cli` as ``app.command("run", context_settings=CONTEXT_SETTINGS)(run)``;
``python -m pyprof.cli.run_cmd`` runs the same command on its own.

pyprof's options come first; the first word that is not one of them starts the script's command, and everything
from there on belongs to the script, ``--out`` included (as ``env``, ``nohup`` and ``torchrun`` parse). ``--``
before the command is allowed and clearest. An unknown option before the command is an error that names it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

#: Click stops parsing pyprof's options at the script's first word (``allow_interspersed_args=False``), so a script's
#: own ``--out`` or ``--json`` is never taken by pyprof; the script's words reach ``command`` untouched.
CONTEXT_SETTINGS = {"allow_interspersed_args": False}


def run(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(
        help="The script and its arguments, after `--`: `-- python train.py --lr 1e-3` or `-- python -m pkg.train`.",
        show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.json and report.md.")] = Path("pyprof-report"),
    steps_from: Annotated[str, typer.Option(
        "--steps-from", help="optimizer: one step per optimizer.step(); none: the whole run as one range.")] = "optimizer",
    warmup: Annotated[int, typer.Option(min=0, help="Optimizer steps not recorded at the start.")] = 0,
    peak: Annotated[str | None, typer.Option(help="Hardware name (see `pyprof estimate --list-hardware`) or FLOP/s.")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Examples per step, for per-example figures.")] = None,
    measure_peak: Annotated[bool, typer.Option("--measure-peak/--no-measure-peak",
                                               help="Measure this CPU's peak at the end (about a second).")] = True,
    summary: Annotated[bool, typer.Option("--summary/--no-summary", help="Print the summary table to stderr.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report (kind pyprof.profile, with "
                                                         "schema_version) to stdout at the end.")] = False,
) -> None:
    """Profile a whole training script without editing it; exits with the script's exit code."""
    from pyprof.cli._common import check_output_dir, fail
    from pyprof.errors import PyprofError
    from pyprof.session.run import run_script
    argv = list(command or []) + list(ctx.args or [])
    try:
        peak_value = _peak_value(peak)
        if steps_from not in ("optimizer", "none"):
            raise PyprofError(f"--steps-from {steps_from!r}: use 'optimizer' (a step per optimizer.step()) or "
                              "'none' (the whole run as one range)")
        check_output_dir(out, option="--out")  # before the script runs, not after hours of training
    except PyprofError as e:
        fail(str(e))
    try:
        outcome = run_script(argv, output_dir=out, steps_from=steps_from, warmup=warmup, measure_peak=measure_peak,
                             peak=peak_value, examples_per_step=batch)
    except PyprofError as e:
        fail(str(e))
    r = outcome.result
    if r is not None and as_json and _is_rank0():
        from pyprof.report import to_json
        sys.stdout.write(to_json(r))
    if r is not None and summary and outcome.job_report is None and _is_rank0():
        from pyprof.report import render_terminal
        sys.stderr.write(render_terminal(r))
        typer.echo(f"pyprof: {r.totals.steps} step(s) from {outcome.optimizer_steps} optimizer step(s); report in "
                   f"{outcome.output_dir}/report.json", err=True)
    raise typer.Exit(outcome.exit_code)


def _peak_value(peak: str | None) -> str | float | None:
    """``--peak`` as FLOP/s (a number) or a hardware name known to the database, in ``run``'s own terms.

    Raises:
        pyprof.errors.InvalidInputError: not a positive finite number and not a known name (close matches listed).
    """
    import math

    from pyprof.errors import InvalidInputError, UnknownHardwareError

    if peak is None:
        return None
    fix = ("pass --peak a hardware name (`pyprof estimate --list-hardware`) or FLOP/s per device, e.g. "
           "--peak 'A100 SXM4' or --peak 1.95e13")
    try:
        value = float(peak)
    except ValueError:
        from pyprof.peaks.database import hardware_kind

        try:
            hardware_kind(peak)
        except UnknownHardwareError as e:
            # The database's own hint names estimate's --peak-tflops, which `run` lacks: keep only the matches.
            found = str(e).split(" Run `pyprof estimate", 1)[0]
            raise InvalidInputError(f"--peak {peak!r}: {found} {fix}") from None
        return peak
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"--peak {peak} is not a positive finite FLOP/s; {fix}")
    if value < 1e6:
        raise InvalidInputError(f"--peak {peak} is below 1 MFLOP/s: --peak takes FLOP/s (1.95e13), not TFLOP/s "
                                "(19.5)")
    return value


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") in ("", "0")


def main() -> None:
    """``python -m pyprof.cli.run_cmd [options] -- script.py args``."""
    app = typer.Typer(add_completion=False)
    app.command(context_settings=CONTEXT_SETTINGS)(run)
    app()


if __name__ == "__main__":
    main()
