"""`pyprof trend`: doubling / halving time of training compute, with a bootstrap interval and Moore's law.

The function :func:`trend` is registered by the CLI package with ``app.command("trend")(trend)``.

Examples::

    pyprof trend                                   # "AI and compute": the 15 charted systems
    pyprof trend ai_and_efficiency                 # AlexNet-level compute to target (halving time)
    pyprof trend ai_and_efficiency --series ResNet-50
    pyprof trend my_runs.csv --frontier --bootstrap 2000 --plot trend.svg
    pyprof trend --json
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table

from pyprof.cli._common import fail, json_document
from pyprof.errors import PyprofError
from pyprof.report import escape as esc

__all__ = ["trend"]


def trend(
    dataset: Annotated[str, typer.Argument(
        help="ai_and_compute, ai_and_efficiency, or the path of a CSV (date + one compute column).")]
    = "ai_and_compute",
    series: Annotated[str | None, typer.Option(
        "--series", help="Series of a multi-series file (ai_and_efficiency: AlexNet (default), ResNet-50, ...).")]
    = None,
    frontier: Annotated[bool, typer.Option("--frontier", help="Fit only the running frontier (records).")] = False,
    include_all: Annotated[bool, typer.Option(
        "--include-all", help="Keep rows marked in_trend_fit=false (e.g. Method 2 duplicates).")] = False,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the interval (0: none).")]
    = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap random seed.")] = 0,
    level: Annotated[float, typer.Option("--level", help="Confidence level of the interval.")] = 0.95,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a plot (.svg or .png; needs matplotlib).")]
    = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Fit the doubling (or halving) time of training compute: least squares on log2(compute) vs date."""
    from pyprof.accounting.trend import fit_doubling_time, load_dataset, plot_trend

    try:
        ds = load_dataset(dataset, series=series, include_all=include_all)
        fit = fit_doubling_time(ds, frontier=frontier, bootstrap=bootstrap, seed=seed, level=level)
    except PyprofError as exc:
        fail(str(exc))
        return
    if plot is not None:
        try:
            plot_trend(ds, fit, str(plot))
        except ImportError as exc:
            fail(str(exc))
        except (OSError, ValueError) as exc:
            fail(f"could not write the plot to {plot}: {exc}")
    if json_out:
        out = {"dataset": ds.name, "series": ds.series, "unit": ds.unit, "points": ds.to_rows(),
               "excluded": list(ds.excluded), "notes": list(ds.notes), "fit": fit.to_dict(),
               "plot": str(plot) if plot else None}
        try:
            # An unbounded bootstrap interval (no upper bound) is a fact of the fit, not an overflow: null in JSON.
            from pyprof.report.json_report import json_safe
            text = json_document("pyprof.trend", json_safe(out))
        except PyprofError as exc:
            fail(str(exc))
        typer.echo(text)
        return
    console = Console(file=sys.stdout)
    unit = "tfs_days" if ds.unit == "tfs_days" else "pfs_days"
    # Names, dates, provenance and notes come from the user's CSV: escaped for rich ("BERT [large]" stays whole).
    table = Table(title=f"{esc.terminal(ds.name)}" + (f" ({esc.terminal(ds.series)})" if ds.series else "")
                  + f": {len(ds.points)} points")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("system", "left"), ("date", "left"), (unit.replace("_", "-"), "right"), ("FLOP", "right"),
        ("fitted", "center"), ("provenance", "left"))
    for col, j in columns:
        table.add_column(col, justify=j, overflow="fold")
    used = set(fit.names)
    for p in sorted(ds.points, key=lambda p: p.year):
        table.add_row(esc.terminal(p.name), esc.terminal(p.date), f"{getattr(p, unit):.4g}", f"{p.flops:.3g}",
                      "yes" if p.name in used else "-", esc.terminal(p.provenance))
    console.print(table)
    hi = fit.ci_high_months
    hi_text = "inf" if hi is None or not math.isfinite(hi) else f"{hi:.3g}"
    ci = (f"{fit.level:.0%} bootstrap CI {fit.ci_low_months:.3g}-{hi_text} months ({fit.bootstrap_used} resamples)"
          if fit.ci_low_months is not None else "no interval")
    console.print(f"[bold]{fit.kind} time {fit.months:.3g} months[/bold] ({ci}); n={fit.n}"
                  f"{' (running frontier)' if fit.frontier else ''}, R^2={fit.r_squared:.3f}", highlight=False)
    console.print(f"span {esc.terminal(fit.start_date)} to {esc.terminal(fit.end_date)} ({fit.span_years:.2f} years): fitted change "
                  f"{fit.growth_factor_over_span:.3g}x, observed (first point vs final record) "
                  f"{fit.observed_factor:.3g}x; Moore's law (24-month doubling) over the same span "
                  f"{fit.moores_law_factor_over_span:.3g}x", highlight=False)
    for n in fit.notes:  # the fit carries the dataset's notes
        console.print(f"note: {esc.terminal(n)}", highlight=False)
    if ds.excluded:
        console.print(f"excluded rows: {esc.terminal('; '.join(ds.excluded))}", highlight=False)
    if plot is not None:
        console.print(f"plot written to {esc.terminal(plot)}", highlight=False)
