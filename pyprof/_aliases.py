"""Old public module paths (``pyprof.estimate``, ``pyprof.integrations.hf``, ``pyprof.gpu.tracer``, ...) kept importable
after the package moved into its layered layout (session / sources / peaks / accounting / report).

An alias is the very module object at its new home (``pyprof.estimate is pyprof.accounting.estimate``), never a second
copy: a meta-path finder placed first resolves any name under an aliased prefix to its new name, imports that, and
hands the same object back (the pattern of ``six.moves``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

#: Old module path -> new module path. Names below an old package follow it (``pyprof.gpu.x`` -> ``pyprof.sources.cuda.x``).
ALIASES: dict[str, str] = {
    "pyprof.estimate": "pyprof.accounting.estimate",
    "pyprof.efficiency": "pyprof.accounting.efficiency",
    "pyprof.trend": "pyprof.accounting.trend",
    "pyprof.uncertainty": "pyprof.accounting.uncertainty",
    "pyprof.reconcile": "pyprof.accounting.reconcile",
    "pyprof.distributed": "pyprof.session.distributed",
    "pyprof.profiler": "pyprof.session.profile",
    "pyprof.run": "pyprof.session.run",
    "pyprof.integrations": "pyprof.session.integrations",
    "pyprof.flops": "pyprof.sources.flops",
    "pyprof.gpu": "pyprof.sources.cuda",
    "pyprof.result": "pyprof.records",
}


def new_name(fullname: str) -> str | None:
    """The new module path of an old one, or None when ``fullname`` is not under an alias."""
    for old, new in ALIASES.items():
        if fullname == old or fullname.startswith(old + "."):
            return new + fullname[len(old):]
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: ModuleType) -> None:
        self.target = target
        self.spec = target.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.target

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system stamped the alias's spec on it; give the real one back


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        new = new_name(fullname)
        if new is None:
            return None
        module = importlib.import_module(new)
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(module), is_package=hasattr(module, "__path__"))


def install() -> None:
    """Put the alias finder first on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
