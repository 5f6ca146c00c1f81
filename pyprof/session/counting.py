"""Analytic FLOP counting per step, cached by *step signature*, and the CPU hardware FLOP counters of a step.

Counting with a dispatch mode is expensive, so a step is counted once per distinct step signature
(:mod:`pyprof.session.signature`: the sequence of root-module calls with every tensor reachable from their positional
and keyword arguments, the root's parameters' ``requires_grad`` and submodules' modes, grad mode and autocast) and
the count is reused for steps with the same signature. Each step's analytic FLOPs therefore have an origin:

- ``counted``: the dispatch mode ran in this step (the step is marked ``perturbed`` and left out of the rates);
- ``reused``: the step's signature equals a counted step's;
- ``derived``: the signature differs from counted ones only in tensor sizes, and a polynomial in those sizes (total
  degree <= 3, e.g. batch x sequence length squared for attention) reproduces *every* counted point of that family
  exactly with at least two points to spare; the step's count is that polynomial's value. This keeps random
  batch x length loops from counting most of their steps, so the rates come from most steps;
- ``missing``: none of the above (a call's signature changed in the middle of a reused step): the next step with the
  same first call is counted.

Verification: reused or derived steps are counted again now and then and compared: the :data:`FIRST_VERIFY`-th one,
then after gaps that double up to ``verify_every`` (so a long run recounts about one step in ``verify_every``, and a
short one is still checked early); a mismatch (the work
depends on tensor values the signature cannot see) switches counting to every step and is reported.

Memory is bounded: at most ``max_signatures`` signatures are kept for reuse (least recently used first out), and the
report keeps the full per-op count of the first :data:`FULL_COUNTS` signatures and totals only for later ones.

Everything here runs inside the user's forward or at a step boundary: every failure turns the measurement off with a
note and never reaches the loop.
"""

from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict
from typing import Any

from pyprof.errors import InvalidInputError
from pyprof.session.signature import ModuleState, process_state, signature_of, split_shapes

__all__ = ["FULL_COUNTS", "HostCounters", "StepCounter", "signature_of"]

#: The first verification recounts this many reused/derived steps in (the gap then doubles up to ``verify_every``).
FIRST_VERIFY = 50
#: Signatures whose full per-op / per-module count the report keeps; later ones keep totals only (bounded report).
FULL_COUNTS = 16
#: Points kept per family of signatures that differ only in tensor sizes (for derived counts).
FAMILY_POINTS = 64
#: Families kept (least recently used first out).
MAX_FAMILIES = 256
#: Highest total degree of the polynomial that relates counts of one family (B * L^2 for attention is degree 3).
MAX_DEGREE = 3
#: Points beyond the number of monomials that a fit must also reproduce exactly before it is trusted.
SPARE_POINTS = 2

_QUANTITIES = ("total_flops", "total_flops_effective", "forward_flops", "backward_flops")


class _Unseen:
    """Keyword arguments a global pre-hook could not see: a signature that matches nothing, so the step is counted."""

    def __repr__(self) -> str:
        return "<kwargs unseen>"


_UNSEEN = _Unseen()


class _Family:
    """Counted points of signatures that share a skeleton (differ only in tensor sizes), and their fitted polynomial."""

    __slots__ = ("_fit", "_fit_tried", "points")

    def __init__(self) -> None:
        self.points: OrderedDict[tuple[int, ...], tuple[int, ...]] = OrderedDict()
        self._fit: Any = None
        self._fit_tried = False

    def add(self, dims: tuple[int, ...], values: tuple[int, ...]) -> None:
        self.points[dims] = values
        self.points.move_to_end(dims)
        while len(self.points) > FAMILY_POINTS:
            self.points.popitem(last=False)
        self._fit, self._fit_tried = None, False

    def predict(self, dims: tuple[int, ...]) -> tuple[int, ...] | None:
        """The counts at ``dims`` from an exact polynomial fit of this family's points, or None."""
        if not self._fit_tried:
            self._fit_tried = True
            self._fit = _fit_family(list(self.points.items()))
        if self._fit is None:
            return None
        groups, const, degree, coef, scale = self._fit
        for pos, val in const.items():
            if dims[pos] != val:
                return None
        x = []
        for g in groups:
            v = dims[g[0]]
            if any(dims[p] != v for p in g):
                return None
            x.append(v)
        import numpy as np

        row = _monomials(np.asarray([x], dtype=np.float64) / scale, degree)
        pred = row @ coef
        out = tuple(round(float(v)) for v in pred[0])
        return out if all(v >= 0 for v in out) else None


