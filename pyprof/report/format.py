"""Number formatting shared by the text renderers."""

from __future__ import annotations


def si(x: float | None, unit: str = "") -> str:
    """1.234e12 -> '1.23 T' + unit; None -> 'n/a'."""
    if x is None:
        return "n/a"
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"
