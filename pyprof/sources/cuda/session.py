"""The GPU side of :func:`pyprof.profile`: one object that starts, steps and stops every GPU source.

Sources (each optional, each degrading on its own with a reason, none ever raising into the training loop):

- the CUPTI kernel tracer (:mod:`pyprof.gpu.tracer`): busy time, kernel counts, per-kernel table;
- the cuBLAS/cuBLASLt/cuDNN hooks (:mod:`pyprof.gpu.libcalls`): formula FLOPs of every library call, by precision,
  bound to the kernels they launched (the tracer attaches them);
- CUDA events: step time on the GPU when the tracer cannot run (CUPTI held by another profiler);
- the NVML sampler (:mod:`pyprof.gpu.nvml`): clocks, power, energy, temperature, NVML's own utilization;
- hardware counters (:mod:`pyprof.gpu.counters`, ``counters="kernel"|"step"``): executed FLOPs;
- PM sampling (:mod:`pyprof.gpu.pm`, ``pm_sampling=True``): pipe activity over time.

Data flows one way: these sources -> per-step dicts (``StepRecord.gpu``) and the run's ``ProfileResult.gpu`` section
-> reconciliation and report writers. Step windows are closed after the profiler's ``synchronize()`` at each step
boundary, so every kernel of step k has finished before step k+1 launches anything: attributing kernels to steps by
their start timestamp is then exact (the cost of that synchronize is part of the measured overhead).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

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
    warnings.warn(f"pyprof: {msg}", RuntimeWarning, stacklevel=4)


class GpuSession:
    """All GPU sources of one profile. Every method is safe to call whatever failed before."""

    def __init__(self, options: GpuOptions | None = None) -> None:
        self.options = options or GpuOptions()
        if self.options.counters not in COUNTER_MODES:
            from pyprof.errors import InvalidInputError
            raise InvalidInputError(f"counters={self.options.counters!r}: use 'off' (default; library FLOPs still flow), "
                                    "'kernel' (exact per kernel, serializes kernels) or 'step' (exact per-step totals "
                                    "over successive identical steps, one counter pass per step)")
        self.status: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self._tracer: Any = None
        self._nvml: Any = None
        self._counters: Any = None
        self._pm: Any = None
        self._events: tuple[Any, Any] | None = None
        self._t0_ns = 0
        self._t0_mono = 0.0
        self._started = False
        self._hooks_installed = False
        self._counting_step = False
        self._kernel_mode_steps = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start every requested source; failures become ``status[source] = {"active": False, "reason": ...}``."""
        o = self.options
        if o.tracer:
            self._start_tracer()
        else:
            self.status["tracer"] = {"active": False, "reason": "disabled (tracer=False)"}
        if o.library_hooks:
            self._start_hooks()
        else:
            self.status["library_hooks"] = {"active": False, "reason": "disabled (library_hooks=False)"}
        if self._tracer is None:
            self._start_events()
        if o.nvml:
            self._start_nvml()
        else:
            self.status["nvml"] = {"active": False, "reason": "disabled (nvml=False)"}
        if o.counters != "off":
            self._start_counters()
        else:
            self.status["counters"] = {"active": False, "reason": "off (pass counters='kernel' or 'step' for executed "
                                                                  "FLOPs from hardware counters)"}
        if o.pm_sampling:
            self._start_pm()
        self._started = True

    def _start_tracer(self) -> None:
        try:
            from pyprof.sources.cuda.tracer import KernelTracer
            t = KernelTracer(buffer_bytes=self.options.buffer_bytes, max_buffers=self.options.max_buffers)
            if t.start():
                self._tracer = t
                self.status["tracer"] = {"active": True, "reason": ""}
            else:
                self.status["tracer"] = {"active": False, "reason": t.reason}
        except Exception as e:  # never break the loop for the tracer
            self.status["tracer"] = {"active": False, "reason": f"tracer failed to start: {e!r}"}

    def _start_hooks(self) -> None:
        try:
            from pyprof.sources.cuda.libcalls import install_library_hooks
            st = install_library_hooks()
            ok = any(h.installed for h in st.values())
            reason = "" if ok else "no library logger could be installed: " + "; ".join(
                f"{k}: {h.reason}" for k, h in st.items())
            if ok and self._tracer is None:
                reason = ("installed, but without the kernel tracer the calls cannot be bound to kernels; library "
                          "FLOPs are still summed per step")
            self.status["library_hooks"] = {"active": ok, "reason": reason,
                                             "libraries": {k: h.text for k, h in st.items()}}
            self._hooks_installed = ok
        except Exception as e:
            self.status["library_hooks"] = {"active": False, "reason": f"installing the library hooks failed: {e!r}"}

    def _start_events(self) -> None:
        """CUDA-event step timing, the fallback when CUPTI is unavailable."""
        try:
            import torch

            if not torch.cuda.is_available():
                self.status["cuda_events"] = {"active": False, "reason": "torch sees no CUDA device"}
                return
            dev = torch.device("cuda", self.options.device)
            self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            self._event_device = dev
            self.status["cuda_events"] = {"active": True, "reason": "step time from CUDA events (no kernel tracer)"}
        except Exception as e:
            self.status["cuda_events"] = {"active": False, "reason": f"CUDA events unavailable: {e!r}"}

    def _start_nvml(self) -> None:
        try:
            from pyprof.sources.cuda.nvml import NvmlSampler
            s = NvmlSampler(devices=[self.options.device], interval_s=self.options.nvml_interval_s)
            if s.start():
                self._nvml = s
                self.status["nvml"] = {"active": True, "reason": ""}
            else:
                self.status["nvml"] = {"active": False, "reason": s.reason}
        except Exception as e:
            self.status["nvml"] = {"active": False, "reason": f"NVML sampler failed to start: {e!r}"}

    def _start_counters(self) -> None:
        try:
            from pyprof.sources.cuda.counters import CounterSession
            c = CounterSession(self.options.counters, device=self.options.device)
            if c.start():
                self._counters = c
                self.status["counters"] = {"active": True, "reason": "", "mode": self.options.counters}
            else:
                self.status["counters"] = {"active": False, "reason": c.reason, "mode": self.options.counters}
                _warn(f"hardware counters ({self.options.counters!r} mode) unavailable: {c.reason}; tracing goes on")
        except Exception as e:
            self.status["counters"] = {"active": False, "reason": f"counter session failed: {e!r}"}

    def _start_pm(self) -> None:
        try:
            from pyprof.sources.cuda.pm import PmSession
            p = PmSession(device=self.options.device, interval_ms=self.options.pm_interval_ms)
            if p.start():
                self._pm = p
                self.status["pm_sampling"] = {"active": True, "reason": ""}
            else:
                self.status["pm_sampling"] = {"active": False, "reason": p.reason}
        except Exception as e:
            self.status["pm_sampling"] = {"active": False, "reason": f"PM sampling failed to start: {e!r}"}

    # ------------------------------------------------------------------ steps
    def begin_step(self, step: int, recording: bool = True) -> None:
        """Open a step window. Call after the device was synchronized.

        Hardware counters run only in recorded steps: step mode until its passes are all in (one per step), kernel
        mode in the first recorded step only (kernel replay serializes and re-runs every kernel of the step).
        """
        self._t0_mono = time.monotonic()
        if self._tracer is not None:
            try:
                self._t0_ns = self._tracer.now_ns()
            except Exception as e:
                self._drop_tracer(e)
        if self._events is not None:
            try:
                self._events[0].record()
            except Exception:
                self._events = None
        self._counting_step = False
        if self._counters is not None and recording and not (self.options.counters == "kernel"
                                                              and self._kernel_mode_steps >= 1):
            try:
                self._counters.begin_step(step)
                self._counting_step = True
                self._kernel_mode_steps += self.options.counters == "kernel"
            except Exception as e:
                self._drop_counters(e)

    def end_step(self, step: int, recording: bool) -> dict[str, Any] | None:
        """Close the step window (after synchronize); returns the step's GPU figures when ``recording``."""
        t1_mono = time.monotonic()
        out: dict[str, Any] = {}
        if self._tracer is not None:
            try:
                t1 = self._tracer.now_ns()
                w = self._tracer.close_window(self._t0_ns, t1, keep_records=recording and self.options.keep_kernel_records)
                window_s = (t1 - self._t0_ns) * 1e-9
                busy = w.busy_time_s.get(self.options.device, sum(w.busy_time_s.values()) if w.busy_time_s else 0.0)
                out.update(
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
                )
                if w.kernels is not None:
                    out["kernels"] = w.kernels
            except Exception as e:
                self._drop_tracer(e)
        if self._events is not None and "busy_time_s" not in out:
            try:
                self._events[1].record()
                self._events[1].synchronize()
                out.update(timing_source="cuda events", gpu_time_s=self._events[0].elapsed_time(self._events[1]) * 1e-3)
            except Exception as e:
                self.notes.append(f"CUDA-event timing stopped: {e!r}")
                self._events = None
        if self._hooks_installed and self._tracer is None:
            out.update(self._unbound_library_flops())
        if self._nvml is not None:
            try:
                w = self._nvml.window(self._t0_mono, t1_mono).get(self.options.device)
                if w is not None:
                    d = jsonable(w)
                    for k in ("utilization_meaning", "reasons", "device"):  # run-level facts, not per step
                        d.pop(k, None)
                    out["nvml"] = d
            except Exception as e:
                self.notes.append(f"NVML window failed: {e!r}")
        if self._counters is not None and self._counting_step:
            try:
                # identical-step check for step mode: the kernel sequence when records are kept, else the count
                sig = None
                if "kernels" in out:
                    sig = tuple(k.get("name") for k in out["kernels"])
                elif "kernel_count" in out:
                    sig = (out["kernel_count"],)
                self._counters.end_step(step, kernel_signature=sig)
                out["counters_ran"] = True  # the step's time includes counter collection: left out of rates
            except Exception as e:
                self._drop_counters(e)
        return out if recording else None

    def _unbound_library_flops(self) -> dict[str, Any]:
        """Library FLOPs of the step when no tracer binds calls to kernels: drain the hooks' own per-call totals."""
        try:
            from pyprof.sources.cuda.libcalls import drain_flops_by_precision
            by_p = drain_flops_by_precision()
            return {"library_flops_by_precision": by_p, "library_flops": float(sum(by_p.values()))}
        except Exception:
            return {}

    def _drop_tracer(self, e: BaseException) -> None:
        self.status["tracer"] = {"active": False, "reason": f"tracer stopped after an error: {e!r}"}
        _warn(f"the CUPTI kernel tracer failed ({e!r}); falling back to CUDA-event step timing")
        try:
            self._tracer.stop()
        except Exception:
            pass
        self._tracer = None
        self._start_events()

    def _drop_counters(self, e: BaseException) -> None:
        self.status["counters"] = {"active": False, "reason": f"counters stopped after an error: {e!r}"}
        _warn(f"hardware counters failed ({e!r}); tracing goes on")
        self._counters = None

    # ------------------------------------------------------------------ end
    def finish(self) -> dict[str, Any]:
        """Stop every source and return the run's GPU section (status, kernel table, stats, counters, PM series)."""
        out: dict[str, Any] = {"status": self.status, "notes": self.notes}
        if self._tracer is not None:
            try:
                out["kernels"] = jsonable(self._tracer.kernel_table(self.options.top_kernels))
                out["tracer_stats"] = jsonable(self._tracer.stats())
            except Exception as e:
                self.notes.append(f"kernel table unavailable: {e!r}")
            try:
                self._tracer.stop()
            except Exception:
                pass
        if self._hooks_installed:
            try:
                from pyprof.sources.cuda.libcalls import hook_stats, uninstall_hooks

                out["library_hooks_stats"] = hook_stats()
                uninstall_hooks()
            except Exception as e:
                self.notes.append(f"library hooks did not stop cleanly: {e!r}")
        if self._nvml is not None:
            try:
                self._nvml.stop()
                out["nvml"] = {"reasons": jsonable(getattr(self._nvml, "reasons", {})),
                               "utilization_meaning": _nvml_meaning()}
            except Exception:
                pass
        if self._counters is not None:
            try:
                out["counters"] = jsonable(self._counters.finish())
            except Exception as e:
                self.notes.append(f"counter results unavailable: {e!r}")
        if self._pm is not None:
            try:
                self._pm.stop()
                out["pm_sampling"] = jsonable(self._pm.series())
                out["pm_sampling_stats"] = jsonable(self._pm.stats())
            except Exception as e:
                self.notes.append(f"PM samples unavailable: {e!r}")
        self._tracer = self._nvml = self._counters = self._pm = None
        return out


def _nvml_meaning() -> str:
    from pyprof.sources.cuda.nvml import NVML_UTILIZATION_MEANING
    return NVML_UTILIZATION_MEANING
