"""`pyprof estimate`: training compute by Method 1 (count operations) and/or Method 2 (hardware time).

The function :func:`estimate` is registered by the CLI package with ``app.command("estimate")(estimate)``.

Examples::

    pyprof estimate --macs-per-forward 0.75e9 --examples 1.2e6 --epochs 90
    pyprof estimate --hardware "GTX 580 (AI and compute)" --count 2 --days 5.5
    pyprof estimate --method both --macs-per-forward 0.75e9 --examples 1.2e6 --epochs 90 \\
        --hardware gtx580 --count 2 --days 5.5 --json
    pyprof estimate --seed-examples
    pyprof estimate --list-hardware
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from pyprof.cli._common import fail
from pyprof.errors import PyprofError
from pyprof.accounting.estimate import (
    Estimate,
    error_direction,
    error_factor,
    method1,
    method2,
    reproduce_seed_examples,
)
from pyprof.peaks import database as peaks
__all__ = ["estimate"]

_METHODS = ("1", "2", "both", "auto")


class _BadInput(Exception):
    pass


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}"


def _estimates_table(estimates: list[Estimate]) -> Table:
    table = Table(title="Training compute estimate", show_lines=False)
    for col, justify in (("method", "left"), ("FLOP", "right"), ("PF", "right"), ("pfs-days", "right"),
                         ("tfs-days", "right"), ("formula", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for e in estimates:
        table.add_row(e.method, f"{e.flop:.4g}", _fmt(e.petaflop), _fmt(e.pfs_days), _fmt(e.tfs_days), e.formula)
    return table


def _comparison(m1: Estimate, m2: Estimate) -> dict:
    util = m2.inputs["utilization"]
    return {
        "method1_over_method2": m1.flop / m2.flop,
        "error_factor": error_factor(m2.flop, m1.flop),
        "method2_is": error_direction(m2.flop, m1.flop),
        # utilization at which Method 2 would equal Method 1 (the post's consistency check)
        "implied_utilization": util * m1.flop / m2.flop,
    }


def _list_hardware(console: Console, as_json: bool) -> dict | None:
    if as_json:
        return {"hardware": [asdict(e) for e in peaks.PEAKS]}
    table = Table(title="Peak FLOP/s database (dense)")
    for col in ("hardware", "kind", "precision", "peak TFLOP/s", "clock", "scope", "aliases"):
        table.add_column(col, justify="right" if col == "peak TFLOP/s" else "left", overflow="fold")
    for e in peaks.PEAKS:
        table.add_row(e.hardware, e.kind, e.precision, f"{e.peak_tflops_per_s:g}", e.clock, e.scope,
                      ", ".join(e.aliases))
    console.print(table)
    console.print('Rows named "... (AI and compute)" hold the peak the 2018 post used; the others are vendor specs.')
    return None


def _seed_examples(console: Console, as_json: bool) -> dict | None:
    reps = reproduce_seed_examples()
    if as_json:
        return {"seed_examples": [r.to_dict() for r in reps]}
    table = Table(title='"AI and compute" worked examples, recomputed from their printed inputs')
    for col, justify in (("example", "left"), ("method", "left"), ("computed PF", "right"),
                         ("printed PF", "right"), ("computed pfs-days", "right"), ("printed pfs-days", "right"),
                         ("ratio", "right")):
        table.add_column(col, justify=justify, overflow="fold")
    for r in reps:
        table.add_row(r.name, r.method, _fmt(r.estimate.petaflop), f"{r.printed_pf:g}", _fmt(r.estimate.pfs_days),
                      f"{r.printed_pfs_days:g}", f"{r.ratio:.3f}")
    console.print(table)
    console.print("ratio = computed pfs-days / printed pfs-days")
    for r in reps:
        console.print(f"[bold]{r.system} ({r.method})[/bold]: {r.explanation}", highlight=False)
    return None


def estimate(
    method: Annotated[str, typer.Option("--method", help="1, 2, both, or auto (decided by the inputs given).")]
    = "auto",
    macs_per_forward: Annotated[Optional[float], typer.Option(
        "--macs-per-forward", help="Method 1: multiply-adds per example per forward pass (a paper's 'FLOPs').")]
    = None,
    flops_per_forward: Annotated[Optional[float], typer.Option(
        "--flops-per-forward", help="Method 1: FLOP per example per forward pass (already x2).")] = None,
    examples: Annotated[Optional[float], typer.Option(
        "--examples", help="Method 1: training examples per epoch.")] = None,
    epochs: Annotated[float, typer.Option("--epochs", help="Method 1: passes over the data.")] = 1.0,
    backward_factor: Annotated[float, typer.Option(
        "--backward-factor", help="Method 1: forward+backward cost in forward passes.")] = 3.0,
    hardware: Annotated[Optional[str], typer.Option(
        "--hardware", help="Method 2: hardware name (see --list-hardware).")] = None,
    peak_tflops: Annotated[Optional[float], typer.Option(
        "--peak-tflops", help="Method 2: peak per device in TFLOP/s (overrides the database).")] = None,
    count: Annotated[int, typer.Option("--count", help="Method 2: number of devices.")] = 1,
    days: Annotated[Optional[float], typer.Option("--days", help="Method 2: training days.")] = None,
    utilization: Annotated[Optional[float], typer.Option(
        "--utilization", help="Method 2: fraction of peak in (0, 1]; default 0.33 GPU/TPU, 0.17 CPU.")] = None,
    precision: Annotated[str, typer.Option("--precision", help="Method 2: precision of the peak.")] = "fp32",
    clock: Annotated[Optional[str], typer.Option(
        "--clock", help="Method 2: 'boost' or 'base' where both are stored (default boost).")] = None,
    seed_examples: Annotated[bool, typer.Option(
        "--seed-examples", help="Print the 'AI and compute' worked examples, recomputed, with explanations.")]
    = False,
    list_hardware: Annotated[bool, typer.Option("--list-hardware", help="List the peak database.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Estimate training compute (FLOP, PF, pfs-days) by Method 1 and/or Method 2 of "AI and compute".

    Method 1: multiply-adds per forward x 2 x 3 x examples x epochs.
    Method 2: devices x peak FLOP/s x days x 86400 x utilization.
    """
    console = Console(file=sys.stdout)
    payload: dict = {}
    try:
        if list_hardware:
            payload.update(_list_hardware(console, json_out) or {})
        if seed_examples:
            payload.update(_seed_examples(console, json_out) or {})
        if list_hardware or seed_examples:
            if json_out:
                typer.echo(json.dumps(payload, indent=2, default=str))
            return

        m = str(method).strip().lower()
        if m not in _METHODS:
            raise _BadInput(f"--method {method!r} is not one of {', '.join(_METHODS)}; pass --method 1, 2 or both.")
        m1_given = any(v is not None for v in (macs_per_forward, flops_per_forward, examples))
        m2_given = any(v is not None for v in (hardware, peak_tflops, days))
        if m == "auto":
            if m1_given and m2_given:
                m = "both"
            elif m1_given:
                m = "1"
            elif m2_given:
                m = "2"
            else:
                raise _BadInput(
                    "nothing to estimate. Give Method 1 inputs (--macs-per-forward or --flops-per-forward, "
                    "--examples, --epochs), Method 2 inputs (--hardware or --peak-tflops, --count, --days), "
                    "or use --seed-examples / --list-hardware."
                )
        results: list[Estimate] = []
        if m in ("1", "both"):
            if examples is None:
                raise _BadInput("Method 1 needs --examples (training examples per epoch, e.g. 1.2e6).")
            results.append(method1(macs_per_forward=macs_per_forward, flops_per_forward=flops_per_forward,
                                   examples=examples, epochs=epochs, backward_factor=backward_factor))
        if m in ("2", "both"):
            if days is None:
                raise _BadInput("Method 2 needs --days (wall-clock training days, e.g. 5.5).")
            peak = None
            if peak_tflops is not None:
                if math.isfinite(peak_tflops) and peak_tflops > 1e5:
                    raise _BadInput(
                        f"--peak-tflops {peak_tflops:g} is above 100,000 TFLOP/s per device; it takes TFLOP/s "
                        "(e.g. 1.58 for a GTX 580), not FLOP/s."
                    )
                peak = peak_tflops * 1e12
            results.append(method2(hardware=hardware, peak_flops_per_s=peak, count=count, days=days,
                                   utilization=utilization, precision=precision, clock=clock))
    except (PyprofError, _BadInput) as exc:
        fail(str(exc))
        return

    comparison = _comparison(results[0], results[1]) if len(results) == 2 else None
    if json_out:
        out: dict = {"estimates": [e.to_dict() for e in results]}
        if comparison is not None:
            out["comparison"] = comparison
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    console.print(_estimates_table(results))
    for e in results:
        if e.method == "method2":
            console.print(f"utilization {e.inputs['utilization']:g}: {e.inputs['utilization_source']}",
                          highlight=False)
    if comparison is not None:
        console.print(
            f"Method 1 / Method 2 = {comparison['method1_over_method2']:.3f} (error factor "
            f"{comparison['error_factor']:.2f}; Method 2 vs Method 1: {comparison['method2_is']}); "
            f"utilization implied by Method 1 = {comparison['implied_utilization']:.2f}",
            highlight=False,
        )
