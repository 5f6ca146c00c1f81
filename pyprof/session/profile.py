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

Lifecycle (every way a run ends leaves a report):

- every argument is checked (:func:`pyprof.session.options.validate_profile_options`, the schedule's first action,
  the device) before any global state is touched, and a failure inside ``__enter__`` rolls back what it installed;
- the first report is written after the first recorded step, then every ``autosave_s``, on a background thread
  from a cheap snapshot of the bounded step window and running totals (:mod:`pyprof.session.window`);
- SIGTERM (schedulers, ``timeout``, Kubernetes, SLURM) writes a partial report, then has its normal outcome: the
  handler installed before the profile is called, or, with the default action, the process dies by SIGTERM;
- at the end the report is written first, then the slow CPU peak measurement runs (announced on stderr; Ctrl-C skips
  it and propagates, the report already on disk); a report that cannot be written is a warning naming the folder,
  never an exception in the user's code, and ``prof.result()`` keeps the result.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pyprof.errors import InvalidInputError, ProfilerStateError
from pyprof.peaks.resolve import (
    PeakSet,
    detect_device,
    gpu_spec_peaks,
    model_precision,
    resolve,
)
from pyprof.records import DeviceReport, GpuRun, ProfileResult, StepAggregate, StepRecord
from pyprof.session.counting import HostCounters, StepCounter, signature_of
from pyprof.session.options import validate_profile_options
from pyprof.session.saving import ReportWriter, SigtermGuard, deferred_signals
from pyprof.session.schedule import RECORDING, Schedule, action_of, schedule
from pyprof.session.window import DEFAULT_WINDOW_N, StepWindow

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
        verify_every: int | None = 1000,
    ) -> None:
        # Every argument checked before anything else happens (no hook, no timer, no active-profile marker yet), so
        # a bad one leaves the process as it was. Numbers of any numeric type (np.float32 peaks) become plain floats.
        o = validate_profile_options(
            model=model, schedule=schedule, examples_per_step=examples_per_step, count_flops=count_flops,
            hardware_counters=hardware_counters, measure_peak=measure_peak, peak=peak, precision=precision,
            recomputation=recomputation, training_examples=training_examples, training_epochs=training_epochs,
            output_dir=output_dir, report_formats=report_formats, autosave_s=autosave_s, name=name, device=device,
            counters=counters, pm_sampling=pm_sampling, gpu_tracer=gpu_tracer, library_hooks=library_hooks, nvml=nvml,
            kernel_records=kernel_records, top_kernels=top_kernels, verify_every=verify_every)
        if isinstance(o.schedule, Schedule) and o.schedule.warmup == 0:
            warnings.warn("pyprof.profile: schedule has warmup=0", UserWarning, stacklevel=3)
        self.model = o.model
        self.schedule = o.schedule
        self.examples_per_step = o.examples_per_step
        self.use_hw_counters = o.hardware_counters
        self.measure_peak = o.measure_peak
        self.peak = o.peak
        self.precision = o.precision
        self.recomputation = o.recomputation
        self.training_examples = o.training_examples
        self.training_epochs = o.training_epochs
        self._reports = ReportWriter(o.output_dir, o.report_formats)
        self.autosave_s = o.autosave_s
        self.name = o.name or "pyprof"
        self.device_arg = o.device
        self.gpu_options: dict[str, Any] = dict(counters=o.counters, pm_sampling=o.pm_sampling, tracer=o.gpu_tracer,
                                                library_hooks=o.library_hooks, nvml=o.nvml,
                                                keep_kernel_records=o.kernel_records, top_kernels=o.top_kernels,
                                                analytic_counting=o.count_flops != "off")
        self._gpu: Any = None
        self._gpu_section: GpuRun | None = None

        self._active = False
        self._finished = False
        self._result: ProfileResult | None = None
        self._notes: list[str] = []
        # Bounded memory over long runs: running totals of every recorded step, and a window of per-step rows.
        self._agg = StepAggregate(exact_times=3 * DEFAULT_WINDOW_N)
        self._window = StepWindow(DEFAULT_WINDOW_N)
        self._sigterm = SigtermGuard(self._emergency_report)
        self._curves: Any = None  # MetricCurves, created by the first log_metric()
        self._yield_label: str | None = None  # set by an outer driver (pyprof run) that steps aside for the script's
        self._aside = False                    # own profile
        self._counting = StepCounter(o.count_flops, self._notes, verify_every=o.verify_every)
        self._host = HostCounters()
        self._device: DeviceReport | None = None
        self._last_save = 0.0
        self._started_at = ""
        self._cpu_peaks: dict[str, Any] = {}
        self._c_next: float | None = None

    @property
    def output_dir(self) -> Path | None:
        """Where the reports go (None: nowhere)."""
        return self._reports.output_dir

    @output_dir.setter
    def output_dir(self, value: Path | None) -> None:
        self._reports.output_dir = value

    @property
    def report_formats(self) -> tuple[str, ...]:
        return self._reports.formats

    @property
    def count_mode(self) -> str:
        """"auto", "every" or "off"; turns "off" when counting failed during the run."""
        return self._counting.mode

    # ------------------------------------------------------------------ context
    def __enter__(self) -> Profile:
        global _ACTIVE
        if self._finished:
            raise ProfilerStateError("this Profile was already used; create a new one with pyprof.profile()")
        outer = _ACTIVE
        if outer is not None and outer._yield_label is None:
            raise ProfilerStateError("pyprof.profile() is already active in this process; profiles do not nest: "
                                     "close the outer `with pyprof.profile()` first or profile one loop at a time")
        # Checked before anything global is touched: a schedule that returns nonsense, a device that is not there.
        action_of(self.schedule, 0)
        device = detect_device(self.device_arg, self.model)  # bad input (device='cuda', no GPU) fails here
        if outer is not None:
            outer._step_aside(self)  # `pyprof run` around a script that profiles itself: the script's profile wins
        try:
            self._device = device
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
            self._sigterm.install()
            self._step_index = 0
            self._last_save = time.monotonic()
            self._begin_step()
        except BaseException:
            self._rollback()  # a failed start leaves no hook, no handler and no active profile behind
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        partial_reason = None
        # An interrupt (Ctrl-C, or a SIGTERM handler that raises) during any end-of-run step is held until the
        # report is on disk, then raised: the report is never lost to it.
        interrupt: BaseException | None = None
        try:
            if exc_type is not None:
                partial_reason = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
                self._notes.append(f"the profiled code raised {exc_type.__name__}; steps recorded before it are kept")
            if not self._aside:
                self._end_trailing_step(aborted=exc_type is not None)
        except Exception as e:  # pyprof's own failure must not mask the loop's exception or break the program
            warnings.warn(f"pyprof: finishing the last step failed: {e!r}", RuntimeWarning, stacklevel=2)
        except BaseException as e:
            interrupt = e
        try:
            self._stop_sources()
        except BaseException as e:
            interrupt = interrupt or e
        if self.measure_peak and ((exc_type is not None and issubclass(exc_type, KeyboardInterrupt))
                                  or isinstance(interrupt, KeyboardInterrupt)):
            # The user asked to stop: no second of peak measurement after that.
            self._notes.append("the CPU peak was not measured: the run was interrupted (Ctrl-C)")
            self.measure_peak = False
        try:
            self._finish(partial_reason if interrupt is None else
                         (partial_reason or f"{type(interrupt).__name__} while the run was ending"))
        except BaseException as e:  # Ctrl-C during the peak measurement: the report without it is on disk
            interrupt = interrupt or e
        finally:
            self._sigterm.restore()
        if interrupt is not None:
            raise interrupt
        return False  # the loop's own exception propagates unchanged

    def _finish(self, partial_reason: str | None) -> None:
        """The end of the run: the report first (fast, bounded), then the slow CPU peak measurement, rewritten."""
        waited: KeyboardInterrupt | None = None
        try:
            self._reports.join()
        except KeyboardInterrupt as e:  # Ctrl-C while an autosave finishes: the report still comes first
            waited = e
        slow_peak = self.measure_peak and self._device is not None and self._device.kind == "cpu" \
            and self._device.supported
        with deferred_signals():  # building and writing take well under a second; a signal waits for them
            self._result = self._build_result(final=True, partial_reason=partial_reason, measure=False)
            self._reports.write(self._result, final=True)
        if waited is not None:
            raise waited
        if not slow_peak:
            return
        print("pyprof: measuring the CPU peak (~1 s; Ctrl-C skips it)", file=sys.stderr, flush=True)
        result = self._build_result(final=True, partial_reason=partial_reason, measure=True)
        with deferred_signals():
            self._result = result
            self._reports.write(result, final=True)

    def _stop_sources(self) -> None:
        """Remove the hooks and stop every source (each guarded; a failure is a warning)."""
        global _ACTIVE
        try:
            self._counting.remove()
            self._host.stop()
            if self._gpu is not None:
                try:
                    self._gpu_section = self._gpu.finish()
                except Exception as e:
                    warnings.warn(f"pyprof: stopping the GPU sources failed: {e!r}", RuntimeWarning, stacklevel=2)
                self._gpu = None
        finally:
            self._active = False
            self._finished = True
            if _ACTIVE is self:
                _ACTIVE = None

    def _rollback(self) -> None:
        """Undo a failed ``__enter__``: whatever was installed is removed, and this profile is not active."""
        global _ACTIVE
        for undo in (self._counting.remove, self._host.stop, self._sigterm.restore):
            try:
                undo()
            except Exception:
                pass
        if self._gpu is not None:
            try:
                self._gpu.finish()
            except Exception:
                pass
            self._gpu = None
        self._active = False
        if _ACTIVE is self:
            _ACTIVE = None

    def _step_aside(self, inner: Profile) -> None:
        """Called by a profile the profiled script opens itself (under ``pyprof run``): that profile wins.

        This one stops measuring (hooks removed, sources stopped; ``step()`` becomes a no-op), keeps the steps it
        recorded before, and still writes its report at its own end, with a note, unless the script's profile writes
        into the same folder (its report is the one to keep there).
        """
        global _ACTIVE
        recorded = self._agg.steps
        if self.output_dir is not None and inner.output_dir is not None and \
                os.path.realpath(self.output_dir) == os.path.realpath(inner.output_dir):
            print(f"{self._yield_label}: the script's profile writes to {self.output_dir} too; {self._yield_label} "
                  "writes no report there", file=sys.stderr, flush=True)
            self.output_dir = None
        self._reports.join()  # an autosave in flight finishes before the script's profile starts writing
        print(f"{self._yield_label}: the script opened its own pyprof.profile(); that profile takes over and "
              f"{self._yield_label} steps aside (its report keeps the {recorded} step(s) recorded before)",
              file=sys.stderr, flush=True)
        self._notes.append(f"the profiled script opened its own pyprof.profile() after {recorded} recorded step(s); "
                           f"{self._yield_label} stepped aside and its script's profile wrote its own report")
        self._aside = True
        try:
            self._counting.remove()
            self._host.stop()
        except Exception as e:
            warnings.warn(f"pyprof: stepping aside failed: {e!r}", RuntimeWarning, stacklevel=3)
        _ACTIVE = None

    # ------------------------------------------------------------------ signals
    def _emergency_report(self, reason: str) -> None:
        """Write a partial report now (in a signal handler: between two bytecodes of the user's loop)."""
        if self._reports.final_written:
            return
        if self.output_dir is None:
            if not self._aside:
                print(f"pyprof: {reason}; no output_dir was given, so no report is written", file=sys.stderr)
            return
        self._reports.join()
        result = self._result or self._build_result(final=False, partial_reason=reason)
        self._reports.write(result)  # not final: if a chained handler lets the run go on, later saves still write

    # ------------------------------------------------------------------ steps
    def step(self, examples: int | None = None) -> None:
        """Mark the end of a training step (call once per step, after the optimizer step).

        Args:
            examples: examples processed in this step (defaults to ``examples_per_step``).

        Raises:
            ProfilerStateError: called outside the ``with pyprof.profile()`` block.
            InvalidInputError: examples is not a whole number > 0.
        """
        if self._aside:
            return  # the script's own profile took over (pyprof run)
        if not self._active:
            raise ProfilerStateError("prof.step() was called outside `with pyprof.profile(...) as prof:`; call it "
                                     "inside the with-block, once at the end of every training step")
        if examples is not None and (isinstance(examples, bool) or not isinstance(examples, int) or examples <= 0):
            raise InvalidInputError(f"prof.step(examples={examples!r}): examples must be a whole number > 0")
        self._end_step(examples)
        self._step_index += 1
        self._begin_step()
        # The first report comes right after the first recorded step (a run killed early still leaves one), then
        # one every autosave_s.
        if self.output_dir is not None and self.autosave_s is not None and self._agg.steps and \
                (not self._reports.saved_once or time.monotonic() - self._last_save >= self.autosave_s):
            self._autosave()

    def log_metric(self, name: str, value: float, epoch: float | None = None) -> None:
        """Log a metric (a loss, an accuracy) at the training FLOPs counted so far: the report shows it as a
        FLOPs-based learning curve (``learning_curves``; a plot in report.html, a table in report.md).

        Args:
            name: the metric's name ("loss", "perplexity" and "error" are read as lower-is-better).
            value: its value now (a number or a 0-d tensor).
            epoch: the epoch it belongs to, if known.

        Never raises into the loop: a point that cannot be placed (counting off, a schedule that skips steps: the
        cumulative FLOPs would be wrong) is dropped and the report's curve notes say why.
        """
        from pyprof.session.curves import MetricCurves

        if self._curves is None:
            self._curves = MetricCurves()
        try:
            self._curves.log(self.flops_so_far(), {name: value}, epoch)
        except Exception as e:  # curves are a by-product: never the loop's problem
            self._curves.note(f"learning curves stopped: {type(e).__name__}: {e}")

    def flops_so_far(self) -> Any:
        """The last recorded step and the running totals of every recorded step: the two fields of a result that
        cumulative FLOPs (``pyprof.efficiency.cumulative_flops``) read, without building a result (cheap per log)."""
        last = self._window.last
        return _SoFar([last] if last is not None else [], self._agg.totals(0.0, len(self._counting.counts)))

    @property
    def last_step(self) -> StepRecord | None:
        """The most recent recorded step (None before the first)."""
        return self._window.last

    def result(self) -> ProfileResult:
        """The result: final after the with-block, a snapshot (marked partial) while it runs.

        ``steps`` holds a bounded window of per-step rows (every row of a run of up to 3072 recorded steps; see
        ``steps_window``); ``totals`` cover every recorded step.
        """
        if self._result is not None:
            return self._result
        if not self._active and not self._aside:
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
        rec = StepRecord(
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
        )
        self._agg.add(rec)
        self._window.add(rec)

    def _end_trailing_step(self, aborted: bool) -> None:
        if self._step_index == 0 and not self._agg.steps:
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

    def _peaks(self, final: bool, steps: list[StepRecord], measure: bool | None = None,
               precision: str | None = None) -> PeakSet:
        from pyprof.session.assemble import observed_sm_clock_hz
        return resolve(self._device, precision or self._precision(), peak=self.peak,
                       measure=self.measure_peak if measure is None else measure, final=final,
                       observed_sm_clock_hz=observed_sm_clock_hz(steps))

    def _build_result(self, final: bool, partial_reason: str | None, measure: bool | None = None) -> ProfileResult:
        result = self._result_builder(final, partial_reason, measure)()
        if final:
            self._host.info = result.hardware_counters  # the GPU counters' executed FLOPs, once applied, stay the source
        return result

    def _result_builder(self, final: bool, partial_reason: str | None,
                        measure: bool | None = None) -> Callable[[], ProfileResult]:
        """Take a snapshot of the session now (cheap: copies of the bounded window, the running totals and a few small
        tables) and return a function that builds the result from it alone, on any thread."""
        from pyprof.session.assemble import build_result
        section = self._gpu_section
        if section is None and self._gpu is not None:  # a snapshot while the GPU sources run
            section = GpuRun(status=dict(self._gpu.status), notes=list(self._gpu.notes))
        precision = self._precision()
        rows = self._window.rows()
        agg = self._agg.snapshot()
        window = self._window.info()
        flop_counts = list(self._counting.counts)
        notes = self._notes + ([self._counting.summary()] if agg.steps else [])
        hw_info = dict(self._host.info)
        cpu_peaks = copy.deepcopy(self._cpu_peaks)
        config = {
            "count_flops": self.count_mode,
            "schedule": repr(self.schedule) if self.schedule is not None else None,
            "examples_per_step": self.examples_per_step,
            "precision": precision,
            "peak": self.peak,
            "recomputation": self.recomputation,
            "training_examples": self.training_examples,
            "training_epochs": self.training_epochs,
        }

        curves = self._curves.to_list() if self._curves is not None else []

        def build() -> ProfileResult:
            result = build_result(
                name=self.name, started_at=self._started_at, device=self._device, config=config,
                steps=rows, aggregate=agg, steps_window=window, flop_counts=flop_counts, hw_info=hw_info,
                cpu_peaks=cpu_peaks, notes=notes, partial_reason=partial_reason,
                peaks=lambda steps: self._peaks(final, steps, measure, precision), recomputation=self.recomputation,
                training_examples=self.training_examples, training_epochs=self.training_epochs,
                gpu_section=section, gpu_spec_peaks=lambda: gpu_spec_peaks(self._device))
            if curves:
                result.learning_curves = curves
            return result
        return build

    def _autosave(self) -> None:
        """A partial report off the training thread: the snapshot is taken here (bounded copies), building and
        writing run on the writer's daemon thread."""
        self._last_save = time.monotonic()
        if self._reports.busy:  # a save still running when the next is due is skipped: saves never pile up
            return
        try:
            build = self._result_builder(final=False, partial_reason="run in progress (autosave)")
        except Exception as e:
            warnings.warn(f"pyprof: autosave failed: {e!r}", RuntimeWarning, stacklevel=3)
            return
        self._reports.autosave(build)


