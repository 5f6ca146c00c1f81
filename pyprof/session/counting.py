"""Analytic FLOP counting per step, cached by *step signature*, and the CPU hardware FLOP counters of a step.

Counting with a dispatch mode is expensive, so a step is counted once per distinct step signature (the sequence of
root-module forward calls with their input shapes, dtypes, training and grad mode) and the count is reused for
identical steps; a changed signature is counted again. Everything here runs inside the user's forward or at a step
boundary, so every failure turns the measurement off with a warning and never reaches the loop.
"""

from __future__ import annotations

import warnings
from typing import Any

from pyprof.errors import InvalidInputError


def signature_of(x: Any, depth: int = 0) -> Any:
    """A hashable description of call arguments: shapes and dtypes of tensors, small values of scalars."""
    import torch

    if isinstance(x, torch.Tensor):
        return ("T", tuple(x.shape), str(x.dtype), x.device.type, x.requires_grad)
    if depth > 3:
        return type(x).__name__
    if isinstance(x, (list, tuple)):
        return tuple(signature_of(v, depth + 1) for v in x)
    if isinstance(x, dict):
        return tuple((str(k), signature_of(v, depth + 1)) for k, v in x.items())
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return type(x).__name__


class StepCounter:
    """The step-signature cache and the forward hooks that feed it.

    Per step: :meth:`begin_step` with the step's action, the root forward hook (:meth:`on_forward`) records each root
    call's signature and starts a :class:`~pyprof.sources.flops.FlopCounter` on the first call of a step whose
    signature is not known yet, and :meth:`close` returns ``(FlopCount | None, origin, signature index)`` where origin
    is "counted" (the dispatch mode ran), "reused" (same signature as a counted step), "missing" or "off".

    Args:
        mode: "auto" (count once per signature), "every" (count every step that is not skipped) or "off".
        notes: the profile's notes, appended to when counting is turned off or a step could not be attributed.
    """

    def __init__(self, mode: str, notes: list[str]) -> None:
        self.mode = mode
        self.notes = notes
        self.counts: list[Any] = []                 # FlopCount per distinct signature
        self._sig_index: dict[tuple, int] = {}       # full step signature -> index in counts
        self._last_sig: tuple | None = None
        self._hooks: list[Any] = []
        self._counter: Any = None
        self._error_seen = False
        self._action = "none"
        self._step_sigs: list[Any] = []
        self.counted = False                        # the dispatch mode ran in the current step
        self._depth = 0

    @property
    def pending(self) -> bool:
        """True when a root forward ran since the last :meth:`begin_step`."""
        return bool(self._step_sigs)

    def install(self, model: Any) -> None:
        """Register the forward hooks (on ``model``, or on every module call when ``model`` is None).

        Raises:
            InvalidInputError: ``model`` is not a ``torch.nn.Module``.
        """
        if self.mode == "off":
            return
        import torch

        if model is not None:
            if not isinstance(model, torch.nn.Module):
                raise InvalidInputError(f"model must be a torch.nn.Module (got {type(model).__name__}); "
                                        "pass model=None to profile code without a module")
            self._hooks.append(model.register_forward_pre_hook(self.on_forward, with_kwargs=True))
        else:
            # No model given: the outermost module call of each step is the root. A depth counter kept by global
            # pre/post hooks tells outermost calls apart from nested ones.
            from torch.nn.modules.module import (
                register_module_forward_hook,
                register_module_forward_pre_hook,
            )

            self._depth = 0

            def pre(module: Any, args: Any) -> None:
                self._depth += 1
                if self._depth == 1:
                    self.on_forward(module, args, {})

            def post(module: Any, args: Any, output: Any) -> None:
                self._depth = max(0, self._depth - 1)

            self._hooks.append(register_module_forward_pre_hook(pre))
            self._hooks.append(register_module_forward_hook(post, always_call=True))

    def remove(self) -> None:
        """Remove every hook this counter registered."""
        for h in self._hooks:
            h.remove()
        self._hooks.clear()

    def begin_step(self, action: str) -> None:
        """Start a step whose schedule action is ``action`` (one of ``pyprof.session.schedule.ACTIONS``)."""
        self._action = action
        self._step_sigs = []
        self.counted = False

    def on_forward(self, module: Any, args: Any, kwargs: Any) -> None:
        """Forward pre-hook of a root module call: record its signature; count when the step is new."""
        if self.mode == "off" or self._action == "none":
            return None
        try:
            import torch

            sig = (id(module), module.training, torch.is_grad_enabled(), signature_of(args), signature_of(kwargs))
            first = not self._step_sigs
            self._step_sigs.append(sig)
            if self._counter is not None and self._counter.active:
                return None
            if first:
                known = self.mode == "auto" and any(
                    k and k[0] == sig for k in ((self._last_sig,) if self._last_sig else ()) + tuple(self._sig_index))
                if not known:
                    self._start_counter(module)
        except Exception as e:  # never break the user's forward
            self._disable(e)
        return None

    def close(self) -> tuple[Any, str, int | None]:
        """Finish this step's analytic count: returns (FlopCount or None, origin, signature index)."""
        if self.mode == "off":
            return None, "off", None
        full = tuple(self._step_sigs)
        if self._counter is not None and self._counter.active:
            try:
                fc = self._counter.stop()
            except Exception as e:
                self._disable(e)
                return None, "missing", None
            idx = self._sig_index.get(full)
            if idx is None:
                idx = len(self.counts)
                self.counts.append(fc)
                self._sig_index[full] = idx
            self._last_sig = full
            return fc, "counted", idx
        if not full:
            return None, "missing", None
        idx = self._sig_index.get(full)
        if idx is None:
            # Signature changed within the step after we had chosen to reuse: count the next step fully.
            self._last_sig = None
            self._note_once("a step's shapes changed after its first forward; that step has no analytic count")
            return None, "missing", None
        self._last_sig = full
        return self.counts[idx], "reused", idx

    def _start_counter(self, module: Any) -> None:
        from pyprof.sources.flops import FlopCounter
        self._counter = FlopCounter(module=module)
        self._counter.start()
        self.counted = True

    def _disable(self, err: BaseException) -> None:
        if not self._error_seen:
            warnings.warn(f"pyprof: analytic FLOP counting failed and is turned off for this profile: {err!r}",
                          RuntimeWarning, stacklevel=4)
            self.notes.append(f"analytic counting failed and was turned off: {err!r}")
        self._error_seen = True
        self.mode = "off"
        if self._counter is not None and self._counter.active:
            try:
                self._counter.stop()
            except Exception:
                pass

    def _note_once(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


class HostCounters:
    """CPU floating-point hardware counters (perf_event) of the process, read at step boundaries.

    ``info`` is the report's ``hardware_counters`` section: availability, source, reason and scope.
    """

    def __init__(self) -> None:
        self._hw: Any = None
        self.info: dict[str, Any] = {"available": False, "source": None, "reason": "not requested"}

    def start(self) -> None:
        """Open the counters; a refusal (PMU not exposed, perf_event_paranoid) becomes ``info["reason"]``."""
        try:
            from pyprof.sources.cpu.host import CpuFlopCounter
            hw = CpuFlopCounter()
            ok = hw.start()
            self.info = {
                "available": ok,
                "source": f"perf_event ({hw.vendor}: "
                          f"{'FP_ARITH_INST_RETIRED' if hw.vendor == 'intel' else 'RETIRED_SSE_AVX_FLOPS'})" if ok else None,
                "reason": "" if ok else hw.reason,
                "scope": "CPU work of this process only" if ok else None,
            }
            self._hw = hw if ok else None
        except Exception as e:
            self._hw = None
            self.info = {"available": False, "source": None, "reason": f"{e}"}

    def read(self) -> float | None:
        """FP operations retired so far (all precisions), or None when the counters are not running."""
        if self._hw is None:
            return None
        try:
            return self._hw.read_flops().get("total", 0.0)
        except Exception as e:
            self.info["reason"] = f"reading counters failed: {e!r}"
            self._hw = None
            return None

    def stop(self) -> None:
        if self._hw is not None:
            self._hw.stop()
