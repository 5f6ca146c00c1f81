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
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyprof.errors import InvalidInputError, ProfilerStateError
from pyprof.peaks.resolve import (
    PeakSet,
    detect_device,
    gpu_spec_peaks,
    model_precision,
    resolve,
)
from pyprof.records import DeviceReport, GpuRun, ProfileResult, StepRecord
from pyprof.session.counting import HostCounters, StepCounter, signature_of
from pyprof.session.options import check_arguments
from pyprof.session.schedule import RECORDING, Schedule, action_of, schedule

__all__ = ["Profile", "Schedule", "profile", "schedule"]

#: The one profile that may be active in this process (profiles do not nest).
_ACTIVE: Profile | None = None

_signature_of = signature_of  # the name this module had before the split
_action_of = action_of


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
        report_formats: tuple[str, ...] = ("json", "md", "html", "trace"),
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
        verify_every: int | None = 100,
    ) -> None:
        check_arguments(count_flops=count_flops, examples_per_step=examples_per_step, recomputation=recomputation,
                        training_examples=training_examples, training_epochs=training_epochs, peak=peak,
                        report_formats=report_formats, counters=counters, device=device, top_kernels=top_kernels,
                        schedule=schedule)
        self.model = model
        self.schedule = schedule
        self.examples_per_step = examples_per_step
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
                                                keep_kernel_records=kernel_records, top_kernels=top_kernels,
                                                analytic_counting=count_flops != "off")
        self._gpu: Any = None
        self._gpu_section: GpuRun | None = None

        self._active = False
        self._finished = False
        self._result: ProfileResult | None = None
        self._notes: list[str] = []
        self._steps: list[StepRecord] = []
        if verify_every is not None and (isinstance(verify_every, bool) or not isinstance(verify_every, int)
                                         or verify_every < 0):
            raise InvalidInputError(f"verify_every={verify_every!r} must be a whole number >= 0 (count every N-th "
                                    "reused step again and compare; 0 or None: never)")
        self._counting = StepCounter(count_flops, self._notes, verify_every=verify_every)
        self._host = HostCounters()
        self._device: DeviceReport | None = None
        self._last_save = 0.0
        self._started_at = ""
        self._cpu_peaks: dict[str, Any] = {}
        self._c_next: float | None = None

    @property
    def count_mode(self) -> str:
        """"auto", "every" or "off"; turns "off" when counting failed during the run."""
        return self._counting.mode

    # ------------------------------------------------------------------ context
    def __enter__(self) -> Profile:
        global _ACTIVE
        if _ACTIVE is not None:
            raise ProfilerStateError("pyprof.profile() is already active in this process; profiles do not nest: "
                                     "close the outer `with pyprof.profile()` first or profile one loop at a time")
        if self._finished:
            raise ProfilerStateError("this Profile was already used; create a new one with pyprof.profile()")
        self._device = detect_device(self.device_arg, self.model)  # bad input (device='cuda', no GPU) fails here
        _ACTIVE = self
        self._active = True
        self._started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        if self._device.kind == "cuda":
            self._start_gpu()  # before any hook: CUPTI wants to be enabled early (module-load instrumentation)
        self._counting.install(self.model)
        if self.use_hw_counters and self._device.kind == "cpu":
            self._host.start()
        elif self.use_hw_counters:
            self._host.info = {"available": False, "source": None,
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
            self._counting.remove()
            self._host.stop()
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
        self._action = action_of(self.schedule, self._step_index)
        self._counting.begin_step(self._action)
        if self._device is not None and self._device.kind == "cuda":
            _cuda_sync()
            if self._gpu is not None:
                self._gpu.begin_step(self._step_index, recording=self._action in RECORDING)
        self._t0 = time.perf_counter()
        # One process-CPU clock read per step boundary (the end of a step is the start of the next): on a VM that
        # clock is a real syscall, about 10 us, and a second read per step was most of pyprof's per-step cost.
        self._c0 = self._c_next if self._c_next is not None else time.process_time()
        self._c_next = None
        self._hw_start = self._host.read()

    def _end_step(self, examples: int | None, aborted: bool = False) -> None:
        gpu_step = None
        if self._device is not None and self._device.kind == "cuda":
            _cuda_sync()
        wall = time.perf_counter() - self._t0
        if self._gpu is not None:
            recording = self._action in RECORDING and not aborted
            try:
                gpu_step = self._gpu.end_step(self._step_index, recording)
            except Exception as e:  # GpuSession guards its sources; this is the last line of defence
                self._notes_once(f"GPU step figures failed: {e!r}")
        self._c_next = time.process_time()
        cpu = self._c_next - self._c0
        hw = self._host.read()
        fc, origin, sig_id = self._counting.close()
        if self._action not in RECORDING or aborted:
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
            hardware_flops=hw_flops if gpu_step is None or gpu_step.executed_flops is None
            else gpu_step.executed_flops,
            examples=examples if examples is not None else self.examples_per_step,
            perturbed=self._counting.counted or bool(gpu_step is not None and gpu_step.counters_ran),
            gpu=gpu_step,
        ))

    def _end_trailing_step(self, aborted: bool) -> None:
        if self._step_index == 0 and not self._steps:
            # prof.step() was never called: the whole block is one step.
            self._end_step(None, aborted=False)
            if aborted:
                self._notes.append("the block ended with an exception before prof.step(); it was recorded as one step")
            return
        if self._counting.pending:
            self._notes.append("work after the last prof.step() (an incomplete step) was not recorded")
        self._counting.close()

    def _on_root_forward(self, module: Any, args: Any, kwargs: Any) -> None:
        """The root forward hook (kept on the profile for callers that drive it by hand, e.g. overhead tests)."""
        self._counting.on_forward(module, args, kwargs)

    def _notes_once(self, note: str) -> None:
        if note not in self._notes:
            self._notes.append(note)

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
        tracer = self._gpu.status.get("tracer")
        if self._device is not None:
            self._device.supported = bool(tracer is not None and tracer.active)
            if not self._device.supported:
                self._device.note = ("CUPTI kernel tracer unavailable (" + (tracer.reason if tracer else "?") +
                                     "): GPU time per step from CUDA events; library FLOPs only where hooks run")

    # ------------------------------------------------------------------ internals: result
    def _precision(self) -> str:
        return model_precision(self.precision, self.model)

    def _peaks(self, final: bool, steps: list[StepRecord] | None = None) -> PeakSet:
        from pyprof.session.assemble import observed_sm_clock_hz
        return resolve(self._device, self._precision(), peak=self.peak, measure=self.measure_peak, final=final,
                       observed_sm_clock_hz=observed_sm_clock_hz(self._steps if steps is None else steps))

    def _build_result(self, final: bool, partial_reason: str | None) -> ProfileResult:
        from pyprof.session.assemble import build_result
        section = self._gpu_section
        if section is None and self._gpu is not None:  # a snapshot while the GPU sources run
            section = GpuRun(status=dict(self._gpu.status), notes=list(self._gpu.notes))
        result = build_result(
            name=self.name, started_at=self._started_at, device=self._device,
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
            steps=self._steps, flop_counts=self._counting.counts, hw_info=self._host.info,
            cpu_peaks=self._cpu_peaks, notes=self._notes + ([self._counting.summary()] if self._steps else []),
            partial_reason=partial_reason,
            peaks=lambda steps: self._peaks(final, steps), recomputation=self.recomputation,
            training_examples=self.training_examples, training_epochs=self.training_epochs,
            gpu_section=section, gpu_spec_peaks=lambda: gpu_spec_peaks(self._device))
        self._host.info = result.hardware_counters  # the GPU counters' executed FLOPs, once applied, stay the source
        return result

    def _autosave(self) -> None:
        try:
            from pyprof.report import write_reports
            snap = self._build_result(final=False, partial_reason="run in progress (autosave)")
            from pyprof.report.writers import AUTOSAVE_FORMATS
            # Autosaves stay cheap (no plots, no trace): the final report writes every format asked for.
            write_reports(snap, self.output_dir, [f for f in self.report_formats if f in AUTOSAVE_FORMATS])
        except Exception as e:
            warnings.warn(f"pyprof: autosave failed: {e!r}", RuntimeWarning, stacklevel=3)
        self._last_save = time.monotonic()


