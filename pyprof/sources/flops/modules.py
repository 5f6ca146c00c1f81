"""Which modules an op runs in, forward and backward, without putting hooks on autograd.

``torch.utils.module_tracker.ModuleTracker`` finds a module's backward by hooks on its outputs (enter) and on its
inputs (leave). Both hooks are part of the user's autograd graph, and that has two faults this tracker avoids:

* a module whose inputs need no grad is entered in backward and never left, so every later backward op is charged
  to it as well (a two-tower model charges one tower's backward to the other);
* the input hooks are multi-grad hooks on leaves, which ``torch.autograd.grad(..., create_graph=True)`` rejects
  ("A leaf node was passed to _will_engine_execute_node"): a gradient penalty raised under the counter.

Instead, forward is tracked by global module hooks (a stack of module names), and backward by the autograd node
that is running: when a module's forward returns, the autograd nodes it created (found from its outputs, bounded by
autograd's sequence numbers at its entry and exit) are tagged with the module path; in backward,
``torch._C._current_autograd_node()`` names the node whose backward is executing, and its tag names the modules.
Nothing is registered on the graph, so autograd runs exactly as it would without the counter.
"""

from __future__ import annotations

import bisect
import sys
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch
from torch.utils._pytree import tree_leaves
from torch.utils.hooks import RemovableHandle

__all__ = ["ModuleAttribution"]

GLOBAL = "Global"

# Key of the tag in an autograd node's ``metadata`` dict (torch.autograd.graph.Node.metadata, a public per-node
# dict that lives and dies with the node, so the tags need no cleanup and cannot outlive the graph).
_TAG = "_pyprof_modules"

#: Most node executions remembered per region for double-backward attribution (a few MB at most); past it, nodes
#: of a double backward count toward "Global" only.
_MAX_RANGES = 100_000


def _forward_is_running(module: torch.nn.Module) -> bool:
    """True when a caller's frame is ``module.__call__`` (``Module._call_impl`` with ``self is module``)."""
    call_impl = torch.nn.Module._call_impl.__code__
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is call_impl and frame.f_locals.get("self") is module:
            return True
        frame = frame.f_back
    return False


