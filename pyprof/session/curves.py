"""FLOPs-based learning curves of the metrics a run logs (loss, accuracy), kept by the session in bounded memory.

Fed by ``prof.log_metric(...)`` and by the trainer callbacks; written into the report's ``learning_curves``.
"""

from __future__ import annotations

from typing import Any

from pyprof.errors import InvalidInputError

__all__ = ["MetricCurves"]


class MetricCurves:
    """Learning curves (metric against cumulative training FLOPs) of the metrics a run logs; bounded in memory.

    Keeps at most :attr:`MAX_CURVES` metrics and :attr:`MAX_POINTS` points each (further ones are dropped and
    counted in a note). Metric names containing "loss", "perplexity" or "error" are lower-is-better.
    """

    MAX_CURVES = 16
    MAX_POINTS = 5_000
    #: Trainer bookkeeping that is not a learning metric.
    SKIP = ("epoch", "step", "learning_rate", "lr", "grad_norm", "total_flos", "train_runtime", "num_input_tokens_seen")

    def __init__(self) -> None:
        self._curves: dict[str, Any] = {}
        self.dropped = 0
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < 10:
            self.notes.append(text)

    def log(self, result: Any, metrics: dict[str, Any], epoch: float | None = None) -> None:
        """Add one point per numeric metric at the profile's cumulative analytic FLOPs so far.

        Raises:
            InvalidInputError: the profile cannot give cumulative FLOPs (see
                :func:`pyprof.efficiency.cumulative_flops`: a schedule that skips steps, counting off).
        """
        import math

        from pyprof.accounting.efficiency import LearningCurve, cumulative_flops

        flops, label = cumulative_flops(result)
        for name, v in metrics.items():
            key = str(name)
            if key.startswith("pyprof/") or key in self.SKIP or key.endswith("_runtime") or "per_second" in key:
                continue
            try:
                x = float(v.item() if hasattr(v, "item") else v)
            except (TypeError, ValueError, RuntimeError):
                continue
            if not math.isfinite(x):
                continue
            c = self._curves.get(key)
            if c is None:
                if len(self._curves) >= self.MAX_CURVES:
                    self.dropped += 1
                    continue
                low = any(w in key.lower() for w in ("loss", "perplexity", "error"))
                c = self._curves[key] = LearningCurve(key, metric_name=key, higher_is_better=not low)
                c.flop_source = label
            if len(c) >= self.MAX_POINTS:
                self.dropped += 1
                continue
            try:
                c.log(flops, x, epoch)
            except InvalidInputError:  # e.g. an epoch counter that went back: skip the point, keep the curve
                self.dropped += 1

    def to_list(self) -> list[dict[str, Any]]:
        """The curves as :meth:`LearningCurve.to_dict` dicts (only those with points)."""
        out = [c.to_dict() for c in self._curves.values() if len(c)]
        if out and (self.dropped or self.notes):
            out[0]["notes"] = list(self.notes) + ([f"{self.dropped} points dropped (bounds or invalid)"]
                                                  if self.dropped else [])
        return out
