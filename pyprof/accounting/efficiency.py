"""Compute-to-target, FLOPs-based learning curves and efficiency factors (Hernandez & Brown, 2020).

The paper measures algorithmic progress as the training compute needed to reach a fixed capability:
``compute to target = FLOPs per epoch x epochs until the model first matches the target``, and splits the gain of a
run B over a baseline A into a *training-epochs factor* and a *FLOPs-per-epoch factor* (its Table 1)::

    total = flops_a / flops_b = (epochs_a / epochs_b) x ((flops_a / epochs_a) / (flops_b / epochs_b))

Use from a training loop::

    curve = LearningCurve("mlp", metric_name="accuracy")
    with pyprof.profile(model, schedule=None) as prof:       # record every step: the FLOPs are cumulative
        for epoch in range(1, epochs + 1):
            for x, y in loader:
                ...; prof.step()
            curve.log_profile(prof, evaluate(), epoch=epoch)
    print(compute_to_target(curve, 0.95))

Evaluation passes are not training compute: evaluate with a model that is not the one given to
``pyprof.profile`` (a second instance with ``load_state_dict``), or its forward hooks count the evaluation as
training FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import Any, TypedDict

from pyprof.constants import PFS_DAY_FLOP, TFS_DAY_FLOP
from pyprof.errors import InvalidInputError

__all__ = [
    "ComputeLog",
    "CurvePoint",
    "EfficiencyFactor",
    "LearningCurve",
    "TargetNotReachedError",
    "TargetResult",
    "compute_to_target",
    "cumulative_flops",
    "efficiency_factor",
    "efficiency_factor_from_results",
    "plot_learning_curves",
]


class TargetNotReachedError(InvalidInputError):
    """A run never reached the target, so no compute-to-target (and no efficiency factor) exists.

    Attributes:
        result: The :class:`TargetResult` (``reached=False``) with the best metric reached and the compute spent.
    """

    def __init__(self, message: str, result: TargetResult) -> None:
        super().__init__(message)
        self.result = result


def _finite(name: str, value: Any, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInputError(f"{name}={value!r} is not a number; {fix}")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInputError(f"{name}={value!r} is not finite (NaN or infinity); {fix}")
    return v


# ----------------------------------------------------------------------------- the curve

@dataclass(frozen=True)
class CurvePoint:
    """One evaluation of a run.

    Attributes:
        flops: Cumulative training FLOP spent before this evaluation (evaluation passes excluded).
        metric: The evaluation metric (accuracy, loss, BLEU, ...).
        epoch: Training epochs completed (may be fractional); None if unknown (then no epochs split).
    """

    flops: float
    metric: float
    epoch: float | None = None

    @property
    def pfs_days(self) -> float:
        """``flops / 8.64e19``."""
        return self.flops / PFS_DAY_FLOP

    @property
    def tfs_days(self) -> float:
        """``flops / 8.64e16``."""
        return self.flops / TFS_DAY_FLOP


class LearningCurve:
    """A run's evaluation metric against cumulative training FLOPs (a FLOPs-based learning curve).

    Args:
        name: The run's name (shown in tables and plots).
        metric_name: What the metric is, e.g. ``"accuracy"``, ``"loss"``, ``"BLEU"``.
        higher_is_better: Direction of the metric (False for a loss).
        flop_source: Where the FLOPs come from: ``"analytic"``, ``"library"``, ``"hardware"`` or free text.
            Runs counted by different sources are not compared silently (:func:`efficiency_factor`).
        points: Initial ``(flops, metric)`` or ``(flops, metric, epoch)`` tuples or :class:`CurvePoint`.

    Raises:
        InvalidInputError: a bad point (see :meth:`log`).
    """

    def __init__(self, name: str, *, metric_name: str = "accuracy", higher_is_better: bool = True,
                 flop_source: str = "analytic", points: Iterable[Any] = ()) -> None:
        self.name = str(name)
        self.metric_name = str(metric_name)
        self.higher_is_better = bool(higher_is_better)
        self.flop_source = str(flop_source)
        self._points: list[CurvePoint] = []
        for p in points:
            if isinstance(p, CurvePoint):
                self.log(p.flops, p.metric, p.epoch)
            else:
                self.log(*p)

    @property
    def points(self) -> tuple[CurvePoint, ...]:
        """The evaluations in the order logged (cumulative FLOPs non-decreasing)."""
        return tuple(self._points)

    def __len__(self) -> int:
        return len(self._points)

    def __repr__(self) -> str:
        return (f"LearningCurve({self.name!r}, metric_name={self.metric_name!r}, points={len(self._points)}, "
                f"flop_source={self.flop_source!r})")

    def log(self, flops: float, metric: float, epoch: float | None = None) -> CurvePoint:
        """Add an evaluation.

        Args:
            flops: Cumulative training FLOP so far (>= 0; 0 for an evaluation before training).
            metric: The metric's value.
            epoch: Epochs completed so far (>= 0), or None.

        Returns:
            The new :class:`CurvePoint`.

        Raises:
            InvalidInputError: a non-finite or negative FLOP count or epoch; FLOPs or epochs lower than the previous
                point's (pass cumulative totals, not per-epoch amounts); a non-finite metric.
        """
        n = len(self._points)
        f = _finite("flops", flops, f"evaluation {n} of run {self.name!r}: pass cumulative training FLOP, e.g. 1.2e12.")
        if f < 0:
            raise InvalidInputError(f"evaluation {n} of run {self.name!r}: flops={flops!r} is negative; pass the "
                                    "cumulative training FLOP spent so far (>= 0).")
        m = _finite("metric", metric, f"evaluation {n} of run {self.name!r}: pass the metric's value, e.g. 0.93.")
        e = None
        if epoch is not None:
            e = _finite("epoch", epoch, f"evaluation {n} of run {self.name!r}: pass epochs completed, e.g. 3.")
            if e < 0:
                raise InvalidInputError(f"evaluation {n} of run {self.name!r}: epoch={epoch!r} is negative.")
        if self._points:
            prev = self._points[-1]
            if f < prev.flops:
                raise InvalidInputError(
                    f"evaluation {n} of run {self.name!r}: flops={f:.6g} is below the previous evaluation's "
                    f"{prev.flops:.6g}; the FLOPs of a learning curve are cumulative: pass the total spent so far, "
                    "not the amount of the last epoch.")
            if e is not None and prev.epoch is not None and e < prev.epoch:
                raise InvalidInputError(f"evaluation {n} of run {self.name!r}: epoch={e:g} is below the previous "
                                        f"evaluation's {prev.epoch:g}; epochs must not decrease.")
        pt = CurvePoint(f, m, e)
        self._points.append(pt)
        return pt

    def log_profile(self, prof_or_result: Any, metric: float, epoch: float | None = None,
                    source: str = "analytic") -> CurvePoint:
        """Add an evaluation whose FLOPs are the cumulative FLOPs a running ``pyprof.profile()`` has recorded.

        Args:
            prof_or_result: The ``Profile`` (its ``result()`` snapshot is read) or a ``ProfileResult``.
            metric: The metric's value now.
            epoch: Epochs completed, or None.
            source: ``"analytic"`` (pyprof's analytic count) or ``"hardware"`` (CPU FP counters).

        Returns:
            The new :class:`CurvePoint`.

        Raises:
            InvalidInputError: see :func:`cumulative_flops`; or the curve's ``flop_source`` differs from ``source``.
        """
        flops, label = cumulative_flops(prof_or_result, source=source)
        if not self._points:
            self.flop_source = label  # the first point decides the curve's source, with its full label
        elif self.flop_source.split(" ")[0] != source:
            raise InvalidInputError(f"run {self.name!r} logs {self.flop_source!r} FLOPs; this point is {source!r}: "
                                    "keep one FLOP source per curve.")
        return self.log(flops, metric, epoch)

    def to_rows(self) -> list[dict[str, Any]]:
        """The curve as a table: one dict per evaluation with flops, pfs_days, tfs_days, metric, epoch."""
        return [{"run": self.name, "flops": p.flops, "pfs_days": p.pfs_days, "tfs_days": p.tfs_days,
                 self.metric_name: p.metric, "epoch": p.epoch} for p in self._points]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"name": self.name, "metric_name": self.metric_name, "higher_is_better": self.higher_is_better,
                "flop_source": self.flop_source, "points": [asdict(p) for p in self._points]}


#: Alias: a compute log is a learning curve fed as training runs.
ComputeLog = LearningCurve


def cumulative_flops(prof_or_result: Any, source: str = "analytic") -> tuple[float, str]:
    """Cumulative training FLOPs recorded by a ``pyprof.profile()`` (every step must have been recorded).

    Args:
        prof_or_result: A ``Profile`` (running or finished) or a ``ProfileResult``.
        source: ``"analytic"`` (``totals.analytic_flops``) or ``"hardware"`` (``totals.hardware_flops``).

    Returns:
        ``(flops, label)``; ``label`` names the source, e.g. ``"analytic (pyprof.flops)"``.

    Raises:
        InvalidInputError: steps were not recorded (a schedule skipped some: the sum would miss them), a step has
            no count, or the source measured nothing.
    """
    result = prof_or_result.result() if hasattr(prof_or_result, "result") and callable(prof_or_result.result) \
        else prof_or_result
    steps = getattr(result, "steps", None)
    totals = getattr(result, "totals", None)
    if steps is None or totals is None:
        raise InvalidInputError(f"expected a pyprof Profile or ProfileResult, got {type(prof_or_result).__name__}")
    if source not in ("analytic", "hardware"):
        raise InvalidInputError(f"source={source!r}: use 'analytic' or 'hardware'")
    if not steps:
        return 0.0, f"{source} (pyprof)"
    # ``steps`` may be a bounded window of rows (long runs); the totals cover every recorded step, and the last row
    # is the last recorded step: every step was recorded exactly when their count is that step's index + 1.
    recorded, last = int(totals.steps), steps[-1].index
    if recorded != last + 1:
        missing = last + 1 - recorded
        raise InvalidInputError(
            f"the profile recorded {recorded} of {last + 1} steps ({missing} skipped by its schedule), so "
            "its FLOPs are not the cumulative training FLOPs: profile with schedule=None (record every step) "
            "to log a learning curve.")
    if source == "analytic":
        if totals.analytic_steps_missing:
            raise InvalidInputError(
                f"{totals.analytic_steps_missing} recorded step(s) have no analytic FLOP count (counting was off "
                "or failed; see the profile's notes), so the cumulative FLOPs would be too low: fix the counting "
                "or log FLOPs yourself with LearningCurve.log().")
        return float(totals.analytic_flops or 0.0), "analytic (pyprof.flops, dense convention)"
    if totals.hardware_flops is None:
        reason = getattr(result, "hardware_counters", {}).get("reason", "")
        raise InvalidInputError(f"the profile has no hardware FLOP count ({reason or 'counters unavailable'}); "
                                "use source='analytic'.")
    return float(totals.hardware_flops), "hardware (CPU FP counters, this process)"


# ----------------------------------------------------------------------------- compute to target

@dataclass(frozen=True)
class TargetResult:
    """Compute to reach a target metric on one run.

    Attributes:
        run: The run's name.
        metric_name: The metric.
        target: The target value.
        higher_is_better: Direction used.
        reached: Whether any evaluation met the target.
        flops: FLOP to target (interpolated if ``interpolated``); None if not reached.
        epochs: Epochs to target, likewise; None if not reached or epochs unknown.
        interpolated: True when ``flops``/``epochs`` are a linear interpolation between the last evaluation
            below the target and the first at or past it (the crossing lies between evaluations).
        evaluated_flops: FLOPs at the first evaluation at or past the target (the paper's convention:
            "the number of epochs it took ... to perform better than or equal to" the target).
        evaluated_epochs: Epochs at that evaluation.
        evaluated_metric: The metric at that evaluation.
        best_metric: Best metric reached in the run.
        best_flops: Cumulative FLOPs at the best evaluation.
        best_epochs: Epochs at the best evaluation.
        flops_spent: Cumulative FLOPs at the last evaluation (the compute the run spent).
        epochs_spent: Epochs at the last evaluation.
        flop_source: The curve's FLOP source.
        note: A sentence saying how the figure was obtained (or that the target was not reached).
    """

    run: str
    metric_name: str
    target: float
    higher_is_better: bool
    reached: bool
    flops: float | None
    epochs: float | None
    interpolated: bool
    evaluated_flops: float | None
    evaluated_epochs: float | None
    evaluated_metric: float | None
    best_metric: float
    best_flops: float
    best_epochs: float | None
    flops_spent: float
    epochs_spent: float | None
    flop_source: str
    note: str

    @property
    def pfs_days(self) -> float | None:
        """FLOP to target in petaflop/s-days (``/ 8.64e19``)."""
        return None if self.flops is None else self.flops / PFS_DAY_FLOP

    @property
    def tfs_days(self) -> float | None:
        """FLOP to target in teraflop/s-days (``/ 8.64e16``)."""
        return None if self.flops is None else self.flops / TFS_DAY_FLOP

    @property
    def flops_per_epoch(self) -> float | None:
        """``flops / epochs`` at the target; None without epochs."""
        if self.flops is None or not self.epochs:
            return None
        return self.flops / self.epochs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with pfs_days, tfs_days and flops_per_epoch."""
        d = asdict(self)
        d.update(pfs_days=self.pfs_days, tfs_days=self.tfs_days, flops_per_epoch=self.flops_per_epoch)
        return d


class _TargetCommon(TypedDict):
    """The :class:`TargetResult` fields every outcome of :func:`compute_to_target` shares."""

    run: str
    metric_name: str
    target: float
    higher_is_better: bool
    best_metric: float
    best_flops: float
    best_epochs: float | None
    flops_spent: float
    epochs_spent: float | None
    flop_source: str


class _TargetEvaluated(TypedDict):
    """The :class:`TargetResult` fields describing the first evaluation at or past the target."""

    evaluated_flops: float
    evaluated_epochs: float | None
    evaluated_metric: float


def _meets(value: float, target: float, higher_is_better: bool) -> bool:
    return value >= target if higher_is_better else value <= target


def _lerp(a: float | None, b: float | None, frac: float) -> float | None:
    if a is None or b is None:
        return None
    return a + frac * (b - a)


def compute_to_target(curve: LearningCurve, target: float, higher_is_better: bool | None = None, *,
                      interpolate: bool = True) -> TargetResult:
    """Training compute until the run first reaches ``target``.

    Between the last evaluation that misses the target and the first that meets it, the crossing is placed by
    linear interpolation of FLOPs (and epochs) against the metric, because compute grows linearly between
    evaluations while the metric is only known at them; ``interpolated`` says so. ``interpolate=False`` takes the
    first evaluation that meets the target, as the paper did with per-epoch evaluations.

    Args:
        curve: The run.
        target: The metric value to reach.
        higher_is_better: Direction; None uses ``curve.higher_is_better``.
        interpolate: Interpolate between evaluations (default) or not.

    Returns:
        A :class:`TargetResult`. A target never reached gives ``reached=False`` with the best metric reached and
        the compute spent (no exception).

    Raises:
        InvalidInputError: an empty curve or a non-finite target.
    """
    t = _finite("target", target, "pass the metric value to reach, e.g. 0.95.")
    hib = curve.higher_is_better if higher_is_better is None else bool(higher_is_better)
    pts = curve.points
    if not pts:
        raise InvalidInputError(f"run {curve.name!r} has no evaluations: log (flops, metric, epoch) points first.")
    best = max(pts, key=lambda p: p.metric) if hib else min(pts, key=lambda p: p.metric)
    last = pts[-1]
    common: _TargetCommon = dict(run=curve.name, metric_name=curve.metric_name, target=t, higher_is_better=hib,
                                 best_metric=best.metric, best_flops=best.flops, best_epochs=best.epoch,
                                 flops_spent=last.flops, epochs_spent=last.epoch, flop_source=curve.flop_source)
    word = "above" if hib else "below"
    for i, p in enumerate(pts):
        if not _meets(p.metric, t, hib):
            continue
        ev: _TargetEvaluated = dict(evaluated_flops=p.flops, evaluated_epochs=p.epoch, evaluated_metric=p.metric)
        if i == 0:
            note = (f"reached at the first evaluation ({curve.metric_name} {p.metric:g}); with no earlier "
                    "evaluation the compute to target may be lower")
            return TargetResult(reached=True, flops=p.flops, epochs=p.epoch, interpolated=False, note=note,
                                **ev, **common)
        q = pts[i - 1]
        if not interpolate or p.metric == t:
            note = (f"first evaluation at or {word} the target: evaluation {i} ({curve.metric_name} {p.metric:g}); "
                    "not interpolated")
            return TargetResult(reached=True, flops=p.flops, epochs=p.epoch, interpolated=False, note=note,
                                **ev, **common)
        frac = (t - q.metric) / (p.metric - q.metric)
        note = (f"interpolated linearly between evaluation {i - 1} ({curve.metric_name} {q.metric:g}) and "
                f"evaluation {i} ({p.metric:g}), fraction {frac:.3f} of the way")
        return TargetResult(reached=True, flops=_lerp(q.flops, p.flops, frac), epochs=_lerp(q.epoch, p.epoch, frac),
                            interpolated=True, note=note, **ev, **common)
    note = (f"target {curve.metric_name} {t:g} never reached: best {best.metric:g} at {best.flops:.4g} FLOP; "
            f"{last.flops:.4g} FLOP ({last.flops / PFS_DAY_FLOP:.3g} pfs-days) spent over {len(pts)} evaluations")
    return TargetResult(reached=False, flops=None, epochs=None, interpolated=False, evaluated_flops=None,
                        evaluated_epochs=None, evaluated_metric=None, note=note, **common)


# ----------------------------------------------------------------------------- comparing runs

@dataclass(frozen=True)
class EfficiencyFactor:
    """Efficiency of run B over baseline A at a target, split as the paper's Table 1.

    ``total = flops_a / flops_b = epochs_factor x flops_per_epoch_factor`` (exactly, up to float rounding).

    Attributes:
        run_a: Baseline run's name.
        run_b: Compared run's name.
        target: The target metric value.
        total: How many times less compute B needed (> 1: B is more efficient).
        epochs_factor: ``epochs_a / epochs_b``; None when either run's epochs are unknown.
        flops_per_epoch_factor: ``(flops_a / epochs_a) / (flops_b / epochs_b)``; None likewise.
        a: A's :class:`TargetResult`.
        b: B's :class:`TargetResult`.
        notes: Caveats (interpolation, mixed FLOP sources, missing epochs).
    """

    run_a: str
    run_b: str
    target: float
    total: float
    epochs_factor: float | None
    flops_per_epoch_factor: float | None
    a: TargetResult
    b: TargetResult
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"run_a": self.run_a, "run_b": self.run_b, "target": self.target, "total": self.total,
                "epochs_factor": self.epochs_factor, "flops_per_epoch_factor": self.flops_per_epoch_factor,
                "a": self.a.to_dict(), "b": self.b.to_dict(), "notes": list(self.notes)}

    def __str__(self) -> str:
        split = ""
        if self.epochs_factor is not None and self.flops_per_epoch_factor is not None:
            split = f" = {self.epochs_factor:.3g} (epochs) x {self.flops_per_epoch_factor:.3g} (FLOPs per epoch)"
        return f"{self.run_b} over {self.run_a} at {self.a.metric_name} {self.target:g}: {self.total:.3g}x{split}"


