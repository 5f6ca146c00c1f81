"""CPU facts, theoretical and measured CPU peaks, and executed FLOPs from the PMU.

Theoretical peak = cores x clock x FLOP/cycle/core, where FLOP/cycle/core = SIMD lanes x 2 (FMA) x FMA units.
Measured peak = pyprof's FMA-chain microkernel (csrc/cpu/peak.cpp), one thread per CPU this process may use.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import warnings
from dataclasses import asdict, dataclass, field

from pyprof._native import load_core
from pyprof.peaks.database import flop_per_cycle
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
    fma_units_assumed: int = 2  # per core; server Xeons (and Zen 4/5 for 256-bit) have two. Stated in every report.

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
    )


@dataclass
class CpuPeak:
    """Theoretical and measured FLOP/s of this CPU for one precision."""

    precision: str
    isa: str
    threads: int
    theoretical_flops_per_s: float | None
    theoretical_derivation: str
    measured_flops_per_s: float        # best of the repeats: the achievable peak
    measured_median_flops_per_s: float
    runs_flops_per_s: list[float] = field(default_factory=list)
    observed_clock_hz: float | None = None              # measured right after the peak run (integer-add chain)
    theoretical_at_observed_clock_flops_per_s: float | None = None

    @property
    def measured_over_theoretical(self) -> float | None:
        if not self.theoretical_flops_per_s:
            return None
        return self.measured_flops_per_s / self.theoretical_flops_per_s

    @property
    def measured_over_theoretical_at_observed_clock(self) -> float | None:
        if not self.theoretical_at_observed_clock_flops_per_s:
            return None
        return self.measured_flops_per_s / self.theoretical_at_observed_clock_flops_per_s

    def to_dict(self) -> dict:
        d = asdict(self)
        d["measured_over_theoretical"] = self.measured_over_theoretical
        d["measured_over_theoretical_at_observed_clock"] = self.measured_over_theoretical_at_observed_clock
        return d


def theoretical_peak(precision: str, info: CpuInfo | None = None) -> tuple[float | None, str]:
    """Theoretical peak FLOP/s of this CPU and the arithmetic that gives it."""
    info = info or cpu_info()
    fpc = flop_per_cycle(info.best_isa, precision, info.fma_units_assumed)
    cores = info.logical_cpus
    if info.nominal_clock_hz is None:
        return None, f"clock unknown; {fpc} FLOP/cycle/core ({info.best_isa}, {info.fma_units_assumed} FMA units)"
    peak = cores * info.nominal_clock_hz * fpc
    return peak, (f"{cores} cores x {info.nominal_clock_hz / 1e9:.2f} GHz ({info.clock_source}) x {fpc} FLOP/cycle "
                  f"({info.best_isa} {precision}, {info.fma_units_assumed} FMA units assumed) = {peak / 1e9:.1f} GFLOP/s")


@functools.lru_cache(maxsize=None)
def measure_peak(precision: str = "fp32", min_time_s: float = 0.2, repeats: int = 3, isa: str = "auto") -> CpuPeak:
    """Measure this CPU's achievable FLOP/s with pyprof's FMA-chain microkernel (cached per arguments).

    Args:
        precision: "fp32" or "fp64".
        min_time_s: minimum duration of each timed repeat.
        repeats: timed repeats; the best is the achievable peak, the median is reported beside it.
        isa: "auto" (best supported) or one of the ISAs in ``cpu_info().isas``.

    Raises:
        ValueError: unknown precision or ISA, or one this CPU does not support.
    """
    if precision not in ("fp32", "fp64"):
        raise ValueError(f"precision must be 'fp32' or 'fp64', got {precision!r}")
    core = load_core()
    r = core.cpu.measure_peak(precision, isa, 0, float(min_time_s), int(repeats))
    clock = core.cpu.measure_clock_hz(0.05, 3)  # right after the FMA load, while the clocks are where it left them
    theo, how = theoretical_peak(precision)
    info = cpu_info()
    at_clock = info.logical_cpus * clock * flop_per_cycle(r["isa"], precision, info.fma_units_assumed)
    return CpuPeak(
        precision=precision,
        isa=r["isa"],
        threads=r["threads"],
        theoretical_flops_per_s=theo,
        theoretical_derivation=how,
        measured_flops_per_s=r["best_flops_per_s"],
        measured_median_flops_per_s=r["median_flops_per_s"],
        runs_flops_per_s=[run["flops_per_s"] for run in r["runs"]],
        observed_clock_hz=clock,
        theoretical_at_observed_clock_flops_per_s=at_clock,
    )


class CpuFlopCounter:
    """Executed FP operations of this process from the PMU (perf_event_open), when the PMU exposes them.

    ``available`` is False with a ``reason`` on machines without a usable PMU (most VMs: ENOENT); pyprof then uses the
    analytic count and says so. Threads created after ``start()`` are counted when they exit (perf's inherit rule).
    """

    _warned: set[str] = set()

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
