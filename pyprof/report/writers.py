"""Write a result's reports into a folder, each file atomically."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from pyprof.records import ProfileResult
from pyprof.report.atomic import atomic_write_text
from pyprof.report.json_report import to_json
from pyprof.report.markdown import render_markdown


def _render_html(result: ProfileResult) -> str:
    from pyprof.report.html import (
        render_profile_html,  # jinja2 + matplotlib load only when HTML is asked for
    )

    return render_profile_html(result)


def _write_trace(result: ProfileResult, path: Path) -> Path:
    from pyprof.report.trace import write_profile_trace

    return write_profile_trace(result.to_dict(), path)


FORMATS: dict[str, tuple[str, Callable[[ProfileResult], str] | None]] = {
    "json": ("report.json", to_json),
    "md": ("report.md", render_markdown),
    "html": ("report.html", _render_html),
    "trace": ("trace.json.gz", None),  # gzip JSON, written by pyprof.report.trace.write_profile_trace
}

#: What a profile writes when the caller names no formats: everything a reader opens (the JSON is the data, the
#: Markdown and HTML pages read it, the trace opens in ui.perfetto.dev).
DEFAULT_FORMATS: tuple[str, ...] = ("json", "md", "html", "trace")
#: What a periodic autosave writes: the cheap formats only (HTML draws plots, which takes about a second).
AUTOSAVE_FORMATS: tuple[str, ...] = ("json", "md")
#: Formats whose failure is a warning, not a failed report: they need optional libraries (jinja2, matplotlib).
_OPTIONAL = ("html", "trace")


def write_reports(result: ProfileResult, out_dir: str | os.PathLike,
                  formats: tuple[str, ...] | list[str] | None = None) -> list[Path]:
    """Write the result's reports into ``out_dir``; returns the paths written.

    Args:
        result: the profile result.
        out_dir: folder (created when missing).
        formats: names from :data:`FORMATS` ("json" -> report.json, "md" -> report.md, "html" -> report.html,
            "trace" -> trace.json.gz); None: :data:`DEFAULT_FORMATS`.

    Raises:
        ValueError: an unknown format name (before anything is written).
    """
    fmts = tuple(DEFAULT_FORMATS if formats is None else formats)
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise ValueError(f"report formats {bad} unknown; choose from {sorted(FORMATS)}")
    out = Path(out_dir)
    paths = []
    for fmt in fmts:
        name, render = FORMATS[fmt]
        try:
            if render is None:  # the trace: gzip, written by its own writer
                paths.append(_write_trace(result, out / name))
            else:
                paths.append(atomic_write_text(out / name, render(result)))
        except Exception as e:
            if fmt not in _OPTIONAL:
                raise
            warnings.warn(f"pyprof: writing {name} failed ({type(e).__name__}: {e}); the other reports are written",
                          RuntimeWarning, stacklevel=2)
    return paths
