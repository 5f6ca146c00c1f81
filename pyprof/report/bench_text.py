"""Text renderings of a bench report (Markdown, the rich summary table); both read only the JSON-ready dict."""

from __future__ import annotations

import io
from typing import Any

from pyprof.report import escape
from pyprof.report.format import num, pct, si


def _ef(w: dict[str, Any]) -> str:
    return "n/a" if w.get("error_factor") is None else f"{w['error_factor']:.2f}x ({w.get('error_direction', '')})"


def workload_rows(d: dict[str, Any]) -> list[list[str]]:
    """One row per workload: name, status, step time, FLOP/s, util vs spec, util vs measured, error factor."""
    rows = []
    for w in d.get("workloads", []):
        if w["status"] != "ok":
            rows.append([w["name"], f"{w['status']}: {w['reason']}", "", "", "", "", ""])
            continue
        rows.append([w["name"], "ok", f"{num(w.get('step_time_s_median'))} s", si(w.get("achieved_flops_per_s"), "FLOP/s"),
                     pct(w.get("utilization_vs_spec")), pct(w.get("utilization_vs_measured")), _ef(w)])
    return rows


HEAD = ["workload", "status", "step time (median)", "achieved", "util vs spec/theoretical", "util vs measured",
        "error factor of the assumption"]


def render_bench_markdown(d: dict[str, Any]) -> str:
    """The bench report as Markdown."""
    esc = escape.markdown  # names, reasons, notes and sources are untrusted text
    r = d["run"]
    out = [f"# pyprof bench ({esc(r.get('preset'))})", "",
           f"{esc(d['device'].get('kind'))}: {esc(d['device'].get('name'))} · pyprof {esc(r.get('pyprof_version'))} · "
           f"torch {esc(r.get('torch_version'))} · {esc(r.get('started_at'))} · {num(r.get('wall_time_s'))} s · "
           f"schema {esc(d['schema_version'])}", "",
           f"Assumed utilization: {pct(d['assumed_utilization'])} ({esc(d['assumed_utilization_source'])})", ""]
    pk = d["peaks"]
    for k in ("spec", "measured"):
        if pk.get(k):
            out.append(f"- peak ({pk[k].get('kind', k)}, {pk.get('precision')}): {si(pk[k]['flops_per_s'], 'FLOP/s')} "
                       f"— {esc(pk[k].get('source', ''))}")
    bw = pk.get("memory_bandwidth")
    if bw:
        out.append(f"- memory bandwidth: {si(bw['bytes_per_s'], 'B/s')} — {esc(bw['method'])}")
    out.append(f"- throttling: {esc(d['throttle'].get('note'))}")
    out += ["", "## Workloads", "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in workload_rows(d)]
    mic = d.get("microbenchmarks", [])
    if mic:
        out += ["", "## Microbenchmarks", "", "| id | time (median) | achieved | intensity (FLOP/B) | bound | "
                "roofline | of roofline | util vs peak |", "|---|---:|---:|---:|---|---:|---:|---:|"]
        for m in mic:
            if m["status"] != "ok":
                out.append(f"| {esc(m['id'])} | {m['status']}: {esc(m['reason'])} | | | | | | |")
                continue
            out.append(f"| {esc(m['id'])} | {si(m['time_s_median'], 's')} | {si(m['achieved_flops_per_s'], 'FLOP/s')} | "
                       f"{num(m['intensity_flop_per_byte'], 3)} | {m['bound']} | "
                       f"{si(m['roofline_bound_flops_per_s'], 'FLOP/s')} | {pct(m['fraction_of_roofline'])} | "
                       f"{pct(m['utilization_vs_peak'])} |")
    out += ["", "## Sources", ""] + [f"- {k}: {esc(v)}" for k, v in d.get("sources", {}).items()]
    if d.get("trace"):
        t = d["trace"]
        out.append(f"- trace: {esc(t['path'])} ({t['events_written']} events, {t['events_dropped']} left out)")
    notes = list(d.get("notes", []))
    for w in d.get("workloads", []):
        notes += [f"{w['name']}: {n}" for n in w.get("notes", []) if "Traceback" not in n]
    if notes:
        out += ["", "## Notes", ""] + [f"- {esc(n)}" for n in notes]
    return "\n".join(out) + "\n"


def render_bench_terminal(d: dict[str, Any], width: int = 140) -> str:
    """The workload summary as a rich table (text)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"pyprof bench ({escape.terminal(d['run'].get('preset'))}) on "
                    f"{escape.terminal(d['device'].get('name'))}: assumed utilization "
                    f"{pct(d['assumed_utilization'])}")
    for h in HEAD:
        t.add_column(h, overflow="fold")
    for row in workload_rows(d):
        t.add_row(*(escape.terminal(c) for c in row))  # names and reasons are untrusted text, not rich markup
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=False, color_system=None).print(t)
    return buf.getvalue()
