"""Lazy, cached loading of pyprof's native modules.

``pyprof._C`` (CPU core) is loaded on first use, never at ``import pyprof``; a failure raises
:class:`~pyprof.errors.NativeExtensionError` naming what is missing and how to fix it, with the cause chained.
``pyprof._C_cuda`` (CUDA/CUPTI part) is optional: :func:`load_cuda` returns ``(None, reason)`` instead of raising.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

from .errors import NativeExtensionError

_BUILD_HINT = (
    "build it from the source checkout with `pip install torch==2.13.0 && pip install -e .` "
    "(needs CMake >= 3.18, a C++17 compiler and pybind11; set PYPROF_CUDA=OFF to skip the CUDA part)"
)


@functools.lru_cache(maxsize=None)
def load_core() -> ModuleType:
    """Return ``pyprof._C``.

    Raises:
        NativeExtensionError: the extension is not built or cannot be loaded.
    """
    try:
        return importlib.import_module("pyprof._C")
    except ImportError as e:
        raise NativeExtensionError(f"pyprof's native core pyprof._C could not be loaded ({e}); {_BUILD_HINT}") from e


@functools.lru_cache(maxsize=None)
def load_cuda() -> tuple[ModuleType | None, str]:
    """Return ``(pyprof._C_cuda, "")``, or ``(None, reason)`` when the CUDA part is absent or cannot load."""
    try:
        return importlib.import_module("pyprof._C_cuda"), ""
    except ModuleNotFoundError:
        return None, (
            "the CUDA/CUPTI part of pyprof was not built (no CUDA toolkit with CUPTI at build time); "
            "rebuild with the toolkit on PATH and PYPROF_CUDA=ON to require it"
        )
    except ImportError as e:
        return None, f"the CUDA/CUPTI part pyprof._C_cuda failed to load ({e}); is libcupti on the library path?"
