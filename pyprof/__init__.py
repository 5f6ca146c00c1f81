"""pyprof: FLOP and utilization profiler for deep-learning training.

``import pyprof`` is cheap and works on any machine: torch and the native core (``pyprof._C``) load on first use.

    with pyprof.profile(model, schedule=pyprof.schedule(warmup=1, active=10)) as prof:
        ...; prof.step()
    print(prof.summary())
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "profile": ("pyprof.profiler", "profile"),
    "Profile": ("pyprof.profiler", "Profile"),
    "schedule": ("pyprof.profiler", "schedule"),
    "Schedule": ("pyprof.profiler", "Schedule"),
    "count_flops": ("pyprof.flops", "count_flops"),
    "FlopCounter": ("pyprof.flops", "FlopCounter"),
    "register_formula": ("pyprof.flops", "register_formula"),
    "read_report": ("pyprof.report", "read_report"),
    "ProfileResult": ("pyprof.result", "ProfileResult"),
    "env": ("pyprof.env", "collect_env"),
}

__all__ = ["__version__", "estimate", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    if name == "estimate":  # the Method 1 / Method 2 API module: pyprof.estimate.method1(...), .method2(...)
        import importlib

        value = importlib.import_module("pyprof.estimate")
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pyprof' has no attribute {name!r}")
