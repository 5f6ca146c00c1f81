"""Library-call hooks: every cuBLAS / cuBLASLt / cuDNN compute call the process makes, with its formula FLOPs.

The hooks are the libraries' own logger callbacks (see ``csrc/cuda/libhooks.cpp`` for why not symbol interposition):
one callback inside libcublasLt sees PyTorch, CuPy and JAX alike, and legacy cuBLAS GEMMs reach it through the typed
``cublasLt*Matmul`` entry points. Each recorded call waits in the native registry until the activity tracer binds it
to the next kernel launch on its thread.

Nothing here raises for a missing GPU, driver, library or native extension: statuses say what is missing.
"""

from __future__ import annotations

import enum
import glob
import os
import site
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyprof._native import load_cuda

#: Precision classes a library call is measured against, widest first.
PRECISIONS: tuple[str, ...] = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4")

#: Library key -> file-name prefixes of the shared object whose logger is hooked.
_LIBRARIES: dict[str, tuple[str, ...]] = {
    "cublasLt": ("libcublasLt.so.13", "libcublasLt.so.12"),
    "cudnn": ("libcudnn.so.9",),
}


def _loaded_paths() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {key: [] for key in _LIBRARIES}
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(None, 5)  # address perms offset dev inode [path]
                path = parts[5] if len(parts) == 6 else ""
                base = os.path.basename(path)
                for key, names in _LIBRARIES.items():
                    if base in names and path not in found[key]:
                        found[key].append(path)
    except OSError:
        pass
    return found


def _site_dirs() -> list[str]:
    dirs: list[str] = []
    try:
        dirs.extend(site.getsitepackages())
    except AttributeError:  # virtualenvs without site.getsitepackages
        pass
    try:
        dirs.append(site.getusersitepackages())
    except AttributeError:
        pass
    dirs.extend(p for p in sys.path if p.endswith("site-packages"))
    out: list[str] = []
    for d in dirs:
        if d and os.path.isdir(d) and d not in out:
            out.append(d)
    return out


def _candidate_dirs() -> list[str]:
    dirs: list[str] = []
    for sp in _site_dirs():
        # NVIDIA wheels: nvidia/cublas/lib, nvidia/cudnn/lib (CUDA 12), nvidia/cu13/lib (CUDA 13 wheels).
        dirs.extend(sorted(glob.glob(os.path.join(sp, "nvidia", "*", "lib"))))
        # CuPy's bundled libraries (cupy/.data/<cuda>/lib, or cupy_backends for some builds).
        dirs.extend(sorted(glob.glob(os.path.join(sp, "cupy", ".data", "*", "lib"))))
        dirs.extend(sorted(glob.glob(os.path.join(sp, "cupy", ".data", "lib"))))
    for env in ("CUDA_HOME", "CUDA_PATH"):
        root = os.environ.get(env)
        if root:
            dirs.append(os.path.join(root, "lib64"))
    dirs.extend(["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu"])
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def find_library_paths() -> dict[str, list[str]]:
    """Where the hookable libraries are, best candidate first.

    Copies already mapped into this process (``/proc/self/maps``) come first: they are the ones the framework calls.
    Then the NVIDIA pip wheels (``nvidia/cublas/lib``, ``nvidia/cudnn/lib``, ``nvidia/cu13/lib``), CuPy's bundled
    copies, and the CUDA toolkit's library directory.

    Returns:
        ``{"cublasLt": [paths...], "cudnn": [paths...]}``; a list is empty when nothing was found.
    """
    found = _loaded_paths()
    for d in _candidate_dirs():
        for key, names in _LIBRARIES.items():
            for name in names:
                p = os.path.join(d, name)
                known = {os.path.realpath(q) for q in found[key]}
                if os.path.isfile(p) and os.path.realpath(p) not in known:
                    found[key].append(p)
    return found


def install_hooks(paths: list[str] | None = None) -> dict[str, str]:
    """Install the cuBLASLt and cuDNN logger hooks. Never raises.

    Already-loaded copies are hooked in place; a library not loaded yet is loaded from the first path that works
    (PyTorch loads cuBLASLt lazily, at the first matmul, and then resolves to this same copy by its soname).

    Args:
        paths: library files to load when not loaded yet; default :func:`find_library_paths`.

    Returns:
        library -> status: ``"installed: <soname> (<path>)"``, ``"not loaded"``, or the loader's error text. When the
        CUDA part of pyprof is missing, every library maps to ``"unavailable: <reason>"``. Decide on it through
        :class:`HookStatus` (:func:`install_library_hooks`), never by comparing the text.
    """
    mod, reason = load_cuda()
    if mod is None:
        return dict.fromkeys(_LIBRARIES, f"unavailable: {reason}")
    try:
        if paths is None:
            found = find_library_paths()
            paths = [p for key in _LIBRARIES for p in found[key]]
        return dict(mod.hooks_install([str(p) for p in paths]))
    except Exception as e:  # the profiler never takes the training loop down
        return dict.fromkeys(_LIBRARIES, f"error: {e}")


