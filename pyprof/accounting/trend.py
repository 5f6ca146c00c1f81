"""Trends in training compute: doubling and halving times by least squares, with a bootstrap interval.

"AI and compute" (2018) fits the growth of the largest training runs (3.4-month doubling, > 300,000x AlexNet ->
AlphaGo Zero); "AI and efficiency" (2020) fits the fall of the compute needed to reach AlexNet-level accuracy
(44x, 16-month halving). Both are ordinary least squares of ``log2(compute)`` on the date in decimal years:
``log2(compute) = a + slope x year``, doubling time ``12 / slope`` months (halving time ``-12 / slope`` when the
series falls).

Datasets: the shipped ``"ai_and_compute"`` and ``"ai_and_efficiency"`` (see ``pyprof/data/README.md``) or a CSV of
your own with a ``date`` column (ISO ``YYYY-MM-DD`` or a decimal year such as ``2012.75``) and one compute column:
``flop``, ``pfs_days``, ``tfs_days``, ``compute_pfs_days``, ``compute_tfs_days``, or ``compute`` with a ``unit``
column (``flop``, ``pfs_days``, ``tfs_days``, ``petaflop``). Optional: a name column (``system``, ``publication``,
``name``, ``model``), a series column (``series`` or ``metric``), and ``in_trend_fit`` (true/false) to leave rows out.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyprof.constants import PETA, PFS_DAY_FLOP, TFS_DAY_FLOP
from pyprof.errors import InvalidInputError

__all__ = [
    "MOORES_LAW_DOUBLING_MONTHS",
    "SHIPPED_DATASETS",
    "Dataset",
    "TrendFit",
    "TrendPoint",
    "compute_ratio",
    "fit_doubling_time",
    "load_dataset",
    "moores_law_factor",
    "parse_date",
    "plot_trend",
    "read_csv_text",
    "running_frontier",
]

#: Moore's law as the seeds use it: a 2-year doubling ("AI and compute": "a 2-year doubling period would yield only
#: a 7x increase"; "AI and efficiency": "Moore's Law would yield an 11x cost improvement over this period").
MOORES_LAW_DOUBLING_MONTHS = 24.0

#: Unit name -> FLOP per unit.
UNITS: dict[str, float] = {"flop": 1.0, "petaflop": PETA, "pfs_days": PFS_DAY_FLOP, "tfs_days": TFS_DAY_FLOP}
_COMPUTE_COLUMNS = {"flop": "flop", "flops": "flop", "pfs_days": "pfs_days", "tfs_days": "tfs_days",
                    "compute_pfs_days": "pfs_days", "compute_tfs_days": "tfs_days", "compute_flop": "flop"}
_NAME_COLUMNS = ("system", "publication", "name", "model")
_SERIES_COLUMNS = ("series", "metric")

#: Shipped dataset name -> (file, direction, default series, description).
SHIPPED_DATASETS: dict[str, tuple[str, str, str | None, str]] = {
    "ai_and_compute": ("ai_and_compute.csv", "increasing", None,
                       '"AI and compute" (2018): the 15 charted systems, Method 1 where the post gives both'),
    "ai_and_efficiency": ("ai_and_efficiency.csv", "decreasing", "AlexNet",
                          '"AI and efficiency" (2020): compute to reach a fixed capability'),
}

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL_YEAR = re.compile(r"^\d{4}(\.\d+)?$")


@dataclass(frozen=True)
class TrendPoint:
    """One system: its date and training compute.

    Attributes:
        name: The system.
        date: The date as written in the source.
        year: Decimal year (``2012-09-30`` -> 2012.747).
        flops: Training compute in FLOP.
        series: The series (capability level) the point belongs to, or None.
        provenance: ``verbatim`` / ``chart`` / ``derived`` / free text.
        row: 1-based data row in the source file (header excluded).
    """

    name: str
    date: str
    year: float
    flops: float
    series: str | None = None
    provenance: str = ""
    row: int = 0

    @property
    def pfs_days(self) -> float:
        """``flops / 8.64e19``."""
        return self.flops / PFS_DAY_FLOP

    @property
    def tfs_days(self) -> float:
        """``flops / 8.64e16``."""
        return self.flops / TFS_DAY_FLOP


@dataclass(frozen=True)
class Dataset:
    """Points to fit, with where they came from.

    Attributes:
        name: Shipped dataset name or file path.
        points: The points, in file order.
        unit: The unit the file gave compute in (``pfs_days``, ``tfs_days``, ``flop``, or ``mixed``).
        direction: ``"increasing"``, ``"decreasing"`` or None (inferred at fit time).
        series: The series selected, or None.
        excluded: Names of rows left out (``in_trend_fit`` false, or another series).
        notes: Anything the reader should know (conversions, defaults chosen).
    """

    name: str
    points: tuple[TrendPoint, ...]
    unit: str
    direction: str | None = None
    series: str | None = None
    excluded: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_rows(self) -> list[dict[str, Any]]:
        """The points as a table (dicts), in the dataset's unit and in FLOP."""
        return [{"name": p.name, "date": p.date, "year": p.year, "flop": p.flops, "pfs_days": p.pfs_days,
                 "tfs_days": p.tfs_days, "series": p.series, "provenance": p.provenance} for p in self.points]


