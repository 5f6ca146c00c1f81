"""The versioned JSON report: the one place that defines its schema version and reads it back."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import ReportError
from ..result import ProfileResult

#: Bump the major version when a field changes meaning or is removed; the minor when fields are added.
SCHEMA_VERSION = "1.0"
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


def read_report(path: str | os.PathLike) -> ProfileResult:
    """Read a JSON report written by pyprof.

    Raises:
        ReportError: the file is missing, is not valid JSON, is not a pyprof report, or has an unreadable schema
            major version. A newer minor version reads with a warning.
    """
    p = Path(path)
    d = read_json_any(p)
    if d.get("kind") != KIND or "schema_version" not in d:
        raise ReportError(f"{p} is JSON but not a pyprof profile report (no kind='{KIND}' / schema_version)")
    version = str(d["schema_version"])
    major, _, _minor = version.partition(".")
    if major != SCHEMA_VERSION.partition(".")[0]:
        raise ReportError(f"{p} has report schema version {version}, this pyprof reads {SCHEMA_VERSION}: "
                          f"use a pyprof release that writes {major}.x to read it")
    if version != SCHEMA_VERSION:
        warnings.warn(f"{p}: report schema version {version} differs from this pyprof's {SCHEMA_VERSION}; "
                      "fields added since may be ignored", UserWarning, stacklevel=2)
    d.pop("kind", None)
    try:
        return ProfileResult.from_dict(d)
    except (KeyError, TypeError) as e:
        raise ReportError(f"{p} is a pyprof report but a field is missing or malformed ({e!r}); "
                          "it may have been edited by hand: re-run the profile") from e