@dataclass(frozen=True)
class HookStatus:
    """The typed state of one library's logger hook, parsed once from the native status text.

    Attributes:
        installed: the hook is in place (the library's logger now calls pyprof).
        library: soname of the hooked copy (``"libcublasLt.so.13"``), None when not installed.
        path: file of the hooked copy, None when not installed.
        reason: why it is not installed (``"not loaded"``, the dlopen/dlsym error, ``"unavailable: <why>"``);
            "" when installed.
        text: the native status text as it came (kept in the report's ``libraries`` table).
    """

    installed: bool
    library: str | None = None
    path: str | None = None
    reason: str = ""
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> HookStatus:
        """Parse one native status (``csrc/cuda/libhooks.h``: ``"installed: <soname> (<path>)"`` with further
        ``"; <soname> (<path>)"`` when several copies were hooked, ``"not loaded"``, or an error text).

        The one place that reads the native text: callers test ``installed``, never a prefix.
        """
        text = str(text)
        head, sep, rest = text.partition(": ")
        if head != "installed" or not sep:
            return cls(installed=False, reason=text or "no status", text=text)
        first = rest.split("; ", 1)[0]
        lib, paren, path = first.partition(" (")
        if not paren or not path.endswith(")"):
            return cls(installed=True, library=first or None, text=text)
        return cls(installed=True, library=lib, path=path[:-1], text=text)


def parse_hook_statuses(statuses: dict[str, str]) -> dict[str, HookStatus]:
    """:func:`install_hooks`' ``{library: text}`` as ``{library: HookStatus}``."""
    return {k: HookStatus.parse(v) for k, v in statuses.items()}


def install_library_hooks(paths: list[str] | None = None) -> dict[str, HookStatus]:
    """:func:`install_hooks` with typed statuses (see :class:`HookStatus`). Never raises."""
    return parse_hook_statuses(install_hooks(paths))


def uninstall_hooks() -> None:
    """Remove the hooks and restore the libraries' loggers; a no-op without the CUDA part."""
    mod, _ = load_cuda()
    if mod is not None:
        mod.hooks_uninstall()


def hook_stats() -> dict[str, Any]:
    """Counters of the hooks and of the library-call registry.

    Returns:
        ``calls_by_library`` ({"cublasLt": n, "cudnn": n}), ``cudnn_backend_executes`` (cuDNN graph-API executions,
        seen but not attributed), ``parse_failures``, ``sample_unparsed`` (first few unreadable lines), ``installed``,
        and the registry's ``calls``, ``bound``, ``unbound``, ``dropped``, ``pending``, ``waiting``; or
        ``{"unavailable": reason}`` without the CUDA part.
    """
    mod, reason = load_cuda()
    if mod is None:
        return {"unavailable": reason}
    return dict(mod.hooks_stats())


def parse_cublaslt_log(function_name: str, message: str) -> dict[str, Any] | None:
    """Parse one cuBLASLt logger line; see ``pyprof._C_cuda.parse_cublaslt_log``.

    Args:
        function_name: the logger's function name (``"cublasLtMatmul"``, ``"cublasLtSSSMatmul"``, ...), or ``""`` to
            take it from the ``[Trace][name]`` prefix of a whole log-file line.
        message: the callback's message or a whole log-file line.

    Returns:
        The call (keys library, op, m, n, k, batch, a_type, b_type, c_type, d_type, compute_type, trans_a, trans_b,
        stream, flops, precision, detail), or None for a line that is not a matmul or cannot be read.

    Raises:
        RuntimeError: the CUDA part of pyprof is missing (the parser is native).
    """
    return _require().parse_cublaslt_log(function_name, message)


def parse_cudnn_log(message: str) -> dict[str, Any] | None:
    """Parse one cuDNN API-log entry (a legacy convolution call); None for anything else.

    Args:
        message: the multi-line ``function cudnnConvolution...() called:`` block.

    Returns:
        The call dict (op ``conv_fwd``, ``conv_bwd_data`` or ``conv_bwd_filter``), or None.

    Raises:
        RuntimeError: the CUDA part of pyprof is missing.
    """
    return _require().parse_cudnn_log(message)


def _require():
    mod, reason = load_cuda()
    if mod is None:
        raise RuntimeError(reason)
    return mod


