"""The analytic (Method 1) FLOP counter: a TorchDispatchMode that prices every aten op torch executes.

Each op that reaches the mode is looked up in the merged registry (torch's formulas, pyprof's fixes and additions,
then the counter's ``custom_formulas``). An op without a formula is first decomposed into smaller ops when it has a
decomposition, as torch's own counter does; otherwise it runs, counts zero FLOPs and is entered in the uncounted
ledger with a kind, so a zero is always visible. ``ModuleAttribution`` supplies the module path and whether
autograd's backward is running. A failure inside counting switches counting off for the region and is reported in
the FlopCount (``status``, ``failures``); it never reaches the user's code.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch._ops import HigherOrderOperator
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode

import pyprof.sources.flops.formulas  # noqa: F401  (registers pyprof's formulas)
from pyprof.errors import ProfilerStateError
from pyprof.sources.flops.formulas import complex_factor
from pyprof.sources.flops.modules import ModuleAttribution
from pyprof.sources.flops.registry import (
    effective_registry,
    merged_registry,
    wrap_custom,
)
from pyprof.sources.flops.result import (
    CountFailure,
    CountStatus,
    FlopCount,
    OpCount,
    UncountedOp,
)

__all__ = ["FlopCounter", "count_flops"]

log = logging.getLogger(__name__)

aten = torch.ops.aten

# Metadata queries torch's FlopCounterMode also lets through untouched (returning NotImplemented hands them to a
# tensor subclass such as NJT with its own sizes policy). They are neither counted nor put in the ledger.
_METADATA_OPS = frozenset(
    {
        aten.sym_is_contiguous.default,
        aten.is_contiguous.default,
        aten.is_contiguous.memory_format,
        aten.is_strides_like_format.default,
        aten.is_non_overlapping_and_dense.default,
        aten.size.default,
        aten.sym_size.default,
        aten.stride.default,
        aten.sym_stride.default,
        aten.storage_offset.default,
        aten.sym_storage_offset.default,
        aten.numel.default,
        aten.sym_numel.default,
        aten.dim.default,
        torch.ops.prim.layout.default,
    }
)

# Ops that move or materialize data without arithmetic, classed "view" in the ledger although they are not views.
# (clone carries torch.Tag.pointwise, but it is a copy.)
_DATA_MOVEMENT_OPS = frozenset(
    {
        "copy_", "clone", "_to_copy", "contiguous", "cat", "stack", "lift_fresh", "lift_fresh_copy",
        "constant_pad_nd", "index", "index_select", "gather", "scatter", "scatter_", "index_put", "index_put_",
        "index_copy", "index_copy_", "masked_select", "slice_scatter", "select_scatter", "diagonal_scatter",
        "as_strided_scatter", "repeat", "flip", "roll", "fill_", "zero_", "resize_", "set_", "_local_scalar_dense",
        "_nested_tensor_from_mask", "_nested_tensor_from_mask_left_aligned", "to_padded_tensor",
        "_nested_tensor_size", "_nested_tensor_strides", "_nested_tensor_storage_offsets", "_pin_memory",
        "embedding", "embedding_dense_backward",
        # Views and splits without the view flag, in-place views, and the backward of slicing (a copy into zeros).
        "_unsafe_view", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk", "transpose_", "t_", "squeeze_",
        "unsqueeze_", "as_strided_", "select_backward", "slice_backward", "_pack_padded_sequence",
        "_pad_packed_sequence",
    }
)


def _packet_name(packet: Any) -> str:
    """``"aten.mm"`` for an OpOverloadPacket; the operator's name for a HigherOrderOperator."""
    if isinstance(packet, HigherOrderOperator):
        return f"higher_order.{packet.name()}"
    return str(packet)


def _tags_of(func: Any) -> set[Any]:
    tags = set(getattr(func, "tags", ()) or ())
    name = func._overloadpacket.__name__ if hasattr(func, "_overloadpacket") else ""
    if name.endswith("_") and not name.endswith("__"):
        # In-place variants (relu_, masked_fill_) lack the pointwise/reduction tags; borrow the functional op's.
        functional = getattr(getattr(torch.ops, func.namespace, None), name[:-1], None)
        overload = getattr(functional, getattr(func, "_overloadname", "default"), None) if functional else None
        tags |= set(getattr(overload, "tags", ()) or ())
    return tags


