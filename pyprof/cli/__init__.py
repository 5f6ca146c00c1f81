"""The ``pyprof`` command line (typer): env, estimate, report, example.

Tables go to stdout as rich tables; ``--json`` prints machine-readable JSON to stdout instead. Bad input exits with
code 2 and a one-line error on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pyprof.cli._common import fail
from pyprof.cli.bench_cmd import bench
from pyprof.cli.efficiency_cmd import estimate_interval
from pyprof.cli.estimate_cmd import estimate
from pyprof.cli.run_cmd import CONTEXT_SETTINGS, run
from pyprof.cli.trend_cmd import trend

# Help text is plain text, not rich markup (rich_markup_mode=None): "[options]" stays literal, and so does any
# bracket in an option's help. Shell completion is on: `pyprof --install-completion`.
app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  help="pyprof: measured FLOPs and utilization of training, reconciled with the 33% / 17% assumptions.")
app.command("estimate", help="Method 1 / Method 2 training-compute estimates from your figures.")(estimate)
app.command("bench", help="Benchmark suite: measured utilization per workload vs the 33% / 17% assumptions.")(bench)
app.command("trend", help="Doubling/halving time of training compute (AI and compute, AI and efficiency, or your CSV).")(trend)
app.command("estimate-interval", help="Method 2 with an uncertainty interval from a utilization prior.")(estimate_interval)
app.command("run", help="Profile a whole training script without editing it: pyprof run [options] -- python "
                        "train.py args", context_settings=CONTEXT_SETTINGS)(run)


class _EscapedTable:
    """A rich Table whose cells are text, never markup (``Intel(R) ... [x]`` or a reason with ``[/...]``)."""

    def __init__(self, **kwargs: object) -> None:
        from rich.table import Table

        self.table = Table(**kwargs)  # type: ignore[arg-type]
        self.add_column = self.table.add_column

    def add_row(self, *cells: str) -> None:
        from pyprof.report.escape import terminal

        self.table.add_row(*(terminal(c) for c in cells))


def _print_version(value: bool) -> None:
    if value:
        from pyprof import __version__
        typer.echo(f"pyprof {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print `pyprof <version>` and exit.")] = False,
) -> None:
    # The group's options; is_eager makes --version answer before a subcommand is required or its input checked.
    pass


@app.command("env")
def env_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")] = False,
    measure: Annotated[bool, typer.Option("--measure-peaks", help="Also measure the CPU peak (about 2 s).")] = False,
) -> None:
    """What this machine has: extension, CUDA, CUPTI, NVML, GPUs, counter permission, CPU ISA, peaks."""
    from pyprof.env import collect_env
    from pyprof.report.format import si
    env = collect_env(measure_peaks=measure)
    if as_json:
        from pyprof.cli._common import json_document
        from pyprof.report.json_report import json_safe
        typer.echo(json_document("pyprof.env", json_safe(env)))
        return
    from rich.console import Console

    t = _EscapedTable(title="pyprof env")  # CPU and GPU names, driver strings and reasons come from the machine
    t.add_column("item", style="cyan")
    t.add_column("value", overflow="fold")
    t.add_row("pyprof / python", f"{env['pyprof_version']} / {env['python']}")
    tv = env.get("torch", {})
    t.add_row("torch", f"{tv.get('version')} (CUDA {tv.get('cuda')}, available: {tv.get('cuda_available')})")
    ext = env["extension"]
    t.add_row("native core pyprof._C", "loaded" if ext["pyprof._C"] else f"missing: {ext['reason']}")
    c = env["cuda"]
    if c["built"]:
        p = c.get("probe", {})
        t.add_row("CUDA part pyprof._C_cuda", f"built; runtime {p.get('runtime_version')}, driver "
                  f"{p.get('driver_version') or 'none'}, CUPTI {p.get('cupti_version')}; status: {p.get('status')}")
        for d in p.get("devices", []) or []:
            t.add_row(f"GPU {d['index']}", f"{d['name']} sm_{d['compute_capability'][0]}{d['compute_capability'][1]}, "
                      f"{d['sm_count']} SMs, {d['sm_clock_khz'] / 1e6:.2f} GHz")
    else:
        t.add_row("CUDA part pyprof._C_cuda", f"not available: {c['reason']}")
    n = env["nvml"]
    t.add_row("NVML", f"driver {n['driver_version']}, {len(n['gpus'])} GPU(s)" if n.get("available") else n["reason"])
    perm = env["gpu_counter_permission"]
    t.add_row("GPU counter permission", {True: "allowed", False: "denied", None: "unknown"}[perm.get("allowed")] +
              ": " + str(perm.get("message")))
    cpu = env.get("cpu", {})
    if "best_isa" in cpu:
        t.add_row("CPU", f"{cpu['model_name']} ({cpu['vendor']}), {cpu['logical_cpus']} CPUs, ISA {', '.join(cpu['isas'])}")
    cc = env.get("cpu_counters", {})
    t.add_row("CPU FP counters", "available: " + ", ".join(cc.get("events", [])) if cc.get("available") else
              f"unavailable: {cc.get('reason')}")
    for prec, pk in env.get("cpu_peaks", {}).items():
        line = f"theoretical {si(pk['theoretical_flops_per_s'], 'FLOP/s')} ({pk['derivation']})"
        m = pk.get("measured")
        if m and "measured_flops_per_s" in m:
            line += (f"; measured {si(m['measured_flops_per_s'], 'FLOP/s')} (median "
                     f"{si(m['measured_median_flops_per_s'], 'FLOP/s')}), ratio {m['measured_over_theoretical']:.2f}; "
                     f"observed clock {m['observed_clock_hz'] / 1e9:.2f} GHz -> theoretical "
                     f"{si(m['theoretical_at_observed_clock_flops_per_s'], 'FLOP/s')}, ratio "
                     f"{m['measured_over_theoretical_at_observed_clock']:.2f}")
        t.add_row(f"CPU peak {prec}", line)
    Console().print(t.table)


@app.command("report")
def report_cmd(
    file: Annotated[Path, typer.Argument(help="A report.json written by pyprof (profile, bench or job report).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="terminal, md, html or json")] = "terminal",
) -> None:
    """Render a saved report (a pyprof.profile() report, a `pyprof bench` report or a multi-rank job report)."""
    from pyprof.errors import ReportError
    from pyprof.report.html import render_any
    if fmt not in ("terminal", "md", "html", "json"):
        fail(f"--format {fmt!r} unknown: use terminal, md, html or json")
    from pyprof.report.escape import plain
    try:
        text = render_any(file, fmt)
    except ReportError as e:
        fail(str(e))
    # Text for a terminal never carries control sequences from the file, whichever renderer made it (a job
    # report's Markdown included); JSON escapes them itself and HTML is autoescaped.
    sys.stdout.write(plain(text) if fmt in ("terminal", "md") else text)


@app.command("example")
def example_cmd(
    model: Annotated[str, typer.Option(help="cnn or mlp")] = "cnn",
    steps: Annotated[int, typer.Option(min=1, help="Recorded steps.")] = 20,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up steps (analytic counting happens here).")] = 2,
    batch: Annotated[int, typer.Option(min=1)] = 64,
    out: Annotated[Path | None, typer.Option(help="Folder for report.json and report.md.")] = Path("pyprof-report"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report to stdout.")] = False,
) -> None:
    """Profile a built-in example training loop on this machine and write its report."""
    from pyprof.bench.examples import run_example
    from pyprof.report import render_terminal, to_json

    if model not in ("cnn", "mlp"):
        fail(f"--model {model!r} unknown: use cnn or mlp")
    if out:
        from pyprof.cli._common import check_output_dir
        from pyprof.errors import PyprofError
        try:
            check_output_dir(out, option="--out")  # before the run, so its results are not lost to a bad folder
        except PyprofError as e:
            fail(str(e))
    r = run_example(model, batch=batch, steps=steps, warmup=warmup, output_dir=str(out) if out else None)
    if as_json:
        sys.stdout.write(to_json(r))
    else:
        sys.stdout.write(render_terminal(r))
        if out:
            typer.echo(f"report written to {out}/report.json and {out}/report.md", err=True)


def main() -> None:
    """Console-script entry point."""
    app()
