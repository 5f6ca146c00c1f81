"""The arguments of :func:`pyprof.profile`, checked before any work starts: bad input fails with a message naming
the problem and the fix, never in the middle of a training run."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from pyprof.errors import InvalidInputError
from pyprof.session.schedule import Schedule


def check_arguments(*, count_flops: str, examples_per_step: int | None, recomputation: float,
                    training_examples: float | None, training_epochs: float | None, peak: str | float | None,
                    report_formats: Sequence[str], counters: str, device: str | None, top_kernels: int,
                    schedule: Callable[[int], Any] | None) -> None:
    """Check :func:`pyprof.profile`'s arguments (see its docstring for their meaning).

    Raises:
        InvalidInputError: an argument is out of range or unknown; the message says what to pass instead.
        UnknownHardwareError: ``peak`` names hardware the peak database does not know (with close matches).
    """
    if count_flops not in ("auto", "every", "off"):
        raise InvalidInputError(f"count_flops={count_flops!r}: use 'auto' (count once per step signature), "
                                "'every' (count every recorded step) or 'off'")
    if examples_per_step is not None and (isinstance(examples_per_step, bool) or not isinstance(examples_per_step, int)
                                          or examples_per_step <= 0):
        raise InvalidInputError(f"examples_per_step={examples_per_step!r} must be a whole number > 0 (the batch size)")
    if not (0.0 <= float(recomputation) <= 1.0):
        raise InvalidInputError(f"recomputation={recomputation!r} must be in [0, 1]: the fraction of the forward "
                                "pass recomputed in backward (1.0 for full activation checkpointing)")
    for n, v in (("training_examples", training_examples), ("training_epochs", training_epochs)):
        if v is not None and not (isinstance(v, (int, float)) and v > 0 and v == v and v != float("inf")):
            raise InvalidInputError(f"{n}={v!r} must be a finite number > 0")
    if isinstance(peak, (int, float)) and not isinstance(peak, bool) and not (0 < peak < float("inf")):
        raise InvalidInputError(f"peak={peak!r} must be a finite FLOP/s > 0, or a hardware name")
    if isinstance(peak, str):
        from pyprof.peaks.database import hardware_kind
        hardware_kind(peak)  # an unknown name fails here, before training, with close matches in the message
    from pyprof.report import FORMATS
    bad = [f for f in report_formats if f not in FORMATS]
    if bad:
        raise InvalidInputError(f"report_formats {bad} unknown; choose from {sorted(FORMATS)}")
    if counters not in ("off", "kernel", "step"):
        raise InvalidInputError(f"counters={counters!r}: use 'off' (default; the tracer's library FLOPs still "
                                "flow), 'kernel' (exact FLOPs per kernel; serializes kernels) or 'step' (exact "
                                "per-step totals over successive identical steps, one counter pass per step)")
    if device is not None and not (isinstance(device, str) and (device == "cpu" or device.startswith("cuda"))):
        raise InvalidInputError(f"device={device!r}: use 'cpu', 'cuda' or 'cuda:<index>' (default: the model's "
                                "device, else cpu)")
    if isinstance(top_kernels, bool) or not isinstance(top_kernels, int) or top_kernels < 0:
        raise InvalidInputError(f"top_kernels={top_kernels!r} must be a whole number >= 0")
    if not callable(schedule) and schedule is not None:
        raise InvalidInputError("schedule must be pyprof.schedule(...) or torch.profiler.schedule(...)")
    if isinstance(schedule, Schedule) and schedule.warmup == 0:
        warnings.warn("pyprof.profile: schedule has warmup=0", UserWarning, stacklevel=4)
