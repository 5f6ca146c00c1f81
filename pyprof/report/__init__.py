"""Reports of a profiled run: versioned JSON, Markdown, and the rich terminal summary.

Writers only read a :class:`~pyprof.result.ProfileResult`; they never reach back into a measurement source.
"""

from pyprof.report.atomic import atomic_write_text
from pyprof.report.json_report import SCHEMA_VERSION, read_report, to_json
from pyprof.report.markdown import render_markdown
from pyprof.report.terminal import render_terminal
from pyprof.report.writers import FORMATS, write_reports

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "atomic_write_text",
    "read_report",
    "render_markdown",
    "render_terminal",
    "to_json",
    "write_reports",
]
