"""The versioned JSON report: the one place that defines its schema version and reads it back."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
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
                           stacklevel: int = 3, warn: bool = True) -> None:
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
        warn: whether to warn about another minor version here (a caller that warns itself, once, passes False).

    Raises:
        ReportError: not a dict of that kind, or an unreadable major version.
    """
    other = d.get("kind") if isinstance(d, dict) else None
    if isinstance(other, str) and other != kind and other.startswith("pyprof."):
        raise ReportError(f"{where} is a pyprof {other.removeprefix('pyprof.')} report (kind '{other}'), not a pyprof "
                          f"{report} report: `pyprof report {where}` renders any kind")
    if not isinstance(d, dict) or d.get("kind") != kind or "schema_version" not in d:
        raise ReportError(f"{where} is JSON but not a pyprof {report} report (no kind='{kind}' / schema_version)")
    if not isinstance(d["schema_version"], str):
        raise ReportError(f"{where}: field 'schema_version' is {d['schema_version']!r}, not a version string such "
                          f"as '{version}': it may have been edited by hand")
    found = str(d["schema_version"])
    major = found.partition(".")[0]
    if major != version.partition(".")[0]:
        raise ReportError(f"{where} has {schema} schema version {found}, this pyprof reads {version}: "
                          f"use a pyprof release that writes {major}.x to read it")
    if found != version and warn:
        warnings.warn(f"{where}: {schema} schema version {found} differs from this pyprof's {version}; "
                      "fields added since may be ignored", UserWarning, stacklevel=stacklevel)


def _describe(v: Any) -> str:
    text = repr(v)
    return (text[:60] + "...") if len(text) > 60 else text


def _type_label(tp: Any) -> str:
    if tp is float:
        return "a number"
    if tp is int:
        return "a whole number"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list"
    if origin is dict or tp is dict:
        return "an object"
    if dataclasses.is_dataclass(tp):
        return "an object"
    return str(tp)


def conform(value: Any, tp: Any, path: str, *, ignored: list[str], where: Any) -> Any:
    """``value`` checked against the type ``tp`` of a record field, with fields unknown to ``tp`` dropped.

    ``tp`` is a record dataclass, ``list[X]``, ``dict[...]``, ``X | None``, ``float``, ``int``, ``str``, ``bool`` or
    ``Any``. Numbers may be JSON integers where floats are expected; a whole-number float is taken for an int.

    Args:
        value: the parsed JSON value.
        tp: the type it must have.
        path: where it is, for messages (``totals.steps``, ``steps[3].wall_time_s``).
        ignored: receives the paths of dropped unknown fields (list indices written ``[*]``).
        where: the file, for messages.

    Returns:
        The value, with unknown fields of records removed.

    Raises:
        ReportError: a missing field or a value of the wrong type; the message names the field, what it holds and
            what it should hold.
    """
    def bad() -> ReportError:
        return ReportError(f"{where}: field '{path}' is {_describe(value)}, expected {_type_label(tp)}; the report "
                           "may have been edited by hand or truncated: re-run to write it again")

    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return conform(value, a, path, ignored=ignored, where=where)
            except ReportError as e:
                errors.append(e)
        if len(inner) == 1:
            raise errors[0]
        raise ReportError(f"{where}: field '{path}' is {_describe(value)}, expected one of "
                          f"{', '.join(_type_label(a) for a in inner)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad()
        hints = typing.get_type_hints(tp)
        out: dict[str, Any] = {}
        typed_only = getattr(tp, "_TYPED", None)
        if typed_only is not None:
            # An open record (GpuCounters): its typed keys are checked, every other key is the source's own detail,
            # kept as written.
            for k in typed_only:
                if k in value:
                    out[k] = conform(value[k], hints[k], f"{path}.{k}" if path else k, ignored=ignored, where=where)
            return {k: out.get(k, v) for k, v in value.items()}
        for f in dataclasses.fields(tp):
            sub = f"{path}.{f.name}" if path else f.name
            if f.name not in value:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ReportError(f"{where}: field '{sub}' is missing; the report may have been edited by hand "
                                      "or written by another tool: re-run to write it again")
                continue
            out[f.name] = conform(value[f.name], hints[f.name], sub, ignored=ignored, where=where)
        for k in value:
            if k not in out and not any(f.name == k for f in dataclasses.fields(tp)):
                ignored.append(f"{path}.{k}" if path else str(k))
        return out
    if origin is list or tp is list:
        if not isinstance(value, list):
            raise bad()
        (item,) = typing.get_args(tp) or (Any,)
        return [conform(v, item, f"{path}[{i}]", ignored=ignored, where=where) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad()
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        if isinstance(value, float):
            if not value.is_integer():
                raise bad()
            return int(value)
        return value
    if tp is float:
        if value is None:
            return None  # to_json writes NaN and infinity as null (JSON has neither): a measured "no value"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    return value


def _unknown_fields_warning(where: Any, found: str, version: str, ignored: list[str], stacklevel: int) -> None:
    """One warning per read: another schema version, and which fields (if any) were ignored."""
    import re

    paths = sorted({re.sub(r"\[\d+\]", "[*]", p) for p in ignored})
    if found == version and not paths:
        return
    newer = tuple(int(x) if x.isdigit() else 0 for x in found.split(".")) > \
        tuple(int(x) if x.isdigit() else 0 for x in version.split("."))
    msg = f"{where}: schema version {found} differs from this pyprof's {version}"
    if paths:
        shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
        msg += f"; fields this pyprof does not know were ignored: {shown}"
    elif newer:
        msg += "; fields added since may be ignored"
    warnings.warn(msg, UserWarning, stacklevel=stacklevel)


def read_report(path: str | os.PathLike) -> ProfileResult:
    """Read a JSON report written by pyprof.

    Every field is checked against its record's type. A report of a newer minor schema version reads: fields this
    pyprof does not know are ignored, with one warning that names them (the promise of the minor version).

    Raises:
        ReportError: the file is missing, is not valid JSON, is not a pyprof profile report (another kind is named),
            has an unreadable schema major version, or a field is missing or of the wrong type (the message names
            the field, e.g. ``notes``, ``totals.steps``, ``steps[3].wall_time_s``).
    """
    p = Path(path)
    d = read_json_any(p)
    check_kind_and_version(d, kind=KIND, version=SCHEMA_VERSION, where=p, report="profile", schema="report",
                           warn=False)
    d = {k: v for k, v in d.items() if k != "kind"}
    ignored: list[str] = []
    clean = conform(d, ProfileResult, "", ignored=ignored, where=p)
    _unknown_fields_warning(p, str(d["schema_version"]), SCHEMA_VERSION, ignored, stacklevel=3)
    try:
        return ProfileResult.from_dict(clean)
    except (KeyError, TypeError, ValueError) as e:  # a record's own checks, after the types passed
        raise ReportError(f"{p} is a pyprof report but a field is malformed ({e}); it may have been edited by hand: "
                          "re-run the profile") from e
