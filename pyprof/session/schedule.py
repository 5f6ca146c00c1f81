"""Which steps of a profiled loop are skipped, warmed up and recorded: ``pyprof.schedule`` and the action parser that
also accepts ``torch.profiler.schedule``.

Same semantics as ``torch.profiler.schedule`` so that an existing loop carries over unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyprof.errors import InvalidInputError

#: Step actions, as ``torch.profiler.ProfilerAction`` names them (lower case).
ACTIONS = ("none", "warmup", "record", "record_and_save")
#: The actions whose step is recorded.
RECORDING = ("record", "record_and_save")


@dataclass(frozen=True)
class Schedule:
    """Which steps to skip, warm up and record; same semantics as ``torch.profiler.schedule``.

    After ``skip_first`` steps, cycles of ``wait`` idle, ``warmup`` warm-up and ``active`` recorded steps repeat
    ``repeat`` times (0 = forever). The last active step of a cycle is ``record_and_save``.
    """

    wait: int = 0
    warmup: int = 1
    active: int = 1
    repeat: int = 0
    skip_first: int = 0

    def __post_init__(self) -> None:
        for name in ("wait", "warmup", "active", "repeat", "skip_first"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidInputError(f"schedule {name}={v!r} must be a whole number >= 0")
        if self.active < 1:
            raise InvalidInputError("schedule active must be >= 1: with no active step nothing is recorded")

    def __call__(self, step: int) -> str:
        if step < self.skip_first:
            return "none"
        step -= self.skip_first
        cycle = self.wait + self.warmup + self.active
        if self.repeat and step // cycle >= self.repeat:
            return "none"
        pos = step % cycle
        if pos < self.wait:
            return "none"
        if pos < self.wait + self.warmup:
            return "warmup"
        return "record_and_save" if pos == cycle - 1 else "record"


def schedule(*, wait: int = 0, warmup: int = 1, active: int = 1, repeat: int = 0, skip_first: int = 0) -> Schedule:
    """A step schedule like ``torch.profiler.schedule``; warns when ``warmup`` is 0 (first steps run cold)."""
    if warmup == 0:
        warnings.warn("pyprof.schedule: warmup=0: the first recorded steps include one-time costs (allocator, "
                      "kernels chosen, caches) and pyprof's FLOP counting; use warmup >= 1", UserWarning, stacklevel=2)
    return Schedule(wait=wait, warmup=warmup, active=active, repeat=repeat, skip_first=skip_first)


def action_of(sched: Callable[[int], Any] | None, step: int) -> str:
    """The action of ``step`` under ``sched`` (None records every step), as one of :data:`ACTIONS`.

    Raises:
        InvalidInputError: the schedule returned something that is neither a ``torch.profiler.ProfilerAction`` nor
            one of :data:`ACTIONS`.
    """
    if sched is None:
        return "record"
    a = sched(step)
    name = getattr(a, "name", a)  # torch.profiler.ProfilerAction is an Enum: NONE, WARMUP, RECORD, RECORD_AND_SAVE
    name = str(name).lower()
    if name not in ACTIONS:
        raise InvalidInputError(f"schedule returned {a!r} for step {step}; expected a torch.profiler.ProfilerAction "
                                f"or one of {ACTIONS}")
    return name
