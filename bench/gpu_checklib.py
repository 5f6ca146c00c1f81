"""Pure parts of the GPU validation scripts (``bench/gpu_validate.py``, ``bench/gpu_check.py``): typed check statuses,
the loud failure rule, the difference-of-two-launches exact check and ncu output classification. Nothing here needs a
GPU, torch or pyprof's native code, so every rule is tested on a CPU (tests/test_bench_gpu.py, tests/test_gpu_check.py).
"""

from __future__ import annotations

import enum
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


class Status(str, enum.Enum):
    """Outcome of one validation check. ``str`` subclass so that rows stay plain JSON."""

    PASSED = "passed"
    FAILED = "failed"            # the check ran and disagreed, or it crashed: always counted, never swallowed
    SKIPPED = "skipped"          # not applicable here (no GPU, a kind this build lacks), with the reason
    UNAVAILABLE = "unavailable"  # the environment refuses what the check needs (counter permission, ncu's
    #                              "LibraryNotLoaded" in a sandboxed runtime): said so, not a pyprof defect


def row(check: str, status: Status, reason: str = "", **fields: Any) -> dict[str, Any]:
    """One result row: ``{"check", "status", "reason", ...fields}``; FAILED and UNAVAILABLE rows must say why.

    Raises:
        ValueError: a FAILED/UNAVAILABLE/SKIPPED row without a reason (a silent failure is the defect this prevents).
    """
    if status is not Status.PASSED and not reason:
        raise ValueError(f"check {check!r}: a {status.value} row needs a reason")
    return {"check": check, "status": status.value, "reason": reason, **fields}


