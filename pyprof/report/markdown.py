"""Markdown report."""

from __future__ import annotations

from pyprof.constants import PFS_DAY_FLOP
from pyprof.records import ProfileResult
from pyprof.report.escape import markdown as _esc
from pyprof.report.escape import markdown_code as _code
from pyprof.report.format import num, si
from pyprof.report.rows import gpu_kernels, summary_rows, top_modules, top_ops, uncounted_ops


def render_markdown(r: ProfileResult) -> str:
    """Render a result as a Markdown document."""
    out = [f"# pyprof report: {_esc(r.run.get('name', 'run'))}", ""]
    if r.partial:
        out += [f"> **Partial report**: {_esc(r.partial_reason)}", ""]
    out += [f"pyprof {_esc(r.run.get('pyprof_version'))} · torch {_esc(r.run.get('torch_version'))} · "
            f"started {_esc(r.run.get('started_at'))} · schema {_esc(r.schema_version)}", ""]
    section = None
    for sec, k, v in summary_rows(r):
        if sec != section:
            out += ["", f"## {sec.capitalize()}", "", "| | |", "|---|---|"]
            section = sec
        out.append(f"| {_esc(k)} | {_esc(v)} |")
    ops = top_ops(r)
    if ops:
        out += ["", "## Counted ops (per distinct step signature)", "", "| op | calls | FLOPs | share |", "|---|---:|---:|---:|"]
        out += [f"| {_code(n)} | {c} | {si(f, 'FLOP')} | {100 * s:.1f}% |" for n, c, f, s in ops]
    mods = top_modules(r.flop_counts, 15)
    if mods:
        out += ["", "## FLOPs by module (top 15, per distinct step signature)", "",
                "| module | FLOPs | share of the step |", "|---|---:|---:|"]
        out += [f"| {_code(p)} | {si(f, 'FLOP')} | {100 * s:.1f}% |" for p, f, s in mods]
    curves = getattr(r, "learning_curves", None) or []
    for c in curves:
        pts = c.get("points") or []
        if pts:
            out += ["", f"## Learning curve: {_esc(c.get('name'))} ({_esc(c.get('metric_name'))} against training "
                    "FLOPs)", "", "| training FLOPs | pfs-days | metric | epoch |", "|---:|---:|---:|---:|"]
            out += [f"| {si(p['flops'], 'FLOP')} | {num(p['flops'] / PFS_DAY_FLOP)} | {num(p['metric'])} | "
                    f"{num(p.get('epoch'))} |" for p in pts]
    unc = uncounted_ops(r)
    if unc:
        out += ["", "## Ops without a FLOP formula (not counted)", "", "| op | calls | kind |", "|---|---:|---|"]
        out += [f"| {_code(n)} | {c} | {k} |" for n, c, k in unc]
    ks = gpu_kernels(r)
    if ks:
        out += ["", "## GPU kernels (top by total time)", "",
                "| kernel | grid | block | calls | total (s) | max (s) | library FLOPs | precision | achieved FLOP/s |",
                "|---|---|---|---:|---:|---:|---:|---|---:|"]
        for kern in ks:
            out.append(f"| {_code(str(kern.name)[:120])} | {kern.grid} | {kern.block} | {kern.count} | "
                       f"{num(kern.total_time_s)} | {num(kern.max_time_s)} | {si(kern.library_flops)} | "
                       f"{kern.precision or ''} | {si(kern.achieved_flops_per_s)} |")
    if r.steps:
        out += ["", "## Steps", "", "| step | time (s) | CPU (s) | analytic FLOPs | origin | hardware FLOPs | examples |",
                "|---:|---:|---:|---:|---|---:|---:|"]
        for s in r.steps[:200]:
            out.append(f"| {s.index} | {s.wall_time_s:.4g} | {s.cpu_time_s:.4g} | {si(s.analytic_flops)} | "
                       f"{s.analytic_origin}{' (timing perturbed)' if s.perturbed else ''} | {si(s.hardware_flops)} | "
                       f"{s.examples if s.examples is not None else 'n/a'} |")
        if len(r.steps) > 200:
            out.append(f"| … | {len(r.steps) - 200} more steps in report.json | | | | | |")
    return "\n".join(out) + "\n"
