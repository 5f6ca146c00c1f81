"""Text renderings of a bench report (Markdown, the rich summary table); both read only the JSON-ready dict."""

from __future__ import annotations

import io
from typing import Any

from pyprof.report import escape as _escape
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
    esc = _escape.markdown  # names, reasons, notes and sources are untrusted text
    r = d["run"]
    out = [f"# pyprof bench ({esc(r.get('preset'))})", "",
           f"{esc(d['device'].get('kind'))}: {esc(d['device'].get('name'))} · pyprof {esc(r.get('pyprof_version'))} · "
           f"torch {r.get('torch_version')} · {r.get('started_at')} · {num(r.get('wall_time_s'))} s · schema "
           f"{d['schema_version']}", "",
           f"Assumed utilization: {pct(d['assumed_utilization'])} ({esc(d['assumed_utilization_source'])})", ""]
    pk = d["peaks"]
    for k in ("spec", "measured"):
        if pk.get(k):
            out.append(f"- peak ({pk[k].get('kind', k)}, {pk.get('precision')}): {si(pk[k]['flops_per_s'], 'FLOP/s')} "
                       f"— {esc(pk[k].get('source', ''))}")
    mr = pk.get("measured_across_run") or {}
    if mr.get("note"):
        out.append(f"- measured peak across the run: {esc(mr['note'])}")
    bw = pk.get("memory_bandwidth")
    if bw:
        out.append(f"- memory bandwidth: {si(bw['bytes_per_s'], 'B/s')} — {esc(bw['method'])}")
    out.append(f"- throttling: {esc(d['throttle'].get('note'))}")
    out += ["", "## Workloads", "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in workload_rows(d)]
    said = ef_sentences(d)
    if said:
        out += ["", f"What the error factor compares (assumed {pct(d['assumed_utilization'])} against each workload's "
                "utilization vs the spec/theoretical peak):", ""] + [f"- {esc(n)}: {esc(s)}." for n, s in said]
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


def ef_sentences(d: dict[str, Any]) -> list[tuple[str, str]]:
    """(workload, its error factor in plain words) for the workloads that ran."""
    from pyprof.report.rows import error_factor_sentence

    out = []
    for w in d.get("workloads", []):
        said = error_factor_sentence(w.get("assumed_utilization", d.get("assumed_utilization")), w.get("error_factor"),
                                     w.get("error_direction"), whose="this workload's")
        if w.get("status") == "ok" and said:
            out.append((w["name"], said))
    return out


#: Terminal columns: (header, short header for narrow terminals, index into a workload row, keep below 100 columns).
_TERM_COLS = (("workload", "workload", 0, True), ("step time (median)", "step", 2, True),
              ("achieved", "achieved", 3, False), ("util vs spec/theoretical", "util/spec", 4, True),
              ("util vs measured", "util/meas", 5, True), ("error factor of the assumption", "err factor", 6, True))


def render_bench_terminal(d: dict[str, Any], width: int | None = None) -> str:
    """The workload summary as a rich table (text), no wider than ``width`` (None: the terminal's width).

    Below 100 columns the headers are abbreviated and the achieved-FLOP/s column is dropped; workloads that did not
    run take one line each under the table (``skipped: name: reason``, cut with an ellipsis), not a wrapped row.
    """
    from rich.console import Console
    from rich.table import Table

    from pyprof.report.terminal import NARROW_COLUMNS, console_width

    w = console_width(width)
    narrow = w < NARROW_COLUMNS
    t = Table(title=f"pyprof bench ({_escape.terminal(d['run'].get('preset'))}) on {_escape.terminal(d['device'].get('name'))}: assumed "
                    f"utilization {pct(d['assumed_utilization'])}", pad_edge=False)
    cols = [c for c in _TERM_COLS if c[3] or not narrow]
    for long, short, _i, _k in cols:
        t.add_column(short if narrow else long, overflow="fold", justify="left" if _i == 0 else "right")
    rows = workload_rows(d)
    not_run = []
    for wl, row in zip(d.get("workloads", []), rows):
        if wl["status"] != "ok":
            not_run.append(f"{wl['status']}: {wl['name']}: {wl.get('reason') or ''}")
            continue
        if narrow and wl.get("error_factor") is not None:  # "11.64x (overestimate)" wraps; "11.6x over" does not
            row = [*row[:6], f"{wl['error_factor']:.3g}x {(wl.get('error_direction') or '')[:5]}".rstrip()]
        t.add_row(*(_escape.terminal(row[i]) for _l, _s, i, _k in cols))  # names are untrusted text, not rich markup
    buf = io.StringIO()
    con = Console(file=buf, width=w, force_terminal=False, color_system=None)
    con.print(t)
    for line in not_run:
        con.print(_escape.terminal(line), overflow="ellipsis", no_wrap=True, crop=True)
    for name, said in ef_sentences(d):  # the error factor in plain words, wrapped between words
        con.print(_escape.terminal(f"{name}: {said}."))
    return buf.getvalue()
