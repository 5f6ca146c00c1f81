"""Each GPU source behind one small protocol (:class:`GpuSource`), so that the GPU session drives them all the same
way and a test can hand it fakes.

A source's ``start()`` returns a :class:`~pyprof.records.Status` (active, and why not); ``begin_step`` opens a step
window (called after the device was synchronized); ``end_step`` returns its part of the step as a
:class:`~pyprof.records.GpuStep` holding only the fields it measures (None: nothing this step); ``finish`` stops the
source and returns its part of the run section as a :class:`~pyprof.records.GpuRun` with only its fields set.
A source may raise from any method: the session turns that into a status and a note, never into the loop.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Protocol

from pyprof.records import (
    GpuCounters,
    GpuRun,
    GpuStep,
    KernelStat,
    NvmlStepWindow,
    Status,
)


class GpuSource(Protocol):
    """What the GPU session needs of a source. ``name`` keys its status in the report."""

    name: str

    def start(self) -> Status: ...

    def begin_step(self, index: int, recording: bool) -> None: ...

    def end_step(self, index: int, recording: bool) -> GpuStep | None: ...

    def finish(self) -> GpuRun: ...


def jsonable(x: Any) -> Any:
    """Dataclasses, numpy arrays and scalars, tuples -> plain JSON-ready Python (the report stores plain data)."""
    import dataclasses

    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist"):  # numpy arrays and scalars
        return x.tolist()
    return x


def _warn(msg: str) -> None:
    warnings.warn(f"pyprof: {msg}", RuntimeWarning, stacklevel=5)


class TracerSource:
    """The CUPTI kernel tracer: busy time, kernel counts and time, library FLOPs bound to kernels, memcpy, and the
    run's kernel table. ``last_kernel_signature`` (the step's kernel names when records are kept, else its kernel
    count) lets the counters check that the steps they combine ran the same kernels."""

    name = "tracer"

    def __init__(self, device: int = 0, *, buffer_bytes: int = 4 << 20, max_buffers: int = 64,
                 keep_kernel_records: bool = False, top_kernels: int = 20) -> None:
        self.device = device
        self.buffer_bytes, self.max_buffers = buffer_bytes, max_buffers
        self.keep_kernel_records, self.top_kernels = keep_kernel_records, top_kernels
        self.active = False
        self.last_kernel_signature: tuple | None = None
        self._tracer: Any = None
        self._t0_ns = 0
        self._graph_notes: list[Any] = []  # per recorded step: kernels replayed from CUDA graphs with no library FLOPs

    def start(self) -> Status:
        try:
            from pyprof.sources.cuda.tracer import KernelTracer
            t = KernelTracer(buffer_bytes=self.buffer_bytes, max_buffers=self.max_buffers)
            if not t.start():
                return Status(False, t.reason)
        except Exception as e:  # never break the loop for the tracer
            return Status(False, f"tracer failed to start: {e!r}")
        self._tracer, self.active = t, True
        return Status(True, "")

    def begin_step(self, index: int, recording: bool) -> None:
        self._t0_ns = self._tracer.now_ns()

    def end_step(self, index: int, recording: bool) -> GpuStep | None:
        t1 = self._tracer.now_ns()
        w = self._tracer.close_window(self._t0_ns, t1, keep_records=recording and self.keep_kernel_records)
        window_s = (t1 - self._t0_ns) * 1e-9
        busy = w.busy_time_s.get(self.device, sum(w.busy_time_s.values()) if w.busy_time_s else 0.0)
        kernels = list(w.kernels) if w.kernels is not None else None
        if kernels:
            from pyprof.sources.cuda.libcalls import graph_replay_note
            note = graph_replay_note(kernels)
            if note is not None and len(self._graph_notes) < 1024:
                self._graph_notes.append(note)
        self.last_kernel_signature = (tuple(k.get("name") for k in kernels) if kernels is not None
                                      else (w.kernel_count,))
        return GpuStep(
            timing_source="cupti",
            window_time_s=window_s,
            busy_time_s=busy,
            busy_time_s_by_device={str(k): v for k, v in w.busy_time_s.items()},
            idle_time_s=max(0.0, window_s - busy),
            kernel_count=w.kernel_count,
            kernel_time_s=w.kernel_time_s,
            uncounted_kernel_time_s=w.uncounted_kernel_time_s,
            library_flops_by_precision=dict(w.library_flops),
            library_flops=float(sum(w.library_flops.values())),
            library_kernel_count=w.library_kernel_count,
            memcpy_count=w.memcpy_count,
            memcpy_bytes=w.memcpy_bytes,
            memcpy_time_s=w.memcpy_time_s,
            kernels=kernels,
        )

    def finish(self) -> GpuRun:
        run = GpuRun()
        t, self._tracer, self.active = self._tracer, None, False
        if t is None:
            return run
        try:
            run.kernels = [KernelStat.from_dict(jsonable(k)) for k in t.kernel_table(self.top_kernels)]
            run.tracer_stats = jsonable(t.stats())
        except Exception as e:
            run.notes.append(f"kernel table unavailable: {e!r}")
        if self._graph_notes:
            worst = max(self._graph_notes, key=lambda n: n.count)
            run.notes.append(f"{worst.text} (seen in {len(self._graph_notes)} recorded step(s); the largest shown)")
        try:
            t.stop()
        except Exception:
            pass
        return run


class CudaEventSource:
    """Step time on the GPU from two CUDA events: the fallback when the kernel tracer cannot run."""

    name = "cuda_events"

    def __init__(self, device: int = 0) -> None:
        self.device = device
        self._events: tuple[Any, Any] | None = None
        self._begun = False

    def start(self) -> Status:
        try:
            import torch

            if not torch.cuda.is_available():
                return Status(False, "torch sees no CUDA device")
            self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        except Exception as e:
            return Status(False, f"CUDA events unavailable: {e!r}")
        return Status(True, "step time from CUDA events (no kernel tracer)")

    def begin_step(self, index: int, recording: bool) -> None:
        if self._events is not None:
            self._events[0].record()
            self._begun = True

    def end_step(self, index: int, recording: bool) -> GpuStep | None:
        if self._events is None or not self._begun:  # started in the middle of a step (the tracer failed)
            return None
        self._events[1].record()
        self._events[1].synchronize()
        return GpuStep(timing_source="cuda events", gpu_time_s=self._events[0].elapsed_time(self._events[1]) * 1e-3)

    def finish(self) -> GpuRun:
        self._events = None
        return GpuRun()


class LibraryHookSource:
    """The cuBLASLt / cuDNN logger hooks: formula FLOPs of every library call. With the tracer the calls are bound
    to kernels (the tracer's part carries them); without it, this source sums the step's calls itself."""

    name = "library_hooks"

    def __init__(self, tracer: TracerSource | None = None, *, analytic_counting: bool = True) -> None:
        self.tracer = tracer
        self.installed = False
        self.analytic_counting = analytic_counting
        self._backend0 = 0  # cudnnBackendExecute calls seen before this profile (hook_stats is process-wide)

    def _bound(self) -> bool:
        return self.tracer is not None and self.tracer.active

    def start(self) -> Status:
        try:
            from pyprof.sources.cuda.libcalls import install_library_hooks
            st = install_library_hooks()
        except Exception as e:
            return Status(False, f"installing the library hooks failed: {e!r}")
        self.installed = any(h.installed for h in st.values())
        reason = "" if self.installed else "no library logger could be installed: " + "; ".join(
            f"{k}: {h.reason}" for k, h in st.items())
        if self.installed and not self._bound():
            reason = ("installed, but without the kernel tracer the calls cannot be bound to kernels; library "
                      "FLOPs are still summed per step")
        if self.installed and not self._bound():
            self._drain()  # start the per-step deltas from here, not from whatever an earlier profile recorded
        if self.installed:
            self._backend0 = _backend_executes()
        return Status(self.installed, reason, libraries={k: h.text for k, h in st.items()})

    def begin_step(self, index: int, recording: bool) -> None:
        return None

    def _drain(self) -> dict[str, float]:
        from pyprof.sources.cuda.libcalls import drain_flops_by_precision
        return drain_flops_by_precision()

    def end_step(self, index: int, recording: bool) -> GpuStep | None:
        if not self.installed or self._bound():
            return None
        by_p = self._drain()
        return GpuStep(library_flops_by_precision=by_p, library_flops=float(sum(by_p.values())))

    def finish(self) -> GpuRun:
        run = GpuRun()
        if not self.installed:
            return run
        self.installed = False
        from pyprof.sources.cuda.libcalls import hook_stats, uninstall_hooks
        try:
            run.library_hooks_stats = jsonable(hook_stats())
            from pyprof.sources.cuda.libcalls import cudnn_backend_note
            note = cudnn_backend_note(max(0, _backend_executes() - self._backend0), self.analytic_counting)
            if note is not None:
                run.notes.append(note.text)
        finally:
            uninstall_hooks()  # trace-level library logging must not outlive the profile
        return run


def _backend_executes() -> int:
    """cudnnBackendExecute calls the hooks have seen in this process (0 when unknown)."""
    try:
        from pyprof.sources.cuda.libcalls import hook_stats
        return int(hook_stats().get("cudnn_backend_executes") or 0)
    except Exception:
        return 0


class NvmlSource:
    """The NVML sampler: clocks, power, energy, temperature and NVML's own utilization, per step."""

    name = "nvml"

    def __init__(self, device: int = 0, interval_s: float = 0.1, notes: list[str] | None = None) -> None:
        self.device, self.interval_s = device, interval_s
        self.notes = notes if notes is not None else []
        self._sampler: Any = None
        self._t0 = 0.0

    def start(self) -> Status:
        try:
            from pyprof.sources.cuda.nvml import NvmlSampler
            s = NvmlSampler(devices=[self.device], interval_s=self.interval_s)
            if not s.start():
                return Status(False, s.reason)
        except Exception as e:
            return Status(False, f"NVML sampler failed to start: {e!r}")
        self._sampler = s
        return Status(True, "")

    def begin_step(self, index: int, recording: bool) -> None:
        self._t0 = time.monotonic()

    def end_step(self, index: int, recording: bool) -> GpuStep | None:
        t1 = time.monotonic()
        try:  # one missed window is a note, not the end of NVML
            w = self._sampler.window(self._t0, t1).get(self.device)
        except Exception as e:
            self.notes.append(f"NVML window failed: {e!r}")
            return None
        return GpuStep(nvml=NvmlStepWindow.from_dict(jsonable(w))) if w is not None else None

    def finish(self) -> GpuRun:
        s, self._sampler = self._sampler, None
        if s is None:
            return GpuRun()
        from pyprof.sources.cuda.nvml import NVML_UTILIZATION_MEANING
        s.stop()
        return GpuRun(nvml={"reasons": jsonable(getattr(s, "reasons", {})),
                            "utilization_meaning": NVML_UTILIZATION_MEANING})


class CounterSource:
    """Hardware counters (CUPTI Range Profiler): executed FLOPs of one step. They run in recorded steps only: step
    mode until its passes are all in (one per step), kernel mode in the first recorded step only (kernel replay
    serializes and re-runs every kernel of the step)."""

    name = "counters"

    def __init__(self, mode: str, device: int = 0, tracer: TracerSource | None = None) -> None:
        self.mode, self.device, self.tracer = mode, device, tracer
        self._session: Any = None
        self._counting = False
        self._kernel_mode_steps = 0

    def start(self) -> Status:
        try:
            from pyprof.sources.cuda.counters import CounterSession
            c = CounterSession(self.mode, device=self.device)
            if not c.start():
                _warn(f"hardware counters ({self.mode!r} mode) unavailable: {c.reason}; tracing goes on")
                return Status(False, c.reason, mode=self.mode)
        except Exception as e:
            return Status(False, f"counter session failed: {e!r}")
        self._session = c
        return Status(True, "", mode=self.mode)

    def begin_step(self, index: int, recording: bool) -> None:
        self._counting = False
        if recording and not (self.mode == "kernel" and self._kernel_mode_steps >= 1):
            self._session.begin_step(index)
            self._counting = True
            self._kernel_mode_steps += self.mode == "kernel"

    def end_step(self, index: int, recording: bool) -> GpuStep | None:
        if not self._counting:
            return None
        # identical-step check for step mode: the kernel sequence when records are kept, else the count
        sig = self.tracer.last_kernel_signature if self.tracer is not None and self.tracer.active else None
        self._session.end_step(index, kernel_signature=sig)
        return GpuStep(counters_ran=True)  # the step's time includes counter collection: left out of rates

    def finish(self) -> GpuRun:
        c, self._session = self._session, None
        if c is None:
            return GpuRun()
        return GpuRun(counters=GpuCounters.from_dict(jsonable(c.finish())))


class PmSource:
    """PM sampling: pipe activity over time (a series for the report, not per-step figures)."""

    name = "pm_sampling"

    def __init__(self, device: int = 0, interval_ms: float = 2.0) -> None:
        self.device, self.interval_ms = device, interval_ms
        self._pm: Any = None

    def start(self) -> Status:
        try:
            from pyprof.sources.cuda.pm import PmSession
            p = PmSession(device=self.device, interval_ms=self.interval_ms)
            if not p.start():
                return Status(False, p.reason)
        except Exception as e:
            return Status(False, f"PM sampling failed to start: {e!r}")
        self._pm = p
        return Status(True, "")

    def begin_step(self, index: int, recording: bool) -> None:
        return None

    def end_step(self, index: int, recording: bool) -> GpuStep | None:
        return None

    def finish(self) -> GpuRun:
        p, self._pm = self._pm, None
        if p is None:
            return GpuRun()
        p.stop()
        return GpuRun(pm_sampling=jsonable(p.series()), pm_sampling_stats=jsonable(p.stats()))
