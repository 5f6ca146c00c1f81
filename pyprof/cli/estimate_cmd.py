"""`pyprof estimate`: training compute by Method 1 (count operations) and/or Method 2 (hardware time).

The function :func:`estimate` is registered by the CLI package with ``app.command("estimate")(estimate)``.

Examples::

    pyprof estimate --macs-per-forward 0.75e9 --examples 1.2e6 --epochs 90
    pyprof estimate --hardware "GTX 580 (AI and compute)" --count 2 --days 5.5
    pyprof estimate --method both --macs-per-forward 0.75e9 --examples 1.2e6 --epochs 90 \\
        --hardware gtx580 --count 2 --days 5.5 --json
    pyprof estimate --parameters 175e9 --tokens 300e9                 # 6·N·D
    pyprof estimate --parameters 175e9 --tokens 300e9 --n-layers 96 --n-ctx 2048 --d-attn 12288
    pyprof estimate --peak-tflops 312 --gpu-hours 1720320 --utilization 0.4
    pyprof estimate --seed-examples
    pyprof estimate --list-hardware
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table

from pyprof.accounting.estimate import (
    Estimate,
    error_direction,
    error_factor,
    method1,
    method1_from_parameters,
    method2,
    reproduce_seed_examples,
)
from pyprof.cli._common import check_flag_number, fail, json_document
from pyprof.errors import PyprofError
from pyprof.peaks import database as peaks

__all__ = ["JSON_KIND", "estimate"]

#: ``kind`` of the ``--json`` document.
JSON_KIND = "pyprof.estimate"

_METHODS = ("1", "2", "both", "auto")


class _BadInput(Exception):
    pass


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}"


def _estimates_table(estimates: list[Estimate]) -> Table:
    table = Table(title="Training compute estimate", show_lines=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("method", "left"), ("FLOP", "right"), ("PF", "right"), ("pfs-days", "right"), ("tfs-days", "right"),
        ("formula", "left"))
    for col, justify in columns:
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
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("example", "left"), ("method", "left"), ("computed PF", "right"), ("printed PF", "right"),
        ("computed pfs-days", "right"), ("printed pfs-days", "right"), ("ratio", "right"))
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")
    for r in reps:
        table.add_row(r.name, r.method, _fmt(r.estimate.petaflop), f"{r.printed_pf:g}", _fmt(r.estimate.pfs_days),
                      f"{r.printed_pfs_days:g}", f"{r.ratio:.3f}")
    console.print(table)
    console.print("ratio = computed pfs-days / printed pfs-days")
    for r in reps:
        console.print(f"[bold]{r.system} ({r.method})[/bold]: {r.explanation}", highlight=False)
    return None


def _check_flags(v: dict) -> None:
    """Every numeric flag checked in the CLI's terms (flag and unit) before any arithmetic."""
    check_flag_number("--macs-per-forward", v["macs_per_forward"], unit="multiply-adds per example", example="0.75e9")
    check_flag_number("--flops-per-forward", v["flops_per_forward"], unit="FLOP per example", example="1.5e9")
    check_flag_number("--examples", v["examples"], unit="examples per epoch", example="1.2e6")
    check_flag_number("--epochs", v["epochs"], unit="passes over the data", example="90")
    check_flag_number("--backward-factor", v["backward_factor"], unit="forward passes", example="3", minimum=1,
                      inclusive=True)
    check_flag_number("--parameters", v["parameters"], unit="parameters", example="175e9")
    check_flag_number("--tokens", v["tokens"], unit="training tokens", example="300e9")
    check_flag_number("--n-layers", v["n_layers"], unit="layers", example="96")
    check_flag_number("--n-ctx", v["n_ctx"], unit="tokens", example="2048")
    check_flag_number("--d-attn", v["d_attn"], unit="attention width", example="12288")
    # Above 1e5 TFLOP/s (100 PFLOP/s) per device is no chip: the user typed FLOP/s into a TFLOP/s flag.
    check_flag_number("--peak-tflops", v["peak_tflops"], unit="TFLOP/s per device, not FLOP/s",
                      example="1.58 (a GTX 580)", maximum=1e5)
    check_flag_number("--count", v["count"], unit="devices", example="8", integer=True)
    check_flag_number("--days", v["days"], unit="wall-clock days", example="5.5")
    check_flag_number("--gpu-hours", v["gpu_hours"], unit="device-hours summed over devices", example="1720320")
    check_flag_number("--utilization", v["utilization"], unit="a fraction of peak in (0, 1]",
                      example="0.33 (not 33)", maximum=1.0)


