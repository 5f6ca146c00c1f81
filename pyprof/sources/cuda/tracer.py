"""CUPTI kernel tracer: per-step GPU kernel time, busy/idle time and library FLOPs.

A thin Python face over the process-wide tracer in ``pyprof._C_cuda`` (``csrc/cuda/activity.cpp``): records are
decoded and aggregated in C++ (bounded memory, counted losses); this module turns the nanosecond dictionaries into
seconds-based dataclasses and decides how to degrade.

CUPTI allows one subscriber per process. When torch.profiler (Kineto), Nsight Systems / Compute, cuda-gdb or DCGM
already holds it, :meth:`KernelTracer.start` returns ``False`` with a reason and warns once per process: pyprof then
falls back to CUDA-event step timing. Importing this module never fails; without ``pyprof._C_cuda`` or a driver,
``start()`` returns ``False`` with the reason.

The native tracer is shared by the whole process: every :class:`KernelTracer` holds a reference, and the tracer stops
when the last holder stops (:func:`enable_early` holds one until :func:`release_early`). Its aggregator is shared too:
each :meth:`KernelTracer.start` empties it, so a profile never reports an earlier profile's kernels (nor pyprof's own
peak kernels traced under :func:`enable_early`). Two profiles that overlap in time therefore share one table.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pyprof._native import load_cuda

__all__ = ["GpuWindow", "KernelRow", "KernelTracer", "enable_early", "release_early"]

_NS_PER_S = 1e9

_lock = threading.Lock()
_refs = 0  # holders of the process-wide native tracer (KernelTracer.start + enable_early)
_early: KernelTracer | None = None
_warned_cupti_busy = False


def _s(ns: int | float) -> float:
    return float(ns) / _NS_PER_S


@dataclass(frozen=True)
class GpuWindow:
    """GPU activity of kernels and memory operations that started in one window (e.g. one training step).

    Attributes:
        start_ns: Window start, on the tracer's clock (:meth:`KernelTracer.now_ns`).
        end_ns: Window end (exclusive), same clock.
        kernel_count: Kernels that started in the window.
        kernel_time_s: Sum of their durations; concurrent kernels each count in full, so this can exceed the window.
        busy_time_s: Per device, the union of kernel intervals (overlapping kernels counted once), clipped at the
            window's end.
        idle_time_s: Per device, window length minus busy time. Every device the tracer has seen is listed.
        uncounted_kernel_time_s: Time of kernels with no library (cuBLAS/cuDNN) FLOPs attached.
        library_flops: Formula FLOPs of the library calls bound to the window's kernels, by precision class.
        library_kernel_count: Kernels that carried a library call.
        memcpy_count: Memory copies that started in the window.
        memcpy_bytes: Bytes they moved.
        memcpy_time_s: Sum of their durations.
        memset_count: Memsets that started in the window.
        memset_bytes: Bytes they set.
        memset_time_s: Sum of their durations.
        kernels: Per-kernel records (dicts with ``name, device, stream, grid, block, start_ns, end_ns,
            correlation_id, external_id, library_flops, precision, ...``) when asked for, else ``None``.
        kernels_truncated: Kernels of the window left out of ``kernels`` by the native cap.
        discarded_before_start: Pending records found to start before ``start_ns`` (outside any window).
    """

    start_ns: int
    end_ns: int
    kernel_count: int
    kernel_time_s: float
    busy_time_s: dict[int, float]
    idle_time_s: dict[int, float]
    uncounted_kernel_time_s: float
    library_flops: dict[str, float]
    library_kernel_count: int
    memcpy_count: int
    memcpy_bytes: int
    memcpy_time_s: float
    memset_count: int
    memset_bytes: int
    memset_time_s: float
    kernels: list[dict[str, Any]] | None
    kernels_truncated: int
    discarded_before_start: int

    @property
    def window_time_s(self) -> float:
        """Length of the window in seconds."""
        return _s(max(0, self.end_ns - self.start_ns))

    @classmethod
    def from_native(cls, d: dict[str, Any]) -> GpuWindow:
        """Build from the dict ``pyprof._C_cuda.tracer_close_window`` returns (nanoseconds)."""
        return cls(
            start_ns=int(d["start_ns"]),
            end_ns=int(d["end_ns"]),
            kernel_count=int(d["kernel_count"]),
            kernel_time_s=_s(d["kernel_ns"]),
            busy_time_s={int(k): _s(v) for k, v in d["busy_ns"].items()},
            idle_time_s={int(k): _s(v) for k, v in d["idle_ns"].items()},
            uncounted_kernel_time_s=_s(d["uncounted_kernel_ns"]),
            library_flops={str(k): float(v) for k, v in d["library_flops"].items()},
            library_kernel_count=int(d["library_kernel_count"]),
            memcpy_count=int(d["memcpy_count"]),
            memcpy_bytes=int(d["memcpy_bytes"]),
            memcpy_time_s=_s(d["memcpy_ns"]),
            memset_count=int(d["memset_count"]),
            memset_bytes=int(d["memset_bytes"]),
            memset_time_s=_s(d["memset_ns"]),
            kernels=d["records"],
            kernels_truncated=int(d["records_truncated"]),
            discarded_before_start=int(d["discarded_before_start"]),
        )


@dataclass(frozen=True)
class KernelRow:
    """One kernel-table row: a kernel name at one launch shape on one device, over the whole trace.

    Attributes:
        name: Kernel name as CUPTI reports it (mangled for C++ kernels); ``"<other kernels>"`` for the overflow row.
        device: Device index; -1 for the overflow row.
        grid: Grid dimensions (x, y, z).
        block: Block dimensions (x, y, z).
        count: Executions.
        total_time_s: Sum of their durations.
        max_time_s: Longest execution.
        library_flops: Formula FLOPs of the library calls bound to these executions.
        precision: Precision class of those calls (``"mixed"`` when several), ``None`` when none.
        library_calls: Executions that carried a library call.
        achieved_flops_per_s: ``library_flops`` over the time of the executions that carried them; ``None`` when
            no execution had library FLOPs.
    """

    name: str
    device: int
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    count: int
    total_time_s: float
    max_time_s: float
    library_flops: float
    precision: str | None
    library_calls: int
    achieved_flops_per_s: float | None

    @classmethod
    def from_native(cls, d: dict[str, Any]) -> KernelRow:
        """Build from one dict of ``pyprof._C_cuda.tracer_kernel_table`` (nanoseconds)."""
        library_ns = int(d.get("library_ns", 0))
        flops = float(d["library_flops"])
        achieved = flops / _s(library_ns) if library_ns > 0 and flops > 0 else None
        return cls(
            name=str(d["name"]),
            device=int(d["device"]),
            grid=tuple(int(v) for v in d["grid"]),  # type: ignore[arg-type]
            block=tuple(int(v) for v in d["block"]),  # type: ignore[arg-type]
            count=int(d["count"]),
            total_time_s=_s(d["total_ns"]),
            max_time_s=_s(d["max_ns"]),
            library_flops=flops,
            precision=d["precision"],
            library_calls=int(d["library_calls"]),
            achieved_flops_per_s=achieved,
        )


def _warn_cupti_busy(holder: str) -> None:
    global _warned_cupti_busy
    with _lock:
        if _warned_cupti_busy:
            return
        _warned_cupti_busy = True
    who = f"'{holder}'" if holder else "another tool (likely torch.profiler, Nsight Systems/Compute, cuda-gdb or DCGM)"
    warnings.warn(
        f"pyprof: CUPTI is already in use by {who}; CUPTI allows one client per process, so pyprof falls back to "
        "CUDA-event step timing (no per-kernel times, GPU busy time or library-FLOP binding in this run)",
        RuntimeWarning,
        stacklevel=3,
    )


class KernelTracer:
    """Handle on the process-wide CUPTI kernel tracer.

    Args:
        buffer_bytes: Size of one CUPTI activity buffer.
        max_buffers: Most buffers alive at once; CUPTI drops records (counted in :meth:`stats`) beyond that.
        external_correlation: Let :meth:`push_external_id` tags reach the kernels. CUPTI writes those links only next
            to a per-launch runtime/driver API record, which costs time on every launch, so it is off unless asked
            (``profile()`` does not use the tags). Only the start that starts the native tracer decides it.

    Raises:
        ValueError: ``buffer_bytes`` below 64 KiB or ``max_buffers`` below 1.
    """

    def __init__(self, buffer_bytes: int = 4 << 20, max_buffers: int = 64, *,
                 external_correlation: bool = False) -> None:
        if buffer_bytes < 64 * 1024:
            raise ValueError(f"buffer_bytes must be at least 65536, got {buffer_bytes}")
        if max_buffers < 1:
            raise ValueError(f"max_buffers must be at least 1, got {max_buffers}")
        self.buffer_bytes = int(buffer_bytes)
        self.max_buffers = int(max_buffers)
        self.external_correlation = bool(external_correlation)
        self._active = False
        self._reason = "not started"
        self._code: int | None = None

    @property
    def active(self) -> bool:
        """Whether this handle holds the running tracer."""
        return self._active

    @property
    def reason(self) -> str:
        """Why the tracer is not active (empty while it is)."""
        return "" if self._active else self._reason

    @property
    def code(self) -> int | None:
        """The native status code of the last failed start (a CUptiResult, or -1 for no driver)."""
        return self._code

    def _module(self) -> ModuleType | None:
        mod, why = load_cuda()
        if mod is None:
            self._reason = why
        return mod

    def start(self) -> bool:
        """Start (or join) the process-wide tracer.

        Every successful start empties the shared aggregator (see the module docstring): what this handle reports
        begins here.

        Returns:
            True when tracing; False with :attr:`reason` set when the CUDA part is missing, there is no driver, or
            another tool holds CUPTI (then a warning is issued once per process). Never raises for those.
        """
        global _refs
        if self._active:
            return True
        mod = self._module()
        if mod is None:
            return False
        try:
            status = mod.tracer_start(self.buffer_bytes, self.max_buffers,
                                      external_correlation=self.external_correlation)
        except Exception as e:  # a broken native part must not take the training loop down
            self._reason = f"pyprof._C_cuda.tracer_start failed: {e!r}"
            return False
        if not status["ok"]:
            self._code = int(status["code"])
            self._reason = str(status["message"])
            if self._code == getattr(mod, "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED", 39):
                _warn_cupti_busy(str(status.get("holder", "")))
            return False
        try:
            mod.tracer_reset()  # a new profile starts empty: no earlier profile's (or peak kernels') records
        except Exception as e:
            warnings.warn(f"pyprof: could not reset the kernel tracer's aggregator: {e!r}", RuntimeWarning,
                          stacklevel=2)
        with _lock:
            _refs += 1
        self._active = True
        self._code = None
        self._reason = ""
        return True

    def stop(self) -> None:
        """Release this handle; the native tracer flushes and stops when no other holder remains."""
        global _refs
        if not self._active:
            return
        self._active = False
        self._reason = "stopped"
        with _lock:
            _refs -= 1
            last = _refs == 0
        if last:
            mod, _ = load_cuda()
            if mod is not None:
                mod.tracer_stop()

    def now_ns(self) -> int:
        """The tracer's clock (CUPTI timestamp, ns): use it for window bounds.

        Raises:
            RuntimeError: the CUDA part is not available (see :attr:`reason`).
        """
        return int(self._require().tracer_now_ns())

    def flush(self) -> None:
        """Hand CUPTI's completed buffers to the aggregator (blocks until done); no-op when not active.

        Not forced: CUPTI hands over every buffer whose records are all complete, full or not, and keeps those with
        an unfinished record for a later flush (cupti_activity.h, ``cuptiActivityFlushAll``). The forced flush that
        also returns incomplete records happens only when the native tracer stops. Synchronize the device before
        closing a window if its last kernels must be in it.
        """
        if self._active:
            self._require().tracer_flush(False)

    def close_window(self, start_ns: int, end_ns: int, keep_records: bool = False) -> GpuWindow:
        """Flush, then aggregate and remove the records that start in ``[start_ns, end_ns)``.

        Records that started before ``start_ns`` are discarded (counted as ``outside_windows`` in :meth:`stats`);
        records at or after ``end_ns`` stay for a later window.

        Args:
            start_ns: Window start on :meth:`now_ns`'s clock.
            end_ns: Window end (exclusive).
            keep_records: Also return the per-kernel records (capped natively; see ``kernels_truncated``).

        Returns:
            The window's :class:`GpuWindow`.

        Raises:
            RuntimeError: the CUDA part is not available.
        """
        mod = self._require()
        self.flush()
        return GpuWindow.from_native(mod.tracer_close_window(int(start_ns), int(end_ns), bool(keep_records)))

    def kernel_table(self, top_n: int = 20) -> list[KernelRow]:
        """The ``top_n`` kernel rows by total time, longest first (all rows when ``top_n <= 0``).

        Raises:
            RuntimeError: the CUDA part is not available.
        """
        mod = self._require()
        self.flush()
        return [KernelRow.from_native(d) for d in mod.tracer_kernel_table(int(top_n))]

    def stats(self) -> dict[str, Any]:
        """Native counters (records decoded, CUPTI drops, refused buffers, pending drops, key overflow, ...).

        Returns an empty dict when the CUDA part is not available.
        """
        mod, _ = load_cuda()
        return dict(mod.tracer_stats()) if mod is not None else {}

    def push_external_id(self, external_id: int) -> None:
        """Tag this thread's next launches with ``external_id`` (e.g. the step number); no-op when not active."""
        if self._active:
            self._require().tracer_push_external_id(int(external_id))

    def pop_external_id(self) -> int:
        """End the innermost tag; returns its id (0 when none or not active)."""
        return int(self._require().tracer_pop_external_id()) if self._active else 0

    def _require(self) -> ModuleType:
        mod, why = load_cuda()
        if mod is None:
            raise RuntimeError(f"the CUPTI kernel tracer is not available: {why}")
        return mod


def enable_early(buffer_bytes: int = 4 << 20, max_buffers: int = 64) -> bool:
    """Start the process-wide tracer now, before the model's CUDA modules load.

    On Hopper, concurrent-kernel timing instruments kernels when their module loads; enabling it after the model is
    built re-instruments everything at once (Kineto saw multi-second stalls). Call this at the top of the training
    script. Safe to call more than once: later calls return the first result (a failed start is retried).
    The early reference keeps the tracer running until :func:`release_early`.

    Returns:
        Whether the tracer is running.
    """
    global _early
    with _lock:
        early = _early
    if early is not None and early.active:
        return True
    tracer = KernelTracer(buffer_bytes, max_buffers)
    ok = tracer.start()
    if ok:
        with _lock:
            if _early is None or not _early.active:
                _early, tracer = tracer, None  # type: ignore[assignment]
        if tracer is not None:  # another thread won the race: give our reference back
            tracer.stop()
    return ok


def release_early() -> None:
    """Drop the reference :func:`enable_early` holds (the tracer stops if no :class:`KernelTracer` holds one)."""
    global _early
    with _lock:
        early, _early = _early, None
    if early is not None:
        early.stop()