def _monomials(x: Any, degree: int) -> Any:
    """Columns of every monomial of total degree <= ``degree`` in the columns of ``x`` (n x k), constant first."""
    import numpy as np

    n, k = x.shape
    cols = [np.ones(n)]
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(k), d):
            c = np.ones(n)
            for j in combo:
                c = c * x[:, j]
            cols.append(c)
    return np.stack(cols, axis=1)


def _fit_family(points: list[tuple[tuple[int, ...], tuple[int, ...]]]) -> Any:
    """Fit counts = polynomial(sizes) through a family's points; None unless the fit is exact with spare points.

    Sizes that vary together across every point (a batch dict's ``input_ids`` and ``labels`` lengths) are one variable.
    """
    import numpy as np

    if len(points) < 2 + SPARE_POINTS:
        return None
    dims = np.asarray([p[0] for p in points], dtype=np.int64)
    vals = np.asarray([p[1] for p in points], dtype=np.float64)
    varying = [j for j in range(dims.shape[1]) if len(set(dims[:, j].tolist())) > 1]
    const = {j: int(dims[0, j]) for j in range(dims.shape[1]) if j not in varying}
    groups: dict[tuple[int, ...], list[int]] = {}
    for j in varying:
        groups.setdefault(tuple(dims[:, j].tolist()), []).append(j)
    group_list = list(groups.values())
    if not group_list or len(group_list) > 3:
        return None
    x = np.stack([dims[:, g[0]] for g in group_list], axis=1).astype(np.float64)
    scale = x.max(axis=0)
    for degree in range(1, MAX_DEGREE + 1):
        a = _monomials(x / scale, degree)
        if len(points) < a.shape[1] + SPARE_POINTS:
            return None
        if np.linalg.matrix_rank(a) < a.shape[1]:
            continue
        coef, *_ = np.linalg.lstsq(a, vals, rcond=None)
        if np.all(np.abs(a @ coef - vals) < 0.5):  # every counted point reproduced to the FLOP
            return group_list, const, degree, coef, scale
    return None


class _Eager:
    """``torch.compiler.set_stance("force_eager")`` for a counted step, so the dispatch mode sees every op.

    A compiled graph hides its ops from a dispatch mode started outside it (and one started inside Dynamo's frame is
    lost when the frame exits): a counted step runs eagerly instead. The compiled code stays cached and runs again
    from the next step on; nothing is recompiled.
    """

    def __init__(self) -> None:
        self._cm: Any = None

    def enter(self) -> None:
        if self._cm is not None:
            return
        try:
            import torch

            set_stance = getattr(getattr(torch, "compiler", None), "set_stance", None)
            if set_stance is not None and not torch.compiler.is_compiling():
                self._cm = set_stance("force_eager")
        except Exception:
            self._cm = None

    def exit(self) -> None:
        cm, self._cm = self._cm, None
        if cm is not None:
            try:
                cm.__exit__(None, None, None)
            except Exception:
                pass


