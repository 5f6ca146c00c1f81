"""Step signatures: a hashable description of everything that decides which ops a training step executes.

A count of one step is reused for a later step only when both have the same signature, so the signature must capture
what changes the executed ops:

- every tensor reachable from a root call's positional **and keyword** arguments (lists, tuples, named tuples, dicts
  and other mappings, dataclasses, and objects with tensor attributes, to a depth of :data:`MAX_DEPTH`): shape, dtype,
  device and ``requires_grad``;
- tensor *values* where they decide the work: the ``batch_sizes`` of a ``PackedSequence``, and a 1-D integer CPU
  tensor of at most :data:`VALUE_NUMEL` elements passed under a name that says it holds sizes (a keyword, dict key or
  attribute containing one of :data:`SIZE_WORDS`: ``lengths=``, ``seq_len``, ``split_sizes``). Other integer tensors
  (token ids, class labels) enter by shape only: their values change every batch without changing the work;
- the root module's state: which parameters require grad, their dtype, and the training flag of every submodule;
- the process state: grad mode, inference mode, autocast (enabled and dtype, CPU and CUDA).

What it cannot see is work that depends on other tensor values (data-dependent control flow); the counter's verify
mode (recount every N-th reused step and compare) catches that.

Cost: a few hundred nanoseconds per tensor argument plus a C-level pass over the root's parameters and submodules
(``map`` with ``operator.attrgetter``), a few microseconds for a ResNet-50-sized model.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping
from typing import Any

#: How deep containers are followed (a batch dict of tuples of tensors is depth 2).
MAX_DEPTH = 4
#: 1-D integer CPU tensors up to this many elements, under a size-like name, enter the signature by value.
VALUE_NUMEL = 256
#: Words in an argument's name that mark an integer tensor as sizes (its values decide the work).
SIZE_WORDS = ("len", "size", "count", "offset", "split", "num_")

_requires_grad = operator.attrgetter("requires_grad")
_training = operator.attrgetter("training")

_torch: Any = None
_INT_DTYPES: frozenset = frozenset()


def _load_torch() -> Any:
    global _torch, _INT_DTYPES
    if _torch is None:
        import torch

        _torch = torch
        _INT_DTYPES = frozenset({torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8})
    return _torch


def _sizes_name(name: Any) -> bool:
    return isinstance(name, str) and any(w in name.lower() for w in SIZE_WORDS)


def signature_of(x: Any, depth: int = 0, name: Any = None) -> Any:
    """A hashable description of a call argument (see the module docstring for what it includes).

    Args:
        x: any value passed to a module call.
        depth: the container depth reached so far (callers pass 0).
        name: the keyword, key or attribute name ``x`` was passed under, if any.

    Returns:
        A hashable value; equal for arguments that make a model execute the same ops, to the extent described above.
    """
    torch = _torch or _load_torch()
    if isinstance(x, torch.Tensor):
        if name is not None and x.dtype in _INT_DTYPES and x.dim() == 1 and x.numel() <= VALUE_NUMEL \
                and x.device.type == "cpu" and _sizes_name(name):
            return (x.shape, x.dtype, x.requires_grad, tuple(x.tolist()))
        return (x.shape, x.dtype, x.device, x.requires_grad)
    if x is None or isinstance(x, (bool, int, float, str, bytes)):
        return x
    if depth >= MAX_DEPTH:
        return type(x).__name__
    if isinstance(x, (list, tuple)):
        if type(x).__name__ == "PackedSequence":  # values of batch_sizes decide the recurrence's work
            return ("PackedSequence", signature_of(x[0], depth + 1), tuple(x[1].tolist()))
        return (type(x).__name__, *[signature_of(v, depth + 1) for v in x])
    if isinstance(x, Mapping):
        return (type(x).__name__, *[(k if isinstance(k, (str, int)) else repr(k), signature_of(v, depth + 1, k))
                                    for k, v in x.items()])
    if isinstance(x, (set, frozenset)):
        return (type(x).__name__, len(x))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, *((f.name, signature_of(getattr(x, f.name, None), depth + 1, f.name))
                                    for f in dataclasses.fields(x)))
    if type(x).__name__ == "_Unseen":
        return x  # compared by identity: never equal to a real call's signature
    attrs = getattr(x, "__dict__", None)
    if isinstance(attrs, dict) and attrs and not callable(x):
        # An object carrying tensors as attributes (a batch class): follow its attributes.
        return (type(x).__name__, *((k, signature_of(v, depth + 1, k)) for k, v in attrs.items()
                                    if not k.startswith("__")))
    return type(x).__name__


class ModuleState:
    """The state of a root module that decides its ops: parameters' ``requires_grad`` and dtype, submodules' modes.

    The parameter and submodule lists are collected once per root module, when it is first seen: a model that gains
    modules or parameters during the run is caught by the counter's verify mode, not by this fingerprint.
    """

    def __init__(self, module: Any) -> None:
        self._module = module
        self._collect()

    def _collect(self) -> None:
        self._params = list(self._module.parameters())
        self._modules = list(self._module.modules())

    def fingerprint(self) -> tuple:
        """``(requires_grad of every parameter, dtype of the first and last, training of every submodule)``."""
        params = self._params
        return (tuple(map(_requires_grad, params)), params[0].dtype if params else None,
                params[-1].dtype if params else None, tuple(map(_training, self._modules)))


def process_state() -> tuple:
    """Grad mode, inference mode and autocast (enabled, dtype) on CPU and CUDA."""
    torch = _torch or _load_torch()
    state: tuple = (torch.is_grad_enabled(), torch.is_inference_mode_enabled())
    any_autocast = getattr(torch._C, "_is_any_autocast_enabled", None)
    if any_autocast is not None and not any_autocast():
        return state  # the common case, in one call
    for dev in ("cpu", "cuda"):
        try:
            if torch.is_autocast_enabled(dev):
                state += (dev, torch.get_autocast_dtype(dev))
        except Exception:  # an older torch without the device argument
            pass
    return state


def split_shapes(sig: Any) -> tuple[Any, list[int]]:
    """Split a signature into its skeleton (every tensor dimension replaced by a placeholder) and the dimensions.

    Two step signatures with equal skeletons differ only in tensor sizes (batch, sequence length, image size); their
    counts can then be related by a polynomial in those sizes (see ``pyprof.session.counting``).

    Returns:
        ``(skeleton, dims)``: a hashable skeleton and the list of dimensions in walk order.
    """
    torch = _torch or _load_torch()
    dims: list[int] = []

    def walk(v: Any) -> Any:
        if type(v) is torch.Size:
            dims.extend(v)
            return ("Size", len(v))
        if isinstance(v, tuple):
            return tuple(walk(e) for e in v)
        return v

    return walk(sig), dims