def _is_factory_or_metadata(func: Any) -> bool:
    schema = getattr(func, "_schema", None)
    if schema is None:
        return False
    name = func._overloadpacket.__name__
    if name.endswith("_like") or name.startswith("new_"):
        return True
    tensor_type = torch._C.TensorType.get()

    def is_tensorish(t: Any) -> bool:
        if t.isSubtypeOf(tensor_type):
            return True
        elem = getattr(t, "getElementType", None)  # Optional[Tensor], Tensor[]
        return elem is not None and is_tensorish(elem())

    inputs = [a for a in schema.arguments if not a.is_out]
    if not any(is_tensorish(a.type) for a in inputs):
        return True  # factory: empty, zeros, arange, full, scalar_tensor, rand...
    return not any(is_tensorish(r.type) for r in schema.returns)  # returns only metadata (bool, int, ...)


def classify_uncounted(func: Any) -> str:
    """Kind of an op without a formula: ``"view"``, ``"pointwise"``, ``"reduction"`` or ``"other"``.

    Args:
        func: The OpOverload (or HigherOrderOperator) that ran.

    Returns:
        ``"view"`` for views, pure data movement, metadata and factories; ``"pointwise"`` for ops tagged
        ``torch.Tag.pointwise``; ``"reduction"`` for ops tagged ``torch.Tag.reduction``; else ``"other"``
        (softmax, norms, fused kernels, higher-order ops).
    """
    if isinstance(func, HigherOrderOperator):
        return "other"
    if func.is_view or func._overloadpacket.__name__ in _DATA_MOVEMENT_OPS or _is_factory_or_metadata(func):
        return "view"
    tags = _tags_of(func)
    if torch.Tag.pointwise in tags:
        return "pointwise"
    if torch.Tag.reduction in tags:
        return "reduction"
    return "other"


def _dense_hop_kernel(hop: HigherOrderOperator) -> Callable[..., Any] | None:
    """The eager (CompositeExplicitAutograd) kernel of a higher-order op: cond runs the branch ``pred`` picks,
    while_loop loops its body in Python. Run under the counting mode, it shows the mode the ops actually executed."""
    kernels = getattr(hop, "py_kernels", None) or {}
    return kernels.get(torch._C.DispatchKey.CompositeExplicitAutograd)


class _CountingMode(TorchDispatchMode):
    """The dispatch mode behind FlopCounter; all state lives in the counter.

    Counting must never change what the user's code computes. Every step of pyprof's own bookkeeping (formula
    lookup, decomposition, formulas, module attribution) runs under ``try``; on an error the counter records a
    CountFailure and the mode turns into a pass-through for the rest of the region, and the op runs as it would
    without the mode (an error the op itself raises, such as a shape mismatch, reaches the user as usual).
    """

    # Let higher-order ops (flex_attention in eager, cond, while_loop) reach __torch_dispatch__ instead of raising.
    supports_higher_order_operators = True

    @classmethod
    def ignore_compile_internals(cls) -> bool:
        # torch.compile refuses to compile while a dispatch mode that does not set this is active (Dynamo skips
        # the frame), so counted code would run differently from unprofiled code, and fullgraph=True compiles raise
        # ("found no compiled frames"); eager flex_attention compiles its HOP that way. With it, compilation
        # runs without the mode and the compiled code runs with it: the mode sees the ops the compiled artifact
        # calls (extern GEMMs, higher-order ops), not the fused kernels, and the computation is the unprofiled one.
        return True

    def __init__(self, counter: FlopCounter) -> None:
        super().__init__()
        self._counter = counter

    def _counting_callables(self, values: tuple) -> tuple:
        """``values`` with every callable (a HOP's branch, body or subgraph) wrapped to run under this mode."""

        def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
            def run(*a: Any, **k: Any) -> Any:
                with self:
                    return fn(*a, **k)

            return run

        return tuple(counted(v) if callable(v) and not isinstance(v, torch.Tensor) else v for v in values)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs if kwargs else {}
        if func in _METADATA_OPS:
            return NotImplemented
        counter = self._counter
        if counter._failure is not None:
            return func(*args, **kwargs)
        try:
            if counter._tracker is not None:
                counter._tracker.note_op()
            if isinstance(func, HigherOrderOperator):
                packet = func
                dense = None if packet in counter._registry else _dense_hop_kernel(func)
                decomposable = False
            else:
                packet = func._overloadpacket
                dense = None
                # Like torch's counter: a composite op without a formula is priced by its parts. A mutating op is
                # run whole instead, so that a decomposition failing halfway is never rerun over mutated inputs.
                decomposable = (
                    packet not in counter._registry
                    and func is not torch.ops.prim.device.default
                    and not func._schema.is_mutable
                )
        except Exception as e:
            counter._fail(func, e)
            return func(*args, **kwargs)
        if decomposable or dense is not None:
            try:
                if decomposable:
                    with self:
                        r = func.decompose(*args, **kwargs)
                else:
                    # The dense kernels of cond, scan, invoke_subgraph assert that no mode is active: run them with
                    # the mode off and enter it inside the branch / body / subgraph they call.
                    r = dense(*self._counting_callables(args), **dict(zip(kwargs, self._counting_callables(
                        tuple(kwargs.values())))))
            except Exception as e:
                # Either pyprof's fault or the op's own error: run the op as unprofiled code would. If it raises
                # too, that error is the user's and propagates; if it succeeds, counting failed here.
                out = func(*args, **kwargs)
                counter._fail(func, e)
                return out
            if r is not NotImplemented:
                return r
        out = func(*args, **kwargs)
        try:
            counter._record(func, packet, out, args, kwargs)
        except Exception as e:
            counter._fail(func, e)
        return out