class StepCounter:
    """The step-signature cache and the forward hooks that feed it (see the module docstring for the guarantee).

    Per step: :meth:`begin_step` with the step's action; the root forward hook (:meth:`on_forward`) records each root
    call's signature and starts a :class:`~pyprof.sources.flops.FlopCounter` on the first call of a step that must be
    counted; :meth:`close` returns ``(FlopCount | None, origin, signature index)`` where origin is "counted", "reused",
    "derived", "missing" or "off".

    Args:
        mode: "auto" (count once per signature), "every" (count every step that is not skipped) or "off".
        notes: the profile's notes, appended to when counting is turned off, a verification fails or a step could not
            be attributed.
        verify_every: the longest gap, in reused or derived steps, between two verification recounts (None or 0:
            never verify); the first comes after ``min(FIRST_VERIFY, verify_every)`` such steps.
        max_signatures: signatures kept for reuse (least recently used first out).
    """

    def __init__(self, mode: str, notes: list[str], *, verify_every: int | None = 1000,
                 max_signatures: int = 1024) -> None:
        self.mode = mode
        self.notes = notes
        self.verify_every = verify_every or 0
        self.max_signatures = max_signatures
        self.counts: list[Any] = []                            # FlopCount per counted signature (report)
        self._cache: OrderedDict[tuple, int] = OrderedDict()  # full step signature -> index in counts
        self._prefixes: dict[tuple, int] = {}                  # every prefix of a cached signature -> how many
        self._families: OrderedDict[Any, _Family] = OrderedDict()
        self._recount_first: set[Any] = set()                  # first calls whose next step must be counted
        self._last_derived: tuple[tuple, Any] | None = None    # (signature, derived count) of the last derivation
        self._states: dict[int, ModuleState] = {}
        self._hooks: list[Any] = []
        self._restore: list[Any] = []
        self._counter: Any = None
        self._eager = _Eager()
        self._error_seen = False
        self._action = "none"
        self._calls: list[Any] = []
        self._plan = "none"
        self._verifying = False
        self._since_verify = 0
        self._verify_gap = min(FIRST_VERIFY, self.verify_every) if self.verify_every else 0
        self.counted = False                                   # the dispatch mode ran in the current step
        self.origins: dict[str, int] = {"counted": 0, "reused": 0, "derived": 0, "missing": 0}
        self.verified = 0
        self._depth = 0

    @property
    def pending(self) -> bool:
        """True when a root forward ran since the last :meth:`begin_step`."""
        return bool(self._calls)

    # ------------------------------------------------------------------ hooks
    def install(self, model: Any) -> None:
        """Register the forward hooks (on ``model``, or on every module call when ``model`` is None).

        A model compiled in place (``model.compile()``) runs its hooks inside the compiled frame, where a dispatch mode
        cannot start; its call is wrapped instead (outside the frame) and the wrapper is removed by :meth:`remove`,
        leaving the compiled code object exactly as it was.

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
            compiled = model.__dict__.get("_compiled_call_impl")
            if compiled is not None:
                def call(*args: Any, **kwargs: Any) -> Any:
                    self.on_forward(model, args, kwargs)
                    return compiled(*args, **kwargs)

                model._compiled_call_impl = call
                self._restore.append((model, compiled))
            else:
                self._hooks.append(model.register_forward_pre_hook(self.on_forward, with_kwargs=True))
        else:
            # No model given: the outermost module call of each step is the root. A depth counter kept by global
            # pre/post hooks tells outermost calls apart from nested ones. Global pre-hooks do not see keyword
            # arguments, so each root module gets its own pre-hook with kwargs the first time it is seen (that first
            # call is counted, its kwargs unseen); later root calls go through that hook.
            from torch.nn.modules.module import (
                register_module_forward_hook,
                register_module_forward_pre_hook,
            )

            self._depth = 0
            hooked: set[int] = set()

            def own(module: Any, args: Any, kwargs: Any) -> None:
                if self._depth == 1:
                    self.on_forward(module, args, kwargs)

            unseen: list[int] = []  # index in this step's calls of a first call whose kwargs were not seen

            def pre(module: Any, args: Any) -> None:
                self._depth += 1
                if self._depth == 1 and id(module) not in hooked and len(hooked) < 256:
                    hooked.add(id(module))
                    self._hooks.append(module.register_forward_pre_hook(own, with_kwargs=True))
                    n = len(self._calls)
                    self.on_forward(module, args, _UNSEEN)
                    if len(self._calls) > n:
                        unseen.append(n)

            def post(module: Any, args: Any, kwargs: Any, output: Any) -> None:
                if self._depth == 1 and unseen:
                    # The global post-hook does see kwargs: key the (counted) call by its real signature, so that the
                    # next step with the same call reuses this count.
                    i = unseen.pop()
                    try:
                        if i < len(self._calls):
                            self._calls[i] = self._call_signature(module, args, kwargs)
                    except Exception as e:
                        self._disable(e)
                self._depth = max(0, self._depth - 1)

            self._hooks.append(register_module_forward_pre_hook(pre))
            self._hooks.append(register_module_forward_hook(post, with_kwargs=True, always_call=True))

    def remove(self) -> None:
        """Remove every hook and wrapper this counter installed, and stop a count still running."""
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        for model, compiled in self._restore:
            model._compiled_call_impl = compiled
        self._restore.clear()
        self._abandon_count()

    # ------------------------------------------------------------------ steps
    def begin_step(self, action: str) -> None:
        """Start a step whose schedule action is ``action`` (one of ``pyprof.session.schedule.ACTIONS``)."""
        self._action = action
        self._calls = []
        self._plan = "none"
        self._verifying = False
        self.counted = False

    def _call_signature(self, module: Any, args: Any, kwargs: Any) -> tuple:
        state = self._states.get(id(module))
        if state is None:
            if len(self._states) > 64:  # model=None over many distinct roots: keep the map bounded
                self._states.clear()
            state = self._states[id(module)] = ModuleState(module)
        return (id(module), state.fingerprint(), process_state(), signature_of(args), signature_of(kwargs))

    def on_forward(self, module: Any, args: Any, kwargs: Any) -> None:
        """Forward pre-hook of a root module call: record its signature; start counting when the step needs it."""
        if self.mode == "off" or self._action == "none":
            return None
        try:
            import torch

            if torch.compiler.is_compiling():  # inside a Dynamo frame: a dispatch mode started here would be lost
                return None
            sig = self._call_signature(module, args, kwargs)
            self._calls.append(sig)
            if self._counter is not None and self._counter.active:
                return None
            if len(self._calls) == 1:
                self._plan = self._decide(sig)
                if self._plan == "count":
                    self._start_counter(module)
            elif self._plan == "reuse" and tuple(self._calls) not in self._prefixes:
                self._plan = "derive"  # a later call left every cached signature: derive at close, or miss
        except Exception as e:  # never break the user's forward
            self._disable(e)
        return None

    def _decide(self, first: tuple) -> str:
        if self.mode == "every" or first in self._recount_first:
            return "count"
        known = (first,) in self._prefixes
        derivable = not known and self._derive((first,)) is not None
        if not (known or derivable):
            return "count"
        if self._verify_gap and self._since_verify + 1 >= self._verify_gap:
            self._verifying = True
            return "count"
        return "reuse" if known else "derive"

    def close(self) -> tuple[Any, str, int | None]:
        """Finish this step's analytic count: returns (FlopCount or None, origin, signature index)."""
        if self.mode == "off":
            self._eager.exit()
            return None, "off", None
        full = tuple(self._calls)
        if self._counter is not None and self._counter.active:
            try:
                fc = self._counter.stop()
            except Exception as e:
                self._disable(e)
                return None, "missing", None
            finally:
                self._eager.exit()
            self._recount_first.discard(full[0] if full else None)
            if not getattr(fc, "complete", True):
                # A formula, decomposition or hook failed inside counting: the user's ops ran as unprofiled, this step
                # has no count, and the failed count is never cached (the next such step is counted again).
                self.origins["missing"] += 1
                for f in getattr(fc, "failures", [])[:4]:
                    self._note_once(f"analytic counting failed on {f.op}: {f.reason}; steps where it failed have no "
                                    "analytic count")
                return None, "missing", None
            if self._verifying:
                self._check(full, fc)
            idx = self._store(full, fc)
            self.origins["counted"] += 1
            return fc, "counted", idx
        if not full:
            return None, "missing", None
        idx = self._cache.get(full)
        if idx is not None:
            self._cache.move_to_end(full)
            self._since_verify += 1
            self.origins["reused"] += 1
            return self.counts[idx], "reused", idx
        derived = self._derive(full)
        if derived is not None:
            self._since_verify += 1
            self.origins["derived"] += 1
            return derived, "derived", None
        # A call's signature changed after the step's first call had matched a cached step: count the next such step.
        self._recount_first.add(full[0])
        self.origins["missing"] += 1
        self._note_once("a step's root calls changed after its first call matched a counted step; such a step has no "
                        "analytic count and the next one with the same first call is counted")
        return None, "missing", None

    def summary(self) -> str:
        """One line for the report: how many steps were counted, reused, derived, verified and missing."""
        o = self.origins
        return (f"analytic FLOPs per step: {o['counted']} counted, {o['reused']} reused (same signature), "
                f"{o['derived']} derived (exact polynomial in tensor sizes), {o['missing']} missing; "
                f"{self.verified} reused/derived step(s) recounted to verify"
                + (f" (gaps doubling from {min(FIRST_VERIFY, self.verify_every)} to {self.verify_every} steps)"
                   if self.verify_every else " (verification off)"))

    # ------------------------------------------------------------------ cache
    def _store(self, full: tuple, fc: Any) -> int | None:
        if not full:
            return None
        idx = self._cache.get(full)
        if idx is None:
            idx = len(self.counts)
            if idx >= FULL_COUNTS:
                fc = _totals_only(fc)
            self.counts.append(fc)
            if len(self.counts) > 4 * self.max_signatures:
                # Report bounded too: later counts keep no index (their totals stay on the step records).
                self.counts.pop()
                idx = None
            else:
                self._cache[full] = idx
                for n in range(1, len(full) + 1):
                    self._prefixes[full[:n]] = self._prefixes.get(full[:n], 0) + 1
                while len(self._cache) > self.max_signatures:
                    self._evict()
        else:
            self._cache.move_to_end(full)
        skeleton, dims = split_shapes(full)
        fam = self._families.get(skeleton)
        if fam is None:
            fam = self._families[skeleton] = _Family()
            while len(self._families) > MAX_FAMILIES:
                self._families.popitem(last=False)
        else:
            self._families.move_to_end(skeleton)
        fam.add(tuple(dims), tuple(int(getattr(fc, q)) for q in _QUANTITIES))
        self._last_derived = None  # a new point changes the family's fit
        return idx

    def _evict(self) -> None:
        old, _ = self._cache.popitem(last=False)
        for n in range(1, len(old) + 1):
            k = old[:n]
            c = self._prefixes.get(k, 0) - 1
            if c <= 0:
                self._prefixes.pop(k, None)
            else:
                self._prefixes[k] = c

    def _derive(self, full: tuple) -> Any:
        # A one-call step is derived at its first call (to decide) and again at its end: the second is a lookup.
        last = self._last_derived
        if last is not None and last[0] == full:
            return last[1]
        fc = self._derive_uncached(full)
        self._last_derived = (full, fc)
        return fc

    def _derive_uncached(self, full: tuple) -> Any:
        skeleton, dims = split_shapes(full)
        fam = self._families.get(skeleton)
        if fam is None:
            return None
        values = fam.predict(tuple(dims))
        if values is None:
            return None
        from pyprof.sources.flops import FlopCount

        # values holds one int per name in _QUANTITIES (the four int totals); Any lets them go in by keyword.
        totals: dict[str, Any] = dict(zip(_QUANTITIES, values))
        return FlopCount(**totals)

    def _check(self, full: tuple, fc: Any) -> None:
        """Compare a verification count with what reuse or derivation would have given."""
        self._since_verify = 0
        self.verified += 1
        self._verify_gap = min(2 * self._verify_gap, self.verify_every)
        idx = self._cache.get(full)
        expected = self.counts[idx] if idx is not None else self._derive(full)
        if expected is None or int(expected.total_flops) == int(fc.total_flops):
            return
        how = "reused" if idx is not None else "derived"
        self.notes.append(f"verification: a step counted {int(fc.total_flops):,} FLOPs where the {how} count was "
                          f"{int(expected.total_flops):,}: this loop's work depends on something the step signature "
                          "cannot see (tensor values, data-dependent control flow); every step is counted from now on")
        warnings.warn("pyprof: a recounted step differs from its cached count; counting every step from now on",
                      RuntimeWarning, stacklevel=4)
        self.mode = "every"

    def _start_counter(self, module: Any) -> None:
        from pyprof.sources.flops import FlopCounter

        self._eager.enter()
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
        self._abandon_count()

    def _abandon_count(self) -> None:
        """Stop a count still running (its result unused) and leave the eager stance."""
        if self._counter is not None and self._counter.active:
            try:
                self._counter.stop()
            except Exception:
                pass
        self._eager.exit()

    def _note_once(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


def _totals_only(fc: Any) -> Any:
    """A FlopCount with the totals of ``fc`` and no per-op detail (bounded memory for later signatures)."""
    from pyprof.sources.flops import FlopCount

    return FlopCount(**{q: getattr(fc, q) for q in _QUANTITIES}, op_calls=getattr(fc, "op_calls", 0))


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
