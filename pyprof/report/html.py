"""Self-contained HTML reports (jinja2, autoescaped; plots as inline SVG; no external JS, CSS or fonts).

One renderer serves ``pyprof bench`` reports, ``pyprof.profile()`` reports and ``pyprof report FILE.json``
(:func:`render_any`). Every number is rendered from the JSON-ready dict through the ``n`` filter, which writes the
exact JSON value into a ``data-v`` attribute beside the formatted text, so a test can check that each number shown is
in the JSON.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from pyprof.errors import ReportError
from pyprof.report import plots
from pyprof.report.bench_schema import KERNEL_CLASSES, check_bench_dict, read_json_any
from pyprof.report.bench_schema import KIND as BENCH_KIND
from pyprof.report.format import num, pct, si

_TEMPLATES = Path(__file__).parent / "templates"


def _n(value: Any, fmt: str = "num") -> Markup:
    """A number for the HTML: formatted text in a span whose ``data-v`` holds the JSON value (``n/a`` for None).

    ``fmt``: "num" (4 significant digits), "pct" (fraction as percent), "x" (a factor: 2 decimals and "x"),
    "int", or "si:UNIT" (SI prefix, e.g. "si:FLOP/s").
    """
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return Markup('<span class="na">n/a</span>')
    if fmt == "pct":
        text = pct(value)
    elif fmt == "x":
        text = f"{value:.2f}x"
    elif fmt == "int":
        text = f"{int(value):,}"
    elif fmt.startswith("si:"):
        text = si(value, fmt[3:])
    else:
        text = num(value)
    return Markup('<span class="n" data-v="{}">{}</span>').format(repr(value), text)


@functools.lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["n"] = _n
    return env


def _plots(makers: list[tuple[str, str, Any]], with_plots: bool) -> tuple[list[dict[str, Any]], str]:
    if not with_plots:
        return [], "plots turned off"
    ok, why = plots.available()
    if not ok:
        return [], why
    out = []
    for pid, title, make in makers:
        try:
            svg = make()
        except Exception as e:  # a plot that fails is a note, not a failed report
            out.append({"id": pid, "title": title, "svg": None, "error": f"{type(e).__name__}: {e}"})
            continue
        if svg:
            # The SVG comes from matplotlib drawing our own numbers; text is drawn as paths, and names reach it only
            # as path outlines, never as markup, so it is safe to mark it as such.
            out.append({"id": pid, "title": title, "svg": Markup(svg), "error": None})
    return out, ""


def render_bench_html(d: dict[str, Any], *, with_plots: bool = True) -> str:
    """Render a bench report dict (as written to report.json) to one self-contained HTML page."""
    figs, why = _plots([
        ("utilization", "Utilization per workload", lambda: plots.utilization_per_workload(d)),
        ("achieved", "Achieved FLOP/s against the peaks", lambda: plots.achieved_vs_peaks(d)),
        ("roofline", "Roofline of the microbenchmarks", lambda: plots.roofline(d)),
        ("kernels", "Time by kernel class", lambda: plots.kernel_breakdown(d)),
        ("over_time", "Utilization over the timed steps", lambda: plots.utilization_over_steps(d)),
    ], with_plots)
    return _env().get_template("bench.html.j2").render(d=d, figs=figs, plots_note=why, classes=KERNEL_CLASSES,
                                                       **bench_page_tables(d))


def bench_page_tables(d: dict[str, Any]) -> dict[str, Any]:
    """What the bench page shows once instead of in every row.

    Returns:
        ``peak_notes``: microbenchmark ``peak_kind`` -> (short label, footnote number or 0): a long note such as
        "measured FP32 peak (no bf16 peak kernel: ...)" becomes "measured FP32 peak" plus one footnote, not a
        paragraph in every bf16 row. ``workload_notes``: (note, [workload names]) with identical notes merged.
        ``ef_sentences``: (workload, the error factor in plain words).
    """
    from pyprof.report.rows import error_factor_sentence

    peak_notes: dict[str, tuple[str, int]] = {}
    n = 0
    for m in d.get("microbenchmarks") or []:
        k = m.get("peak_kind") or ""
        if k in peak_notes:
            continue
        short, _, rest = k.partition(" (")
        if rest:
            n += 1
            peak_notes[k] = (short, n)
        else:
            peak_notes[k] = (k, 0)
    merged: dict[str, list[str]] = {}
    for w in d.get("workloads") or []:
        for note in w.get("notes") or []:
            if "Traceback" not in note:
                merged.setdefault(note, []).append(w["name"])
    ef = []
    for w in d.get("workloads") or []:
        said = error_factor_sentence(w.get("assumed_utilization", d.get("assumed_utilization")), w.get("error_factor"),
                                     w.get("error_direction"), whose="this workload's")
        if w.get("status") == "ok" and said:
            ef.append((w["name"], said))
    return {"peak_notes": peak_notes, "workload_notes": list(merged.items()), "ef_sentences": ef}


def render_profile_html(result: Any, *, with_plots: bool = True) -> str:
    """Render a ``pyprof.profile()`` result (a ProfileResult or its JSON dict) to one self-contained HTML page.

    The page has every line of report.md (the same :func:`pyprof.report.rows.summary_rows`: peaks with their
    derivation, HFU, the Method 1 / Method 2 projection in pfs-days, the hardware-FLOPs source or the reason it is
    missing, notes), the error factor in plain words, counted ops, a collapsible per-module FLOPs tree, the
    uncounted-ops ledger, the steps, and learning curves when the run logged a metric (``learning_curves``).
    """
    from pyprof.records import ProfileResult
    from pyprof.report import rows as R

    if isinstance(result, dict):
        d = result
        r = ProfileResult.from_dict({k: v for k, v in d.items() if k != "kind"})
    else:
        r, d = result, result.to_dict()
    rec = d.get("reconciliation") or {}
    spec = next((p["flops_per_s"] for p in rec.get("peaks", []) if p["kind"] in ("spec", "theoretical")), None)
    curves = d.get("learning_curves") or []
    figs, why = _plots([
        ("steps", "Steps", lambda: plots.profile_steps(d.get("steps", []), spec)),
        ("curves", "Learning curves (metric against training FLOPs)", lambda: plots.learning_curves(curves)),
    ], with_plots)
    ef = (R.error_factor_sentence(rec.get("assumed_utilization"), rec.get("error_factor"), rec.get("error_direction"))
          if rec else None)
    return _env().get_template("profile.html.j2").render(
        d=d, rec=rec, figs=figs, plots_note=why, top_ops=R.top_ops(r, 15), uncounted=R.uncounted_ops(r, 30),
        modules=R.module_tree(d.get("flop_counts") or []), rows=R.summary_rows(r), ef_sentence=ef)


def render_any(path: str | os.PathLike, fmt: str = "html") -> str:
    """Render any pyprof JSON report (bench or profile) in ``fmt``: "html", "md", "terminal" or "json".

    Raises:
        ReportError: missing, invalid or unreadable report (see :mod:`pyprof.report.bench_schema`).
        ValueError: unknown ``fmt``.
    """
    if fmt not in ("html", "md", "terminal", "json"):
        raise ValueError(f"format {fmt!r} unknown: use html, md, terminal or json")
    d = read_json_any(path)
    if d.get("kind") == "pyprof.job":  # multi-rank job report (pyprof.distributed)
        from pyprof.report.job import read_job_report
        job = read_job_report(path)
        if fmt == "html":
            raise ReportError(f"{path} is a multi-rank job report: HTML is not available for it yet; "
                              "use --format md, terminal or json")
        return job.to_json() if fmt == "json" else job.render_markdown()
    if d.get("kind") == BENCH_KIND:
        check_bench_dict(d, str(path))
        from pyprof.report.bench_schema import to_bench_json
        from pyprof.report.bench_text import (
            render_bench_markdown,
            render_bench_terminal,
        )

        return {"html": render_bench_html, "md": render_bench_markdown, "terminal": render_bench_terminal,
                "json": to_bench_json}[fmt](d)
    from pyprof.report.json_report import read_report
    r = read_report(path)  # validates kind and schema version of profile reports
    if fmt == "html":
        return render_profile_html(r)
    from pyprof.report.json_report import to_json
    from pyprof.report.markdown import render_markdown
    from pyprof.report.terminal import render_terminal

    return {"md": render_markdown, "terminal": render_terminal, "json": to_json}[fmt](r)


def escape_text(s: Any) -> str:
    """HTML-escape untrusted text (kernel and model names) outside templates."""
    return str(escape(s))
