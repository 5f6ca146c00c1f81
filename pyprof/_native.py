"""Lazy, cached loading of pyprof's native modules.

``pyprof._C`` (CPU core) is loaded on first use, never at ``import pyprof``; a failure raises
:class:`~pyprof.errors.NativeExtensionError` naming what is missing and how to fix it, with the cause chained.
``pyprof._C_cuda`` (CUDA/CUPTI part) is optional: :func:`load_cuda` returns ``(None, reason)`` instead of raising.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

from pyprof.errors import NativeExtensionError

_BUILD_HINT = (
    "build it from the source checkout with `pip install torch==2.13.0 && pip install -e .` "
    "(needs CMake >= 3.18, a C++17 compiler and pybind11; set PYPROF_CUDA=OFF to skip the CUDA part)"
)


@functools.cache
def load_core() -> ModuleType:
    """Return ``pyprof._C``.

    Raises:
        NativeExtensionError: the extension is not built or cannot be loaded.
    """
    try:
        return importlib.import_module("pyprof._C")
    except ImportError as e:
        raise NativeExtensionError(f"pyprof's native core pyprof._C could not be loaded ({e}); {_BUILD_HINT}") from e


def loaded_cupti() -> str | None:
    """Path of the libcupti already mapped into this process (by torch, CuPy or pyprof), if any."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rsplit(" ", 1)[-1].strip()
                if "/libcupti.so" in path:
                    return path
    except OSError:
        pass
    return None


#: The libcupti major version pyprof._C_cuda is built against (it links libcupti.so.13, CUDA 13.x).
CUPTI_MAJOR = 13


class CuptiVersionError(ImportError):
    """A libcupti of another major version is already loaded in this process: pyprof._C_cuda is not loaded beside it."""


def cupti_major_version(path: str) -> int | None:
    """Major version of the libcupti at ``path``: the number after ``.so.`` in its name, else asked of the library.

    An unversioned name (``libcupti.so``) is resolved by calling ``cuptiGetVersion`` on the already-mapped library:
    from CUDA 13.0 its API version reads ``xxyyzz`` with ``xx`` the CUDA major version; before, it was a small
    counter (v19..v28 for CUDA 12.x, ``cupti_version.h``), so any value below 10000 means CUDA 12 or older.

    Returns:
        The major version, or None when neither the name nor the library tells.
    """
    import ctypes
    import re

    m = re.search(r"libcupti\.so\.(\d+)", os.path.basename(path))
    if m:
        return int(m.group(1))
    try:
        lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | os.RTLD_NOW)
        version = ctypes.c_uint32(0)
        if lib.cuptiGetVersion(ctypes.byref(version)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    v = int(version.value)
    return v // 10000 if v >= 10000 else 12  # pre-13 counters (<= v28) are CUDA 12 or older: 12 stands for "older"


def find_wheel_cupti(site_dirs: list[str] | None = None) -> str | None:
    """The libcupti.so.13 of an ``nvidia-cuda-cupti`` wheel (what pip-installed torch loads), if installed."""
    import glob
    import site
    import sys

    dirs = site_dirs if site_dirs is not None else [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    for d in dirs:
        for pattern in ("nvidia/cu13/lib/libcupti.so.13", "nvidia/cuda_cupti/lib/libcupti.so.13",
                        "nvidia/*/lib/libcupti.so.13"):
            hits = sorted(glob.glob(os.path.join(d, pattern)))
            if hits:
                return hits[0]
    return None


#: which libcupti the CUDA part uses, and why (filled by load_cuda)
CUPTI_LIBRARY: dict[str, str | None] = {"path": None, "how": None}


def _share_framework_cupti() -> None:
    """Make pyprof._C_cuda use the framework's libcupti: never two copies of CUPTI in one process.

    The dynamic loader resolves ``libcupti.so.13`` to an already-loaded object of that soname before searching paths,
    so loading the wheel's copy first (RTLD_GLOBAL) makes our module bind to it instead of the toolkit's.
    """
    import ctypes

    path = loaded_cupti()
    if path:
        major = cupti_major_version(path)
        if major is not None and major != CUPTI_MAJOR:
            # The loader would map a second CUPTI (ours, .so.13) beside it: two CUPTI copies in one process fight
            # over the same driver hooks. Refuse before loading.
            raise CuptiVersionError(
                f"this process already loaded libcupti major version {major} ({path}), but pyprof's CUDA part needs "
                f"libcupti.so.{CUPTI_MAJOR} (CUDA {CUPTI_MAJOR}.x): use a framework build for CUDA {CUPTI_MAJOR} "
                f"(e.g. torch cu130), or rebuild pyprof against the CUDA toolkit your framework uses"
            )
        CUPTI_LIBRARY.update(path=path, how="already loaded in this process")
        return
    wheel = find_wheel_cupti()
    if wheel:
        try:
            ctypes.CDLL(wheel, mode=ctypes.RTLD_GLOBAL)
            CUPTI_LIBRARY.update(path=wheel, how="the nvidia-cuda-cupti wheel's copy (the one pip-installed torch uses)")
            return
        except OSError as e:
            CUPTI_LIBRARY.update(how=f"could not preload {wheel}: {e}")
            return
    CUPTI_LIBRARY.update(how="the toolkit's copy found through the module's RPATH")


@functools.cache
def load_cuda() -> tuple[ModuleType | None, str]:
    """Return ``(pyprof._C_cuda, "")``, or ``(None, reason)`` when the CUDA part is absent or cannot load."""
    try:
        _share_framework_cupti()  # raises ImportError for a libcupti of another major version already loaded
        mod = importlib.import_module("pyprof._C_cuda")
        CUPTI_LIBRARY["path"] = loaded_cupti() or CUPTI_LIBRARY["path"]
        return mod, ""
    except CuptiVersionError as e:
        return None, f"the CUDA/CUPTI part of pyprof is not loaded: {e}"
    except ModuleNotFoundError:
        return None, (
            "the CUDA/CUPTI part of pyprof was not built (no CUDA toolkit with CUPTI at build time); "
            "rebuild with the toolkit on PATH and PYPROF_CUDA=ON to require it"
        )
    except ImportError as e:
        return None, f"the CUDA/CUPTI part pyprof._C_cuda failed to load ({e}); is libcupti on the library path?"