def efficiency_factor_from_results(a: TargetResult, b: TargetResult, *,
                                   allow_mixed_sources: bool = False) -> EfficiencyFactor:
    """Efficiency factor of B over A from two compute-to-target results.

    Args:
        a: Baseline's result.
        b: Compared run's result.
        allow_mixed_sources: Compare runs whose FLOPs come from different sources (labelled in ``notes``);
            otherwise that is an error.

    Returns:
        The :class:`EfficiencyFactor`.

    Raises:
        TargetNotReachedError: a run did not reach the target (the message gives its best and compute spent).
        InvalidInputError: different metrics, directions or FLOP sources; zero compute to target.
    """
    for r in (a, b):
        if not r.reached:
            raise TargetNotReachedError(f"no efficiency factor: run {r.run!r} {r.note}", r)
    if a.metric_name != b.metric_name or a.higher_is_better != b.higher_is_better:
        raise InvalidInputError(f"runs {a.run!r} and {b.run!r} measure different things ({a.metric_name!r} vs "
                                f"{b.metric_name!r}); compare runs on the same metric and direction.")
    notes: list[str] = []
    if a.target != b.target:
        notes.append(f"different targets: {a.run} at {a.target:g}, {b.run} at {b.target:g}")
    src_a, src_b = a.flop_source.split(" ")[0], b.flop_source.split(" ")[0]
    if src_a != src_b:
        if not allow_mixed_sources:
            raise InvalidInputError(
                f"mixed FLOP sources: {a.run!r} is counted by {a.flop_source!r}, {b.run!r} by {b.flop_source!r}; "
                "sources differ in what they count (analytic counts model FLOPs, hardware counters count executed "
                "instructions), so the ratio mixes units. Count both runs the same way, or pass "
                "allow_mixed_sources=True to get a labelled result.")
        notes.append(f"MIXED FLOP SOURCES: {a.run} {a.flop_source}; {b.run} {b.flop_source}")
    assert a.flops is not None and b.flops is not None
    if a.flops <= 0 or b.flops <= 0:
        zero = a if a.flops <= 0 else b
        raise InvalidInputError(f"run {zero.run!r} reached the target with 0 FLOP (at its first evaluation, before "
                                "training); a factor needs a positive compute to target: evaluate after training "
                                "steps, or choose a harder target.")
    total = a.flops / b.flops
    ef = ff = None
    if a.epochs and b.epochs:
        ef = a.epochs / b.epochs
        ff = (a.flops / a.epochs) / (b.flops / b.epochs)
    else:
        notes.append("epochs unknown for a run: no epochs x FLOPs-per-epoch split")
    for r in (a, b):
        if r.interpolated:
            notes.append(f"{r.run}: {r.note}")
    return EfficiencyFactor(run_a=a.run, run_b=b.run, target=b.target, total=total, epochs_factor=ef,
                            flops_per_epoch_factor=ff, a=a, b=b, notes=notes)