def parse_date(value: Any, where: str = "") -> float:
    """A date as a decimal year. Accepts ISO ``YYYY-MM-DD`` or a decimal year (``2012.75``), nothing else.

    Args:
        value: The cell (str, int or float).
        where: Where it came from, for the error message (e.g. ``"row 3 of data.csv"``).

    Returns:
        The decimal year: ``year + (day of year - 1) / days in that year``.

    Raises:
        InvalidInputError: the date does not parse or lies outside 1900-2200.
    """
    at = f" ({where})" if where else ""
    fix = "write ISO YYYY-MM-DD (e.g. 2012-09-30) or a decimal year (e.g. 2012.75)"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        year = float(value)
    else:
        s = str(value).strip()
        if _ISO.match(s):
            try:
                d = _dt.date.fromisoformat(s)
            except ValueError as e:
                raise InvalidInputError(f"date {s!r}{at} is not a calendar date ({e}); {fix}") from None
            start = _dt.date(d.year, 1, 1)
            days = (_dt.date(d.year + 1, 1, 1) - start).days
            return d.year + (d - start).days / days
        if not _DECIMAL_YEAR.match(s):
            raise InvalidInputError(f"date {s!r}{at} does not parse; {fix}")
        year = float(s)
    if not math.isfinite(year) or not 1900 <= year <= 2200:
        raise InvalidInputError(f"date {value!r}{at} is outside 1900-2200; {fix}")
    return year


def _number(cell: str, where: str, what: str) -> float:
    try:
        v = float(str(cell).strip())
    except ValueError:
        raise InvalidInputError(f"{what} {cell!r} ({where}) is not a number; write e.g. 0.0054 or 4.7e17") from None
    if not math.isfinite(v) or v <= 0:
        raise InvalidInputError(f"{what} {cell!r} ({where}) must be a positive finite number: training compute "
                                "cannot be zero or negative (log2 of it is the fitted quantity)")
    return v


def _truthy(cell: str | None) -> bool:
    return str(cell).strip().lower() not in ("false", "0", "no", "n", "")