def estimate(
    method: Annotated[str, typer.Option("--method", help="1, 2, both, or auto (decided by the inputs given).")]
    = "auto",
    macs_per_forward: Annotated[float | None, typer.Option(
        "--macs-per-forward", help="Method 1: multiply-adds per example per forward pass (a paper's 'FLOPs').")]
    = None,
    flops_per_forward: Annotated[float | None, typer.Option(
        "--flops-per-forward", help="Method 1: FLOP per example per forward pass (already x2).")] = None,
    examples: Annotated[float | None, typer.Option(
        "--examples", help="Method 1: training examples per epoch.")] = None,
    epochs: Annotated[float, typer.Option("--epochs", help="Method 1: passes over the data.")] = 1.0,
    parameters: Annotated[float | None, typer.Option(
        "--parameters", help="Method 1 for a dense transformer: parameter count N (6·N·D, with --tokens).")] = None,
    tokens: Annotated[float | None, typer.Option(
        "--tokens", help="Method 1 for a dense transformer: training tokens D over all epochs.")] = None,
    n_layers: Annotated[int | None, typer.Option(
        "--n-layers", help="Attention term (optional, with --n-ctx and --d-attn): transformer layers.")] = None,
    n_ctx: Annotated[int | None, typer.Option("--n-ctx", help="Attention term: context length in tokens.")] = None,
    d_attn: Annotated[int | None, typer.Option("--d-attn", help="Attention term: attention width (d_model).")]
    = None,
    backward_factor: Annotated[float, typer.Option(
        "--backward-factor", help="Method 1: forward+backward cost in forward passes.")] = 3.0,
    hardware: Annotated[str | None, typer.Option(
        "--hardware", help="Method 2: hardware name (see --list-hardware).")] = None,
    peak_tflops: Annotated[float | None, typer.Option(
        "--peak-tflops", help="Method 2: peak per device in TFLOP/s (overrides the database).")] = None,
    count: Annotated[int, typer.Option("--count", help="Method 2: number of devices.")] = 1,
    days: Annotated[float | None, typer.Option("--days", help="Method 2: training days.")] = None,
    gpu_hours: Annotated[float | None, typer.Option(
        "--gpu-hours", help="Method 2: device-hours summed over devices, as papers report them (instead of "
                            "--count and --days).")] = None,
    utilization: Annotated[float | None, typer.Option(
        "--utilization", help="Method 2: fraction of peak in (0, 1]; default 0.33 GPU/TPU, 0.17 CPU.")] = None,
    precision: Annotated[str, typer.Option("--precision", help="Method 2: precision of the peak.")] = "fp32",
    clock: Annotated[str | None, typer.Option(
        "--clock", help="Method 2: 'boost' or 'base' where both are stored (default boost).")] = None,
    seed_examples: Annotated[bool, typer.Option(
        "--seed-examples", help="Print the 'AI and compute' worked examples, recomputed, with explanations.")]
    = False,
    list_hardware: Annotated[bool, typer.Option("--list-hardware", help="List the peak database.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Estimate training compute (FLOP, PF, pfs-days) by Method 1 and/or Method 2 of "AI and compute".

    Method 1: multiply-adds per forward x 2 x 3 x examples x epochs, or 6 x parameters x tokens.
    Method 2: devices x peak FLOP/s x days x 86400 x utilization, or GPU-hours x 3600 x peak x utilization.
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
                typer.echo(json_document(JSON_KIND, payload))
            return
        _check_flags(locals())

        m = str(method).strip().lower()
        if m not in _METHODS:
            raise _BadInput(f"--method {method!r} is not one of {', '.join(_METHODS)}; pass --method 1, 2 or both.")
        by_params = parameters is not None or tokens is not None
        m1_given = by_params or any(v is not None for v in (macs_per_forward, flops_per_forward, examples))
        m2_given = any(v is not None for v in (hardware, peak_tflops, days, gpu_hours))
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
                    "--examples, --epochs; or --parameters and --tokens), Method 2 inputs (--hardware or "
                    "--peak-tflops, and --count with --days or --gpu-hours), "
                    "or use --seed-examples / --list-hardware."
                )
        results: list[Estimate] = []
        if m in ("1", "both"):
            if by_params:
                if parameters is None or tokens is None:
                    raise _BadInput("6·N·D needs both --parameters (N, e.g. 175e9) and --tokens (D, e.g. 300e9).")
                if any(v is not None for v in (macs_per_forward, flops_per_forward, examples)):
                    raise _BadInput("give Method 1 either as --parameters/--tokens or as --macs-per-forward/"
                                    "--flops-per-forward with --examples, not both.")
                dims = {"--n-layers": n_layers, "--n-ctx": n_ctx, "--d-attn": d_attn}
                if any(v is not None for v in dims.values()) and any(v is None for v in dims.values()):
                    missing = ", ".join(k for k, v in dims.items() if v is None)
                    raise _BadInput(f"the attention term needs --n-layers, --n-ctx and --d-attn; {missing} missing.")
                results.append(method1_from_parameters(parameters=parameters, tokens=tokens, n_layers=n_layers,
                                                       n_ctx=n_ctx, d_attn=d_attn, backward_factor=backward_factor))
            else:
                if examples is None:
                    raise _BadInput("Method 1 needs --examples (training examples per epoch, e.g. 1.2e6), or "
                                    "--parameters and --tokens for a dense transformer.")
                results.append(method1(macs_per_forward=macs_per_forward, flops_per_forward=flops_per_forward,
                                       examples=examples, epochs=epochs, backward_factor=backward_factor))
        if m in ("2", "both"):
            if days is None and gpu_hours is None:
                raise _BadInput("Method 2 needs --days (wall-clock training days, e.g. 5.5) or --gpu-hours "
                                "(device-hours summed over devices, e.g. 1720320).")
            if days is not None and gpu_hours is not None:
                raise _BadInput("give --days (with --count) or --gpu-hours, not both.")
            if gpu_hours is not None and count != 1:
                raise _BadInput("--gpu-hours already sums over devices: drop --count.")
            if hardware is None and peak_tflops is None:
                raise _BadInput("Method 2 needs a peak: --hardware NAME (see --list-hardware) or --peak-tflops T "
                                "(TFLOP/s per device, e.g. 1.58).")
            peak = None if peak_tflops is None else peak_tflops * 1e12
            results.append(method2(hardware=hardware, peak_flops_per_s=peak, count=count, days=days,
                                   device_hours=gpu_hours, utilization=utilization, precision=precision,
                                   clock=clock))
    except (PyprofError, _BadInput) as exc:
        fail(str(exc))
        return

    comparison = _comparison(results[0], results[1]) if len(results) == 2 else None
    if json_out:
        out: dict = {"estimates": [e.to_dict() for e in results]}
        if comparison is not None:
            out["comparison"] = comparison
        try:
            text = json_document(JSON_KIND, out)
        except PyprofError as exc:
            fail(str(exc))
        typer.echo(text)
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