def efficiency_factor(a: LearningCurve, b: LearningCurve, target: float, higher_is_better: bool | None = None, *,
                      interpolate: bool = True, allow_mixed_sources: bool = False) -> EfficiencyFactor:
    """Efficiency factor of run B over baseline A at ``target``: ``flops_a / flops_b``, split into
    ``epochs_a / epochs_b`` x ``(flops_a / epochs_a) / (flops_b / epochs_b)`` as in the paper's Table 1.

    Args:
        a: The baseline (e.g. AlexNet).
        b: The run compared with it.
        target: Metric value both must reach.
        higher_is_better: Direction; None uses ``a.higher_is_better``.
        interpolate: Passed to :func:`compute_to_target`.
        allow_mixed_sources: See :func:`efficiency_factor_from_results`.

    Returns:
        The :class:`EfficiencyFactor`.

    Raises:
        TargetNotReachedError: a run never reached the target.
        InvalidInputError: see :func:`efficiency_factor_from_results`.
    """
    hib = a.higher_is_better if higher_is_better is None else higher_is_better
    ra = compute_to_target(a, target, hib, interpolate=interpolate)
    rb = compute_to_target(b, target, hib, interpolate=interpolate)
    return efficiency_factor_from_results(ra, rb, allow_mixed_sources=allow_mixed_sources)


