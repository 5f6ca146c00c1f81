"""Analytic (Method 1) FLOP counting at aten level: forward and backward, per op and per module.

Built on ``torch.utils.flop_counter``'s formulas, with pyprof's fixes (grouped-conv backward, CPU attention,
fused transformer fast paths) and a dense/effective split for causal attention.
"""

from pyprof.sources.flops.counter import FlopCounter, count_flops
from pyprof.sources.flops.registry import (
    DuplicateFormulaError,
    register_effective_formula,
    register_formula,
)
from pyprof.sources.flops.result import (
    CountFailure,
    CountStatus,
    FlopCount,
    OpCount,
    UncountedOp,
)

__all__ = [
    "CountFailure",
    "CountStatus",
    "DuplicateFormulaError",
    "FlopCount",
    "FlopCounter",
    "OpCount",
    "UncountedOp",
    "count_flops",
    "register_effective_formula",
    "register_formula",
]
