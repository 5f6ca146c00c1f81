"""The versioned JSON report: the one place that defines its schema version and reads it back."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from pyprof.errors import ReportError
from pyprof.records import ProfileResult
#: Bump the major version when a field changes meaning or is removed; the minor when fields are added.
SCHEMA_VERSION = "1.2"  # 1.1: per-step and run-level "gpu" sections; 1.2: steps_window
KIND = "pyprof.profile"


def json_safe(x: Any) -> Any:
    """Nested dicts/lists with NaN and inf replaced by None (JSON has neither) and keys made strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def to_json(result: ProfileResult) -> str:
    """Serialize a result as the versioned JSON report."""
    d = result.to_dict()
    d = {"kind": KIND, **d}
    return json.dumps(json_safe(d), indent=2, sort_keys=False, allow_nan=False) + "\n"


def read_json_any(path: str | os.PathLike) -> dict[str, Any]:
    """Read a pyprof JSON report of any kind as a dict (``kind`` says which).

    Raises:
        ReportError: missing file or invalid JSON.
    """
    p = Path(path)
    if not p.exists():
        raise ReportError(f"report file {p} does not exist: pass the path of a report.json written by pyprof "
                          "(`pyprof bench --out DIR` or `pyprof example --out DIR` write DIR/report.json)")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"report file {p} is not valid JSON ({e}); it may be truncated or not a pyprof report: "
                          "re-run to write it again") from e
    if not isinstance(d, dict):
        raise ReportError(f"{p} is JSON but not a pyprof report (not an object)")
    return d


def check_kind_and_version(d: Any, *, kind: str, version: str, where: Any, report: str, schema: str,
                           stacklevel: int = 3) -> None:
    """Check a parsed report's ``kind`` and ``schema_version``: another kind or major version is an error, another
    minor version a warning (fields added since may be ignored).

    Args:
        d: the parsed JSON.
        kind: the expected ``kind``.
        version: the schema version this pyprof writes.
        where: the file, for the messages.
        report: what the report is called in messages ("profile", "bench").
        schema: what its schema is called in messages ("report", "bench").
        stacklevel: for the minor-version warning, counted from this function.

    Raises:
        ReportError: not a dict of that kind, or an unreadable major version.
    """
    if not isinstance(d, dict) or d.get("kind") != kind or "schema_version" not in d:
        raise ReportError(f"{where} is JSON but not a pyprof {report} report (no kind='{kind}' / schema_version)")
    found = str(d["schema_version"])
    major = found.partition(".")[0]
    if major != version.partition(".")[0]:
        raise ReportError(f"{where} has {schema} schema version {found}, this pyprof reads {version}: "
                          f"use a pyprof release that writes {major}.x to read it")
    if found != version:
        warnings.warn(f"{where}: {schema} schema version {found} differs from this pyprof's {version}; "
                      "fields added since may be ignored", UserWarning, stacklevel=stacklevel)


def read_report(path: str | os.PathLike) -> ProfileResult:
    """Read a JSON report written by pyprof.

    Raises:
        ReportError: the file is missing, is not valid JSON, is not a pyprof report, or has an unreadable schema
            major version. A newer minor version reads with a warning.
    """
    p = Path(path)
    d = read_json_any(p)
    check_kind_and_version(d, kind=KIND, version=SCHEMA_VERSION, where=p, report="profile", schema="report")
    d.pop("kind", None)
    try:
        return ProfileResult.from_dict(d)
    except (KeyError, TypeError) as e:
        raise ReportError(f"{p} is a pyprof report but a field is missing or malformed ({e!r}); "
                          "it may have been edited by hand: re-run the profile") from e
