"""Method 2 with an uncertainty interval: a utilization *prior* instead of one assumed number.

Method 2 ("AI and compute") is ``devices x peak x time x utilization``; its weakest input is the utilization. Three
priors, and each result says which one it used:

* ``"published_assumption"``: the post's 33% (GPUs, also applied to TPUs) / 17% (CPUs). A flat assumption has no
  spread, so by default the interval is a **point** (low = median = high) and says so. ``spread="evidence"`` keeps
  the assumption as the median and borrows the relative spread of the published evidence.
* ``"published_evidence"``: accelerators (GPU/TPU): the 62 measured utilizations in Epoch AI's database
  (``pyprof/data/measured_utilization_epoch.csv``, CC BY; median 0.38, quartiles 0.30-0.50), optionally only those
  published before a date (pre-2020 median ~0.30). CPUs: no published measured figure exists; the back-of-envelope
  range 13-18% from large CPU-cluster runs (SEED_DATA.md) is used as the 5th-95th percentiles of a lognormal.
* ``"measured"``: pyprof's own measured utilization (``reconciliation.utilization_vs_spec``) from report.json files
  written by ``pyprof.profile`` (or ``pyprof bench``) for that device kind, optionally a device name and workload.

The interval is the prior's quantiles pushed through Method 2 (FLOP is proportional to utilization), so a 90%
interval is the 5th and 95th percentiles of the prior times ``devices x peak x time``.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyprof.accounting.estimate import Estimate, method2
from pyprof.constants import (
    ASSUMED_UTILIZATION_CPU,
    ASSUMED_UTILIZATION_GPU,
    PFS_DAY_FLOP,
    TFS_DAY_FLOP,
)
from pyprof.errors import InvalidInputError, ReportError

__all__ = [
    "PRIOR_KINDS",
    "Method2Interval",
    "UtilizationPrior",
    "method2_interval",
    "report_utilizations",
    "utilization_prior",
]

PRIOR_KINDS = ("published_assumption", "published_evidence", "measured")
_DEVICE_KINDS = ("gpu", "tpu", "cpu")
#: ProfileResult.device.kind values per device kind.
_REPORT_KINDS = {"gpu": ("cuda", "gpu", "rocm", "hip"), "tpu": ("tpu", "xla"), "cpu": ("cpu",)}
#: SEED_DATA.md: CPU back-of-envelope 13-18% from large CPU-cluster runs, used as 5th/95th percentiles.
CPU_EVIDENCE_RANGE = (0.13, 0.18)
_Z95 = statistics.NormalDist().inv_cdf(0.95)


@dataclass(frozen=True)
class UtilizationPrior:
    """A distribution of utilization (fraction of peak) with its source.

    Exactly one representation is set: ``point`` (no spread), ``samples`` (empirical), or ``lognormal``
    (``(mu, sigma)`` of ``ln(utilization)``).

    Attributes:
        kind: One of :data:`PRIOR_KINDS`.
        device_kind: ``"gpu"``, ``"tpu"`` or ``"cpu"``.
        source: Where the numbers come from, in words.
        point: The single value of a point prior.
        samples: The values of an empirical prior.
        lognormal: ``(mu, sigma)`` of a lognormal prior.
        notes: Choices and caveats.
    """

    kind: str
    device_kind: str
    source: str
    point: float | None = None
    samples: tuple[float, ...] = ()
    lognormal: tuple[float, float] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_point(self) -> bool:
        """True when the prior has no spread (every quantile is the same number)."""
        return self.point is not None or (bool(self.samples) and len(set(self.samples)) == 1)

    @property
    def n(self) -> int | None:
        """Number of values behind an empirical prior; None otherwise."""
        return len(self.samples) if self.samples else None

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (``0 <= q <= 1``; empirical priors interpolate linearly between values)."""
        if not 0 <= q <= 1:
            raise InvalidInputError(f"quantile q={q!r} must be in [0, 1]")
        if self.point is not None:
            return self.point
        if self.samples:
            return float(np.quantile(np.array(self.samples), q))
        assert self.lognormal is not None
        mu, sigma = self.lognormal
        q = min(max(q, 1e-12), 1 - 1e-12)
        return math.exp(mu + sigma * statistics.NormalDist().inv_cdf(q))

    @property
    def median(self) -> float:
        """The 0.5-quantile."""
        return self.quantile(0.5)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: kind, device_kind, source, n, point, quantiles (5/25/50/75/95%), min/max, notes."""
        qs = {f"q{int(q * 100):02d}": self.quantile(q) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
        return {"kind": self.kind, "device_kind": self.device_kind, "source": self.source, "n": self.n,
                "is_point": self.is_point, "point": self.point, "lognormal_mu_sigma": self.lognormal,
                "min": min(self.samples) if self.samples else None, "max": max(self.samples) if self.samples else None,
                **qs, "notes": list(self.notes)}


def _device_kind(device_kind: str) -> str:
    k = str(device_kind).strip().lower()
    if k in ("cuda", "accelerator"):
        k = "gpu"
    if k not in _DEVICE_KINDS:
        raise InvalidInputError(f"device_kind={device_kind!r}: use gpu, tpu or cpu")
    return k


def _epoch_evidence(published_before: str | None) -> tuple[list[float], str]:
    from pyprof.data import data_text
    rows = list(csv.DictReader(io.StringIO(data_text("measured_utilization_epoch.csv"))))
    if published_before is not None:
        from pyprof.accounting.trend import parse_date
        cut = parse_date(published_before, "published_before")
        rows = [r for r in rows if parse_date(r["publication_date"], f"Epoch row {r['model']}") < cut]
    values = [float(r["utilization_mfu"]) for r in rows if r["utilization_mfu"]]
    src = ("Epoch AI 'Notable AI Models' database: measured utilization of "
           f"{len(values)} training runs on GPUs/TPUs" + (f" published before {published_before}" if published_before
                                                          else "") + " (CC BY, credit Epoch AI)")
    return values, src


def _measured_rows(f: Path) -> list[tuple[str, str, str, str, float | None]]:
    """``(where, device kind, device name, run or workload name, utilization_vs_spec)`` of one report file.

    A ``pyprof.profile`` report gives one row (its ``reconciliation.utilization_vs_spec``); a ``pyprof bench``
    report gives one row per workload that ran (each workload's ``utilization_vs_spec``, named by workload).

    Raises:
        ReportError: not a readable pyprof profile or bench report.
    """
    from pyprof.report import read_report
    from pyprof.report.bench_schema import KIND as BENCH_KIND
    from pyprof.report.bench_schema import check_bench_dict
    from pyprof.report.json_report import read_json_any

    d = read_json_any(f)
    if d.get("kind") == BENCH_KIND:
        b = check_bench_dict(d, str(f))
        dev = b.get("device") or {}
        dk, dn = str(dev.get("kind", "")), str(dev.get("name", ""))
        rows = []
        for w in b.get("workloads") or []:
            if not isinstance(w, dict) or w.get("status") != "ok":
                continue
            name = str(w.get("name") or w.get("id") or "")
            rows.append((f"{f} workload {name!r}", dk, dn, f"{w.get('id', '')} {name}", w.get("utilization_vs_spec")))
        if not rows:
            raise ReportError(f"bench report {f} has no workload that ran")
        return rows
    res = read_report(f)
    rec = res.reconciliation
    return [(str(f), res.device.kind, res.device.name, str(res.run.get("name", "")),
             rec.utilization_vs_spec if rec is not None else None)]


def report_utilizations(reports: Sequence[str | Path], device_kind: str, *, device_name: str | None = None,
                        workload: str | None = None) -> tuple[list[float], list[str]]:
    """Measured utilizations (``reconciliation.utilization_vs_spec``) from pyprof report.json files.

    Args:
        reports: report.json paths of ``pyprof.profile`` or ``pyprof bench`` runs (each workload of a bench report
            counts once), or folders searched recursively for ``*.json`` reports (a bench folder works).
        device_kind: ``"gpu"``, ``"tpu"`` or ``"cpu"``; reports of other devices are skipped.
        device_name: Keep only reports whose device name contains this (case-insensitive).
        workload: Keep only reports whose run name contains this (case-insensitive): the workload class.

    Returns:
        ``(values, notes)``: the utilizations kept and what was skipped and why.

    Raises:
        InvalidInputError: a path does not exist, or no file in a folder is a pyprof report.
    """
    kind = _device_kind(device_kind)
    files: list[Path] = []
    for r in reports:
        p = Path(r)
        if p.is_dir():
            found = sorted(p.rglob("*.json"))
            if not found:
                raise InvalidInputError(f"folder {p} holds no .json report; pass report.json files written by pyprof")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InvalidInputError(f"report path {p} does not exist; pass report.json files or folders of them")
    values: list[float] = []
    notes: list[str] = []
    readable = 0
    for f in files:
        try:
            rows = _measured_rows(f)
        except ReportError as e:
            notes.append(f"skipped {f}: {e}")
            continue
        readable += 1
        for where, dk, dn, run_name, u in rows:
            if dk not in _REPORT_KINDS[kind]:
                notes.append(f"skipped {where}: device {dk} ({dn}), not {kind}")
                continue
            if device_name and device_name.lower() not in str(dn).lower():
                notes.append(f"skipped {where}: device {dn!r} does not contain {device_name!r}")
                continue
            if workload and workload.lower() not in str(run_name).lower():
                notes.append(f"skipped {where}: run {run_name!r} is not workload {workload!r}")
                continue
            if u is None or not isinstance(u, (int, float)) or not math.isfinite(u) or u <= 0:
                notes.append(f"skipped {where}: no measured utilization (no peak for its device?)")
                continue
            if u > 1:
                notes.append(f"skipped {where}: utilization {u:.3g} > 1, so the peak it divided by is too low")
                continue
            values.append(float(u))
    if files and not readable:
        raise InvalidInputError(f"none of the {len(files)} file(s) is a readable pyprof report: " + "; ".join(notes))
    return values, notes


def utilization_prior(kind: str = "published_evidence", device_kind: str = "gpu", reports: Sequence[str | Path] = (),
                      *, published_before: str | None = None, device_name: str | None = None,
                      workload: str | None = None, spread: str = "point") -> UtilizationPrior:
    """A utilization prior for Method 2.

    Args:
        kind: ``"published_assumption"``, ``"published_evidence"`` or ``"measured"``.
        device_kind: ``"gpu"``, ``"tpu"`` or ``"cpu"``.
        reports: For ``"measured"``: report.json paths or folders.
        published_before: For ``"published_evidence"`` on accelerators: keep runs published before this date
            (ISO or decimal year), e.g. ``"2020-01-01"`` for the pre-2020 evidence (median ~0.30).
        device_name: For ``"measured"``: keep reports whose device name contains this.
        workload: For ``"measured"``: keep reports whose run name contains this.
        spread: For ``"published_assumption"``: ``"point"`` (default: the flat assumption, no interval) or
            ``"evidence"`` (assumption as median, relative spread of the published evidence).

    Returns:
        The :class:`UtilizationPrior`; its ``source`` says which evidence it is.

    Raises:
        InvalidInputError: unknown kind/device/spread; ``"measured"`` without reports or with none matching.
    """
    dk = _device_kind(device_kind)
    if kind not in PRIOR_KINDS:
        raise InvalidInputError(f"prior kind {kind!r}: use one of {', '.join(PRIOR_KINDS)}")
    if spread not in ("point", "evidence"):
        raise InvalidInputError(f"spread={spread!r}: use 'point' or 'evidence'")
    if kind == "published_assumption":
        value = ASSUMED_UTILIZATION_CPU if dk == "cpu" else ASSUMED_UTILIZATION_GPU
        src = (f"published assumption {value:.0%} for {'CPUs' if dk == 'cpu' else 'GPUs'} ('AI and compute', 2018)"
               + ("; applied to a TPU (the post gives GPU and CPU figures only)" if dk == "tpu" else ""))
        if spread == "point":
            return UtilizationPrior(kind, dk, src, point=value, notes=(
                "a flat assumption has no spread: the interval is a point; use the published_evidence prior or "
                "spread='evidence' for an interval",))
        ev = utilization_prior("published_evidence", dk, published_before=published_before)
        med = ev.median
        if ev.samples:
            samples = tuple(min(1.0, value * s / med) for s in ev.samples)
            return UtilizationPrior(kind, dk, src + f"; relative spread of: {ev.source}", samples=samples,
                                    notes=("median fixed at the assumption, spread borrowed from the evidence "
                                           "(values above 1 capped at 1)",))
        assert ev.lognormal is not None
        return UtilizationPrior(kind, dk, src + f"; relative spread of: {ev.source}",
                                lognormal=(math.log(value), ev.lognormal[1]),
                                notes=("median fixed at the assumption, spread borrowed from the evidence",))
    if kind == "published_evidence":
        if dk == "cpu":
            lo, hi = CPU_EVIDENCE_RANGE
            mu = math.log(math.sqrt(lo * hi))
            sigma = math.log(hi / lo) / (2 * _Z95)
            return UtilizationPrior(kind, dk, "no published measured CPU utilization found; the back-of-envelope "
                                    "13-18% from large CPU-cluster runs (SEED_DATA.md) taken as the 5th-95th "
                                    "percentiles of a lognormal", lognormal=(mu, sigma),
                                    notes=("weak evidence: prefer a measured prior (pyprof profile on the CPU)",))
        values, src = _epoch_evidence(published_before)
        if len(values) < 2:
            raise InvalidInputError(f"only {len(values)} published measurement(s) before {published_before}; "
                                    "choose a later date")
        published_notes = ("all 62 runs are accelerators (41 GPU, 17 TPU, 2 unnamed, 1 Trainium, 1 Ascend); most "
                           "are large language models, measured as MFU",)
        return UtilizationPrior(kind, dk, src, samples=tuple(values), notes=published_notes)
    if not reports:
        raise InvalidInputError("the measured prior needs reports=[...]: report.json files (or folders of them) "
                                "written by pyprof.profile(output_dir=...) or pyprof bench on this device kind")
    values, notes = report_utilizations(reports, dk, device_name=device_name, workload=workload)
    if not values:
        raise InvalidInputError(f"no report gives a measured {dk} utilization"
                                + (f" for device {device_name!r}" if device_name else "")
                                + (f" and workload {workload!r}" if workload else "") + ": " + "; ".join(notes))
    what = f"pyprof measured utilization (vs spec/theoretical peak) of {len(values)} report(s) on {dk}"
    what += f" '{device_name}'" if device_name else ""
    what += f", workload '{workload}'" if workload else ""
    if len(values) == 1:
        notes = ["one measurement: the interval is a point"] + notes
        return UtilizationPrior("measured", dk, what, point=values[0], notes=tuple(notes))
    return UtilizationPrior("measured", dk, what, samples=tuple(values), notes=tuple(notes))


@dataclass(frozen=True)
class Method2Interval:
    """Method 2 at the prior's low, median and high utilization.

    Attributes:
        low, median, high: :class:`~pyprof.estimate.Estimate` at the ``(1 - level) / 2``, 0.5 and
            ``(1 + level) / 2`` quantiles of the utilization prior.
        level: Probability the prior puts between low and high.
        prior: The :class:`UtilizationPrior` used.
        is_point: True when the prior has no spread (low = median = high).
        notes: Caveats.
    """

    low: Estimate
    median: Estimate
    high: Estimate
    level: float
    prior: UtilizationPrior
    is_point: bool
    notes: tuple[str, ...] = ()

    @property
    def flop(self) -> tuple[float, float, float]:
        """``(low, median, high)`` FLOP."""
        return self.low.flop, self.median.flop, self.high.flop

    @property
    def pfs_days(self) -> tuple[float, float, float]:
        """``(low, median, high)`` pfs-days."""
        return tuple(f / PFS_DAY_FLOP for f in self.flop)  # type: ignore[return-value]

    @property
    def tfs_days(self) -> tuple[float, float, float]:
        """``(low, median, high)`` tfs-days."""
        return tuple(f / TFS_DAY_FLOP for f in self.flop)  # type: ignore[return-value]

    @property
    def utilization(self) -> tuple[float, float, float]:
        """``(low, median, high)`` utilization."""
        return (self.low.inputs["utilization"], self.median.inputs["utilization"], self.high.inputs["utilization"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"level": self.level, "is_point": self.is_point, "flop": list(self.flop),
                "pfs_days": list(self.pfs_days), "tfs_days": list(self.tfs_days),
                "utilization": list(self.utilization), "prior": self.prior.summary(),
                "median_estimate": self.median.to_dict(), "notes": list(self.notes)}

    def __str__(self) -> str:
        lo, mid, hi = self.pfs_days
        if self.is_point:
            return f"{mid:.4g} pfs-days (a point: the prior has no spread) [{self.prior.source}]"
        return (f"{mid:.4g} pfs-days, {self.level:.0%} interval {lo:.4g}-{hi:.4g} (utilization "
                f"{self.utilization[0]:.2f}-{self.utilization[2]:.2f}) [{self.prior.source}]")


def method2_interval(*, hardware: str | None = None, peak_flops_per_s: float | None = None, count: int = 1,
                     days: float | None = None, prior: UtilizationPrior | str | None = None, level: float = 0.9,
                     precision: str = "fp32", clock: str | None = None, extra_factor: float = 1.0,
                     reports: Sequence[str | Path] = (), device_hours: float | None = None) -> Method2Interval:
    """Method 2 with an interval from a utilization prior.

    Args:
        hardware: Hardware name (see ``pyprof estimate --list-hardware``); also decides the device kind.
        peak_flops_per_s: Peak per device in FLOP/s (overrides the database).
        count: Devices.
        days: Training days (with ``count``); or give ``device_hours`` instead.
        prior: A :class:`UtilizationPrior`, a prior kind name, or None for ``"published_evidence"`` of the
            hardware's kind (GPU when no hardware is named).
        level: Probability between low and high, in (0, 1); 0.9 gives the 5th-95th percentiles.
        precision, clock, extra_factor: As in :func:`pyprof.estimate.method2`.
        reports: For a ``"measured"`` prior given by name.
        device_hours: Device-hours summed over devices (GPU-hours as papers report them), instead of ``days``.

    Returns:
        The :class:`Method2Interval`.

    Raises:
        InvalidInputError: bad level; a prior for another device kind than the hardware's; any error of
            :func:`pyprof.estimate.method2` or :func:`utilization_prior`.
    """
    if not (isinstance(level, (int, float)) and not isinstance(level, bool) and 0 < level < 1):
        raise InvalidInputError(f"level={level!r} must be in (0, 1), e.g. 0.9")
    notes: list[str] = []
    hw_kind = None
    if hardware is not None:
        from pyprof.peaks import database as peaks
        hw_kind = peaks.hardware_kind(hardware)
    if prior is None or isinstance(prior, str):
        dk = hw_kind or "gpu"
        if hw_kind is None:
            notes.append("no hardware named: a GPU prior was used")
        prior = utilization_prior(prior or "published_evidence", dk, reports)
    elif not isinstance(prior, UtilizationPrior):
        raise InvalidInputError(f"prior={prior!r}: pass a UtilizationPrior or one of {', '.join(PRIOR_KINDS)}")
    if hw_kind is not None and (hw_kind == "cpu") != (prior.device_kind == "cpu"):
        raise InvalidInputError(f"the prior is for {prior.device_kind} but {hardware!r} is a {hw_kind}: build the "
                                f"prior with device_kind={hw_kind!r}")
    qs = ((1 - level) / 2, 0.5, (1 + level) / 2)
    utils = [min(1.0, prior.quantile(q)) for q in qs]
    ests = [method2(hardware=hardware, peak_flops_per_s=peak_flops_per_s, count=count, days=days, utilization=u,
                    precision=precision, clock=clock, extra_factor=extra_factor, device_hours=device_hours)
            for u in utils]
    src = f"{prior.kind} prior: {prior.source}"
    ests = [Estimate(e.method, e.flop, {**e.inputs, "utilization_source": f"{name} of the {src}"}, e.formula)
            for e, name in zip(ests, (f"{qs[0]:.3g}-quantile", "median", f"{qs[2]:.3g}-quantile"))]
    notes += list(prior.notes)
    return Method2Interval(low=ests[0], median=ests[1], high=ests[2], level=float(level), prior=prior,
                           is_point=prior.is_point, notes=tuple(notes))
