"""``pyprof bench``: the benchmark suite (``pyprof.bench``) from the command line, and ``render_any`` for ``pyprof report``.

Register with ``app.command("bench", help=...)(bench)`` in ``pyprof/cli/__init__.py``. Exit codes: 0 when the suite
ran (workloads that failed or were skipped are recorded in the report), 2 for bad options, 1 when pyprof itself failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pyprof.bench.workloads import CUPY_ID, WORKLOADS

#: Every id --only takes: the workloads, the CuPy GEMM and "micro" (the microbenchmarks).
ONLY_IDS = ("micro", *(w.id for w in WORKLOADS), CUPY_ID)


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Small shapes; the default on a CPU (under 3 min on 2 cores).")] = False,
    full: Annotated[bool, typer.Option("--full", help="Every workload at real sizes (a GPU; the default there).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    only: Annotated[str | None, typer.Option(help="Comma-separated ids (e.g. 'micro,resnet18'), of: "
                                                     + ", ".join(ONLY_IDS) + " ('micro' = the microbenchmarks).")]
    = None,
    out: Annotated[Path, typer.Option(help="Folder for report.json, report.md, report.html, trace.json.gz.")] = Path("pyprof-bench"),
    warmup: Annotated[int | None, typer.Option(min=1, help="Warm-up steps per workload (default 2 quick, 5 full).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Timed steps per workload (default 3 quick, 20 full).")] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Write report.html with plots (needs matplotlib).")] = True,
    trace: Annotated[bool, typer.Option("--trace/--no-trace", help="Trace one extra step per workload: kernel-class "
                                                                  "breakdown and trace.json.gz.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report (kind pyprof.bench, with "
                                                         "schema_version) to stdout instead of the table.")] = False,
) -> None:
    """Measure real utilization per workload on this machine and the error factor of the 33% / 17% assumptions."""
    from pyprof.cli._common import check_output_dir, fail
    from pyprof.errors import PyprofError

    if quick and full:
        fail("--quick and --full exclude each other")
    from pyprof.bench import runner

    try:
        dev = runner.resolve_device(device)
    except ValueError as e:
        fail(str(e))
    preset = "full" if full else "quick" if quick else ("quick" if dev == "cpu" else "full")
    ids = tuple(s.strip() for s in only.split(",") if s.strip()) if only else ()
    bad = [i for i in ids if i not in ONLY_IDS]
    if bad or (only is not None and not ids):
        fail(f"--only {only!r}: unknown workload id(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(ONLY_IDS)}")
    try:
        check_output_dir(out, option="--out")  # before minutes of benchmarks, not after
    except PyprofError as e:
        fail(str(e))
    opts = runner.Options(preset=preset, device=dev, only=ids, out=out, warmup=warmup, active=steps, html=html,
                          trace=trace)
    try:
        report = runner.run_suite(opts, progress=progress)
    except ValueError as e:  # bad --only ids and the like
        fail(str(e))
    paths = runner.write_outputs(report, out, html=html, trace=trace)
    if report.device.get("kind") == "cuda" and preset == "full" and not ids:
        paths.update(_gpu_checks(out))
    from pyprof.report.bench_text import render_bench_terminal
    d = report.to_dict()
    if as_json:
        from pyprof.report.bench_schema import to_bench_json
        sys.stdout.write(to_bench_json(d))  # the report itself: kind "pyprof.bench" and schema_version
    else:
        sys.stdout.write(render_bench_terminal(d))
    failed = [w["name"] for w in d["workloads"] if w["status"] == "failed"]
    if failed:
        typer.echo(f"{len(failed)} workload(s) failed (recorded in the report): {', '.join(failed)}", err=True)
    typer.echo(f"reports: {', '.join(str(p) for p in paths.values())} ({d['run']['wall_time_s']:.0f} s)", err=True)


def _gpu_checks(out: Path) -> dict[str, Path]:
    """On a GPU, the full preset also runs the GPU overhead and validation scripts of a source checkout's ``bench/``
    folder (their JSON lands next to the report); where they are absent (an installed wheel) or fail, that is said on
    stderr and the suite's own report stands."""
    import contextlib
    import io

    written: dict[str, Path] = {}
    for name, args in (("gpu_overhead", ["--steps", "20", "--blocks", "3"]), ("gpu_validate", [])):
        try:
            try:
                mod = __import__(f"bench.{name}", fromlist=["main"])
            except ImportError:
                typer.echo(f"{name}: skipped: the GPU scripts live in a source checkout's bench/ folder (run "
                           f"`python -m bench.{name}` there)", err=True)
                continue
            with contextlib.redirect_stdout(io.StringIO()):  # the JSON goes to the file, not the terminal
                mod.main([*args, "--out", str(out)])
            written[name] = out / f"{name}.json"
        except Exception as e:
            typer.echo(f"{name} failed: {e!r}", err=True)
    return written


def render_any(path: str | Path, fmt: str = "terminal") -> str:
    """Render any pyprof report.json (bench or profile) as html, md, terminal or json; see pyprof.report.html."""
    from pyprof.report.html import render_any as _render_any
    return _render_any(path, fmt)


def main() -> None:
    """Run ``pyprof bench`` on its own (``python -m pyprof.cli.bench_cmd``) before it is registered in the main CLI."""
    app = typer.Typer(add_completion=False)
    app.command()(bench)
    app()


if __name__ == "__main__":
    main()
