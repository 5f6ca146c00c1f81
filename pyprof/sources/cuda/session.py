"""The GPU side of :func:`pyprof.profile`: one object that starts, steps and stops every GPU source.

Sources (each optional, each degrading on its own with a reason, none ever raising into the training loop), each an
adapter in :mod:`pyprof.sources.cuda.adapters` behind one protocol (start -> Status, begin_step, end_step -> its part
of the step, finish -> its part of the run section):

- the CUPTI kernel tracer (:mod:`pyprof.sources.cuda.tracer`): busy time, kernel counts, per-kernel table;
- the cuBLAS/cuBLASLt/cuDNN hooks (:mod:`pyprof.sources.cuda.libcalls`): formula FLOPs of every library call, by
  precision, bound to the kernels they launched (the tracer attaches them);
- CUDA events: step time on the GPU when the tracer cannot run (CUPTI held by another profiler);
- the NVML sampler (:mod:`pyprof.sources.cuda.nvml`): clocks, power, energy, temperature, NVML's own utilization;
- hardware counters (:mod:`pyprof.sources.cuda.counters`, ``counters="kernel"|"step"``): executed FLOPs;
- PM sampling (:mod:`pyprof.sources.cuda.pm`, ``pm_sampling=True``): pipe activity over time.

Data flows one way: these sources -> per-step :class:`~pyprof.records.GpuStep` (``StepRecord.gpu``) and the run's
:class:`~pyprof.records.GpuRun` (``ProfileResult.gpu``) -> reconciliation and report writers. Step windows are closed
after the profiler's ``synchronize()`` at each step boundary, so every kernel of step k has finished before step k+1
launches anything: attributing kernels to steps by their start timestamp is then exact (the cost of that synchronize
is part of the measured overhead).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from pyprof.records import GpuRun, GpuStep, Status
from pyprof.sources.cuda.adapters import (
    CounterSource,
    CudaEventSource,
    GpuSource,
    LibraryHookSource,
    NvmlSource,
    PmSource,
    TracerSource,
    jsonable,
)

__all__ = ["COUNTER_MODES", "GpuOptions", "GpuSession", "GpuSource", "jsonable"]

COUNTER_MODES = ("off", "kernel", "step")


@dataclass
class GpuOptions:
    """What the GPU session collects. Defaults are the always-on mode (tracer, library hooks, NVML)."""

    device: int = 0
    tracer: bool = True
    library_hooks: bool = True
    nvml: bool = True
    nvml_interval_s: float = 0.1
    counters: str = "off"
    pm_sampling: bool = False
    pm_interval_ms: float = 2.0
    keep_kernel_records: bool = False
    top_kernels: int = 20
    buffer_bytes: int = 4 << 20
    max_buffers: int = 64
    analytic_counting: bool = True  # whether pyprof's analytic count runs beside (says where unattributed FLOPs are)


def _warn(msg: str) -> None:
    warnings.warn(f"pyprof: {msg}", RuntimeWarning, stacklevel=4)


class GpuSession:
    """All GPU sources of one profile. Every method is safe to call whatever failed before, and never raises.

    Args:
        options: which sources to run (ignored for the sources when ``sources`` is given).
        sources: the sources to drive, in order (tests hand fakes here); default: the adapters ``options`` asks for.

    Raises:
        InvalidInputError: ``options.counters`` is not one of :data:`COUNTER_MODES`.
    """

    def __init__(self, options: GpuOptions | None = None, sources: Sequence[GpuSource] | None = None) -> None:
        self.options = options or GpuOptions()
        if self.options.counters not in COUNTER_MODES:
            from pyprof.errors import InvalidInputError
            raise InvalidInputError(f"counters={self.options.counters!r}: use 'off' (default; library FLOPs still flow), "
                                    "'kernel' (exact per kernel, serializes kernels) or 'step' (exact per-step totals "
                                    "over successive identical steps, one counter pass per step)")
        self.status: dict[str, Status] = {}
        self.notes: list[str] = []
        self._custom = sources is not None
        self._planned: list[GpuSource] = list(sources) if sources is not None else []
        self._active: list[GpuSource] = []
        self._parts: list[GpuRun] = []       # run-section parts of sources already finished (dropped ones)
        self._tracer: TracerSource | None = None
        self._events_started = False

    # ------------------------------------------------------------------ lifecycle
    def _default_sources(self) -> list[GpuSource]:
        o = self.options
        out: list[GpuSource] = []
        if o.tracer:
            self._tracer = TracerSource(o.device, buffer_bytes=o.buffer_bytes, max_buffers=o.max_buffers,
                                        keep_kernel_records=o.keep_kernel_records, top_kernels=o.top_kernels)
            out.append(self._tracer)
        else:
            self.status["tracer"] = Status(False, "disabled (tracer=False)")
        if o.library_hooks:
            out.append(LibraryHookSource(self._tracer, analytic_counting=o.analytic_counting))
        else:
            self.status["library_hooks"] = Status(False, "disabled (library_hooks=False)")
        if o.nvml:
            out.append(NvmlSource(o.device, o.nvml_interval_s, notes=self.notes))
        else:
            self.status["nvml"] = Status(False, "disabled (nvml=False)")
        if o.counters != "off":
            out.append(CounterSource(o.counters, o.device, tracer=self._tracer))
        else:
            self.status["counters"] = Status(False, "off (pass counters='kernel' or 'step' for executed FLOPs from "
                                                    "hardware counters)")
        if o.pm_sampling:
            out.append(PmSource(o.device, o.pm_interval_ms))
        return out

    def start(self) -> None:
        """Start every source; a failure becomes ``status[source] = Status(False, reason)``."""
        sources = self._planned if self._custom else self._default_sources()
        for src in sources:
            self._start(src)
        if not self._custom and (self._tracer is None or not self._tracer.active):
            self._start_events()  # CUDA-event step timing, the fallback when CUPTI is unavailable

    def _start(self, src: GpuSource) -> None:
        try:
            st = src.start()
        except Exception as e:  # a source's own guard failed: still never the loop's problem
            st = Status(False, f"{src.name} failed to start: {e!r}")
        self.status[src.name] = st
        if st.active:
            self._active.append(src)

    def _start_events(self) -> None:
        if not self._events_started:
            self._events_started = True
            self._start(CudaEventSource(self.options.device))

    def _drop(self, src: GpuSource, when: str, e: BaseException) -> None:
        """A source that raised is stopped; its status and a note say why, and the others go on."""
        self._active.remove(src)
        self.status[src.name] = Status(False, f"{src.name} stopped after an error in {when}: {e!r}",
                                       mode=self.status.get(src.name, Status(False)).mode)
        self.notes.append(f"GPU source {src.name} failed in {when} ({e!r}) and was stopped; the others go on")
        _warn(f"the GPU source {src.name} failed ({e!r}); " + (
            "falling back to CUDA-event step timing" if src is self._tracer else "the other sources go on"))
        try:
            self._parts.append(src.finish())
        except Exception:
            pass
        if src is self._tracer:
            self._start_events()

    # ------------------------------------------------------------------ steps
    def begin_step(self, step: int, recording: bool = True) -> None:
        """Open a step window in every source. Call after the device was synchronized."""
        for src in list(self._active):
            try:
                src.begin_step(step, recording)
            except Exception as e:
                self._drop(src, "begin_step", e)

    def end_step(self, step: int, recording: bool) -> GpuStep | None:
        """Close the step window (after synchronize); the sources' parts merged, when ``recording`` and any."""
        merged = GpuStep()
        for src in list(self._active):
            try:
                part = src.end_step(step, recording)
            except Exception as e:
                self._drop(src, "end_step", e)
                continue
            if part is not None:
                merged.merge(part)
        return merged if recording and not merged.is_empty() else None

    # ------------------------------------------------------------------ end
    def finish(self) -> GpuRun:
        """Stop every source; the run's GPU section (statuses, notes, each source's part)."""
        parts = list(self._parts)
        for src in list(self._active):
            try:
                parts.append(src.finish())
            except Exception as e:
                self.notes.append(f"GPU source {src.name} did not stop cleanly: {e!r}")
        self._active.clear()
        run = GpuRun(status=self.status, notes=self.notes)
        for part in parts:
            self.notes.extend(part.notes)
            for f in dataclasses.fields(part):
                v = getattr(part, f.name)
                if f.name not in ("status", "notes") and v is not None:
                    setattr(run, f.name, v)
        return run
