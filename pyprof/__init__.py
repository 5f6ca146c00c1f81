"""pyprof: FLOP and utilization profiler for deep-learning training.

``import pyprof`` is cheap and works on any machine: torch and the native core (``pyprof._C``) load on first use.

    with pyprof.profile(model, schedule=pyprof.schedule(warmup=1, active=10)) as prof:
        ...; prof.step()
    print(prof.summary())
"""

from __future__ import annotations

from typing import Any

from pyprof import _aliases

__version__ = "0.1.0"

_LAZY = {
    "profile": ("pyprof.session.profile", "profile"),
    "Profile": ("pyprof.session.profile", "Profile"),
    "schedule": ("pyprof.session.schedule", "schedule"),
    "Schedule": ("pyprof.session.schedule", "Schedule"),
    "count_flops": ("pyprof.sources.flops", "count_flops"),
    "FlopCounter": ("pyprof.sources.flops", "FlopCounter"),
    "register_formula": ("pyprof.sources.flops", "register_formula"),
    "read_report": ("pyprof.report", "read_report"),
    "ProfileResult": ("pyprof.records", "ProfileResult"),
    "env": ("pyprof.env", "collect_env"),
}

#: Public API modules by their short name (``pyprof.estimate.method1(...)``), at their new homes (``pyprof._aliases``).
_MODULES = ("estimate", "efficiency", "trend", "uncertainty", "distributed", "integrations", "flops", "gpu")

_aliases.install()

__all__ = ["__version__", *_MODULES, *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    if name in _MODULES:  # API modules: pyprof.estimate.method1(...), pyprof.trend.fit_doubling_time(...), ...
        import importlib

        value = importlib.import_module(f"pyprof.{name}")
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pyprof' has no attribute {name!r}")
