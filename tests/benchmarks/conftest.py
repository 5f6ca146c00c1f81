"""Figures the benchmarks measure (ratios, percentages) are reported at the end of the run, never asserted.

`report(name, value, unit)` stores a figure in the benchmark's ``extra_info`` (so it lands in ``--benchmark-json``)
and lists it in the terminal summary. In the default run (``--benchmark-disable``) each body runs once on a reduced
size, as a smoke test of the code path; `python -m pytest tests/benchmarks --benchmark-enable` gives the figures.
"""

from __future__ import annotations

import math

import pytest

_FIGURES: list[tuple[str, str, float, str]] = []


@pytest.fixture
def report(request, benchmark):
    def add(name: str, value: float, unit: str = "") -> None:
        benchmark.extra_info[name] = value
        _FIGURES.append((request.node.name, name, value, unit))

    return add


def pytest_terminal_summary(terminalreporter):
    if not _FIGURES:
        return
    terminalreporter.section("pyprof benchmark figures (reported, not asserted)")
    for test, name, value, unit in _FIGURES:
        shown = f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)
        terminalreporter.write_line(f"{test}: {name} = {shown} {unit}".rstrip())
