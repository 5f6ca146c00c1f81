"""``pyprof.profile()``: wrap a training loop, record per-step time and FLOPs, reconcile with Method 1 / Method 2.

    with pyprof.profile(model, schedule=pyprof.schedule(wait=1, warmup=1, active=5)) as prof:
        for x, y in loader:
            loss_fn(model(x), y).backward(); opt.step(); opt.zero_grad()
            prof.step()
    print(prof.result().reconciliation.utilization_vs_spec)

Analytic FLOPs are counted with a dispatch mode, which is expensive, so a step is counted once per distinct *step
signature* (the sequence of root-module forward calls with their input shapes, dtypes, training and grad mode) and
the count is reused for identical steps; a changed signature is counted again. Counting may happen in warm-up steps,
so that recorded steps run at full speed; a recorded step in which counting ran is marked ``perturbed`` and left out
of the rates.

The profiler never breaks the loop it wraps: a failure inside pyprof's hooks disables that measurement with a warning;
the loop's own exceptions propagate unchanged, and the report is still written (marked partial).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyprof.constants import ASSUMED_UTILIZATION_CPU, ASSUMED_UTILIZATION_GPU
from pyprof.errors import InvalidInputError, ProfilerStateError
from pyprof.records import (
    DeviceReport,
    PeakReport,
    ProfileResult,
    StepRecord,
    summarize_steps,
)

#: The one profile that may be active in this process (profiles do not nest).
_ACTIVE: Profile | None = None

_ACTIONS = ("none", "warmup", "record", "record_and_save")


@dataclass(frozen=True)
class Schedule:
    """Which steps to skip, warm up and record; same semantics as ``torch.profiler.schedule``.

    After ``skip_first`` steps, cycles of ``wait`` idle, ``warmup`` warm-up and ``active`` recorded steps repeat
    ``repeat`` times (0 = forever). The last active step of a cycle is ``record_and_save``.
    """

    wait: int = 0
    warmup: int = 1
    active: int = 1
    repeat: int = 0
    skip_first: int = 0

    def __post_init__(self) -> None:
        for name in ("wait", "warmup", "active", "repeat", "skip_first"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidInputError(f"schedule {name}={v!r} must be a whole number >= 0")
        if self.active < 1:
            raise InvalidInputError("schedule active must be >= 1: with no active step nothing is recorded")

    def __call__(self, step: int) -> str:
        if step < self.skip_first:
            return "none"
        step -= self.skip_first
        cycle = self.wait + self.warmup + self.active
        if self.repeat and step // cycle >= self.repeat:
            return "none"
        pos = step % cycle
        if pos < self.wait:
            return "none"
        if pos < self.wait + self.warmup:
            return "warmup"
        return "record_and_save" if pos == cycle - 1 else "record"


def schedule(*, wait: int = 0, warmup: int = 1, active: int = 1, repeat: int = 0, skip_first: int = 0) -> Schedule:
    """A step schedule like ``torch.profiler.schedule``; warns when ``warmup`` is 0 (first steps run cold)."""
    if warmup == 0:
        warnings.warn("pyprof.schedule: warmup=0: the first recorded steps include one-time costs (allocator, "
                      "kernels chosen, caches) and pyprof's FLOP counting; use warmup >= 1", UserWarning, stacklevel=2)
    return Schedule(wait=wait, warmup=warmup, active=active, repeat=repeat, skip_first=skip_first)


def _action_of(sched: Callable[[int], Any] | None, step: int) -> str:
    if sched is None:
        return "record"
    a = sched(step)
    name = getattr(a, "name", a)  # torch.profiler.ProfilerAction is an Enum: NONE, WARMUP, RECORD, RECORD_AND_SAVE
    name = str(name).lower()
    if name not in _ACTIONS:
        raise InvalidInputError(f"schedule returned {a!r} for step {step}; expected a torch.profiler.ProfilerAction "
                                f"or one of {_ACTIONS}")
    return name


def _signature_of(x: Any, depth: int = 0) -> Any:
    """A hashable description of call arguments: shapes and dtypes of tensors, small values of scalars."""
    import torch

    if isinstance(x, torch.Tensor):
        return ("T", tuple(x.shape), str(x.dtype), x.device.type, x.requires_grad)
    if depth > 3:
        return type(x).__name__
    if isinstance(x, (list, tuple)):
        return tuple(_signature_of(v, depth + 1) for v in x)
    if isinstance(x, dict):
        return tuple((str(k), _signature_of(v, depth + 1)) for k, v in x.items())
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return type(x).__name__


_DTYPE_PRECISION = {"torch.float32": "fp32", "torch.float64": "fp64", "torch.bfloat16": "bf16", "torch.float16": "fp16"}


class Profile:
    """A profiling session; create it with :func:`profile`."""

    def __init__(
        self,
        model: Any = None,
        *,
        schedule: Callable[[int], Any] | None = None,
        examples_per_step: int | None = None,
        count_flops: str = "auto",
        hardware_counters: bool = True,
        measure_peak: bool = True,
        peak: str | float | None = None,
        precision: str = "auto",
        recomputation: float = 0.0,
        training_examples: float | None = None,
        training_epochs: float | None = None,
        output_dir: str | os.PathLike | None = None,
        report_formats: tuple[str, ...] = ("json", "md"),
        autosave_s: float | None = 60.0,
        name: str | None = None,
        device: str | None = None,
        counters: str = "off",
        pm_sampling: bool = False,
        gpu_tracer: bool = True,
        library_hooks: bool = True,
        nvml: bool = True,
        kernel_records: bool = False,
        top_kernels: int = 20,
    ) -> None:
        if count_flops not in ("auto", "every", "off"):
            raise InvalidInputError(f"count_flops={count_flops!r}: use 'auto' (count once per step signature), "
                                    "'every' (count every recorded step) or 'off'")
        if examples_per_step is not None and (isinstance(examples_per_step, bool) or not isinstance(examples_per_step, int)
                                              or examples_per_step <= 0):
            raise InvalidInputError(f"examples_per_step={examples_per_step!r} must be a whole number > 0 (the batch size)")
        if not (0.0 <= float(recomputation) <= 1.0):
            raise InvalidInputError(f"recomputation={recomputation!r} must be in [0, 1]: the fraction of the forward "
                                    "pass recomputed in backward (1.0 for full activation checkpointing)")
        for n, v in (("training_examples", training_examples), ("training_epochs", training_epochs)):
            if v is not None and not (isinstance(v, (int, float)) and v > 0 and v == v and v != float("inf")):
                raise InvalidInputError(f"{n}={v!r} must be a finite number > 0")
        if isinstance(peak, (int, float)) and not isinstance(peak, bool) and not (0 < peak < float("inf")):
            raise InvalidInputError(f"peak={peak!r} must be a finite FLOP/s > 0, or a hardware name")
        if isinstance(peak, str):
            from pyprof.peaks.database import hardware_kind
            hardware_kind(peak)  # an unknown name fails here, before training, with close matches in the message
        from pyprof.report import FORMATS
        bad = [f for f in report_formats if f not in FORMATS]
        if bad:
            raise InvalidInputError(f"report_formats {bad} unknown; choose from {sorted(FORMATS)}")
        if counters not in ("off", "kernel", "step"):
            raise InvalidInputError(f"counters={counters!r}: use 'off' (default; the tracer's library FLOPs still "
                                    "flow), 'kernel' (exact FLOPs per kernel; serializes kernels) or 'step' (exact "
                                    "per-step totals over successive identical steps, one counter pass per step)")
        if device is not None and not (isinstance(device, str) and (device == "cpu" or device.startswith("cuda"))):
            raise InvalidInputError(f"device={device!r}: use 'cpu', 'cuda' or 'cuda:<index>' (default: the model's "
                                    "device, else cpu)")
        if isinstance(top_kernels, bool) or not isinstance(top_kernels, int) or top_kernels < 0:
            raise InvalidInputError(f"top_kernels={top_kernels!r} must be a whole number >= 0")
        if not callable(schedule) and schedule is not None:
            raise InvalidInputError("schedule must be pyprof.schedule(...) or torch.profiler.schedule(...)")
        if isinstance(schedule, Schedule) and schedule.warmup == 0:
            warnings.warn("pyprof.profile: schedule has warmup=0", UserWarning, stacklevel=3)
        self.model = model
        self.schedule = schedule
        self.examples_per_step = examples_per_step
        self.count_mode = count_flops
        self.use_hw_counters = hardware_counters
        self.measure_peak = measure_peak
        self.peak = peak
        self.precision = precision
        self.recomputation = float(recomputation)
        self.training_examples = training_examples
        self.training_epochs = training_epochs
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.report_formats = tuple(report_formats)
        self.autosave_s = autosave_s
        self.name = name or "pyprof"
        self.device_arg = device
        self.gpu_options: dict[str, Any] = dict(counters=counters, pm_sampling=pm_sampling, tracer=gpu_tracer,
                                                library_hooks=library_hooks, nvml=nvml,
                                                keep_kernel_records=kernel_records, top_kernels=top_kernels)
        self._gpu: Any = None
        self._gpu_section: dict[str, Any] | None = None

        self._active = False
        self._finished = False
        self._result: ProfileResult | None = None
        self._notes: list[str] = []
        self._steps: list[StepRecord] = []
        self._flop_counts: list[Any] = []           # FlopCount per distinct signature
        self._sig_index: dict[tuple, int] = {}       # full step signature -> index in _flop_counts
        self._last_sig: tuple | None = None
        self._hooks: list[Any] = []
        self._counter: Any = None
        self._counter_error_seen = False
        self._hw: Any = None
        self._hw_info: dict[str, Any] = {"available": False, "source": None, "reason": "not requested"}
        self._hw_last: float = 0.0
        self._device: DeviceReport | None = None
        self._last_save = 0.0
        self._started_at = ""
        self._cpu_peaks: dict[str, Any] = {}

    # ------------------------------------------------------------------ context
    def __enter__(self) -> Profile:
        global _ACTIVE
        if _ACTIVE is not None:
            raise ProfilerStateError("pyprof.profile() is already active in this process; profiles do not nest: "
                                     "close the outer `with pyprof.profile()` first or profile one loop at a time")
        if self._finished:
            raise ProfilerStateError("this Profile was already used; create a new one with pyprof.profile()")
        self._device = self._detect_device()  # bad input (device='cuda' with no GPU) fails before anything starts
        _ACTIVE = self
        self._active = True
        self._started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        if self._device.kind == "cuda":
            self._start_gpu()  # before any hook: CUPTI wants to be enabled early (module-load instrumentation)
        self._install_hooks()
        if self.use_hw_counters and self._device.kind == "cpu":
            self._start_hw_counters()
        elif self.use_hw_counters:
            self._hw_info = {"available": False, "source": None,
                             "reason": "CPU FP counters are not read for GPU work; GPU executed FLOPs come from "
                                       "counters='kernel' or 'step'"}
        self._step_index = 0
        self._last_save = time.monotonic()
        self._begin_step()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        global _ACTIVE
        partial_reason = None
        try:
            if exc_type is not None:
                partial_reason = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
                self._notes.append(f"the profiled code raised {exc_type.__name__}; steps recorded before it are kept")
            self._end_trailing_step(aborted=exc_type is not None)
        except Exception as e:  # pyprof's own failure must not mask the loop's exception or break the program
            warnings.warn(f"pyprof: finishing the last step failed: {e!r}", RuntimeWarning, stacklevel=2)
        finally:
            self._remove_hooks()
            if self._hw is not None:
                self._hw.stop()
            if self._gpu is not None:
                try:
                    self._gpu_section = self._gpu.finish()
                except Exception as e:
                    warnings.warn(f"pyprof: stopping the GPU sources failed: {e!r}", RuntimeWarning, stacklevel=2)
                self._gpu = None
            self._active = False
            self._finished = True
            _ACTIVE = None
        try:
            self._result = self._build_result(final=True, partial_reason=partial_reason)
            if self.output_dir is not None:
                from pyprof.report import write_reports
                write_reports(self._result, self.output_dir, self.report_formats)
        except Exception as e:
            if exc_type is None:
                raise
            warnings.warn(f"pyprof: could not write the report after the loop failed: {e!r}", RuntimeWarning, stacklevel=2)
        return False  # the loop's own exception propagates unchanged

    # ------------------------------------------------------------------ steps
    def step(self, examples: int | None = None) -> None:
        """Mark the end of a training step (call once per step, after the optimizer step).

        Args:
            examples: examples processed in this step (defaults to ``examples_per_step``).

        Raises:
            ProfilerStateError: called outside the ``with pyprof.profile()`` block.
            InvalidInputError: examples is not a whole number > 0.
        """
        if not self._active:
            raise ProfilerStateError("prof.step() was called outside `with pyprof.profile(...) as prof:`; call it "
                                     "inside the with-block, once at the end of every training step")
        if examples is not None and (isinstance(examples, bool) or not isinstance(examples, int) or examples <= 0):
            raise InvalidInputError(f"prof.step(examples={examples!r}): examples must be a whole number > 0")
        self._end_step(examples)
        self._step_index += 1
        self._begin_step()
        if self.output_dir is not None and self.autosave_s is not None and \
                time.monotonic() - self._last_save >= self.autosave_s:
            self._autosave()

    def result(self) -> ProfileResult:
        """The result: final after the with-block, a snapshot (marked partial) while it runs."""
        if self._result is not None:
            return self._result
        if not self._active:
            raise ProfilerStateError("no result yet: use the profile as `with pyprof.profile(...) as prof:` first")
        return self._build_result(final=False, partial_reason="snapshot taken while the profile was running")

    def summary(self) -> str:
        """The terminal summary table as text."""
        from pyprof.report import render_terminal
        return render_terminal(self.result())

    # ------------------------------------------------------------------ internals: step bookkeeping
    def _begin_step(self) -> None:
        self._action = _action_of(self.schedule, self._step_index)
        self._step_sigs: list[Any] = []
        self._step_counted = False
        self._step_had_step_call = False
        if self._device is not None and self._device.kind == "cuda":
            self._cuda_sync()
            if self._gpu is not None:
                self._gpu.begin_step(self._step_index, recording=self._action in ("record", "record_and_save"))
        self._t0 = time.perf_counter()
        self._c0 = time.process_time()
        self._hw_start = self._read_hw()

    def _wants_count(self) -> bool:
        return self.count_mode != "off" and self._action != "none"

    def _end_step(self, examples: int | None, aborted: bool = False) -> None:
        gpu_step = None
        if self._device is not None and self._device.kind == "cuda":
            self._cuda_sync()
        wall = time.perf_counter() - self._t0
        if self._gpu is not None:
            recording = self._action in ("record", "record_and_save") and not aborted
            try:
                gpu_step = self._gpu.end_step(self._step_index, recording)
            except Exception as e:  # GpuSession guards its sources; this is the last line of defence
                self._notes_once(f"GPU step figures failed: {e!r}")
        cpu = time.process_time() - self._c0
        hw = self._read_hw()
        fc, origin, sig_id = self._close_count()
        if self._action not in ("record", "record_and_save") or aborted:
            return
        hw_flops = (hw - self._hw_start) if (hw is not None and self._hw_start is not None) else None
        self._steps.append(StepRecord(
            index=self._step_index,
            wall_time_s=wall,
            cpu_time_s=cpu,
            analytic_flops=fc.total_flops if fc is not None else None,
            analytic_flops_effective=fc.total_flops_effective if fc is not None else None,
            analytic_forward_flops=fc.forward_flops if fc is not None else None,
            analytic_origin=origin,
            signature_id=sig_id,
            hardware_flops=hw_flops if gpu_step is None or gpu_step.get("executed_flops") is None
            else gpu_step["executed_flops"],
            examples=examples if examples is not None else self.examples_per_step,
            perturbed=self._step_counted or bool(gpu_step and gpu_step.get("counters_ran")),
            gpu=gpu_step or None,
        ))

    def _end_trailing_step(self, aborted: bool) -> None:
        if self._step_index == 0 and not self._steps:
            # prof.step() was never called: the whole block is one step.
            self._end_step(None, aborted=False)
            if aborted:
                self._notes.append("the block ended with an exception before prof.step(); it was recorded as one step")
            return
        if self._step_sigs:
            self._notes.append("work after the last prof.step() (an incomplete step) was not recorded")
        self._close_count()

    def _close_count(self) -> tuple[Any, str, int | None]:
        """Finish this step's analytic count: returns (FlopCount or None, origin, signature index)."""
        if self.count_mode == "off":
            return None, "off", None
        full = tuple(self._step_sigs)
        if self._counter is not None and self._counter.active:
            try:
                fc = self._counter.stop()
            except Exception as e:
                self._disable_counting(e)
                return None, "missing", None
            idx = self._sig_index.get(full)
            if idx is None:
                idx = len(self._flop_counts)
                self._flop_counts.append(fc)
                self._sig_index[full] = idx
            self._last_sig = full
            return fc, "counted", idx
        if not full:
            return None, "missing", None
        idx = self._sig_index.get(full)
        if idx is None:
            # Signature changed within the step after we had chosen to reuse: count the next step fully.
            self._last_sig = None
            self._notes_once("a step's shapes changed after its first forward; that step has no analytic count")
            return None, "missing", None
        self._last_sig = full
        return self._flop_counts[idx], "reused", idx

    # ------------------------------------------------------------------ internals: hooks and counting
    def _install_hooks(self) -> None:
        if self.count_mode == "off":
            return
        import torch

        if self.model is not None:
            if not isinstance(self.model, torch.nn.Module):
                raise InvalidInputError(f"model must be a torch.nn.Module (got {type(self.model).__name__}); "
                                        "pass model=None to profile code without a module")
            self._hooks.append(self.model.register_forward_pre_hook(self._on_root_forward, with_kwargs=True))
        else:
            # No model given: the outermost module call of each step is the root. A depth counter kept by global
            # pre/post hooks tells outermost calls apart from nested ones.
            from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

            self._depth = 0

            def pre(module, args):
                self._depth += 1
                if self._depth == 1:
                    self._on_root_forward(module, args, {})

            def post(module, args, output):
                self._depth = max(0, self._depth - 1)

            self._hooks.append(register_module_forward_pre_hook(pre))
            self._hooks.append(register_module_forward_hook(post, always_call=True))

    def _remove_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()

    def _on_root_forward(self, module: Any, args: Any, kwargs: Any) -> None:
        if not self._wants_count():
            return None
        try:
            import torch

            sig = (id(module), module.training, torch.is_grad_enabled(), _signature_of(args), _signature_of(kwargs))
            first = not self._step_sigs
            self._step_sigs.append(sig)
            if self._counter is not None and self._counter.active:
                return None
            if first:
                known = self.count_mode == "auto" and any(
                    k and k[0] == sig for k in ((self._last_sig,) if self._last_sig else ()) + tuple(self._sig_index))
                if not known:
                    self._start_counter(module)
        except Exception as e:  # never break the user's forward
            self._disable_counting(e)
        return None

    def _start_counter(self, module: Any) -> None:
        from pyprof.sources.flops import FlopCounter
        self._counter = FlopCounter(module=module)
        self._counter.start()
        self._step_counted = True

    def _disable_counting(self, err: BaseException) -> None:
        if not self._counter_error_seen:
            warnings.warn(f"pyprof: analytic FLOP counting failed and is turned off for this profile: {err!r}",
                          RuntimeWarning, stacklevel=3)
            self._notes.append(f"analytic counting failed and was turned off: {err!r}")
        self._counter_error_seen = True
        self.count_mode = "off"
        if self._counter is not None and self._counter.active:
            try:
                self._counter.stop()
            except Exception:
                pass

    def _notes_once(self, note: str) -> None:
        if note not in self._notes:
            self._notes.append(note)

    # ------------------------------------------------------------------ internals: hardware counters, device
    def _start_gpu(self) -> None:
        from pyprof.sources.cuda.session import GpuOptions, GpuSession

        idx = int(self._device.details.get("index", 0)) if self._device is not None else 0
        try:
            self._gpu = GpuSession(GpuOptions(device=idx, **self.gpu_options))
            self._gpu.start()
        except Exception as e:  # the loop runs unprofiled on the GPU side rather than not at all
            self._gpu = None
            self._notes.append(f"GPU sources could not start: {e!r}; steps are timed on the host only")
            return
        st = self._gpu.status
        if self._device is not None:
            self._device.supported = bool(st.get("tracer", {}).get("active"))
            if not self._device.supported:
                self._device.note = ("CUPTI kernel tracer unavailable (" + st.get("tracer", {}).get("reason", "?") +
                                     "): GPU time per step from CUDA events; library FLOPs only where hooks run")

    def _start_hw_counters(self) -> None:
        try:
            from pyprof.sources.cpu.host import CpuFlopCounter
            hw = CpuFlopCounter()
            ok = hw.start()
            self._hw_info = {
                "available": ok,
                "source": f"perf_event ({hw.vendor}: "
                          f"{'FP_ARITH_INST_RETIRED' if hw.vendor == 'intel' else 'RETIRED_SSE_AVX_FLOPS'})" if ok else None,
                "reason": "" if ok else hw.reason,
                "scope": "CPU work of this process only" if ok else None,
            }
            self._hw = hw if ok else None
        except Exception as e:
            self._hw = None
            self._hw_info = {"available": False, "source": None, "reason": f"{e}"}

    def _read_hw(self) -> float | None:
        if self._hw is None:
            return None
        try:
            return self._hw.read_flops().get("total", 0.0)
        except Exception as e:
            self._hw_info["reason"] = f"reading counters failed: {e!r}"
            self._hw = None
            return None

    def _cuda_sync(self) -> None:
        try:
            import torch

            torch.cuda.synchronize()
        except Exception:
            pass

    def _detect_device(self) -> DeviceReport:
        import torch

        dev = None
        if self.device_arg is not None:
            dev = torch.device(self.device_arg)
            if dev.type == "cuda" and not torch.cuda.is_available():
                raise InvalidInputError(f"device={self.device_arg!r} but torch sees no CUDA GPU (torch "
                                        f"{torch.__version__}, CUDA build {torch.version.cuda}); use device='cpu'")
        elif self.model is not None:
            try:
                dev = next(iter(self.model.parameters())).device
            except (StopIteration, AttributeError, TypeError):
                dev = None
        kind = dev.type if dev is not None else "cpu"
        if kind == "cpu":
            from pyprof.sources.cpu.host import cpu_info
            try:
                info = cpu_info()
                return DeviceReport(kind="cpu", name=info.model_name, supported=True, details=info.to_dict())
            except Exception as e:  # native core missing: still time the loop
                return DeviceReport(kind="cpu", name=platform.processor() or "cpu", supported=False,
                                    note=f"CPU peaks unavailable: {e}")
        if kind == "cuda":
            return self._detect_cuda(dev)
        return DeviceReport(kind=kind, name=str(dev), supported=False,
                            note=f"device type '{kind}' is not supported by pyprof yet: wall time and analytic FLOPs only")

    def _detect_cuda(self, dev: Any) -> DeviceReport:
        import torch

        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        details: dict[str, Any] = {"index": idx}
        try:
            props = torch.cuda.get_device_properties(idx)
            details.update(name=props.name, compute_capability=[props.major, props.minor],
                           sm_count=props.multi_processor_count, memory_bytes=int(props.total_memory))
        except Exception as e:
            details["properties_error"] = repr(e)
        try:
            from pyprof.peaks.gpu import detect_devices
            devs, _why = detect_devices()
            for d in devs:
                if d.index == idx:
                    details["sm_clock_hz"] = d.max_sm_clock_hz  # the driver's maximum SM clock
        except Exception:
            pass
        return DeviceReport(kind="cuda", name=details.get("name") or torch.cuda.get_device_name(idx), supported=False,
                            details=details)

    # ------------------------------------------------------------------ internals: result
    def _precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        if self.model is not None:
            try:
                return _DTYPE_PRECISION.get(str(next(iter(self.model.parameters())).dtype), "fp32")
            except (StopIteration, AttributeError, TypeError):
                pass
        return "fp32"

    def _peaks(self, final: bool) -> tuple[PeakReport | None, PeakReport | None, list[PeakReport], list[str]]:
        """(spec or theoretical peak, measured peak, further peaks worth showing, notes)."""
        notes: list[str] = []
        extra_peaks: list[PeakReport] = []
        prec = self._precision()
        spec = measured = None
        dev = self._device
        if isinstance(self.peak, str):
            from pyprof.peaks.database import lookup
            e = lookup(self.peak, prec)
            spec = PeakReport(e.peak_flops_per_s, "spec", e.precision, f"{e.hardware}: {e.source}")
        elif self.peak is not None:
            spec = PeakReport(float(self.peak), "spec", prec, "given by the user (peak=)")
        if dev is not None and dev.kind == "cpu" and dev.supported:
            from pyprof.sources.cpu import host as cpu
            cpu_prec = prec if prec in ("fp32", "fp64") else "fp32"
            if cpu_prec != prec:
                notes.append(f"model precision {prec} on CPU is compared with the FP32 peak (no {prec} peak kernel)")
            theo, how = cpu.theoretical_peak(cpu_prec)
            self._cpu_peaks.setdefault("theoretical", {})[cpu_prec] = {"flops_per_s": theo, "derivation": how}
            if spec is None and theo:
                spec = PeakReport(theo, "theoretical", cpu_prec, how)
            if self.measure_peak and final:
                try:
                    p = cpu.measure_peak(cpu_prec)
                    self._cpu_peaks.setdefault("measured", {})[cpu_prec] = p.to_dict()
                    if p.crosscheck_note:  # table vs measurement beyond 1.5x: the report says so
                        notes.append(p.crosscheck_note)
                    if p.theoretical_at_observed_clock_flops_per_s:
                        extra_peaks.append(PeakReport(
                            p.theoretical_at_observed_clock_flops_per_s, "theoretical at observed clock", cpu_prec,
                            f"{info_cores()} cores x {p.observed_clock_hz / 1e9:.2f} GHz (measured clock) x FLOP/cycle "
                            f"of {p.isa}"))
                    measured = PeakReport(p.measured_flops_per_s, "measured", cpu_prec,
                                          f"pyprof FMA-chain microkernel ({p.isa}, {p.threads} threads, best of "
                                          f"{len(p.runs_flops_per_s)}; median {p.measured_median_flops_per_s / 1e9:.1f} GFLOP/s)")
                except Exception as e:
                    notes.append(f"measuring the CPU peak failed: {e}")
        elif dev is not None and dev.kind == "cuda":
            spec, measured = self._gpu_peaks(spec, prec, final, extra_peaks, notes)
        elif spec is None:
            notes.append("no peak for this device: pass peak='<hardware name>' or peak=<FLOP/s> for utilization")
        return spec, measured, extra_peaks, notes

    def _gpu_precision(self, prec: str) -> str:
        """The peak class the model's matmuls run at: FP32 models run TF32 tensor cores when torch allows it."""
        if prec == "fp32":
            try:
                import torch

                if torch.backends.cuda.matmul.allow_tf32:
                    return "tf32"
            except Exception:
                pass
        return prec

    def _gpu_spec_peaks(self) -> dict[str, Any]:
        """Spec peak per precision of this GPU: {precision: SpecPeak-like or None}."""
        from pyprof.peaks import gpu as gp
        from pyprof.sources.cuda.libcalls import PRECISIONS as LIBRARY_PRECISIONS
        d = self._device.details if self._device is not None else {}
        cc = tuple(d.get("compute_capability") or (0, 0))
        out: dict[str, Any] = {}
        for p in LIBRARY_PRECISIONS:  # keyed by the library calls' precision classes
            try:
                out[p] = gp.spec_peak(self._device.name, cc, d.get("sm_count") or 0, d.get("sm_clock_hz") or 0.0,
                                      gp.gemm_peak_precision(p, cc))  # e.g. FP64 GEMMs run on FP64 tensor cores
                if out[p].flops_per_s is None:
                    out[p] = None
            except Exception:
                out[p] = None
        return out

    def _observed_sm_clock_hz(self) -> float | None:
        vals = [s.gpu["nvml"].get("sm_clock_mhz_mean") for s in self._steps
                if s.gpu and isinstance(s.gpu.get("nvml"), dict) and s.gpu["nvml"].get("sm_clock_mhz_mean")]
        return statistics.median(vals) * 1e6 if vals else None

    def _gpu_peaks(self, spec: PeakReport | None, prec: str, final: bool, extra: list[PeakReport],
                   notes: list[str]) -> tuple[PeakReport | None, PeakReport | None]:
        measured = None
        gprec = self._gpu_precision(prec)
        if gprec != prec:
            notes.append("FP32 model with torch.backends.cuda.matmul.allow_tf32: its matmuls are compared with the "
                         "TF32 tensor peak")
        try:
            from pyprof.peaks import gpu as gp
            sp = self._gpu_spec_peaks().get(gprec)
            if sp is not None and spec is None:
                spec = PeakReport(sp.flops_per_s, "spec", gprec, sp.source)
            clk = self._observed_sm_clock_hz()
            d = self._device.details if self._device is not None else {}
            cc = tuple(d.get("compute_capability") or (0, 0))
            peak_class = gp.gemm_peak_precision(gprec, cc) if gprec in gp.PRECISIONS else gprec
            if clk and d.get("sm_count"):
                adj = gp.clock_adjusted_peak(cc, d["sm_count"], clk, peak_class)
                if adj:
                    extra.append(PeakReport(adj, "spec at observed SM clock", gprec,
                                            f"SMs x FLOP/clock/SM x NVML median SM clock {clk / 1e6:.0f} MHz"))
            if self.measure_peak and final and self._device is not None:
                rows = gp.measure_gpu_peaks(int(d.get("index", 0)), precisions=[gprec], quick=True)
                best = max((r for r in rows if r.precision == peak_class and r.measured_flops_per_s),
                           key=lambda r: r.measured_flops_per_s, default=None)
                if best is not None:
                    measured = PeakReport(best.measured_flops_per_s, "measured", gprec,
                                          f"pyprof GPU peak: {best.kind} ({best.method}, median launch)")
        except Exception as e:
            notes.append(f"GPU peaks unavailable: {e!r}")
        if spec is None:
            notes.append(f"no {gprec} peak known for {self._device.name if self._device else 'this GPU'}: pass "
                         "peak='<hardware name>' or peak=<FLOP/s>")
        return spec, measured

    def _build_result(self, final: bool, partial_reason: str | None) -> ProfileResult:
        from pyprof import __version__
        from pyprof.accounting.reconcile import reconcile
        counted_steps = [s for s in self._steps if s.perturbed]
        clean = [s.wall_time_s for s in self._steps if not s.perturbed]
        counting_time = 0.0
        if counted_steps and clean:
            import statistics

            med = statistics.median(clean)
            counting_time = sum(max(0.0, s.wall_time_s - med) for s in counted_steps)
        totals = summarize_steps(self._steps, counting_time, len(self._flop_counts))
        notes = list(self._notes)
        self._apply_gpu_counters(totals, notes)
        rec = None
        try:
            spec, measured, extra_peaks, pnotes = self._peaks(final)
            notes += pnotes
            kind = self._device.kind if self._device else "cpu"
            assumed = ASSUMED_UTILIZATION_CPU if kind == "cpu" else ASSUMED_UTILIZATION_GPU
            src = ('"AI and compute" (2018): 17% for CPUs' if kind == "cpu" else '"AI and compute" (2018): 33% for GPUs')
            if totals.steps:
                rec = reconcile(totals, spec_peak=spec, measured_peak=measured, assumed_utilization=assumed,
                                assumed_utilization_source=src, recomputation=self.recomputation,
                                training_examples=self.training_examples, training_epochs=self.training_epochs)
                rec.peaks += extra_peaks
        except Exception as e:
            notes.append(f"reconciliation failed: {e}")
        gpu = None
        if self._device is not None and self._device.kind == "cuda":
            gpu = self._gpu_result(totals, notes)
        import torch

        return ProfileResult(
            schema_version=_schema_version(),
            run={
                "name": self.name,
                "started_at": self._started_at,
                "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "pyprof_version": __version__,
                "torch_version": torch.__version__,
                "python_version": platform.python_version(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
            },
            device=self._device or DeviceReport(kind="unknown", name="unknown", supported=False),
            config={
                "count_flops": self.count_mode,
                "schedule": repr(self.schedule) if self.schedule is not None else None,
                "examples_per_step": self.examples_per_step,
                "precision": self._precision(),
                "peak": self.peak,
                "recomputation": self.recomputation,
                "training_examples": self.training_examples,
                "training_epochs": self.training_epochs,
            },
            steps=list(self._steps),
            totals=totals,
            flop_counts=[fc.to_dict() for fc in self._flop_counts],
            hardware_counters=dict(self._hw_info),
            cpu_peaks=dict(self._cpu_peaks),
            reconciliation=rec,
            partial=partial_reason is not None,
            partial_reason=partial_reason,
            notes=notes,
            gpu=gpu,
        )

    def _apply_gpu_counters(self, totals: Any, notes: list[str]) -> None:
        """Executed FLOPs per step from the GPU hardware counters (once collected) become the run's hardware FLOPs."""
        c = (self._gpu_section or {}).get("counters")
        if not c:
            return
        ex = c.get("executed_flops")
        if not c.get("complete") or ex is None:
            notes.append(f"GPU hardware counters ({c.get('mode')} mode) gave no executed FLOPs: "
                         f"{c.get('reason') or 'nothing collected'}")
            return
        if c.get("mixed"):
            notes.append("GPU counter totals are mixed: " + (c.get("mixed_reason") or "the kernel sequence changed "
                         "between the steps that contributed passes"))
        totals.timed_hardware_flops = ex * totals.timed_steps
        totals.hardware_flops = ex * totals.steps
        self._hw_info = {"available": True, "mode": c.get("mode"),
                         "source": (f"CUPTI Range Profiler, {c.get('mode')} mode, {c.get('num_passes')} pass(es): "
                                    "executed FLOPs of one step (SIMT FP instructions + tensor-core ops), applied to "
                                    "every recorded step"),
                         "reason": ""}
        if c.get("mode") == "kernel":
            notes.append("GPU counters in kernel mode serialize and replay every kernel of the counted step: that "
                         "step is left out of the rates")

    def _gpu_result(self, totals: Any, notes: list[str]) -> dict[str, Any]:
        """The run's GPU section: the sources' own section plus totals and per-precision utilization."""
        from pyprof.accounting.reconcile import gpu_totals
        section = dict(self._gpu_section) if self._gpu_section is not None else (
            {"status": dict(self._gpu.status), "notes": list(self._gpu.notes)} if self._gpu is not None else {})
        try:
            peaks = {p: (sp.flops_per_s if sp is not None else None) for p, sp in self._gpu_spec_peaks().items()}
        except Exception as e:
            peaks = {}
            notes.append(f"GPU spec peaks unavailable: {e!r}")
        clean = [s for s in self._steps if not s.perturbed] or list(self._steps)
        section["totals"] = t = gpu_totals(clean, peaks)
        c = section.get("counters") or {}
        ex = c.get("executed_flops") if c.get("complete") else None
        if ex is not None and t.get("steps"):
            lib = t.get("library_flops")
            ana = totals.timed_analytic_flops
            t["executed_flops_per_step"] = ex
            t["executed_flops"] = ex * t["steps"]
            t["executed_over_library"] = (ex * t["steps"] / lib) if lib else None
            t["executed_over_analytic"] = (ex * totals.timed_steps / ana) if ana else None
        return section

    def _autosave(self) -> None:
        try:
            from pyprof.report import write_reports
            snap = self._build_result(final=False, partial_reason="run in progress (autosave)")
            write_reports(snap, self.output_dir, self.report_formats)
        except Exception as e:
            warnings.warn(f"pyprof: autosave failed: {e!r}", RuntimeWarning, stacklevel=3)
        self._last_save = time.monotonic()


def info_cores() -> int:
    from pyprof.sources.cpu.host import cpu_info
    return cpu_info().logical_cpus


def _schema_version() -> str:
    from pyprof.report import SCHEMA_VERSION
    return SCHEMA_VERSION


def profile(model: Any = None, **kwargs: Any) -> Profile:
    """Profile a training loop: per-step time, FLOPs by source, utilization against peaks, Method 1 / Method 2.

    Args:
        model: the root ``nn.Module`` (its forward marks each step's work and its shapes key the FLOP cache);
            None profiles any module calls in the block.
        schedule: ``pyprof.schedule(wait, warmup, active, repeat)`` or ``torch.profiler.schedule(...)``; None records
            every step.
        examples_per_step: batch size, for FLOPs per example and training-run projections (or pass
            ``prof.step(examples=n)``).
        count_flops: "auto" (once per step signature, reused), "every", or "off".
        hardware_counters: read CPU FP counters through perf_event_open where the PMU allows.
        measure_peak: measure this CPU's peak with pyprof's microkernel at the end (about a second).
        peak: hardware name from the peak database (``pyprof estimate --list-hardware``) or FLOP/s; defaults to the
            theoretical peak of this CPU.
        precision: "auto" (from the model's parameters), "fp32", "fp64", "bf16", ...
        recomputation: fraction of the forward recomputed in backward (1.0 = full activation checkpointing); MFU
            leaves it out, HFU counts it.
        training_examples, training_epochs: a full training run to project Method 1 and Method 2 onto.
        output_dir: write report.json / report.md there (atomically) at the end, and autosave while running.
        report_formats: subset of ("json", "md").
        autosave_s: seconds between autosaves (None: only at the end).
        name: a name for the run in the report.

    Returns:
        A :class:`Profile`, to be used as a context manager.
    """
    return Profile(model, **kwargs)
