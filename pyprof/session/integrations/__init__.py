"""Trainer integrations: a PyTorch Lightning callback and a Hugging Face ``transformers`` TrainerCallback.

Both are thin adapters around :class:`StepDriver`, which owns the profile, turns a trainer's optimizer-step counter
into ``prof.step()`` calls (so gradient accumulation is handled: micro-batches between two optimizer steps are one
profile step), and computes the logged metrics. Lightning and transformers are imported only when their adapter is.

Logged metrics (over the recorded steps since the last log, steps in which pyprof's counting ran left out):

- ``pyprof/tflops_per_s``: model FLOPs per second, in TFLOP/s.
- ``pyprof/mfu``: model FLOPs utilization against the spec (or, on CPUs, theoretical) peak.
- ``pyprof/utilization``: against the peak pyprof measured on this machine when there is one, else equal to MFU.

The metrics the trainer itself logs (loss, eval metrics) are kept as FLOPs-based learning curves
(:class:`MetricCurves`, :mod:`pyprof.efficiency`) and written into the run's report (``learning_curves``).
"""

from __future__ import annotations

import warnings
from typing import Any

from pyprof.errors import InvalidInputError
from pyprof.session.curves import MetricCurves

METRICS = ("pyprof/mfu", "pyprof/tflops_per_s", "pyprof/utilization")


class StepDriver:
    """Drive a :class:`~pyprof.profiler.Profile` from a trainer's callbacks; never raises into the trainer.

    Args:
        model: the root module (None: any module call).
        log_every_n_steps: compute metrics every this many optimizer steps.
        **profile_kwargs: arguments of :func:`pyprof.profile` (schedule, output_dir, peak, ...).
    """

    def __init__(self, model: Any = None, *, log_every_n_steps: int = 50, **profile_kwargs: Any) -> None:
        if isinstance(log_every_n_steps, bool) or not isinstance(log_every_n_steps, int) or log_every_n_steps < 1:
            raise InvalidInputError(f"log_every_n_steps={log_every_n_steps!r} must be a whole number >= 1")
        from pyprof.session.profile import Profile
        self.profile_kwargs = dict(profile_kwargs)
        if self.profile_kwargs.get("output_dir") is not None:
            from pyprof.report.writers import DEFAULT_FORMATS
            self.profile_kwargs.setdefault("report_formats", DEFAULT_FORMATS)  # HTML and trace too (issue 14)
        self.prof = Profile(model, **self.profile_kwargs)
        self.log_every_n_steps = log_every_n_steps
        self.optimizer_steps = 0
        self.micro_batches = 0
        self._last_counter: int | None = None
        self._pending_examples = 0
        # The recorded steps since the last log (at most log_every_n_steps of them): metrics never rebuild the
        # whole result, whose cost grows with the run (a full prof.result() per log made a run's total cost quadratic).
        self._since_log: list[Any] = []
        self._peaks: Any = None     # the peaks metrics are computed against, resolved once
        self._open = False
        self._broken = False
        self.last_metrics: dict[str, float] = {}
        self.curves = MetricCurves()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._open or self._broken:
            return
        try:
            self.prof.__enter__()
            self._open = True
            # a trainer that dies without its end hook (transformers has no exception hook) still gets its report
            # written and the process's profile slot freed at exit
            import atexit

            atexit.register(self.stop)
        except Exception as e:
            self._fail("starting the profile", e)

    def stop(self, exc: BaseException | None = None) -> Any:
        """End the profile (writes the report if ``output_dir`` was given); returns the result or None."""
        if not self._open:
            return None
        self._open = False
        try:
            import atexit

            atexit.unregister(self.stop)
        except Exception:
            pass
        try:
            self.prof.__exit__(type(exc) if exc is not None else None, exc, None)
            result = self.prof.result()
        except Exception as e:
            self._fail("finishing the profile", e)
            return None
        curves = self.curves.to_list()
        if curves and result is not None:
            # The session wrote the reports on exit, before the curves were attached: write them again with the
            # curves (same formats, same folder). A failure here costs the curves, never the report.
            try:
                result.learning_curves = curves
                out = getattr(self.prof, "output_dir", None)
                if out is not None:
                    from pyprof.report import write_reports
                    write_reports(result, out, getattr(self.prof, "report_formats", None))
            except Exception as e:
                warnings.warn(f"pyprof: writing the learning curves failed: {e!r}", RuntimeWarning, stacklevel=2)
        return result

    def log_trainer_metrics(self, metrics: dict[str, Any], epoch: float | None = None) -> None:
        """Add the trainer's own logged metrics (loss, eval accuracy, ...) to the learning curves; never raises."""
        if not self._open or not metrics:
            return
        try:
            self.curves.log(self.prof.flops_so_far(), metrics, epoch)  # not a full result per trainer log
        except Exception as e:  # curves are a by-product: never the trainer's problem
            self.curves.note(f"learning curves stopped: {type(e).__name__}: {e}")

    @property
    def active(self) -> bool:
        return self._open

    # ------------------------------------------------------------------ steps
    def on_micro_batch_end(self, optimizer_step_counter: int, examples: int | None = None) -> bool:
        """Call after every micro-batch with the trainer's optimizer-step counter (Lightning's ``global_step``).

        A profile step ends when the counter has moved since the last call: the micro-batches in between (gradient
        accumulation) form one step.

        Returns:
            True when a profile step ended.
        """
        if not self._open:
            return False
        self.micro_batches += 1
        if examples:
            self._pending_examples += int(examples)
        if self._last_counter is None:
            self._last_counter = 0
        if optimizer_step_counter <= self._last_counter:
            return False
        self._last_counter = optimizer_step_counter
        self.on_optimizer_step()
        return True

    def on_optimizer_step(self, examples: int | None = None) -> None:
        """Call once per optimizer step (transformers' ``on_step_end``)."""
        if not self._open:
            return
        n = examples if examples else (self._pending_examples or None)
        self._pending_examples = 0
        try:
            self.prof.step(examples=int(n) if n else None)
            self.optimizer_steps += 1
            last = self.prof.last_step
            if last is not None and (not self._since_log or last is not self._since_log[-1]):
                self._since_log.append(last)
                if len(self._since_log) > self.log_every_n_steps:  # bounded even if metrics() is never called
                    del self._since_log[0]
        except Exception as e:
            self._fail("prof.step()", e)

    def should_log(self) -> bool:
        return self._open and self.optimizer_steps > 0 and self.optimizer_steps % self.log_every_n_steps == 0

    def metrics(self) -> dict[str, float]:
        """``pyprof/*`` metrics over the recorded steps since the last call; {} when none can be computed."""
        if not self._open:
            return {}
        window = [s for s in self._since_log if not s.perturbed and s.analytic_flops is not None]
        self._since_log = []
        if not window:
            return {}
        try:
            if self._peaks is None:
                # Spec (or theoretical) peak and extras, as the result's reconciliation lists them; resolved once:
                # nothing is measured while the run goes on (measured peaks come only at the end).
                ps = self.prof._peaks(False, window)
                self._peaks = _Peaks([p for p in (ps.spec, ps.measured) if p is not None] + list(ps.extra))
        except Exception as e:
            self._fail("resolving the peaks", e)
            return {}
        m = window_metrics(window, self._peaks, self.prof.recomputation)
        self.last_metrics = m
        return m

    def _fail(self, what: str, e: BaseException) -> None:
        if not self._broken:
            warnings.warn(f"pyprof: {what} failed; profiling is off for the rest of this run (training goes on): "
                          f"{e!r}", RuntimeWarning, stacklevel=3)
        self._broken = True
        if self._open:
            self._open = False
            try:
                self.prof.__exit__(None, None, None)
            except Exception:
                pass


