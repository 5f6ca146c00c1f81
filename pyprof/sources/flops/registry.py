"""pyprof's FLOP-formula registry, layered over ``torch.utils.flop_counter.flop_registry``.

A formula is a pure function of the op's arguments (tensors replaced by their shapes unless ``get_raw=True``) that
returns an ``int`` count of FLOPs in the dense convention (2 FLOP per multiply-add). Lookup order, later wins:
torch's registry, pyprof's registry, the per-counter ``custom_formulas``. Overriding one of torch's entries is how
pyprof fixes torch's defects; registering the same op twice in pyprof's own registry is an error.

A second, optional registry holds *effective* formulas: the FLOPs a kernel really executes where a mask lets it skip
work (causal attention). Where an op has none, its effective count equals its dense count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch._ops import HigherOrderOperator, OpOverload, OpOverloadPacket
from torch.utils import flop_counter as _torch_fc

from pyprof.errors import PyprofError

__all__ = [
    "DuplicateFormulaError",
    "effective_registry",
    "merged_registry",
    "register_effective_formula",
    "register_formula",
]

Formula = Callable[..., int]

#: pyprof's own dense formulas (already wrapped to the ``f(*args, out_val=..., **kwargs)`` convention).
_PYPROF_FORMULAS: dict[Any, Formula] = {}
#: Effective-FLOP formulas (same call convention); an op absent here has effective == dense.
_EFFECTIVE_FORMULAS: dict[Any, Formula] = {}


class DuplicateFormulaError(PyprofError, RuntimeError):
    """A FLOP formula was registered twice for the same op in pyprof's registry."""


def _normalize_target(target: Any) -> Any:
    """Return the registry key for ``target`` (an OpOverloadPacket or HigherOrderOperator)."""
    if isinstance(target, OpOverload):
        # Users often write torch.ops.aten.mm.default; the registry is keyed by packet, as torch's is.
        return target.overloadpacket
    if isinstance(target, (OpOverloadPacket, HigherOrderOperator)):
        return target
    raise TypeError(
        f"register_formula: expected an op packet such as torch.ops.aten.mm or torch.ops.mylib.foo "
        f"(or a HigherOrderOperator), got {target!r} of type {type(target).__name__}"
    )


def _wrap(formula: Formula, get_raw: bool) -> Formula:
    """Bring ``formula`` to the call convention ``f(*args, out_val=out, **kwargs)`` torch's mode uses."""
    if get_raw or getattr(formula, "_get_raw", False):
        return formula
    return _torch_fc.shape_wrapper(formula)


def _register(
    table: dict[Any, Formula], what: str, op_packet: Any, formula: Formula | None, get_raw: bool
) -> Any:
    def register_fun(f: Formula) -> Formula:
        wrapped = _wrap(f, get_raw)
        targets = op_packet if isinstance(op_packet, (list, tuple)) else [op_packet]
        keys = [_normalize_target(t) for t in targets]
        for key in keys:
            if key in table:
                raise DuplicateFormulaError(
                    f"duplicate {what} registration for {key}: pyprof already has {table[key]!r}. "
                    f"To override a formula for one run, pass custom_formulas={{{key}: f}} to FlopCounter."
                )
        for key in keys:
            table[key] = wrapped
        return f

    if formula is None:
        return register_fun
    return register_fun(formula)


def register_formula(op_packet: Any, formula: Formula | None = None, *, get_raw: bool = False) -> Any:
    """Register a dense FLOP formula for an op in pyprof's registry.

    Usable as a decorator (``@register_formula(torch.ops.mylib.foo)``) or a direct call
    (``register_formula(torch.ops.mylib.foo, f)``). An entry here overrides torch's formula for the same op.

    Args:
        op_packet: The op (``torch.ops.aten.mm``; an OpOverload such as ``aten.mm.default`` is mapped to its
            packet) or a list of ops sharing the formula.
        formula: ``f(*args, out_shape=..., **kwargs) -> int`` taking shapes in place of tensors, or, with
            ``get_raw=True``, ``f(*args, out_val=..., **kwargs) -> int`` taking the tensors themselves.
        get_raw: Pass tensors rather than shapes to ``formula``.

    Returns:
        The decorator when ``formula`` is None, otherwise ``formula`` itself.

    Raises:
        DuplicateFormulaError: pyprof's registry already has a formula for the op.
        TypeError: ``op_packet`` is not an op.
    """
    return _register(_PYPROF_FORMULAS, "FLOP formula", op_packet, formula, get_raw)


def register_effective_formula(
    op_packet: Any, formula: Formula | None = None, *, get_raw: bool = False
) -> Any:
    """Register an *effective* FLOP formula: the work a kernel really does where masks let it skip some.

    Same calling conventions as :func:`register_formula`. The dense formula of the op still comes from the dense
    registries; this one only fills ``flops_effective``. It is ignored when a counter's ``custom_formulas``
    overrides the op's dense formula (the override then sets both counts).

    Args:
        op_packet: The op or list of ops.
        formula: The effective-FLOP formula.
        get_raw: Pass tensors rather than shapes to ``formula``.

    Returns:
        The decorator when ``formula`` is None, otherwise ``formula`` itself.

    Raises:
        DuplicateFormulaError: pyprof already has an effective formula for the op.
    """
    return _register(_EFFECTIVE_FORMULAS, "effective FLOP formula", op_packet, formula, get_raw)


def wrap_custom(custom: Mapping[Any, Formula] | None) -> dict[Any, Formula]:
    """Normalize a user's ``custom_formulas`` mapping (keys to packets, formulas to the call convention).

    A formula with a truthy ``_get_raw`` attribute receives tensors, as in torch's ``custom_mapping``.
    """
    if not custom:
        return {}
    return {_normalize_target(k): _wrap(v, False) for k, v in custom.items()}


def merged_registry(custom: Mapping[Any, Formula] | None = None) -> dict[Any, Formula]:
    """Return ``{**torch's registry, **pyprof's registry, **custom}`` (custom already wrapped by wrap_custom)."""
    return {**_torch_fc.flop_registry, **_PYPROF_FORMULAS, **(custom or {})}


def effective_registry() -> dict[Any, Formula]:
    """Return a copy of the effective-formula registry."""
    return dict(_EFFECTIVE_FORMULAS)

