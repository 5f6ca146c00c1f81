"""The rich terminal summary."""

from __future__ import annotations

import io

from pyprof.records import ProfileResult
from pyprof.report import escape as esc
from pyprof.report.rows import summary_rows


def render_terminal(r: ProfileResult, width: int = 120) -> str:
    """Render the summary as a rich table and return it as text (print it, or log it)."""
    from rich.console import Console
    from rich.table import Table

    # Every cell can hold text from the user, the model, a report file or an exception: escaped, never markup.
    table = Table(title=f"pyprof: {esc.terminal(r.run.get('name', 'run'))}" + (" [PARTIAL]" if r.partial else ""),
                  show_lines=False, expand=False)
    table.add_column("section", style="cyan", no_wrap=True)
    table.add_column("metric")
    table.add_column("value", overflow="fold")
    last = None
    for sec, k, v in summary_rows(r):
        table.add_row(esc.terminal(sec) if sec != last else "", esc.terminal(k), esc.terminal(v))
        last = sec
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=False, color_system=None).print(table)
    return buf.getvalue()