# ----------------------------------------------------------------------------- pictures (behind a function)

_X_UNITS = {"flops": (1.0, "training FLOP"), "pfs_days": (PFS_DAY_FLOP, "training compute (pfs-days)"),
            "tfs_days": (TFS_DAY_FLOP, "training compute (tfs-days)")}


def plot_learning_curves(curves: Sequence[LearningCurve], path: str | None = None, *, x_unit: str = "flops",
                         target: float | None = None, title: str | None = None) -> Any:
    """FLOPs-based learning curves of several runs in one figure (log compute on x), as in the paper's Figure 4.

    Points at 0 FLOP (evaluations before training) cannot sit on a log axis and are left out of the picture.

    Args:
        curves: The runs.
        path: Write the figure there (``.svg``, ``.png``, ``.pdf``); None only returns it.
        x_unit: ``"flops"``, ``"pfs_days"`` or ``"tfs_days"``.
        target: Draw the target as a horizontal line and mark each run's compute to target.
        title: Figure title.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        InvalidInputError: unknown ``x_unit``; no curves.
        ImportError: matplotlib is not installed (``pip install matplotlib``).
    """
    if x_unit not in _X_UNITS:
        raise InvalidInputError(f"x_unit={x_unit!r}: use one of {', '.join(_X_UNITS)}")
    if not curves:
        raise InvalidInputError("no curves to plot: pass one or more LearningCurve")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from e
    scale, xlabel = _X_UNITS[x_unit]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for c in curves:
        pts = [p for p in c.points if p.flops > 0]
        line, = ax.plot([p.flops / scale for p in pts], [p.metric for p in pts], marker="o", ms=3, label=c.name)
        if target is not None:
            r = compute_to_target(c, target)
            if r.reached and r.flops:
                ax.plot([r.flops / scale], [target], marker="x", ms=9, color=line.get_color())
    if target is not None:
        ax.axhline(target, color="grey", lw=0.8, ls="--", label=f"target {target:g}")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(curves[0].metric_name)
    ax.set_title(title or f"{curves[0].metric_name} vs training compute")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
        plt.close(fig)
    return fig