class _Peaks:
    """The ``peaks`` of a reconciliation, which is all :func:`window_metrics` reads of one."""

    def __init__(self, peaks: list[Any]) -> None:
        self.peaks = peaks


def root_model(module: Any) -> Any:
    """The ``model`` to give the profile for a trainer's module.

    On a CPU the outermost module call of each step marks its work (None), which works whatever the training step
    calls. Elsewhere the module itself, so that the profile sees the right device; its FLOPs are then counted when
    the trainer (or the training step) calls the module's forward.
    """
    try:
        dev = next(iter(module.parameters())).device
    except (StopIteration, AttributeError, TypeError):
        return None
    return None if dev.type == "cpu" else module


def window_metrics(steps: list[Any], reconciliation: Any, recomputation: float = 0.0) -> dict[str, float]:
    """The logged metrics for a window of step records (pure; tested by hand arithmetic).

    Args:
        steps: StepRecords with analytic FLOPs.
        reconciliation: the result's Reconciliation (for its peaks); None gives only ``pyprof/tflops_per_s``.
        recomputation: fraction of the forward recomputed in backward (left out of model FLOPs, as MFU does).
    """
    time_s = sum(s.wall_time_s for s in steps)
    if time_s <= 0:
        return {}
    model = sum(s.analytic_flops - recomputation * (s.analytic_forward_flops or 0) for s in steps)
    rate = model / time_s
    out = {"pyprof/tflops_per_s": rate / 1e12}
    peaks = {p.kind: p.flops_per_s for p in (reconciliation.peaks if reconciliation is not None else [])
             if p.flops_per_s}
    spec = peaks.get("spec") or peaks.get("theoretical")
    if spec:
        out["pyprof/mfu"] = rate / spec
    measured = peaks.get("measured")
    if measured or spec:
        out["pyprof/utilization"] = rate / (measured or spec)
    return out


__all__ = ["METRICS", "StepDriver", "root_model", "window_metrics"]
