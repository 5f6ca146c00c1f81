"""``pyprof run [options] -- python train.py args...``: profile a script without editing it.

Registered in :mod:`pyprof.cli` as ``app.command("run", context_settings={"allow_extra_args": True,
"ignore_unknown_options": True})(run)``; ``python -m pyprof.cli.run_cmd`` runs the same command on its own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def run(
    ctx: typer.Context,
    command: Annotated[Optional[list[str]], typer.Argument(
        help="The script and its arguments, after `--`: `-- python train.py --lr 1e-3` or `-- python -m pkg.train`.",
        show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.json and report.md.")] = Path("pyprof-report"),
    steps_from: Annotated[str, typer.Option(
        "--steps-from", help="optimizer: one step per optimizer.step(); none: the whole run as one range.")] = "optimizer",
    warmup: Annotated[int, typer.Option(min=0, help="Optimizer steps not recorded at the start.")] = 0,
    peak: Annotated[Optional[str], typer.Option(help="Hardware name (see `pyprof estimate --list-hardware`) or FLOP/s.")] = None,
    batch: Annotated[Optional[int], typer.Option(min=1, help="Examples per step, for per-example figures.")] = None,
    measure_peak: Annotated[bool, typer.Option("--measure-peak/--no-measure-peak",
                                               help="Measure this CPU's peak at the end (about a second).")] = True,
    summary: Annotated[bool, typer.Option("--summary/--no-summary", help="Print the summary table to stderr.")] = True,
) -> None:
    """Profile a whole training script without editing it; exits with the script's exit code."""
    from pyprof.errors import PyprofError
    from pyprof.session.run import run_script
    argv = list(command or []) + list(ctx.args or [])
    peak_value: str | float | None = peak
    if peak is not None:
        try:
            peak_value = float(peak)
        except ValueError:
            peak_value = peak
    try:
        outcome = run_script(argv, output_dir=out, steps_from=steps_from, warmup=warmup, measure_peak=measure_peak,
                             peak=peak_value, examples_per_step=batch)
    except PyprofError as e:
        typer.echo(f"Error: {e}", err=True)
        raise typer.Exit(2) from None
    r = outcome.result
    if r is not None and summary and outcome.job_report is None and _is_rank0():
        from pyprof.report import render_terminal
        sys.stderr.write(render_terminal(r))
        typer.echo(f"pyprof: {r.totals.steps} step(s) from {outcome.optimizer_steps} optimizer step(s); report in "
                   f"{outcome.output_dir}/report.json", err=True)
    raise typer.Exit(outcome.exit_code)


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") in ("", "0")


def main() -> None:
    """``python -m pyprof.cli.run_cmd [options] -- script.py args``."""
    app = typer.Typer(add_completion=False)
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run)
    app()


if __name__ == "__main__":
    main()