def read_csv_text(text: str, source: str, *, series: str | None = None, include_all: bool = False,
                  direction: str | None = None) -> Dataset:
    """Parse a trend CSV (see the module docstring for its columns).

    Args:
        text: The CSV text.
        source: Its name, for messages.
        series: Keep only this series (``series``/``metric`` column); required when the file holds several.
        include_all: Keep rows whose ``in_trend_fit`` is false.
        direction: ``"increasing"``/``"decreasing"``/None.

    Returns:
        The :class:`Dataset`.

    Raises:
        InvalidInputError: no date or compute column, two compute columns (mixed units), an unknown unit, a date
            that does not parse, non-positive compute, several series and none chosen, an unknown series.
    """
    reader = csv.DictReader(io.StringIO(text))
    cols = [c.strip() for c in (reader.fieldnames or [])]
    low = {c.lower(): c for c in cols}
    if "date" not in low:
        raise InvalidInputError(f"{source}: no 'date' column (columns: {', '.join(cols) or 'none'}); add one with "
                                "ISO YYYY-MM-DD or decimal-year dates")
    compute_cols = [c for c in low if c in _COMPUTE_COLUMNS]
    has_unit_col = "compute" in low and "unit" in low
    if len(compute_cols) + has_unit_col > 1:
        found = [low[c] for c in compute_cols] + (["compute+unit"] if has_unit_col else [])
        raise InvalidInputError(f"{source}: mixed units: columns {', '.join(found)} all give compute; keep one "
                                "compute column so every row is in the same unit")
    if not compute_cols and not has_unit_col:
        raise InvalidInputError(f"{source}: no compute column; add one of {', '.join(sorted(_COMPUTE_COLUMNS))}, "
                                "or 'compute' with a 'unit' column (flop, pfs_days, tfs_days, petaflop)")
    name_col = next((low[c] for c in _NAME_COLUMNS if c in low), None)
    series_col = next((low[c] for c in _SERIES_COLUMNS if c in low), None)
    include_col = low.get("in_trend_fit") or low.get("include")
    notes: list[str] = []
    points: list[TrendPoint] = []
    excluded: list[str] = []
    units_seen: set[str] = set()
    rows = list(reader)
    for i, raw in enumerate(rows, start=1):
        r = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"row {i} (line {i + 1}) of {source}"
        name = r.get(name_col, "") if name_col else f"row {i}"
        name = name or f"row {i}"
        ser = r.get(series_col) if series_col else None
        if compute_cols:
            col = low[compute_cols[0]]
            unit = _COMPUTE_COLUMNS[compute_cols[0]]
            value = _number(r.get(col, ""), where, col)
        else:
            unit = r.get(low["unit"], "").lower()
            if unit not in UNITS:
                raise InvalidInputError(f"unit {r.get(low['unit'])!r} ({where}) unknown; use one of "
                                        f"{', '.join(UNITS)}")
            value = _number(r.get(low["compute"], ""), where, "compute")
        units_seen.add(unit)
        year = parse_date(r.get(low["date"], ""), where)
        pt = TrendPoint(name=name, date=r.get(low["date"], ""), year=year, flops=value * UNITS[unit], series=ser,
                        provenance=r.get("provenance", ""), row=i)
        if include_col and not include_all and not _truthy(r.get(include_col)):
            excluded.append(f"{name} (row {i}, {include_col}=false)")
            continue
        points.append(pt)
    all_series = sorted({p.series for p in points if p.series})
    if series is not None:
        if series not in all_series:
            raise InvalidInputError(f"{source}: no series {series!r}; it has {', '.join(all_series) or 'none'}")
        excluded += [f"{p.name} (series {p.series})" for p in points if p.series != series]
        points = [p for p in points if p.series == series]
    elif len(all_series) > 1:
        raise InvalidInputError(f"{source} holds several series ({', '.join(all_series)}); a trend needs one: "
                                "choose one with series=... (--series on the command line)")
    unit_label = next(iter(units_seen)) if len(units_seen) == 1 else ("mixed" if units_seen else "flop")
    if unit_label == "mixed":
        notes.append(f"MIXED UNITS: rows were given in {', '.join(sorted(units_seen))}; each row was converted "
                     "to FLOP by its own unit before fitting")
    if not points:
        raise InvalidInputError(f"{source}: no rows left to fit (excluded: {len(excluded)})")
    return Dataset(name=source, points=tuple(points), unit=unit_label, direction=direction, series=series,
                   excluded=tuple(excluded), notes=tuple(notes))


def load_dataset(name_or_path: str | Path, *, series: str | None = None, include_all: bool = False) -> Dataset:
    """Load a shipped dataset or your own CSV.

    Args:
        name_or_path: ``"ai_and_compute"``, ``"ai_and_efficiency"`` or a CSV path.
        series: A series of a multi-series file. ``ai_and_efficiency`` defaults to ``"AlexNet"`` (the headline
            series); its others are ``ResNet-50``, ``Seq2Seq`` and ``GNMT``.
        include_all: Keep rows marked ``in_trend_fit=false`` (``ai_and_compute``'s Method 2 duplicates).

    Returns:
        The :class:`Dataset`.

    Raises:
        InvalidInputError: unknown name and no such file; any error of :func:`read_csv_text`.
    """
    key = str(name_or_path)
    if key in SHIPPED_DATASETS:
        from pyprof.data import data_text
        fname, direction, default_series, _ = SHIPPED_DATASETS[key]
        chosen = series if series is not None else default_series
        ds = read_csv_text(data_text(fname), key, series=chosen, include_all=include_all, direction=direction)
        if series is None and default_series is not None:
            ds = Dataset(ds.name, ds.points, ds.unit, ds.direction, ds.series, ds.excluded,
                         ds.notes + (f"series {default_series!r} chosen by default",))
        return ds
    p = Path(key)
    if not p.is_file():
        raise InvalidInputError(f"{key!r} is neither a shipped dataset ({', '.join(SHIPPED_DATASETS)}) nor a CSV "
                                "file; pass one of those names or the path of a CSV with date and compute columns")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{p} is not UTF-8 text ({e}); save the CSV as UTF-8") from None
    return read_csv_text(text, str(p), series=series, include_all=include_all)


