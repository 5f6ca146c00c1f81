"""Hugging Face ``transformers`` TrainerCallback: ``PyprofHFCallback(output_dir=...).attach(trainer)``.

Needs ``transformers``, imported when this module is. ``on_step_end`` runs once per optimizer step, after
``gradient_accumulation_steps`` micro-batches, so each profile step is one optimizer step with
``per_device_train_batch_size x gradient_accumulation_steps`` examples. Every ``log_every_n_steps`` optimizer steps
(default: ``args.logging_steps``) the metrics ``pyprof/mfu``, ``pyprof/tflops_per_s`` and ``pyprof/utilization`` go
through ``trainer.log`` (hence to every ``report_to`` integration) when the callback was attached with
:meth:`PyprofHFCallback.attach`; otherwise they are added to the next ``logs`` dict the Trainer passes to ``on_log``.
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
        """Add this callback to ``trainer`` and log through ``trainer.log`` (reaches every ``report_to`` logger)."""
        self.trainer = trainer
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

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        d = self.driver
        if d is None or not d.active:
            return
        per_step = int(getattr(args, "per_device_train_batch_size", 0) or 0) * \
            int(getattr(args, "gradient_accumulation_steps", 1) or 1)
        d.on_optimizer_step(examples=per_step or None)
        if d.should_log():
            m = d.metrics()
            if not m:
                return
            self.logged.append(m)
            if self.trainer is not None:
                try:
                    self.trainer.log(dict(m))
                    return
                except Exception:
                    pass
            self._pending.update(m)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if self._pending and logs is not None:
            logs.update(self._pending)
            self._pending = {}

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
