"""Every argument of ``pyprof.profile()`` checked for type and range before anything starts.

:func:`validate_profile_options` takes the keyword arguments of :func:`pyprof.profile` (``model`` included) and
returns a frozen :class:`ProfileOptions` of plain Python values, or raises
:class:`~pyprof.errors.InvalidInputError` naming the parameter, what was passed and the fix. It touches no global
state (no hooks, no timers, no active-profile marker), so a bad argument leaves the process as it was; the only
side effect is :func:`~pyprof.report.atomic.check_output_dir` creating ``output_dir`` to prove it writable.

Numbers of any numeric type are accepted (``numbers.Real`` / ``numbers.Integral``: Python numbers, numpy scalars
such as ``np.float32(1e12)``, 0-d tensors' ``.item()``) and converted to ``float`` / ``int``, so the report
serializes them; ``bool`` is never taken for a number (``True`` is an ``int`` in Python, but ``peak=True`` is a
mistake, not 1 FLOP/s).
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pyprof.errors import InvalidInputError

__all__ = ["COUNTERS", "COUNT_FLOPS", "ProfileOptions", "validate_profile_options"]

#: ``count_flops`` values: once per step signature, every recorded step, or not at all.
COUNT_FLOPS = ("auto", "every", "off")
#: ``counters`` values (GPU hardware counters): see ``pyprof.profile``.
COUNTERS = ("off", "kernel", "step")


@dataclass(frozen=True)
class ProfileOptions:
    """The validated arguments of ``pyprof.profile()``, as plain values (see its docstring for meanings).

    Units: ``peak`` in FLOP/s when a number (else a hardware name), ``autosave_s`` in seconds, ``recomputation``
    a fraction in [0, 1] of the forward pass.
    """

    model: Any = None
    schedule: Callable[[int], Any] | None = None
    examples_per_step: int | None = None
    count_flops: str = "auto"
    hardware_counters: bool = True
    measure_peak: bool = True
    peak: str | float | None = None
    precision: str = "auto"
    recomputation: float = 0.0
    training_examples: float | None = None
    training_epochs: float | None = None
    output_dir: Path | None = None
    report_formats: tuple[str, ...] = ("json", "md", "html", "trace")
    autosave_s: float | None = 60.0
    name: str | None = None
    device: str | None = None
    counters: str = "off"
    pm_sampling: bool = False
    gpu_tracer: bool = True
    library_hooks: bool = True
    nvml: bool = True
    kernel_records: bool = False
    top_kernels: int = 20
    verify_every: int = 1000  # 0: never verify (None is accepted and means 0)


_NAMES = tuple(f.name for f in fields(ProfileOptions))
_BOOLS = ("hardware_counters", "measure_peak", "pm_sampling", "gpu_tracer", "library_hooks", "nvml",
          "kernel_records")


def _type_name(v: Any) -> str:
    return type(v).__name__


def _is_numpy_bool(v: Any) -> bool:
    # numpy.bool_ (named "bool" since numpy 2) is not a subclass of bool, nor of numbers.Integral.
    return type(v).__module__ == "numpy" and type(v).__name__ in ("bool_", "bool")


def _bool(name: str, v: Any) -> bool:
    # numpy.bool_ is not a bool subclass but is what `arr.any()` returns: accept it, and nothing else (a 0/1 int
    # or a "false" string would silently mean the opposite of what some users expect).
    if isinstance(v, bool) or _is_numpy_bool(v):
        return bool(v)
    raise InvalidInputError(f"{name}={v!r} ({_type_name(v)}) must be True or False")


def _real(name: str, v: Any, fix: str, *, positive: str | None = None) -> float:
    """``v`` as a finite float; with ``positive``, also > 0, else that message (today's wording) is raised."""
    if isinstance(v, bool) or _is_numpy_bool(v) or not isinstance(v, numbers.Real):
        raise InvalidInputError(f"{name}={v!r} ({_type_name(v)}) is not a number; {fix}")
    f = float(v)
    if positive is not None and not (0 < f < math.inf):
        raise InvalidInputError(positive)
    if not math.isfinite(f):
        raise InvalidInputError(f"{name}={v!r} is not finite; {fix}")
    return f


def _whole(name: str, v: Any, fix: str) -> int:
    if isinstance(v, bool) or _is_numpy_bool(v) or not isinstance(v, numbers.Integral):
        raise InvalidInputError(f"{name}={v!r} ({_type_name(v)}) must be a whole number (int); {fix}")
    return int(v)


def _choice(name: str, v: Any, choices: tuple[str, ...], fix: str) -> str:
    if not isinstance(v, str) or v not in choices:
        raise InvalidInputError(f"{name}={v!r}: {fix}")
    return v


def validate_profile_options(**kwargs: Any) -> ProfileOptions:
    """Check every argument of ``pyprof.profile()`` and return them as a :class:`ProfileOptions`.

    Args:
        **kwargs: the keyword arguments of ``pyprof.profile`` (``model`` too); omitted ones take the defaults of
            :class:`ProfileOptions`.

    Returns:
        The options with numbers as ``float``/``int``, ``output_dir`` as a :class:`~pathlib.Path` (created and
        proved writable) and ``report_formats`` as a tuple.

    Raises:
        InvalidInputError: an unknown argument (with the closest known name), a wrong type, or a value out of range;
            the message names the parameter and the fix.
        pyprof.errors.UnknownHardwareError: ``peak`` is a name the peak database lacks (close matches listed).
    """
    unknown = [k for k in kwargs if k not in _NAMES]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(k, _NAMES, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known arguments: {', '.join(_NAMES)}"
        raise InvalidInputError(f"pyprof.profile() got an unknown argument {k!r}; {hint}")
    o: dict[str, Any] = {f.name: f.default for f in fields(ProfileOptions)}
    o.update(kwargs)

    model = o["model"]
    if model is not None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(f"model={model!r} ({_type_name(model)}) is not a torch.nn.Module: pass the root "
                                    "module whose forward is a training step's work, or model=None to profile every "
                                    "module call in the block")
    sched = o["schedule"]
    if sched is not None and not callable(sched):
        raise InvalidInputError(f"schedule must be pyprof.schedule(...) or torch.profiler.schedule(...); got "
                                f"{sched!r} ({_type_name(sched)}), which is not callable")

    eps = o["examples_per_step"]
    if eps is not None:
        eps = _whole("examples_per_step", eps, "pass the batch size, e.g. examples_per_step=64")
        if eps <= 0:
            raise InvalidInputError(f"examples_per_step={eps!r} must be a whole number > 0 (the batch size)")

    count_flops = _choice("count_flops", o["count_flops"], COUNT_FLOPS,
                          "use 'auto' (count once per step signature), 'every' (count every recorded step) or 'off'")
    bools = {n: _bool(n, o[n]) for n in _BOOLS}

    peak = o["peak"]
    if peak is not None:
        if isinstance(peak, str):
            from pyprof.peaks.database import hardware_kind

            hardware_kind(peak)  # an unknown name fails here, before training, with close matches in the message
        else:
            peak = _real("peak", peak, "pass a finite FLOP/s > 0 (e.g. 1.58e12), or a hardware name",
                         positive=f"peak={peak!r} must be a finite FLOP/s > 0, or a hardware name")

    precision = o["precision"]
    if not isinstance(precision, str):
        raise InvalidInputError(f"precision={precision!r} ({_type_name(precision)}) must be a string: 'auto' (from "
                                "the model's parameters) or a precision such as 'fp32', 'bf16'")
    if precision != "auto":
        from pyprof.peaks.database import PRECISIONS

        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision={precision!r}: use 'auto' or one of {', '.join(PRECISIONS)}")

    rec = _real("recomputation", o["recomputation"], "pass a fraction in [0, 1]")
    if not 0.0 <= rec <= 1.0:
        raise InvalidInputError(f"recomputation={o['recomputation']!r} must be in [0, 1]: the fraction of the forward "
                                "pass recomputed in backward (1.0 for full activation checkpointing)")

    training: dict[str, float | None] = {}
    for n in ("training_examples", "training_epochs"):
        v = o[n]
        if v is not None:
            v = _real(n, v, "pass a finite number > 0", positive=f"{n}={v!r} must be a finite number > 0")
        training[n] = v

    out = o["output_dir"]
    if out is not None:
        if not isinstance(out, (str, os.PathLike)):
            raise InvalidInputError(f"output_dir={out!r} ({_type_name(out)}) is not a path: pass a folder as a str "
                                    "or pathlib.Path, or None to write no files")
        from pyprof.report.atomic import check_output_dir

        out = check_output_dir(out, option="output_dir")

    fmts = o["report_formats"]
    from pyprof.report.writers import FORMATS

    if isinstance(fmts, (str, bytes)) or not isinstance(fmts, (tuple, list)):
        raise InvalidInputError(f"report_formats={fmts!r} must be a tuple of format names, e.g. ('json', 'md'); "
                                f"choose from {sorted(FORMATS)}")
    bad = [f for f in fmts if not isinstance(f, str) or f not in FORMATS]
    if bad:
        raise InvalidInputError(f"report_formats {bad} unknown; choose from {sorted(FORMATS)}")

    autosave = o["autosave_s"]
    if autosave is not None:
        autosave = _real("autosave_s", autosave, "pass seconds between autosaves as a number (e.g. 60), or None "
                         "to save only at the end", positive=f"autosave_s={autosave!r} must be a finite number of "
                         "seconds > 0 (e.g. 60), or None to save only at the end")

    name = o["name"]
    if name is not None and not isinstance(name, str):
        raise InvalidInputError(f"name={name!r} ({_type_name(name)}) must be a string (the run's name in the report)")

    device = o["device"]
    if device is not None:
        if type(device).__name__ == "device" and hasattr(device, "type"):  # torch.device
            device = str(device)
        if not (isinstance(device, str) and (device in ("cpu", "cuda") or
                                             (device.startswith("cuda:") and device[5:].isdigit()))):
            raise InvalidInputError(f"device={device!r}: use 'cpu', 'cuda' or 'cuda:<index>' (default: the model's "
                                    "device, else cpu)")

    counters = _choice("counters", o["counters"], COUNTERS,
                       "use 'off' (default; the tracer's library FLOPs still flow), 'kernel' (exact FLOPs per kernel; "
                       "serializes kernels) or 'step' (exact per-step totals over successive identical steps, one "
                       "counter pass per step)")
    top = _whole("top_kernels", o["top_kernels"], "pass how many kernels to list, e.g. 20")
    if top < 0:
        raise InvalidInputError(f"top_kernels={top!r} must be a whole number >= 0")
    verify = o["verify_every"]
    verify = 0 if verify is None else _whole("verify_every", verify, "pass the longest gap between verification "
                                             "recounts in steps, e.g. 1000, or 0 to turn verification off")
    if verify < 0:
        raise InvalidInputError(f"verify_every={verify!r} must be a whole number >= 0 (the longest gap between "
                                "verification recounts; 0 or None: never)")
    if counters != "off" and bools.get("pm_sampling"):
        # CUPTI 13 documents neither the Range Profiler beside PM sampling on one device nor the reverse; each
        # refuses the other at start (csrc/cuda), so ask for one of them before anything runs.
        raise InvalidInputError(f"counters={counters!r} and pm_sampling=True both need the GPU's performance "
                                "monitor: pick one (counters for exact executed FLOPs, pm_sampling for pipe activity "
                                "over time)")

    return ProfileOptions(model=model, schedule=sched, examples_per_step=eps, count_flops=count_flops, peak=peak,
                          precision=precision, recomputation=rec, output_dir=out, report_formats=tuple(fmts),
                          autosave_s=autosave, name=name, device=device, counters=counters, top_kernels=top, verify_every=verify,
                          training_examples=training["training_examples"],
                          training_epochs=training["training_epochs"], **bools)

