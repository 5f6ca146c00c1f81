"""Result records of the analytic FLOP counter: per-op counts, the uncounted-op ledger, and their total."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pyprof.errors import InvalidInputError

__all__ = ["CountFailure", "CountStatus", "FlopCount", "OpCount", "UncountedOp"]

#: At most this many failures are kept in a FlopCount (a merged count of many failed steps stays small).
MAX_FAILURES = 16


class CountStatus(enum.Enum):
    """Whether a FlopCount holds a count.

    ``COMPLETE``: every op that ran was priced or ledgered. ``FAILED``: counting failed inside the region and was
    switched off for it (the user's computation ran on, unchanged); the FlopCount then holds no FLOPs, only
    ``failures``, and must not be used as the region's count.
    """

    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class CountFailure:
    """Why counting was switched off for a region.

    Attributes:
        op: The op (``"aten.mm"``) or counter part (``"module hook of Linear"``) that failed.
        reason: The exception, as ``"ValueError: bad shapes"``.
    """

    op: str
    reason: str

#: Kinds of uncounted ops, in the ledger.
UNCOUNTED_KINDS = ("pointwise", "view", "reduction", "other")


@dataclass
class OpCount:
    """FLOPs attributed to one op (an OpOverloadPacket), forward and backward together.

    Attributes:
        name: The op, as ``str(packet)``, e.g. ``"aten.mm"``.
        calls: Times it ran.
        flops: Dense-convention FLOPs (2 per multiply-add).
        flops_effective: FLOPs net of work a mask lets the kernel skip (causal attention, padding); equal to
            ``flops`` for every other op.
    """

    name: str
    calls: int
    flops: int
    flops_effective: int


@dataclass
class UncountedOp:
    """An op that ran but has no FLOP formula (counted as zero FLOPs, and listed so that the zero is visible).

    Attributes:
        name: The op, as ``str(packet)``.
        calls: Times it ran.
        kind: ``"pointwise"`` (tagged ``torch.Tag.pointwise``), ``"view"`` (a view, pure data movement, metadata or
            factory), ``"reduction"``, or ``"other"``.
    """

    name: str
    calls: int
    kind: str


def _merge_failures(a: list[CountFailure], b: list[CountFailure]) -> list[CountFailure]:
    """Distinct failures of both, first seen first, at most MAX_FAILURES (bounded however many steps are merged)."""
    return list(dict.fromkeys([*a, *b]))[:MAX_FAILURES]


def _sorted_uncounted(items: list[UncountedOp]) -> list[UncountedOp]:
    return sorted(items, key=lambda u: (-u.calls, u.name))


@dataclass
class FlopCount:
    """FLOPs counted over one region of execution, in total, by op, by module, and what was not counted.

    Attributes:
        total_flops: Dense FLOPs, forward plus backward.
        total_flops_effective: Effective FLOPs (see ``OpCount.flops_effective``).
        forward_flops: Dense FLOPs executed outside autograd's backward pass.
        backward_flops: Dense FLOPs executed inside it; ``forward_flops + backward_flops == total_flops``.
        by_op: ``str(packet) -> OpCount``.
        by_module: Module path (``"Global"``, ``"Net"``, ``"Net.fc1"``, ...) -> dense FLOPs run inside it, forward
            and backward, named as ``torch.utils.module_tracker.ModuleTracker`` names them (root class name, then
            attribute names). ``"Global"`` is the total.
        uncounted: Ops that ran without a formula, most-called first.
        op_calls: Op calls seen, counted or not (metadata queries such as ``aten.size`` excluded; a composite op
            priced by its parts counts as its parts). ``uncounted_share`` is the ledger's share of them.
        status: ``CountStatus.COMPLETE``, or ``FAILED`` when counting failed and was switched off for the region.
        failures: What failed (empty when complete), at most ``MAX_FAILURES``.
    """

    total_flops: int = 0
    total_flops_effective: int = 0
    forward_flops: int = 0
    backward_flops: int = 0
    by_op: dict[str, OpCount] = field(default_factory=dict)
    by_module: dict[str, int] = field(default_factory=dict)
    uncounted: list[UncountedOp] = field(default_factory=list)
    op_calls: int = 0
    status: CountStatus = CountStatus.COMPLETE
    failures: list[CountFailure] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when the count covers the whole region (``status is CountStatus.COMPLETE``)."""
        return self.status is CountStatus.COMPLETE

    @property
    def uncounted_calls(self) -> int:
        """Op calls without a formula (priced at zero): the ledger's calls summed."""
        return sum(u.calls for u in self.uncounted)

    @property
    def uncounted_share(self) -> float | None:
        """``uncounted_calls / op_calls`` in [0, 1], the share of op calls priced at zero; None with no op calls.

        Views, copies and factories are in it: read it next to the ledger's kinds, where "other" is what may hide
        arithmetic.
        """
        if self.op_calls <= 0:
            return None
        return min(1.0, self.uncounted_calls / self.op_calls)

    @property
    def macs(self) -> int:
        """Multiply-adds: ``total_flops // 2``."""
        return self.total_flops // 2

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict (ints, strs, lists and dicts only); inverse of :meth:`from_dict`."""
        return {
            "total_flops": self.total_flops,
            "total_flops_effective": self.total_flops_effective,
            "forward_flops": self.forward_flops,
            "backward_flops": self.backward_flops,
            "by_op": {
                name: {"calls": c.calls, "flops": c.flops, "flops_effective": c.flops_effective}
                for name, c in self.by_op.items()
            },
            "by_module": dict(self.by_module),
            "uncounted": [{"name": u.name, "calls": u.calls, "kind": u.kind} for u in self.uncounted],
            "op_calls": self.op_calls,
            "status": self.status.value,
            "failures": [{"op": f.op, "reason": f.reason} for f in self.failures],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlopCount:
        """Rebuild a FlopCount from :meth:`to_dict` output.

        Args:
            d: The dict.

        Returns:
            The FlopCount.

        Raises:
            InvalidInputError: A required key is missing, or ``status`` is not a CountStatus value.
        """
        # op_calls, status and failures are newer than the other keys: a report without them held complete counts.
        try:
            status = CountStatus(d.get("status", CountStatus.COMPLETE.value))
        except ValueError as e:
            raise InvalidInputError(
                f"FlopCount.from_dict: status {d.get('status')!r} is not one of "
                f"{[s.value for s in CountStatus]}; expected to_dict() output"
            ) from e
        try:
            return cls(
                total_flops=int(d["total_flops"]),
                total_flops_effective=int(d["total_flops_effective"]),
                forward_flops=int(d["forward_flops"]),
                backward_flops=int(d["backward_flops"]),
                by_op={
                    name: OpCount(name, int(c["calls"]), int(c["flops"]), int(c["flops_effective"]))
                    for name, c in d["by_op"].items()
                },
                by_module={k: int(v) for k, v in d["by_module"].items()},
                uncounted=_sorted_uncounted(
                    [UncountedOp(u["name"], int(u["calls"]), u["kind"]) for u in d["uncounted"]]
                ),
                op_calls=int(d.get("op_calls", 0)),
                status=status,
                failures=[CountFailure(f["op"], f["reason"]) for f in d.get("failures", [])],
            )
        except KeyError as e:
            raise InvalidInputError(f"FlopCount.from_dict: missing key {e.args[0]!r}; expected to_dict() output") from e

    def scaled(self, k: int) -> FlopCount:
        """Return a copy with every count (FLOPs and calls) multiplied by ``k``, for a step reused ``k`` times.

        Args:
            k: Non-negative integer multiplier.

        Returns:
            The scaled FlopCount.

        Raises:
            InvalidInputError: ``k`` is negative or not an integer.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"FlopCount.scaled: k must be a non-negative int, got {k!r}")
        return FlopCount(
            total_flops=self.total_flops * k,
            total_flops_effective=self.total_flops_effective * k,
            forward_flops=self.forward_flops * k,
            backward_flops=self.backward_flops * k,
            by_op={n: OpCount(n, c.calls * k, c.flops * k, c.flops_effective * k) for n, c in self.by_op.items()},
            by_module={m: f * k for m, f in self.by_module.items()},
            uncounted=[UncountedOp(u.name, u.calls * k, u.kind) for u in self.uncounted],
            op_calls=self.op_calls * k,
            status=self.status,
            failures=list(self.failures),
        )

    def __add__(self, other: FlopCount) -> FlopCount:
        """Merge two counts: totals, per-op and per-module entries and the ledger add up."""
        if not isinstance(other, FlopCount):
            return NotImplemented
        by_op = {n: OpCount(n, c.calls, c.flops, c.flops_effective) for n, c in self.by_op.items()}
        for n, c in other.by_op.items():
            mine = by_op.get(n)
            if mine is None:
                by_op[n] = OpCount(n, c.calls, c.flops, c.flops_effective)
            else:
                mine.calls += c.calls
                mine.flops += c.flops
                mine.flops_effective += c.flops_effective
        by_module = dict(self.by_module)
        for m, f in other.by_module.items():
            by_module[m] = by_module.get(m, 0) + f
        uncounted = {u.name: UncountedOp(u.name, u.calls, u.kind) for u in self.uncounted}
        for u in other.uncounted:
            if u.name in uncounted:
                uncounted[u.name].calls += u.calls
            else:
                uncounted[u.name] = UncountedOp(u.name, u.calls, u.kind)
        return FlopCount(
            total_flops=self.total_flops + other.total_flops,
            total_flops_effective=self.total_flops_effective + other.total_flops_effective,
            forward_flops=self.forward_flops + other.forward_flops,
            backward_flops=self.backward_flops + other.backward_flops,
            by_op=by_op,
            by_module=by_module,
            uncounted=_sorted_uncounted(list(uncounted.values())),
            op_calls=self.op_calls + other.op_calls,
            # A sum with a failed part is not a count of the whole.
            status=CountStatus.FAILED if CountStatus.FAILED in (self.status, other.status) else CountStatus.COMPLETE,
            failures=_merge_failures(self.failures, other.failures),
        )

    def __radd__(self, other: Any) -> FlopCount:
        # Lets sum(counts) start from 0.
        if other == 0:
            return self + FlopCount()
        return NotImplemented