class _SoFar:
    """The two fields of a result that cumulative FLOPs read, without building a result (cheap, per log)."""

    def __init__(self, steps: list[StepRecord], totals: Any) -> None:
        self.steps, self.totals = steps, totals


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
        verify_every: with "auto", reused or derived steps are counted again and compared: the 50th, then after
            gaps doubling up to ``verify_every`` (default 1000: about 0.1% of a long run's steps); a mismatch switches
            to counting every step and is reported. 0 or None turns it off.
        hardware_counters: read CPU FP counters through perf_event_open where the PMU allows.
        measure_peak: measure this CPU's peak with pyprof's microkernel at the end (about a second).
        peak: hardware name from the peak database (``pyprof estimate --list-hardware``) or FLOP/s; defaults to the
            theoretical peak of this CPU.
        precision: "auto" (from the model's parameters), "fp32", "fp64", "bf16", ...
        recomputation: fraction of the forward recomputed in backward (1.0 = full activation checkpointing); MFU
            leaves it out, HFU counts it.
        training_examples, training_epochs: a full training run to project Method 1 and Method 2 onto.
        output_dir: write report.json / report.md there (atomically) at the end, after the first recorded step, and
            every ``autosave_s`` while running; checked (created, a probe file written) before anything starts.
            A write that fails later is a warning naming the folder; the result stays in ``prof.result()``.
        report_formats: subset of ("json", "md", "html", "trace"); all four by default (autosaves write json and md).
        autosave_s: seconds between autosaves (> 0; None: only the first report and the one at the end). Saves
            run on a background thread from a snapshot of the bounded step window, so their cost does not grow
            with the run.
        name: a name for the run in the report.

    Returns:
        A :class:`Profile`, to be used as a context manager. SIGTERM inside it writes a partial report, then the
        signal has its normal outcome (a handler installed before is called; otherwise the process dies by it).

    Raises:
        InvalidInputError: any argument of the wrong type or out of range (named, with the fix), before anything
            global is touched (see :func:`pyprof.session.options.validate_profile_options`).
    """
    return Profile(model, **kwargs)
