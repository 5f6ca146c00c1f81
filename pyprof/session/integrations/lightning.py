"""PyTorch Lightning callback: ``Trainer(callbacks=[PyprofCallback(output_dir="pyprof-report")])``.

Needs ``lightning`` (or ``pytorch_lightning``) >= 2.0, imported when this module is. A profile step ends at each
optimizer step (Lightning's ``trainer.global_step`` moving), so ``accumulate_grad_batches`` is handled. Metrics
(``pyprof/mfu``, ``pyprof/tflops_per_s``, ``pyprof/utilization``) go to every logger in ``trainer.loggers`` every
``log_every_n_steps`` optimizer steps (default: the trainer's own ``log_every_n_steps``), at the step index Lightning
gives its own metrics for the same optimizer step.
"""

from __future__ import annotations

import os
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback as _Callback
except ImportError:
    try:
        # Its own stubs type this Callback apart from lightning.pytorch's, though it is the same API.
        from pytorch_lightning.callbacks import Callback as _Callback  # type: ignore[assignment]
    except ImportError as e:
        raise ImportError("pyprof.integrations.lightning needs PyTorch Lightning: `pip install lightning` (it keeps "
                          "the torch you have when that torch satisfies its requirement)") from e

from pyprof.session.integrations import StepDriver, root_model


def _batch_size(batch: Any) -> int | None:
    """Examples in a batch: the first dimension of the first tensor found (None if there is none)."""
    import torch

    todo, seen = [batch], 0
    while todo and seen < 64:
        b = todo.pop(0)
        seen += 1
        if isinstance(b, torch.Tensor):
            return int(b.shape[0]) if b.dim() > 0 else None
        if isinstance(b, dict):
            todo.extend(b.values())
        elif isinstance(b, (list, tuple)):
            todo.extend(b)
    return None


class PyprofCallback(_Callback):
    """Profile a Lightning ``fit`` with pyprof.

    Args:
        output_dir: where report.json / report.md are written at the end of training.
        log_every_n_steps: log metrics every this many optimizer steps (None: the trainer's ``log_every_n_steps``).
        aggregate: in a multi-process run, gather the ranks' results to rank 0 (see :mod:`pyprof.distributed`);
            each rank's own report then goes to ``<output_dir>/rank<N>``.
        aggregate_timeout_s: bound on rank 0's wait for the other ranks.
        **profile_kwargs: other :func:`pyprof.profile` arguments (schedule, peak, recomputation, ...).
    """

    def __init__(self, *, output_dir: str | os.PathLike | None = None, log_every_n_steps: int | None = None,
                 aggregate: bool = True, aggregate_timeout_s: float = 60.0, **profile_kwargs: Any) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.log_every_n_steps = log_every_n_steps
        self.aggregate = aggregate
        self.aggregate_timeout_s = aggregate_timeout_s
        self.profile_kwargs = profile_kwargs
        self.driver: StepDriver | None = None
        self.logged: list[dict[str, float]] = []
        self.result: Any = None
        self.job_report: Any = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        world = int(getattr(trainer, "world_size", 1) or 1)
        out = self.output_dir
        if out is not None and world > 1:
            out = os.path.join(str(out), f"rank{trainer.global_rank}")
        every = self.log_every_n_steps or int(getattr(trainer, "log_every_n_steps", 50) or 50)
        self.driver = StepDriver(root_model(pl_module), log_every_n_steps=every, output_dir=out,
                                 **self.profile_kwargs)
        self.driver.start()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        d = self.driver
        if d is None or not d.active:
            return
        if d.on_micro_batch_end(int(trainer.global_step), examples=_safe_batch_size(batch)) and d.should_log():
            m = d.metrics()
            if m:
                self.logged.append(m)
                self._log(trainer, pl_module, m)
            d.log_trainer_metrics(_scalars(trainer), _epoch(trainer))  # learning curves of what the run logs

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        d = self.driver
        if d is not None and d.active and not getattr(trainer, "sanity_checking", False):
            d.log_trainer_metrics(_scalars(trainer), _epoch(trainer))

    def _log(self, trainer: Any, pl_module: Any, m: dict[str, float]) -> None:
        """Send pyprof's metrics to every logger at the step index Lightning gives its own metrics for this step.

        Lightning logs a step's metrics at its count of optimizer steps taken *before* it
        (``fit_loop.epoch_loop._batches_that_stepped``, which is ``trainer.global_step - 1`` here, in
        ``on_train_batch_end``); logging at ``trainer.global_step`` put pyprof's metrics one step after the Trainer's.
        ``LightningModule.log_dict`` would merge them into Lightning's own entry, but with gradient accumulation
        Lightning re-sends a step metric at its next logging step, so a stale figure would appear twice.
        """
        loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
        step = getattr(loop, "_batches_that_stepped", None)
        step = int(step) if isinstance(step, int) else max(0, int(trainer.global_step) - 1)
        for lg in getattr(trainer, "loggers", None) or []:
            try:
                lg.log_metrics(m, step=step)
            except Exception:  # a logger's failure is the logger's business, not the training run's
                pass

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._finish(trainer, None)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._finish(trainer, exception)

    def _finish(self, trainer: Any, exc: BaseException | None) -> None:
        if self.driver is None or not self.driver.active:
            return
        self.result = self.driver.stop(exc)
        if self.result is not None and self.aggregate and int(getattr(trainer, "world_size", 1) or 1) > 1:
            try:
                from pyprof.session.distributed import aggregate
                self.job_report = aggregate(self.result, timeout_s=self.aggregate_timeout_s,
                                            output_dir=self.output_dir)
            except Exception as e:
                import warnings

                warnings.warn(f"pyprof: gathering the job report failed: {e!r}", RuntimeWarning, stacklevel=2)


def _scalars(trainer: Any) -> dict[str, float]:
    """The trainer's current logged scalars (``trainer.callback_metrics``), pyprof's own left out."""
    out: dict[str, float] = {}
    for k, v in (getattr(trainer, "callback_metrics", None) or {}).items():
        try:
            if getattr(v, "numel", lambda: 1)() == 1 and not str(k).startswith("pyprof/"):
                out[str(k)] = float(v)
        except Exception:  # a metric that is not a scalar is not a point on a curve
            continue
    return out


def _epoch(trainer: Any) -> float | None:
    e = getattr(trainer, "current_epoch", None)
    return float(e) if isinstance(e, int) else None


def _safe_batch_size(batch: Any) -> int | None:
    try:
        return _batch_size(batch)
    except Exception:
        return None


__all__ = ["PyprofCallback"]
