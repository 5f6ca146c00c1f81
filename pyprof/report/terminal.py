"""The rich terminal summary, sized to the terminal it is printed on."""

from __future__ import annotations

import io

from pyprof.records import ProfileResult
from pyprof.report import escape as esc
from pyprof.report.format import pct, si
from pyprof.report.rows import summary_rows, top_modules, top_ops

#: Below this width the section column is dropped and sections become heading rows (80 columns would otherwise
#: leave the values about 40 characters and wrap every peak derivation over five lines).
NARROW_COLUMNS = 100


def console_width(width: int | None = None) -> int:
    """``width`` when given, else the terminal's (rich reads $COLUMNS and the tty; 80 when not a terminal)."""
    if width:
        return int(width)
    from rich.console import Console

    return Console().width


def render_terminal(r: ProfileResult, width: int | None = None, top: int = 5) -> str:
    """Render the summary as rich tables and return the text (print it, or log it).

    Args:
        r: the result.
        width: columns to fit; None: the current terminal's width (80 when output is not a terminal).
        top: rows of the counted-ops and per-module tables.

    Returns:
        Plain text no wider than ``width``; words wrap between words, not inside them (rich's word wrap; only a
        single token longer than its column is folded).
    """
    from rich.console import Console
    from rich.table import Table

    w = console_width(width)
    narrow = w < NARROW_COLUMNS
    title = f"pyprof: {esc.terminal(str(r.run.get('name', 'run')))}" + (" [PARTIAL]" if r.partial else "")
    table = Table(title=title, show_lines=False, expand=False, pad_edge=False)
    if not narrow:
        table.add_column("section", style="cyan", no_wrap=True)
    table.add_column("metric", ratio=2, overflow="fold")
    table.add_column("value", ratio=3, overflow="fold")
    last = None
    for sec, k, v in summary_rows(r):
        if narrow:
            if sec != last:
                table.add_row(f"[bold cyan]{esc.terminal(sec)}[/]", "")
            table.add_row(esc.terminal(k), esc.terminal(v))
        else:
            table.add_row(esc.terminal(sec) if sec != last else "", esc.terminal(k), esc.terminal(v))
        last = sec
    tables = [table]
    ops = top_ops(r, top)
    if ops:
        t = Table(title=f"top {len(ops)} counted ops", pad_edge=False)
        t.add_column("op", overflow="fold")
        t.add_column("calls", justify="right", no_wrap=True)
        t.add_column("FLOPs", justify="right", no_wrap=True)
        t.add_column("share", justify="right", no_wrap=True)
        for n, c, f, s in ops:
            t.add_row(esc.terminal(n), str(c), si(f, "FLOP"), pct(s))
        tables.append(t)
    mods = top_modules(r.flop_counts, top)
    if mods:
        t = Table(title=f"top {len(mods)} modules by FLOPs", pad_edge=False)
        t.add_column("module", overflow="fold")
        t.add_column("FLOPs", justify="right", no_wrap=True)
        t.add_column("share", justify="right", no_wrap=True)
        for p, f, s in mods:
            t.add_row(esc.terminal(p), si(f, "FLOP"), pct(s))
        tables.append(t)
    buf = io.StringIO()
    con = Console(file=buf, width=w, force_terminal=False, color_system=None)
    for t in tables:
        con.print(t)
    return buf.getvalue()
