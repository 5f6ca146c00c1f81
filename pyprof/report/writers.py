"""Write a result's reports into a folder, each file atomically."""

from __future__ import annotations

import os
from pathlib import Path

from pyprof.records import ProfileResult
from pyprof.report.atomic import atomic_write_text
from pyprof.report.json_report import to_json
from pyprof.report.markdown import render_markdown
def _render_html(result: ProfileResult) -> str:
    from pyprof.report.html import render_profile_html  # jinja2 + matplotlib load only when HTML is asked for

    return render_profile_html(result)


FORMATS = {"json": ("report.json", to_json), "md": ("report.md", render_markdown), "html": ("report.html", _render_html)}


def write_reports(result: ProfileResult, out_dir: str | os.PathLike, formats=("json", "md")) -> list[Path]:
    """Write ``report.json`` / ``report.md`` into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    paths = []
    for fmt in formats:
        name, render = FORMATS[fmt]
        paths.append(atomic_write_text(out / name, render(result)))
    return paths
