"""`pyprof estimate-interval`: Method 2 with an uncertainty interval from a utilization prior.

The function :func:`estimate_interval` is registered by the CLI package with
``app.command("estimate-interval")(estimate_interval)``.

Examples::

    pyprof estimate-interval --hardware "GTX 580 (AI and compute)" --count 2 --days 5.5
    pyprof estimate-interval --hardware "GTX 580 (AI and compute)" --count 2 --days 5.5 --prior published_assumption
    pyprof estimate-interval --hardware "H100 SXM5" --precision bf16 --count 512 --days 30 --published-before 2024-01-01
    pyprof estimate-interval --peak-tflops 2.0 --device-kind cpu --days 3 --prior measured --report runs/ --json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pyprof.cli._common import check_flag_number, fail, json_document
from pyprof.errors import PyprofError
from pyprof.report import escape as esc

__all__ = ["JSON_KIND", "estimate_interval"]

#: ``kind`` of the ``--json`` document.
JSON_KIND = "pyprof.estimate_interval"


def estimate_interval(
    hardware: Annotated[str | None, typer.Option("--hardware", help="Hardware name (see estimate --list-hardware).")]
    = None,
    peak_tflops: Annotated[float | None, typer.Option(
        "--peak-tflops", help="Peak per device in TFLOP/s (overrides the database).")] = None,
    count: Annotated[int, typer.Option("--count", help="Number of devices.")] = 1,
    days: Annotated[float | None, typer.Option("--days", help="Training days.")] = None,
    gpu_hours: Annotated[float | None, typer.Option(
        "--gpu-hours", help="Device-hours summed over devices, as papers report them (instead of --count and "
                            "--days).")] = None,
    prior: Annotated[str, typer.Option(
        "--prior", help="published_assumption (33%/17%, a point), published_evidence, or measured.")]
    = "published_evidence",
    device_kind: Annotated[str | None, typer.Option(
        "--device-kind", help="gpu, tpu or cpu (default: the hardware's kind, else gpu).")] = None,
    report: Annotated[list[Path] | None, typer.Option(
        "--report", help="measured prior: a pyprof report.json (profile or bench) or a folder of them, such as a "
                         "`pyprof bench --out` folder (repeatable).")] = None,
    device_name: Annotated[str | None, typer.Option(
        "--device-name", help="measured prior: keep reports whose device name contains this.")] = None,
    workload: Annotated[str | None, typer.Option(
        "--workload", help="measured prior: keep reports whose run name contains this.")] = None,
    published_before: Annotated[str | None, typer.Option(
        "--published-before", help="published_evidence: only runs published before this date (YYYY-MM-DD).")]
    = None,
    spread: Annotated[str, typer.Option(
        "--spread", help="published_assumption: 'point' (no interval) or 'evidence' (borrow the evidence's spread).")]
    = "point",
    level: Annotated[float, typer.Option("--level", help="Probability inside the interval, e.g. 0.9.")] = 0.9,
    precision: Annotated[str, typer.Option("--precision", help="Precision of the peak.")] = "fp32",
    clock: Annotated[str | None, typer.Option("--clock", help="'boost' or 'base' where both are stored.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Method 2 (devices x peak x days x utilization) with a low / median / high interval over utilization."""
    from pyprof.accounting.uncertainty import method2_interval, utilization_prior
    from pyprof.peaks import database as peaks

    try:
        if days is None and gpu_hours is None:
            raise PyprofError("--days is required (wall-clock training days, e.g. 5.5), or --gpu-hours (device-hours "
                              "summed over devices, e.g. 1720320)")
        if days is not None and gpu_hours is not None:
            raise PyprofError("give --days (with --count) or --gpu-hours, not both")
        if gpu_hours is not None and count != 1:
            raise PyprofError("--gpu-hours already sums over devices: drop --count")
        if hardware is None and peak_tflops is None:
            raise PyprofError("give --hardware NAME or --peak-tflops T (TFLOP/s per device)")
        # Above 1e5 TFLOP/s (100 PFLOP/s) per device is no chip: the user typed FLOP/s into a TFLOP/s flag.
        check_flag_number("--peak-tflops", peak_tflops, unit="TFLOP/s per device, not FLOP/s",
                          example="1.58 (a GTX 580)", maximum=1e5)
        check_flag_number("--count", count, unit="devices", example="8", integer=True)
        check_flag_number("--days", days, unit="wall-clock days", example="5.5")
        check_flag_number("--gpu-hours", gpu_hours, unit="device-hours summed over devices", example="1720320")
        check_flag_number("--level", level, unit="a probability in (0, 1)", example="0.9")
        if level >= 1:
            raise PyprofError(f"--level {level:g} must be below 1; pass --level in a probability in (0, 1), "
                              "e.g. --level 0.9")
        peak = None if peak_tflops is None else peak_tflops * 1e12
        dk = device_kind or (peaks.hardware_kind(hardware) if hardware else "gpu")
        pr = utilization_prior(prior, dk, report or (), published_before=published_before,
                               device_name=device_name, workload=workload, spread=spread)
        iv = method2_interval(hardware=hardware, peak_flops_per_s=peak, count=count, days=days, prior=pr,
                              level=level, precision=precision, clock=clock, device_hours=gpu_hours)
    except PyprofError as exc:
        fail(str(exc))
        return
    if json_out:
        try:
            text = json_document(JSON_KIND, iv.to_dict())
        except PyprofError as exc:
            fail(str(exc))
        typer.echo(text)
        return
    console = Console(file=sys.stdout)
    t = Table(title=f"Method 2 with a utilization prior ({iv.prior.kind})")
    for col in ("", "utilization", "FLOP", "pfs-days", "tfs-days"):
        t.add_column(col, justify="left" if not col else "right")
    names = (f"low ({(1 - level) / 2:.0%})", "median", f"high ({(1 + level) / 2:.0%})")
    for name, e in zip(names, (iv.low, iv.median, iv.high)):
        t.add_row(name, f"{e.inputs['utilization']:.3g}", f"{e.flop:.4g}", f"{e.pfs_days:.4g}", f"{e.tfs_days:.4g}")
    console.print(t)
    console.print(f"formula (median): {iv.median.formula}", highlight=False)
    console.print(f"prior: {esc.terminal(iv.prior.source)}", highlight=False)
    if iv.is_point:
        console.print("the prior has no spread: this is a point estimate, not an interval", highlight=False)
    for n in iv.notes:
        console.print(f"note: {esc.terminal(n)}", highlight=False)
