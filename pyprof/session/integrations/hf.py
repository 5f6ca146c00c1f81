"""Hugging Face ``transformers`` TrainerCallback: ``PyprofHFCallback(output_dir=...).attach(trainer)``.

Needs ``transformers``, imported when this module is. ``on_step_end`` runs once per optimizer step, after
``gradient_accumulation_steps`` micro-batches, so each profile step is one optimizer step with
``per_device_train_batch_size x gradient_accumulation_steps`` examples. Every ``log_every_n_steps`` optimizer steps
(default: ``args.logging_steps``) the metrics ``pyprof/mfu``, ``pyprof/tflops_per_s`` and ``pyprof/utilization`` are
added to the Trainer's own log entry (next to ``loss``, ``grad_norm``, ``learning_rate``; never instead of them) and to
``state.log_history``. Attached with :meth:`PyprofHFCallback.attach` they also reach every ``report_to`` integration,
and on steps where the Trainer does not log they go through ``trainer.log``; added with ``trainer.add_callback`` they
wait for the Trainer's next log.
"""

from __future__ import annotations

import os
from typing import Any

try:
    from transformers import TrainerCallback as _TrainerCallback
except ImportError as e:
    raise ImportError("pyprof.integrations.hf needs Hugging Face transformers: `pip install transformers` "
                      "(and `accelerate` for its Trainer)") from e

from pyprof.session.integrations import StepDriver, root_model


class PyprofHFCallback(_TrainerCallback):
    """Profile a ``transformers.Trainer`` run with pyprof.

    Args:
        output_dir: where report.json / report.md are written when training ends.
        log_every_n_steps: log metrics every this many optimizer steps (None: ``args.logging_steps``).
        aggregate: in a multi-process run, gather the ranks' results to rank 0 (see :mod:`pyprof.distributed`).
        aggregate_timeout_s: bound on rank 0's wait for the other ranks.
        **profile_kwargs: other :func:`pyprof.profile` arguments (schedule, peak, recomputation, ...).
    """

    def __init__(self, *, output_dir: str | os.PathLike | None = None, log_every_n_steps: int | None = None,
                 aggregate: bool = True, aggregate_timeout_s: float = 60.0, **profile_kwargs: Any) -> None:
        self.output_dir = output_dir
        self.log_every_n_steps = log_every_n_steps
        self.aggregate = aggregate
        self.aggregate_timeout_s = aggregate_timeout_s
        self.profile_kwargs = profile_kwargs
        self.driver: StepDriver | None = None
        self.trainer: Any = None
        self.logged: list[dict[str, float]] = []
        self._pending: dict[str, float] = {}
        self._world = 1
        self.result: Any = None
        self.job_report: Any = None

    def attach(self, trainer: Any) -> PyprofHFCallback:
        """Add this callback to ``trainer`` so pyprof's metrics reach every ``report_to`` logger with the Trainer's.

        The callback goes right after transformers' ``DefaultFlowCallback`` (which decides whether this step logs), so
        in ``on_log`` it adds its metrics to the Trainer's own ``logs`` before the ``report_to`` integrations see
        them. On an optimizer step where the Trainer does not log, the metrics go through ``trainer.log``.
        """
        self.trainer = trainer
        handler = getattr(trainer, "callback_handler", None)
        cbs = getattr(handler, "callbacks", None)
        if isinstance(cbs, list):
            flow = next((i for i, c in enumerate(cbs) if type(c).__name__ == "DefaultFlowCallback"), -1)
            cbs.insert(flow + 1, self)
        else:
            trainer.add_callback(self)
        return self

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._world = int(getattr(args, "world_size", 1) or 1)
        out = self.output_dir
        if out is not None and self._world > 1:
            out = os.path.join(str(out), f"rank{getattr(args, 'process_index', 0)}")
        every = self.log_every_n_steps or max(1, int(getattr(args, "logging_steps", 50) or 50))
        self.driver = StepDriver(root_model(model) if model is not None else None, log_every_n_steps=every,
                                 output_dir=out, **self.profile_kwargs)
        self.driver.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        d = self.driver
        if d is None or not d.active:
            return None
        per_step = int(getattr(args, "per_device_train_batch_size", 0) or 0) * \
            int(getattr(args, "gradient_accumulation_steps", 1) or 1)
        d.on_optimizer_step(examples=per_step or None)
        if not d.should_log():
            return None
        m = d.metrics()
        if not m:
            return None
        self.logged.append(m)
        self._pending.update(m)
        # The Trainer logs this step itself (DefaultFlowCallback set should_log): on_log adds pyprof's metrics to
        # that entry. Calling trainer.log here instead would reset control.should_log (CallbackHandler.on_log does)
        # and the Trainer would drop its own loss / grad_norm / learning_rate for the step.
        if getattr(control, "should_log", False) or self.trainer is None:
            return None
        pending, self._pending = self._pending, {}
        try:
            self.trainer.log(dict(pending))
        except Exception:  # keep them for the Trainer's next log
            self._pending.update(pending)
        return None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        """Add pending pyprof metrics to the Trainer's ``logs`` and to the ``log_history`` entry made from them.

        ``Trainer.log`` appends a *copy* of ``logs`` (plus ``step``) to ``state.log_history`` before callbacks run,
        so updating ``logs`` alone never reaches ``log_history``: the last entry is updated too when it is that copy.
        """
        if logs is not None and self.driver is not None and self.driver.active and \
                not any(k.startswith("pyprof/") for k in logs):
            self.driver.log_trainer_metrics(dict(logs), getattr(state, "epoch", None))  # learning curves
        if not self._pending or logs is None:
            return
        pending, self._pending = self._pending, {}
        hist = getattr(state, "log_history", None)
        if hist and isinstance(hist[-1], dict) and hist[-1].get("step") == getattr(state, "global_step", None) \
                and all(hist[-1].get(k) == v for k, v in logs.items()):
            for k, v in pending.items():
                hist[-1].setdefault(k, v)  # added next to the Trainer's values, never over them
        for k, v in pending.items():
            logs.setdefault(k, v)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.driver is None or not self.driver.active:
            return
        self.result = self.driver.stop()
        if self.result is not None and self.aggregate and self._world > 1:
            try:
                from pyprof.session.distributed import aggregate
                self.job_report = aggregate(self.result, timeout_s=self.aggregate_timeout_s,
                                            output_dir=self.output_dir)
            except Exception as e:
                import warnings

                warnings.warn(f"pyprof: gathering the job report failed: {e!r}", RuntimeWarning, stacklevel=2)


__all__ = ["PyprofHFCallback"]