def _cuda_sync() -> None:
    try:
        import torch

        torch.cuda.synchronize()
    except Exception:
        pass


def profile(model: Any = None, **kwargs: Any) -> Profile:
    """Profile a training loop: per-step time, FLOPs by source, utilization against peaks, Method 1 / Method 2.

    Args:
        model: the root ``nn.Module`` (its forward marks each step's work and its shapes key the FLOP cache);
            None profiles any module calls in the block.
        schedule: ``pyprof.schedule(wait, warmup, active, repeat)`` or ``torch.profiler.schedule(...)``; None records
            every step.
        examples_per_step: batch size, for FLOPs per example and training-run projections (or pass
            ``prof.step(examples=n)``).
        count_flops: "auto" (once per step signature, reused or derived; see ``pyprof.session.counting``), "every",
            or "off".
        verify_every: with "auto", count every N-th reused or derived step again and compare (default 100, about
            1% of steps); a mismatch switches to counting every step and is reported. 0 or None turns it off.
        hardware_counters: read CPU FP counters through perf_event_open where the PMU allows.
        measure_peak: measure this CPU's peak with pyprof's microkernel at the end (about a second).
        peak: hardware name from the peak database (``pyprof estimate --list-hardware``) or FLOP/s; defaults to the
            theoretical peak of this CPU.
        precision: "auto" (from the model's parameters), "fp32", "fp64", "bf16", ...
        recomputation: fraction of the forward recomputed in backward (1.0 = full activation checkpointing); MFU
            leaves it out, HFU counts it.
        training_examples, training_epochs: a full training run to project Method 1 and Method 2 onto.
        output_dir: write report.json / report.md there (atomically) at the end, and autosave while running.
        report_formats: subset of ("json", "md", "html", "trace"); all four by default (autosaves write json and md).
        autosave_s: seconds between autosaves (None: only at the end).
        name: a name for the run in the report.

    Returns:
        A :class:`Profile`, to be used as a context manager.
    """
    return Profile(model, **kwargs)
