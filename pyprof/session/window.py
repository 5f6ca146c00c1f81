"""Bounded memory for long runs: running aggregates of every recorded step plus a bounded window of per-step rows.

A profile left on for a week records millions of steps. Keeping each :class:`~pyprof.records.StepRecord` forever
cost ~280 B of resident memory per step and made every autosave re-serialize all of them (3.8 s at 100k steps).
Here every recorded step goes into

- :class:`~pyprof.records.StepAggregate` (in records, beside the :class:`~pyprof.records.Totals` it produces):
  running sums, exact step times while there are at most ``exact_times`` of them, and a fixed log-spaced histogram
  of step times (:class:`~pyprof.records.LogHistogram`) for the median beyond that;
- :class:`StepWindow`: the per-step rows a report shows: the first ``n`` steps, the last ``n`` steps, and a uniform
  random sample of ``n`` of the steps in between (reservoir sampling, Vitter's Algorithm R, with a fixed seed so
  a report is reproducible).

Both are O(1) per step and bounded in size. ``StepAggregate.snapshot()`` and :meth:`StepWindow.rows` are cheap
copies (a few thousand references at most), so an autosave can serialize them on another thread while training
goes on. Runs of at most ``3 n`` recorded steps keep every row and every step time, and their totals are exactly
those :func:`pyprof.records.summarize_steps` computes from the full list (same sums in the same order, exact median).
"""

from __future__ import annotations

import random
from collections import deque

from pyprof.records import StepAggregate, StepRecord, StepsWindowInfo

__all__ = ["DEFAULT_WINDOW_N", "StepAggregate", "StepWindow"]

#: Rows kept per part of the window (first, last, sample): 3 x 1024 rows of ~280 B, under 1 MB in all. Runs up to
#: 3072 recorded steps (most profiles: a schedule's active steps) keep every row.
DEFAULT_WINDOW_N = 1024


class StepWindow:
    """The per-step rows a report keeps: the first ``n``, the last ``n``, and a uniform sample of ``n`` of the rest.

    The sample is a reservoir (Algorithm R: the k-th step leaving the tail replaces a random slot with probability
    n/k), seeded with 0 so two identical runs keep the same rows. Memory: at most ``3 n`` rows.
    """

    __slots__ = ("_rng", "head", "middle_seen", "n", "sample", "tail", "total")

    def __init__(self, n: int = DEFAULT_WINDOW_N) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"window n={n!r} must be a whole number >= 1")
        self.n = n
        self.head: list[StepRecord] = []
        self.tail: deque[StepRecord] = deque()
        self.sample: list[StepRecord] = []
        self.middle_seen = 0
        self._rng = random.Random(0)
        self.total = 0

    def add(self, s: StepRecord) -> None:
        self.total += 1
        if len(self.head) < self.n:
            self.head.append(s)
            return
        self.tail.append(s)
        if len(self.tail) <= self.n:
            return
        out = self.tail.popleft()
        self.middle_seen += 1
        if len(self.sample) < self.n:
            self.sample.append(out)
        else:
            j = self._rng.randrange(self.middle_seen)
            if j < self.n:
                self.sample[j] = out

    def __len__(self) -> int:
        return len(self.head) + len(self.tail) + len(self.sample)

    @property
    def last(self) -> StepRecord | None:
        if self.tail:
            return self.tail[-1]
        return self.head[-1] if self.head else None

    def rows(self) -> list[StepRecord]:
        """The kept rows in step order (a new list; the records themselves are never changed after they are added)."""
        mid = sorted(self.sample, key=lambda s: s.index) if self.middle_seen > len(self.sample) else self.sample
        return [*self.head, *mid, *self.tail]

    def info(self) -> StepsWindowInfo:
        kept = len(self)
        sampled = len(self.sample)
        if kept == self.total:
            how = f"every recorded step (the window keeps up to {3 * self.n} rows)"
        else:
            how = (f"the first {len(self.head)} and the last {len(self.tail)} recorded steps, and a uniform random "
                   f"sample (reservoir, seed 0) of {sampled} of the {self.middle_seen} steps between them")
        return StepsWindowInfo(recorded_steps=self.total, rows=kept, first=len(self.head), last=len(self.tail),
                               sampled=sampled, selection=how)