# ----------------------------------------------------------------------------- fitting

@dataclass(frozen=True)
class TrendFit:
    """A least-squares doubling (or halving) time with a bootstrap confidence interval.

    Attributes:
        kind: ``"doubling"`` (compute grows) or ``"halving"`` (compute falls).
        months: The doubling or halving time in months (positive).
        doubling_months: ``months`` when ``kind == "doubling"``, else None.
        halving_months: ``months`` when ``kind == "halving"``, else None.
        ci_low_months, ci_high_months: Bootstrap percentile interval of ``months`` (``inf`` when the resampled
            slopes reach zero or change sign: no trend can be excluded).
        level: The interval's confidence level.
        slope_log2_per_year: Fitted slope of ``log2(FLOP)`` per year.
        intercept_log2: Fitted ``log2(FLOP)`` at year 0 (use with ``slope``).
        r_squared: Coefficient of determination of the fit.
        n: Points fitted.
        names: Their names, in date order.
        span_years: Last date minus first date of the fitted points.
        start_date, end_date: First and last dates (as written).
        growth_factor_over_span: Fitted change over the span, ``2 ** (|slope| x span_years)`` (>= 1; a fall
            for ``kind == "halving"``).
        observed_factor: First point's compute over the final record (halving), or final record over first
            point (doubling), the data's own figure (the seeds' 44x).
        moores_law_factor_over_span: ``2 ** (span_years x 12 / 24)``: Moore's law over the same span.
        frontier: Whether only running-frontier points were fitted.
        bootstrap: Resamples requested.
        bootstrap_used: Resamples with at least two distinct dates (the others cannot be fitted and are skipped).
        seed: The bootstrap's random seed.
        notes: Caveats.
    """

    kind: str
    months: float
    doubling_months: float | None
    halving_months: float | None
    ci_low_months: float | None
    ci_high_months: float | None
    level: float
    slope_log2_per_year: float
    intercept_log2: float
    r_squared: float
    n: int
    names: tuple[str, ...]
    span_years: float
    start_date: str
    end_date: str
    growth_factor_over_span: float
    observed_factor: float
    moores_law_factor_over_span: float
    frontier: bool
    bootstrap: int
    bootstrap_used: int
    seed: int | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (infinite bounds as None)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["names"] = list(self.names)
        d["notes"] = list(self.notes)
        for k in ("ci_low_months", "ci_high_months"):
            if d[k] is not None and not math.isfinite(d[k]):
                d[k] = None
        return d

    def __str__(self) -> str:
        ci = ""
        if self.ci_low_months is not None:
            hi = "inf" if not math.isfinite(self.ci_high_months or math.inf) else f"{self.ci_high_months:.3g}"
            ci = f" ({self.level:.0%} CI {self.ci_low_months:.3g}-{hi})"
        return (f"{self.kind} every {self.months:.3g} months{ci} over {self.span_years:.2f} years, n={self.n}; "
                f"fitted {self.growth_factor_over_span:.3g}x vs Moore's law {self.moores_law_factor_over_span:.3g}x")


def running_frontier(points: Sequence[TrendPoint], decreasing: bool) -> list[TrendPoint]:
    """The points that set a record when they appeared (lowest so far if ``decreasing``, highest otherwise).

    Points are taken in date order; of several on the same date, the best one counts.
    """
    ordered = sorted(points, key=lambda p: (p.year, p.flops if decreasing else -p.flops))
    out: list[TrendPoint] = []
    for p in ordered:
        if not out or (p.flops < out[-1].flops if decreasing else p.flops > out[-1].flops):
            if out and out[-1].year == p.year:
                continue
            out.append(p)
    return out


def moores_law_factor(years: float, doubling_months: float = MOORES_LAW_DOUBLING_MONTHS) -> float:
    """``2 ** (years x 12 / doubling_months)``: Moore's law's improvement over ``years``."""
    return float(2.0 ** (years * 12.0 / doubling_months))  # a positive base: always a float (typeshed says Any)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    xm = x.mean()
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - y.mean())).sum()) / sxx
    return slope, float(y.mean() - slope * xm)