class ModuleAttribution:
    """Module paths of the op running now, named as ``ModuleTracker`` names them (``"Net"``, ``"Net.fc1"``).

    ``parents()`` is ``{"Global"}`` plus every module the op runs inside: in forward, the modules whose forward is
    on the stack; in backward, the modules whose forward created the autograd node now executing. A forward rerun
    inside backward (activation checkpointing) is attributed by the forward stack, and ``is_backward`` is still
    true there. Autograd nodes created inside backward (double backward with ``create_graph=True``) belong to the
    modules of the backward node that created them (see :meth:`note_op`).

    Hooks never raise into the user's forward: an error in one is passed to ``on_error`` and attribution stops.
    """

    def __init__(self, root: torch.nn.Module | None = None, on_error: Callable[[str, BaseException], None] | None = None):
        """Create a tracker (inactive until :meth:`start`).

        Args:
            root: Optional root module; its whole tree is named up front (``"Root.child.grandchild"``), which is
                needed when tracking starts after the root's forward began. If :meth:`start` is called inside the
                root's call (from its forward-pre-hook), the root counts as entered.
            on_error: Called with (where, exception) when a hook fails; the hook then does nothing more.
        """
        self._names: weakref.WeakKeyDictionary[torch.nn.Module, str] = weakref.WeakKeyDictionary()
        self._named_children_of: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()
        self._stack: list[tuple[torch.nn.Module, str, int]] = []  # (module, path, sequence nr at entry)
        self._handles: list[RemovableHandle] = []
        self._on_error = on_error
        self._failed = False
        self._root = root
        # Double backward (see note_op): sequence-number ranges [lo, hi) of tagged nodes' executions, in order.
        self._range_lo: list[int] = []
        self._range_hi: list[int] = []
        self._range_tags: list[frozenset[str]] = []
        self._range_node: Any = None
        if root is not None:
            self._name_of(root)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Install the global forward hooks."""
        from torch.nn.modules.module import (
            register_module_forward_hook,
            register_module_forward_pre_hook,
        )

        self._stack.clear()
        self._failed = False
        self._range_lo, self._range_hi, self._range_tags, self._range_node = [], [], [], None
        if self._root is not None and _forward_is_running(self._root):
            # Started from the root's forward-pre-hook (as pyprof.profile(model) does): the root's own pre-hook
            # call is over, but its forward is about to run and its exit hook will fire. Enter it now, so that its
            # own ops (a tied LM head, say) are attributed to it, forward and backward.
            self._stack.append((self._root, self._name_of(self._root), torch.autograd._get_sequence_nr()))
        self._handles = [
            register_module_forward_pre_hook(self._pre),
            register_module_forward_hook(self._post, always_call=True),
        ]

    def stop(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._stack.clear()
        self._range_lo, self._range_hi, self._range_tags, self._range_node = [], [], [], None

    # ------------------------------------------------------------------ queries (called per op by the counter)
    @staticmethod
    def is_backward() -> bool:
        """True while autograd's engine is executing a backward node (including forwards recomputed there)."""
        return torch._C._current_autograd_node() is not None

    def parents(self) -> set[str]:
        """Module paths the running op is attributed to, always including ``"Global"``."""
        node: Any = torch._C._current_autograd_node()  # Node.metadata is a dict property (the _C stub says method)
        if self._stack:
            paths = {GLOBAL, *(path for _, path, _ in self._stack)}
            if node is not None:
                # A forward recomputed in backward (checkpointing) starts at the checkpointed module, without its
                # enclosing modules on the stack; a path names them ("Net.block.0" is inside "Net.block", "Net").
                for _, path, _ in self._stack:
                    parts = path.split(".")
                    paths.update(".".join(parts[:i]) for i in range(1, len(parts)))
            return paths
        if node is None:
            return {GLOBAL}
        tag = self._tag_of(node)
        return {GLOBAL} if tag is None else set(tag)

    def note_op(self) -> None:
        """Called by the counter for every op: remembers which module created the nodes of a double backward.

        With ``create_graph=True`` the ops a backward node runs build new autograd nodes (the graph of the
        gradient). They are created inside that node's execution, so they belong to its modules: each execution
        of a tagged node with grad mode on is kept as a range of sequence numbers with its tag, and an untagged
        node later found running in backward is looked up there. Bounded: at most ``_MAX_RANGES`` per region.
        """
        if not torch.is_grad_enabled():
            return
        node: Any = torch._C._current_autograd_node()
        if node is None:
            return
        seq = torch.autograd._get_sequence_nr()
        if self._range_node is node:
            self._range_hi[-1] = seq  # one more op of the same execution
            return
        tag = self._tag_of(node)
        if tag is None or len(self._range_lo) >= _MAX_RANGES:
            return
        self._range_node = node
        # The op dispatched now may have had its node created just before (number seq - 1), or may create none
        # (then seq - 1 is the last node of the previous execution, which keeps it).
        lo = seq - 1 if not self._range_hi else max(seq - 1, self._range_hi[-1])
        self._range_lo.append(lo)
        self._range_hi.append(seq)
        self._range_tags.append(tag)

    def _tag_of(self, node: Any) -> frozenset[str] | None:
        meta = node.metadata
        tag = meta.get(_TAG)
        if tag is None and self._range_lo:
            seq = node._sequence_nr()
            i = bisect.bisect_right(self._range_lo, seq) - 1
            if i >= 0 and seq < self._range_hi[i]:
                tag = meta[_TAG] = self._range_tags[i]
        return tag

    # ------------------------------------------------------------------ naming
    def _name_of(self, module: torch.nn.Module) -> str:
        # Same scheme as ModuleTracker: a module first seen without a known parent is named by its class; seeing a
        # module names its children "<its name>.<attribute>".
        name = self._names.get(module)
        if name is None:
            name = type(module).__name__
            self._names[module] = name
        if module not in self._named_children_of:
            self._named_children_of.add(module)
            for child_name, child in module.named_children():
                if child not in self._names:
                    self._names[child] = f"{name}.{child_name}"
                self._name_of(child)
        return name

    # ------------------------------------------------------------------ hooks
    def _fail(self, where: str, err: BaseException) -> None:
        self._failed = True
        self._stack.clear()
        if self._on_error is not None:
            self._on_error(where, err)

    def _pre(self, module: torch.nn.Module, args: Any) -> None:
        # While Dynamo traces a compiled module it inlines global hooks; is_compiling() is a constant there, so
        # the hook traces to nothing (no graph break, the compiled graph is the unprofiled one), and modules inside
        # a compiled region are attributed to the modules around it.
        if self._failed or torch.compiler.is_compiling():
            return
        try:
            self._stack.append((module, self._name_of(module), torch.autograd._get_sequence_nr()))
        except Exception as e:
            self._fail(f"module pre-hook of {type(module).__name__}", e)

    def _post(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if self._failed or torch.compiler.is_compiling():
            return
        try:
            # A module whose forward began before start() has no entry; one that raised may leave inner entries
            # above it (always_call=True still calls this hook): unwind to it, or ignore the call.
            for i in range(len(self._stack) - 1, -1, -1):
                if self._stack[i][0] is module:
                    break
            else:
                return
            start_seq = self._stack[i][2]
            tag = frozenset({GLOBAL, *(path for _, path, _ in self._stack[: i + 1])})
            del self._stack[i:]
            if torch.is_grad_enabled():
                self._tag_nodes(output, start_seq, torch.autograd._get_sequence_nr(), tag)
        except Exception as e:
            self._fail(f"module hook of {type(module).__name__}", e)

    @staticmethod
    def _tag_nodes(output: Any, start_seq: int, end_seq: int, tag: frozenset[str]) -> None:
        """Tag the autograd nodes created between ``start_seq`` and ``end_seq`` that lead to ``output``.

        Sequence numbers are handed out in creation order (per thread), and a node's inputs are older than the
        node, so the walk stops at the first node older than the module's entry. An inner module returns first
        and tags its nodes first; an outer one walks through them without retagging. AccumulateGrad nodes have
        the largest sequence number and are never tagged (they run no FLOPs).
        """
        todo = [t.grad_fn for t in tree_leaves(output) if isinstance(t, torch.Tensor) and t.grad_fn is not None]
        seen: dict[int, Any] = {}  # id -> node: holding the node keeps its id from being reused during the walk
        while todo:
            node: Any = todo.pop()
            if id(node) in seen:
                continue
            seen[id(node)] = node
            seq = node._sequence_nr()
            if not start_seq <= seq < end_seq:
                continue
            meta = node.metadata
            if _TAG not in meta:
                meta[_TAG] = tag
            todo.extend(n for n, _ in node.next_functions if n is not None)