_last_recorded: dict[str, float] = {}


def drain_flops_by_precision() -> dict[str, float]:
    """Library formula FLOPs recorded since the previous call, by precision (all calls, bound to kernels or not).

    Used when the kernel tracer is off (CUPTI held by another profiler): calls cannot be bound to kernels then, but
    their FLOPs still add up per step.
    """
    global _last_recorded
    now = dict(hook_stats().get("recorded_flops_by_precision") or {})
    delta = {p: v - _last_recorded.get(p, 0.0) for p, v in now.items() if v - _last_recorded.get(p, 0.0) > 0}
    _last_recorded = now
    return delta


# ---------------------------------------------------------------------------------------------------------------
# Library FLOPs a report cannot attribute (issue 15 likely 8 and 9): pure functions, so that the session can call them
# on a step's or a run's GPU section and a CPU test can check the wording and the arithmetic.


class AttributionGap(str, enum.Enum):
    """Why library FLOPs are missing for some kernels."""

    CUDA_GRAPH_REPLAY = "cuda_graph_replay"  # cuBLASLt logs at capture only; replays carry the graph launch's id
    CUDNN_BACKEND = "cudnn_backend"          # cudnnBackendExecute logs an execution plan pointer, not shapes


@dataclass(frozen=True)
class AttributionNote:
    """One unattributed-library-FLOPs note for a report.

    Attributes:
        gap: which mechanism loses the FLOPs.
        count: kernels (graph replay) or executions (cuDNN backend) concerned.
        time_s: their kernel time in seconds where known (graph replay), else None.
        text: the sentence a report shows.
    """

    gap: AttributionGap
    count: int
    time_s: float | None
    text: str


def graph_replay_note(kernel_records: Iterable[dict[str, Any]] | None) -> AttributionNote | None:
    """The note for kernels replayed from CUDA graphs that carry no library FLOPs.

    cuBLASLt logs a matmul when a graph is captured, not when it is replayed, and the replayed kernels carry the graph
    launch's correlation id, so no library call binds to them (``torch.compile(mode="reduce-overhead")``, CUDA-graphed
    steps): their library FLOPs read 0 and their time counts as uncounted. Until calls are mapped to graph nodes,
    the report must say so.

    Args:
        kernel_records: per-kernel records of a window or run (``GpuWindow.kernels``: dicts with ``graph_id``,
            ``start_ns``, ``end_ns`` in ns, ``library_flops``), or None when records were not kept.

    Returns:
        The note, or None when no record ran inside a graph without library FLOPs (or there are no records).
    """
    if not kernel_records:
        return None
    n = 0
    ns = 0
    for r in kernel_records:
        if int(r.get("graph_id") or 0) != 0 and not float(r.get("library_flops") or 0.0):
            n += 1
            ns += max(0, int(r.get("end_ns") or 0) - int(r.get("start_ns") or 0))
    if n == 0:
        return None
    t = ns * 1e-9
    return AttributionNote(
        AttributionGap.CUDA_GRAPH_REPLAY, n, t,
        f"CUDA-graph replays: library FLOPs not attributed ({n} kernel(s), {t:.3g} s, ran inside CUDA graphs; "
        "cuBLASLt logs calls at capture only, so their time counts as uncounted)")


def cudnn_backend_note(backend_executes: int, analytic_counting: bool) -> AttributionNote | None:
    """The note for cuDNN graph-API executions whose FLOPs the hooks could not read.

    PyTorch 2.x runs cuDNN convolutions through ``cudnnBackendExecute``, which logs an execution-plan pointer only;
    the legacy convolution log never appears, so without this note a CNN's library FLOPs silently omit its main work.

    Args:
        backend_executes: ``cudnnBackendExecute`` calls seen over the section (the difference of two
            :func:`hook_stats` ``cudnn_backend_executes`` readings).
        analytic_counting: whether the section's FLOPs also come from pyprof's analytic counter (then the
            convolutions' FLOPs are there).

    Returns:
        The note, or None when there was no such execution.

    Raises:
        ValueError: a negative count (readings taken in the wrong order).
    """
    n = int(backend_executes)
    if n < 0:
        raise ValueError(f"backend_executes={backend_executes!r} is negative: subtract the earlier hook_stats reading "
                         "from the later one")
    if n == 0:
        return None
    tail = ("their FLOPs come from the analytic count" if analytic_counting
            else "their FLOPs are missing from library FLOPs (turn on the analytic count to include them)")
    return AttributionNote(AttributionGap.CUDNN_BACKEND, n, None,
                           f"{n} cuDNN backend execution(s) not attributed; {tail}")
