"""The versioned JSON report of ``pyprof bench``: the one place that defines its schema, writes and reads it.

A bench report is one JSON object with ``kind = "pyprof.bench"`` and ``schema_version``; its records are the
dataclasses below (plain data). Numbers carry their unit in their name (``time_s``, ``flops_per_s``, ``bytes``);
:data:`METRICS` lists the stable, path-like ids of the figures a report holds, with unit and description.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from pyprof.errors import ReportError
from pyprof.report.json_report import (
    _unknown_fields_warning,
    check_kind_and_version,
    conform,
    json_safe,
    read_json_any,
)

KIND = "pyprof.bench"
#: Bump the major version when a field changes meaning or is removed; the minor when fields are added.
SCHEMA_VERSION = "1.0"

#: Stable metric ids: id -> (unit, description).
METRICS: dict[str, tuple[str, str]] = {
    "peak/spec/flops_per_s": ("FLOP/s", "vendor spec peak (GPU) or theoretical peak cores x clock x FLOP/cycle (CPU)"),
    "peak/measured/flops_per_s": ("FLOP/s", "peak measured on this machine by pyprof's FMA microkernel (best of repeats)"),
    "memory/bandwidth/bytes_per_s": ("B/s", "streaming triad bandwidth a = b + s*c, median of repeats"),
    "micro/time_s/median": ("s", "median time of one call over timed repeats after warm-up"),
    "micro/flops": ("FLOP", "analytic FLOPs of one call (2 per multiply-add)"),
    "micro/bytes": ("B", "minimal memory traffic of one call: inputs read once, output written once"),
    "micro/achieved/flops_per_s": ("FLOP/s", "flops / time_s_median"),
    "micro/roofline/bound_flops_per_s": ("FLOP/s", "min(measured peak, intensity x bandwidth)"),
    "micro/utilization_vs_peak": ("1", "achieved / peak of the same kind as the workloads use"),
    "micro/fraction_of_roofline": ("1", "achieved / roofline bound"),
    "workload/step_time_s/median": ("s", "median wall time of the timed (not counted) training steps"),
    "workload/flops_per_step": ("FLOP", "analytic FLOPs of one training step (forward + backward + optimizer)"),
    "workload/achieved/flops_per_s": ("FLOP/s", "analytic FLOPs of the timed steps / their wall time"),
    "workload/utilization_vs_spec": ("1", "achieved / spec (GPU) or theoretical (CPU) peak: what Method 2 assumes"),
    "workload/utilization_vs_measured": ("1", "achieved / measured peak"),
    "workload/error_factor": ("1", "max(assumed/measured, measured/assumed) for utilization_vs_spec"),
    "workload/kernel_time_s": ("s", "time by kernel class (gemm, conv, attention, elementwise, other) in one traced step"),
}

#: Kernel classes of the time breakdown, in display order.
KERNEL_CLASSES = ("gemm", "conv", "attention", "elementwise", "other")


@dataclass
class MicroResult:
    """One microbenchmark: an operator at one shape and dtype."""

    id: str                       # stable, path-like: "gemm/fp32/1024x1024x1024"
    family: str                   # gemm, conv, attention, elementwise
    name: str
    dtype: str
    shape: str
    status: str = "ok"            # ok, skipped, failed
    reason: str = ""
    flops: float | None = None
    flops_dense: float | None = None   # attention: the dense count, where flops is the effective (causal) one
    bytes: float | None = None
    time_s_median: float | None = None
    time_s_min: float | None = None
    repeats: int = 0
    achieved_flops_per_s: float | None = None
    achieved_bytes_per_s: float | None = None
    intensity_flop_per_byte: float | None = None
    peak_flops_per_s: float | None = None
    peak_kind: str = ""
    roofline_bound_flops_per_s: float | None = None
    bound: str = ""               # "compute" or "memory": which roof is lower at this intensity
    utilization_vs_peak: float | None = None
    fraction_of_roofline: float | None = None


@dataclass
class WorkloadResult:
    """One training-step workload: a model trained for a few steps under ``pyprof.profile()``."""

    id: str
    name: str
    family: str                   # cnn, transformer, rnn, framework-agnostic
    status: str = "ok"            # ok, skipped, failed
    reason: str = ""
    source: str = ""              # where the model definition comes from (torchvision, pyprof.bench.models, cupy)
    config: dict[str, Any] = field(default_factory=dict)
    params: int | None = None
    steps_timed: int = 0
    step_time_s_median: float | None = None
    step_time_s_min: float | None = None
    step_time_s_max: float | None = None
    examples_per_s: float | None = None
    flops_per_step: float | None = None
    achieved_flops_per_s: float | None = None
    peak_spec_flops_per_s: float | None = None
    peak_measured_flops_per_s: float | None = None
    utilization_vs_spec: float | None = None
    utilization_vs_measured: float | None = None
    assumed_utilization: float | None = None
    error_factor: float | None = None
    error_direction: str = ""
    error_factor_vs_measured: float | None = None
    step_utilization_vs_spec: list[float | None] = field(default_factory=list)  # per timed step, in order
    kernel_time_s: dict[str, float] = field(default_factory=dict)              # by KERNEL_CLASSES, one traced step
    kernel_source: str = ""
    wall_time_s: float | None = None           # the whole workload, building the model included
    profile: dict[str, Any] | None = None      # summary of the embedded pyprof.profile() result
    notes: list[str] = field(default_factory=list)


@dataclass
class BenchReport:
    """A whole ``pyprof bench`` run."""

    run: dict[str, Any]
    device: dict[str, Any]
    sources: dict[str, str]
    peaks: dict[str, Any]
    assumed_utilization: float
    assumed_utilization_source: str
    throttle: dict[str, Any]
    microbenchmarks: list[MicroResult] = field(default_factory=list)
    workloads: list[WorkloadResult] = field(default_factory=list)
    trace: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    kind: str = KIND
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        out = {"kind": d.pop("kind"), "schema_version": d.pop("schema_version"), **d}
        out["metrics"] = {k: {"unit": u, "description": s} for k, (u, s) in METRICS.items()}
        return json_safe(out)


def to_bench_json(report: BenchReport | dict[str, Any]) -> str:
    """Serialize a bench report (dataclass or its dict) as JSON text."""
    d = report.to_dict() if isinstance(report, BenchReport) else json_safe(report)
    return json.dumps(d, indent=1, allow_nan=False) + "\n"


def check_bench_dict(d: Any, where: str = "report") -> dict[str, Any]:
    """Validate a parsed bench report and return it.

    Raises:
        ReportError: not a bench report, an unreadable major version, or a required field missing.
    """
    check_kind_and_version(d, kind=KIND, version=SCHEMA_VERSION, where=where, report="bench", schema="bench",
                           stacklevel=4, warn=False)
    missing = [k for k in ("run", "device", "peaks", "workloads", "microbenchmarks") if k not in d]
    if missing:
        raise ReportError(f"{where} is a pyprof bench report but lacks {missing}; it may have been edited by hand: "
                          "re-run `pyprof bench`")
    # Every field checked against its record's type (a clear error naming the field, never a traceback in a
    # renderer); fields a newer minor version added are ignored with one warning. "metrics" is derived, not a field.
    ignored: list[str] = []
    body = {k: v for k, v in d.items() if k != "metrics"}
    clean = conform(body, BenchReport, "", ignored=ignored, where=where)
    _unknown_fields_warning(where, str(d["schema_version"]), SCHEMA_VERSION, ignored, stacklevel=4)
    if "metrics" in d:
        clean["metrics"] = d["metrics"]
    return clean


def read_bench_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a ``pyprof bench`` report.json.

    Raises:
        ReportError: see :func:`check_bench_dict` and :func:`read_json_any`.
    """
    return check_bench_dict(read_json_any(path), str(path))
