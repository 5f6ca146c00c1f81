"""CPU facts (identity, clock, ISAs) and executed FLOPs from the PMU.

The CPU *peaks* (theoretical from the microarchitecture table, measured by the FMA-chain microkernel, and their
cross-check) live in :mod:`pyprof.peaks.cpu`, which builds on this module (never the other way round).
"""

from __future__ import annotations

import functools
import os
import platform
import re
import warnings
from dataclasses import asdict, dataclass
from typing import ClassVar

from pyprof._native import load_core


@dataclass
class CpuInfo:
    """What pyprof knows about this CPU."""

    model_name: str
    vendor: str
    logical_cpus: int           # CPUs this process may run on (its affinity mask)
    physical_cores: int | None
    nominal_clock_hz: float | None
    clock_source: str           # where nominal_clock_hz came from
    isas: list[str]             # FMA microkernel ISAs, best first
    family: int | None = None   # CPUID family and model as /proc/cpuinfo prints them (decimal): the key of the
    model: int | None = None    # microarchitecture table in pyprof.peaks.cpu (FLOP/cycle/core)

    @property
    def best_isa(self) -> str:
        return self.isas[0]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["best_isa"] = self.best_isa
        return d


def _read_cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    out.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return out


def _nominal_clock_hz(cpuinfo: dict[str, str]) -> tuple[float | None, str]:
    # The model name of many Intel parts states the base clock ("... @ 2.70GHz"); VMs often hide it.
    m = re.search(r"@\s*([\d.]+)\s*GHz", cpuinfo.get("model name", ""))
    if m:
        return float(m.group(1)) * 1e9, "model name (base clock)"
    for path in ("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency", "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"):
        try:
            with open(path) as f:
                return float(f.read().strip()) * 1e3, path
        except (OSError, ValueError):
            continue
    if "cpu MHz" in cpuinfo:
        return float(cpuinfo["cpu MHz"]) * 1e6, "/proc/cpuinfo 'cpu MHz' (as reported; VMs show the nominal clock, not turbo)"
    return None, "unknown"


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """Return facts about this CPU (cached)."""
    core = load_core()
    ci = _read_cpuinfo()
    clock, source = _nominal_clock_hz(ci)
    try:
        logical = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        logical = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # psutil missing or unable: leave unknown
        physical = None
    return CpuInfo(
        model_name=ci.get("model name", platform.processor() or "unknown"),
        vendor=core.cpu.vendor(),
        logical_cpus=logical,
        physical_cores=physical,
        nominal_clock_hz=clock,
        clock_source=source,
        isas=list(core.cpu.supported_isas()),
        family=_int_or_none(ci.get("cpu family")),
        model=_int_or_none(ci.get("model")),
    )


def _int_or_none(s: str | None) -> int | None:
    try:
        return int(str(s), 10)
    except (TypeError, ValueError):
        return None


class CpuFlopCounter:
    """Executed FP operations of this process from the PMU (perf_event_open), when the PMU exposes them.

    ``available`` is False with a ``reason`` on machines without a usable PMU (most VMs: ENOENT); pyprof then uses the
    analytic count and says so. Threads created after ``start()`` are counted when they exit (perf's inherit rule).
    """

    _warned: ClassVar[set[str]] = set()

    def __init__(self) -> None:
        self._core = load_core()
        self._counters = self._core.cpu.FpCounters()
        self.available = False
        self.reason = ""
        self.vendor = ""

    def start(self) -> bool:
        self.available = bool(self._counters.start())
        self.vendor = self._counters.vendor
        self.reason = self._counters.reason
        if not self.available and self.reason not in CpuFlopCounter._warned:
            CpuFlopCounter._warned.add(self.reason)  # say so once per reason, not once per profile
            warnings.warn(f"pyprof: CPU hardware FLOP counters unavailable: {self.reason}", RuntimeWarning, stacklevel=3)
        return self.available

    def read_flops(self) -> dict[str, float]:
        """FLOPs by precision since start() ({} when unavailable)."""
        if not self.available:
            return {}
        return dict(self._core.cpu.flops_from_counts(self.vendor, self._counters.read()))

    def stop(self) -> None:
        self._counters.stop()


__all__ = ["CpuFlopCounter", "CpuInfo", "cpu_info"]