def _points_of(data: Dataset | Sequence[TrendPoint]) -> tuple[list[TrendPoint], str | None, list[str]]:
    if isinstance(data, Dataset):
        return list(data.points), data.direction, list(data.notes)
    return list(data), None, []


def fit_doubling_time(data: Dataset | Sequence[TrendPoint], *, frontier: bool = False, bootstrap: int = 1000,
                      seed: int | None = 0, level: float = 0.95, decreasing: bool | None = None) -> TrendFit:
    """Fit ``log2(FLOP) = a + slope x year`` by least squares and report the doubling or halving time.

    Args:
        data: A :class:`Dataset` or a sequence of :class:`TrendPoint`.
        frontier: Fit only the running frontier (records when they appeared), as the paper's Figure 3 shows.
        bootstrap: Resamples (points drawn with replacement) for the confidence interval; 0 for none.
        seed: Random seed for the bootstrap (None: not reproducible).
        level: Confidence level of the interval, in (0, 1).
        decreasing: Direction; None takes the dataset's, else the sign of the fit on all points.

    Returns:
        The :class:`TrendFit`.

    Raises:
        InvalidInputError: fewer than two points (or all on one date), a non-positive compute, bad ``level`` or
            ``bootstrap``, a fit with zero slope.
    """
    pts, direction, notes = _points_of(data)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise InvalidInputError(f"bootstrap={bootstrap!r} must be a whole number >= 0 (0 for no interval)")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise InvalidInputError(f"level={level!r} must be in (0, 1), e.g. 0.95")
    if len(pts) < 2:
        raise InvalidInputError(f"a trend needs at least two points; got {len(pts)}: add more systems")
    for p in pts:
        if not (math.isfinite(p.flops) and p.flops > 0):
            raise InvalidInputError(f"{p.name} (row {p.row}): compute {p.flops!r} must be positive and finite")
    if len({p.year for p in pts}) < 2:
        raise InvalidInputError("all points share one date: a trend over time needs at least two dates")
    if decreasing is None:
        if direction is not None:
            decreasing = direction == "decreasing"
        else:
            x0 = np.array([p.year for p in pts])
            decreasing = _ols(x0, np.log2([p.flops for p in pts]))[0] < 0
            word = "decreasing" if decreasing else "increasing"
            notes.append(f"direction inferred from the fit on all points: {word}")
    used = running_frontier(pts, decreasing) if frontier else sorted(pts, key=lambda p: p.year)
    if len(used) < 2:
        raise InvalidInputError(f"the running frontier has {len(used)} point(s); a trend needs two: fit all points "
                                "(frontier=False) or add data")
    x = np.array([p.year for p in used])
    y = np.log2(np.array([p.flops for p in used]))
    slope, intercept = _ols(x, y)
    if slope == 0:
        raise InvalidInputError("the fitted slope is exactly zero: no doubling or halving time exists")
    resid = y - (intercept + slope * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    kind = "halving" if slope < 0 else "doubling"
    if (kind == "halving") != bool(decreasing):
        notes.append(f"the fitted slope says {kind} although the series was taken as "
                     f"{'decreasing' if decreasing else 'increasing'}")
    months = 12.0 / abs(slope)
    span = float(x.max() - x.min())
    ci_low = ci_high = None
    n_used = 0
    if bootstrap and len(used) < 3:
        notes.append(f"{len(used)} points: a line through two points has no spread to resample, so no interval")
    elif bootstrap:
        rng = np.random.default_rng(seed)
        slopes = []
        for _ in range(bootstrap):
            idx = rng.integers(0, len(x), len(x))
            xb = x[idx]
            if np.ptp(xb) == 0:
                continue
            slopes.append(_ols(xb, y[idx])[0])
        n_used = len(slopes)
        if n_used:
            lo, hi = np.quantile(np.array(slopes), [(1 - level) / 2, 1 - (1 - level) / 2])
            # Invert in slope space: months = 12 / |slope|; a slope interval reaching 0 gives an unbounded time.
            s = math.copysign(1.0, slope)
            a, b = sorted((s * lo, s * hi))
            ci_low = 12.0 / b if b > 0 else math.inf
            ci_high = 12.0 / a if a > 0 else math.inf
        if n_used < bootstrap:
            notes.append(f"{bootstrap - n_used} of {bootstrap} resamples had a single date and were skipped")
        if len(used) < 5:
            notes.append(f"only {len(used)} points: the bootstrap interval is rough")
    first, final = used[0], used[-1]
    if decreasing:
        record = min(p.flops for p in used)
        observed = first.flops / record
    else:
        record = max(p.flops for p in used)
        observed = record / first.flops
    return TrendFit(
        kind=kind, months=months, doubling_months=months if kind == "doubling" else None,
        halving_months=months if kind == "halving" else None, ci_low_months=ci_low, ci_high_months=ci_high,
        level=float(level), slope_log2_per_year=slope, intercept_log2=intercept, r_squared=r2, n=len(used),
        names=tuple(p.name for p in used), span_years=span, start_date=first.date, end_date=final.date,
        growth_factor_over_span=2.0 ** (abs(slope) * span), observed_factor=observed,
        moores_law_factor_over_span=moores_law_factor(span), frontier=frontier, bootstrap=bootstrap,
        bootstrap_used=n_used, seed=seed, notes=tuple(notes))


def compute_ratio(data: Dataset | Sequence[TrendPoint], numerator: str, denominator: str) -> float:
    """``compute(numerator) / compute(denominator)`` for two named systems, e.g. AlphaGo Zero over AlexNet.

    Raises:
        InvalidInputError: a name is missing or appears more than once.
    """
    pts, _, _ = _points_of(data)

    def one(name: str) -> TrendPoint:
        found = [p for p in pts if p.name == name]
        if len(found) != 1:
            names = ", ".join(sorted({p.name for p in pts}))
            raise InvalidInputError(f"{name!r} matches {len(found)} points (need exactly one); names: {names}")
        return found[0]

    return one(numerator).flops / one(denominator).flops


def plot_trend(data: Dataset | Sequence[TrendPoint], fit: TrendFit | None = None, path: str | None = None, *,
               unit: str = "pfs_days", title: str | None = None, label_points: bool = True) -> Any:
    """Compute against date on a log axis, with the fitted line and Moore's law from the first fitted point.

    Args:
        data: The points (all are drawn; fitted ones filled, the rest hollow).
        fit: A :class:`TrendFit` to draw; None fits one (no bootstrap).
        path: Write the figure there (``.svg``, ``.png``); None only returns it.
        unit: ``"pfs_days"``, ``"tfs_days"`` or ``"flop"``.
        title: Figure title.
        label_points: Write each point's name next to it.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ImportError: matplotlib is not installed (``pip install matplotlib``).
    """
    if unit not in UNITS or unit == "petaflop":
        raise InvalidInputError(f"unit={unit!r}: use pfs_days, tfs_days or flop")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from e
    pts, _, _ = _points_of(data)
    if fit is None:
        fit = fit_doubling_time(data, bootstrap=0)
    scale = UNITS[unit]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    fitted = set(fit.names)
    for p in pts:
        ax.plot(p.year, p.flops / scale, "o", color="C0", mfc="C0" if p.name in fitted else "none")
        if label_points:
            ax.annotate(p.name, (p.year, p.flops / scale), fontsize=7, xytext=(3, 3), textcoords="offset points")
    xs = np.linspace(min(p.year for p in pts), max(p.year for p in pts), 50)
    ax.plot(xs, 2.0 ** (fit.intercept_log2 + fit.slope_log2_per_year * xs) / scale, "-", color="C1",
            label=f"fit: {fit.kind} every {fit.months:.3g} months")
    x0 = min(p.year for p in pts if p.name in fitted)
    y0 = 2.0 ** (fit.intercept_log2 + fit.slope_log2_per_year * x0)
    sign = -1.0 if fit.kind == "halving" else 1.0
    ax.plot(xs, y0 * 2.0 ** (sign * (xs - x0) * 12 / MOORES_LAW_DOUBLING_MONTHS) / scale, "--", color="grey",
            label="Moore's law (24-month doubling)")
    ax.set_yscale("log")
    ax.set_xlabel("date (year)")
    ax.set_ylabel({"pfs_days": "training compute (pfs-days)", "tfs_days": "training compute (tfs-days)",
                   "flop": "training compute (FLOP)"}[unit])
    ax.set_title(title or (data.name if isinstance(data, Dataset) else "training compute trend"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
        plt.close(fig)
    return fig