class FlopCounter:
    """Counts FLOPs of everything torch executes while active.

    Usable as a context manager, or with :meth:`start` and :meth:`stop` called from different stack frames (say
    ``start`` in a forward-pre-hook and ``stop`` after ``backward``). Counts cover forward and backward; module
    attribution follows :class:`pyprof.sources.flops.modules.ModuleAttribution` (ModuleTracker's names, without its
    autograd hooks). If counting fails inside the region (a formula raises, a decomposition fails), the result has
    ``status == CountStatus.FAILED`` and names the op and reason in ``failures``; the user's code is unaffected.

    Example:
        >>> with FlopCounter() as fc:
        ...     model(x).sum().backward()
        >>> fc.result().total_flops
    """

    def __init__(
        self,
        custom_formulas: Mapping[Any, Callable[..., int]] | None = None,
        *,
        module: torch.nn.Module | None = None,
    ) -> None:
        """Create a counter.

        Args:
            custom_formulas: ``{op packet: formula}`` overriding every registry for this counter. A formula takes
                shapes like :func:`pyprof.flops.register_formula`'s, or tensors when it has ``_get_raw = True``.
            module: Optional root module whose submodule paths (``"Net.fc1"``) are learned at :meth:`start`. Needed
                only when counting starts after the root's forward has begun (from inside its forward-pre-hook):
                a submodule is named by its parent's path only if the parent was seen to enter, and would
                otherwise name it by its class (``"Linear"``).
        """
        self._custom = wrap_custom(custom_formulas)
        self._module = module
        self._mode: _CountingMode | None = None
        self._tracker: ModuleAttribution | None = None
        self._result: FlopCount | None = None
        self._reset()

    def _reset(self) -> None:
        self._registry = merged_registry(self._custom)
        self._effective = effective_registry()
        self._calls: dict[Any, int] = defaultdict(int)
        self._flops: dict[Any, int] = defaultdict(int)
        self._flops_effective: dict[Any, int] = defaultdict(int)
        self._by_module: dict[str, int] = defaultdict(int)
        self._uncounted: dict[Any, list] = {}  # packet -> [calls, kind]
        self._forward_flops = 0
        self._backward_flops = 0
        self._op_calls = 0
        self._failure: CountFailure | None = None

    def _fail(self, where: Any, err: BaseException) -> None:
        """Switch counting off for this region: keep the first failure, warn once, let the user's code run on."""
        if self._failure is not None:
            return
        name = where if isinstance(where, str) else _packet_name(
            where if isinstance(where, HigherOrderOperator) else getattr(where, "_overloadpacket", where)
        )
        self._failure = CountFailure(name, f"{type(err).__name__}: {err}")
        log.warning("pyprof: FLOP counting failed at %s and is off for this region: %s", name, self._failure.reason,
                    exc_info=err)

    @property
    def active(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._mode is not None

    def start(self) -> None:
        """Begin counting, from zero.

        Raises:
            ProfilerStateError: The counter is already active.
        """
        if self._mode is not None:
            raise ProfilerStateError("FlopCounter.start(): already counting; call stop() first")
        self._reset()
        self._result = None
        tracker = ModuleAttribution(self._module, on_error=self._fail)
        tracker.start()
        mode = _CountingMode(self)
        try:
            mode.__enter__()
        except BaseException:
            tracker.stop()
            raise
        self._tracker, self._mode = tracker, mode

    def stop(self) -> FlopCount:
        """Stop counting and return what was counted since :meth:`start`.

        Returns:
            The FlopCount (also kept for :meth:`result`).

        Raises:
            ProfilerStateError: The counter is not active, or another TorchDispatchMode entered after start() is
                still active (leaving modes out of order would corrupt torch's mode stack).
        """
        if self._mode is None:
            raise ProfilerStateError("FlopCounter.stop(): not counting; call start() first")
        top = _get_current_dispatch_mode()
        if top is not self._mode:
            raise ProfilerStateError(
                f"FlopCounter.stop(): another TorchDispatchMode ({type(top).__name__}) entered after start() is "
                "still active; exit it before stopping the counter"
            )
        mode, tracker = self._mode, self._tracker
        self._mode, self._tracker = None, None
        try:
            mode.__exit__(None, None, None)
        finally:
            if tracker is not None:
                tracker.stop()
        self._result = self._build()
        return self._result

    def result(self) -> FlopCount:
        """The FlopCount of the last completed count.

        Raises:
            ProfilerStateError: No count has completed yet.
        """
        if self._result is None:
            raise ProfilerStateError("FlopCounter.result(): no completed count; use the counter, then stop() or exit")
        return self._result

    def __enter__(self) -> FlopCounter:
        self.start()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        self.stop()

    def _record(self, func: Any, packet: Any, out: Any, args: tuple, kwargs: dict) -> None:
        # Exceptions propagate to the mode, which records the failure and switches counting off for the region:
        # a formula that fails once cannot be trusted for the rest, and a partial total would pass for a count.
        formula = self._registry.get(packet)
        if formula is None:
            entry = self._uncounted.get(packet)
            if entry is None:
                self._uncounted[packet] = [1, classify_uncounted(func)]
            else:
                entry[0] += 1
            self._op_calls += 1
            return
        flops = int(formula(*args, **kwargs, out_val=out))
        custom = packet in self._custom
        effective_formula = None if custom else self._effective.get(packet)
        flops_effective = flops if effective_formula is None else int(effective_formula(*args, **kwargs, out_val=out))
        if not custom:  # a custom formula is the user's whole count, complex or not
            k = complex_factor(packet, args)
            flops, flops_effective = flops * k, flops_effective * k
        self._op_calls += 1
        self._calls[packet] += 1
        self._flops[packet] += flops
        self._flops_effective[packet] += flops_effective
        tracker = self._tracker
        # Backward means "an autograd node is executing": a forward recomputed there by activation checkpointing
        # counts as backward, which is what hardware FLOPs (HFU) want and what model FLOPs (MFU) must subtract.
        if ModuleAttribution.is_backward():
            self._backward_flops += flops
        else:
            self._forward_flops += flops
        parents = tracker.parents() if tracker is not None else {"Global"}
        for parent in parents:
            self._by_module[parent] += flops

    def _build(self) -> FlopCount:
        if self._failure is not None:
            return FlopCount(status=CountStatus.FAILED, failures=[self._failure])
        by_op = {
            _packet_name(p): OpCount(_packet_name(p), self._calls[p], self._flops[p], self._flops_effective[p])
            for p in self._calls
        }
        total = sum(c.flops for c in by_op.values())
        uncounted = sorted(
            (UncountedOp(_packet_name(p), calls, kind) for p, (calls, kind) in self._uncounted.items()),
            key=lambda u: (-u.calls, u.name),
        )
        by_module = dict(self._by_module)
        by_module.setdefault("Global", total)
        return FlopCount(
            total_flops=total,
            total_flops_effective=sum(c.flops_effective for c in by_op.values()),
            forward_flops=self._forward_flops,
            backward_flops=self._backward_flops,
            by_op=by_op,
            by_module=by_module,
            uncounted=uncounted,
            op_calls=self._op_calls,
        )


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FlopCount:
    """Run ``fn(*args, **kwargs)`` under a :class:`FlopCounter` and return the count.

    Args:
        fn: What to run, e.g. a function doing one forward and backward.
        *args: Positional arguments for ``fn``.
        **kwargs: Keyword arguments for ``fn``.

    Returns:
        The FlopCount of everything ``fn`` executed; ``status`` is ``CountStatus.FAILED`` (and ``failures`` says
        which op and why) if counting failed along the way, in which case ``fn`` still ran exactly as uncounted.
    """
    with FlopCounter() as counter:
        fn(*args, **kwargs)
    return counter.result()