def run_check(check: str, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Runs one check; an exception becomes a FAILED row naming the exception and where it was raised.

    A check function returns a row (see :func:`row`). A row without a valid ``status`` is itself a FAILED row: the
    old validation script returned rows without one, and a TypeError in a step was reported as nothing at all.
    """
    try:
        out = fn(*args)
    except Exception as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
        return row(check, Status.FAILED, f"{type(e).__name__}: {e}{where}")
    if not isinstance(out, dict) or out.get("status") not in {s.value for s in Status}:
        return row(check, Status.FAILED, f"the check returned no status: {str(out)[:200]}")
    out.setdefault("check", check)
    return out


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Count of rows per status, every status present (a zero is written, so 'failed: 0' is a statement)."""
    counts = {s.value: 0 for s in Status}
    for r in rows:
        counts[r.get("status", Status.FAILED.value)] = counts.get(r.get("status", Status.FAILED.value), 0) + 1
    return counts


# ------------------------------------------------------------------------------------------ difference of launches


@dataclass(frozen=True)
class Launch:
    """One launch of a peak kernel under the counters.

    Attributes:
        iterations: chain steps per thread (``gpu_peak``'s ``iterations`` after rounding to the unroll).
        formula_flops: the kernel's own FLOP formula for the launch (``gpu_peak``'s ``flops``).
        counted_flops: FLOPs the counters give for the same launch (pyprof's weights).
    """

    iterations: int
    formula_flops: float
    counted_flops: float


@dataclass(frozen=True)
class DifferenceCheck:
    """Result of :func:`difference_check`.

    Attributes:
        ratio: (counted_b - counted_a) / (formula_b - formula_a): counted FLOPs per formula FLOP of the timed chains.
        exact: ``ratio`` equals one of ``accepted`` within ``tolerance``.
        matched: the accepted ratio it equals (None when not exact).
        setup_flops_per_launch: ``counted_a - ratio x formula_a``: FLOPs the kernel executes outside its timed chains
            (setup FMAs, the final reduction), which is why a single launch never matches its formula exactly.
        reason: why it is not exact ("" when exact).
    """

    ratio: float | None
    exact: bool
    matched: float | None
    setup_flops_per_launch: float | None
    reason: str


def difference_check(a: Launch, b: Launch, accepted: Iterable[float] = (1.0,),
                     tolerance: float = 1e-9) -> DifferenceCheck:
    """Exact counter check by the difference of two launches with different iteration counts.

    The peak kernels execute setup FFMAs/FADDs/DADDs/HADD2s outside their timed chains (visible in the sm_90a SASS),
    a fixed amount per launch independent of the iteration count, so ``counted = ratio x formula + setup`` and the
    difference of two launches cancels the setup: ``ratio = (counted_b - counted_a) / (formula_b - formula_a)``.

    Args:
        a, b: two launches of the same kernel and launch shape with different iteration counts.
        accepted: ratios that count as exact. FFMA/DFMA: ``(1.0,)``. HFMA2 under ncu's FP16 definition
            (2 FLOP per HFMA2 thread instruction, the kernel's formula 4): ``(0.5, 1.0)``: 0.5 when the counter ticks
            once per HFMA2 thread instruction, 1.0 when once per lane; which one holds is the finding.
        tolerance: relative tolerance on the ratio. Counts are integers held exactly in doubles below 2^53, so
            anything but float rounding is a real difference.

    Returns:
        A :class:`DifferenceCheck`.

    Raises:
        ValueError: equal iteration counts or equal formula FLOPs (the difference would be 0/0).
    """
    if a.iterations == b.iterations or a.formula_flops == b.formula_flops:
        raise ValueError("difference_check needs two launches with different iteration counts "
                         f"(got {a.iterations} and {b.iterations})")
    ratio = (b.counted_flops - a.counted_flops) / (b.formula_flops - a.formula_flops)
    setup = a.counted_flops - ratio * a.formula_flops
    for want in accepted:
        if abs(ratio - want) <= tolerance * max(1.0, abs(want)):
            return DifferenceCheck(ratio, True, want, setup, "")
    return DifferenceCheck(ratio, False, None, setup,
                           f"counted/formula over the timed chains is {ratio:.9g}, not one of "
                           f"{', '.join(f'{x:g}' for x in accepted)}")


# ------------------------------------------------------------------------------------------ ncu


#: ncu output fragments that mean the environment refuses hardware counters, not that pyprof disagrees.
NCU_REFUSALS = {
    "LibraryNotLoaded": "ncu could not load its profiling library in this container (seen under gVisor): "
                        "hardware counters are not reachable here",
    "ERR_NVGPUCTRPERM": "the driver restricts GPU performance counters to admin users "
                        "(NVreg_RestrictProfilingToAdminUsers=1); run as root or with CAP_SYS_ADMIN",
    "InsufficientPrivileges": "insufficient privileges for GPU performance counters",
    "No kernels were profiled": "ncu saw no kernel launch (the child ran nothing, or ncu could not attach)",
}


def ncu_refusal(text: str) -> str:
    """The reason ncu's output (stdout + stderr) shows the environment refusing counters, or "" when it does not."""
    for needle, why in NCU_REFUSALS.items():
        if needle in text:
            return f"{why} (ncu: {needle})"
    return ""


def agreement(pyprof_values: dict[str, float], ncu_values: dict[str, float], tolerance: float = 0.01,
              skip: tuple[str, ...] = ("time", "cycles", "per_second", "dram")) -> tuple[dict[str, float], list[str]]:
    """pyprof / ncu per metric, and the metrics outside ``1 +- tolerance``.

    Metrics whose name contains a ``skip`` fragment are reported but not judged: times and cycles differ between a
    replayed and a plain launch, and DRAM bytes differ unless both run with caches untouched.

    Returns:
        ``(ratios, disagreeing)``; a metric with a zero or missing value on either side is left out of ``ratios``
        unless both are zero (then its ratio is 1.0: both saw no such work).
    """
    ratios: dict[str, float] = {}
    bad: list[str] = []
    for m, nv in ncu_values.items():
        pv = pyprof_values.get(m)
        if pv is None:
            continue
        if nv == 0 and pv == 0:
            ratios[m] = 1.0
            continue
        if not nv:  # pyprof counted work ncu did not see
            if not any(s in m for s in skip):
                bad.append(m)
            continue
        ratios[m] = pv / nv
        if not any(s in m for s in skip) and abs(ratios[m] - 1) > tolerance:
            bad.append(m)
    return ratios, bad
