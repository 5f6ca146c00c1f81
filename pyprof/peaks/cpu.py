"""CPU peaks: FLOP/cycle/core from the microarchitecture, the theoretical peak, the measured peak and their cross-check.

Theoretical peak = cores x clock x FLOP/cycle/core. FLOP/cycle/core is *not* a function of the instruction set alone:
Zen 4 runs AVX-512 on two 256-bit pipes (32 FP32 FLOP/cycle, not the 64 an "AVX-512 with 2 FMA units" rule gives),
and Xeon Silver/Bronze parts have one 512-bit FMA unit. So it is looked up by (vendor, family, model) in
:data:`MICROARCHS`, a table with the source of each row, and cross-checked against pyprof's FMA-chain microkernel
(csrc/cpu/peak.cpp) run at the clock observed right after it: when the two disagree by more than
:data:`DISAGREEMENT_FACTOR`, the report says so and the measurement is the figure to trust.

Everything here but :func:`measure_peak` is pure (no CPU detection), so tests feed vendor/family/model of any CPU.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from pyprof.errors import InvalidInputError
from pyprof.peaks.database import flop_per_cycle

if TYPE_CHECKING:
    from pyprof.sources.cpu.host import CpuInfo

#: Table and measurement disagree when one is more than this factor above the other (issue 14: "more than 1.5x").
#: A healthy FMA-chain run reaches 0.8-1.0 of the theoretical figure at the observed clock, so 1.5x is a wrong
#: table row (or a hidden SMT sibling / throttled host), not measurement noise.
DISAGREEMENT_FACTOR = 1.5

# Sources cited by the rows of MICROARCHS.
_AMD_ZEN1 = "AMD Software Optimization Guide, Family 17h (pub. 55723) 2.11"
_AMD_ZEN2 = "AMD Software Optimization Guide, Family 17h Models 30h+ (pub. 56305) 2.11"
_AMD_ZEN3 = "AMD Software Optimization Guide, Family 19h (pub. 56665) 2.11"
_AMD_ZEN4 = "AMD Software Optimization Guide, Family 19h Models 10h+ (Zen 4, pub. 57647) 2.11"
_AMD_ZEN5 = "AMD Software Optimization Guide, Family 1Ah (Zen 5, pub. 58455) 2.11"
_INTEL_OPT = "Intel 64 and IA-32 Architectures Optimization Reference Manual (248966)"
_INTEL_ARK = "Intel ARK '# of AVX-512 FMA Units' per SKU; Intel Optimization Reference Manual (248966)"


@dataclass(frozen=True)
class Microarch:
    """FP32 FLOP/cycle/core of one microarchitecture, by instruction set (FP64 is half; see :func:`lookup`).

    ``fp32`` maps an ISA ("avx512", "avx2", "avx") to FP32 FLOP/cycle/core when the code uses that ISA, e.g. Zen 4
    ``{"avx512": 32, "avx2": 32}``: 2 pipes x 256 bit / 32 bit x 2 (FMA) = 32 either way.
    """

    name: str
    vendor: str                  # "amd" or "intel"
    family: int
    models: tuple[tuple[int, int], ...]   # inclusive (first, last) model ranges
    fp32: dict[str, int]
    source: str
    note: str = ""

    def matches(self, vendor: str, family: int, model: int) -> bool:
        return (vendor == self.vendor and family == self.family
                and any(lo <= model <= hi for lo, hi in self.models))


def _r(*ms: int) -> tuple[tuple[int, int], ...]:
    return tuple((m, m) for m in ms)


#: Microarchitectures by CPUID (vendor, family, model). Model ranges are AMD's published model blocks (e.g. family
#: 19h models 10h-1Fh = Zen 4 "Genoa") and Intel's family-6 model numbers (Intel SDM vol. 4, table 2-1; Linux
#: arch/x86/include/asm/intel-family.h). Rows marked "per SKU" are refined by :func:`_xeon_fma_units`.
MICROARCHS: tuple[Microarch, ...] = (
    # --- AMD
    Microarch("Zen / Zen+", "amd", 0x17, ((0x00, 0x2F),), {"avx2": 16, "avx": 16}, _AMD_ZEN1,
              "256-bit ops split over two 128-bit FMA pipes: 2 x 4 lanes x 2 = 16 FP32 FLOP/cycle"),
    Microarch("Zen 2", "amd", 0x17, ((0x30, 0xFF),), {"avx2": 32, "avx": 16}, _AMD_ZEN2,
              "two 256-bit FMA pipes: 2 x 8 lanes x 2 = 32 FP32 FLOP/cycle"),
    Microarch("Zen 3", "amd", 0x19, ((0x00, 0x0F), (0x20, 0x2F), (0x40, 0x5F)), {"avx2": 32, "avx": 16},
              _AMD_ZEN3, "two 256-bit FMA pipes, no AVX-512: 2 x 8 lanes x 2 = 32 FP32 FLOP/cycle"),
    Microarch("Zen 4", "amd", 0x19, ((0x10, 0x1F), (0x60, 0x7F), (0xA0, 0xAF)), {"avx512": 32, "avx2": 32, "avx": 16},
              _AMD_ZEN4, "AVX-512 on 256-bit pipes: 2 x 8 lanes x 2 = 32 FP32 FLOP/cycle, not 64"),
    Microarch("Zen 5 (mobile, 256-bit datapath)", "amd", 0x1A, ((0x20, 0x2F), (0x60, 0x7F)),
              {"avx512": 32, "avx2": 32, "avx": 16}, _AMD_ZEN5),
    Microarch("Zen 5", "amd", 0x1A, ((0x00, 0x1F), (0x40, 0x4F)), {"avx512": 64, "avx2": 32, "avx": 16}, _AMD_ZEN5,
              "full 512-bit FMA pipes: 2 x 16 lanes x 2 = 64 FP32 FLOP/cycle"),
    # --- Intel family 6, oldest first
    Microarch("Sandy Bridge / Ivy Bridge", "intel", 6, _r(0x2A, 0x2D, 0x3A, 0x3E), {"avx": 16}, _INTEL_OPT,
              "no FMA: one 256-bit multiply port and one add port, 8 + 8 = 16 FP32 FLOP/cycle"),
    Microarch("Haswell / Broadwell", "intel", 6, _r(0x3C, 0x3F, 0x45, 0x46, 0x3D, 0x47, 0x4F, 0x56),
              {"avx2": 32, "avx": 16}, _INTEL_OPT),
    Microarch("Skylake / Kaby / Coffee / Comet Lake (client)", "intel", 6, _r(0x4E, 0x5E, 0x8E, 0x9E, 0xA5, 0xA6),
              {"avx2": 32, "avx": 16}, _INTEL_OPT),
    Microarch("Ice Lake / Tiger Lake / Rocket Lake (client)", "intel", 6, _r(0x66, 0x7D, 0x7E, 0x8C, 0x8D, 0xA7),
              {"avx512": 32, "avx2": 32, "avx": 16}, _INTEL_OPT,
              "client cores have one 512-bit FMA unit (ports 0+1 fused): AVX-512 peaks at the AVX2 rate"),
    Microarch("Alder / Raptor / Meteor Lake (hybrid)", "intel", 6, _r(0x97, 0x9A, 0xB7, 0xBA, 0xBF, 0xAA, 0xAC),
              {"avx2": 32, "avx": 16}, _INTEL_OPT,
              "P-cores: 2 x 256-bit FMA = 32; E-cores have 2 x 128-bit (16), so an all-core peak lies between"),
    Microarch("Atom E-core server (Sierra Forest)", "intel", 6, _r(0xAF), {"avx2": 16, "avx": 16}, _INTEL_OPT,
              "E-cores: two 128-bit FMA pipes, 2 x 4 lanes x 2 = 16 FP32 FLOP/cycle"),
    Microarch("Knights Landing / Mill", "intel", 6, _r(0x57, 0x85), {"avx512": 64, "avx2": 32, "avx": 16}, _INTEL_OPT),
    Microarch("Skylake-SP / Cascade Lake / Cooper Lake (Xeon)", "intel", 6, _r(0x55),
              {"avx512": 64, "avx2": 32, "avx": 16}, _INTEL_ARK, "per SKU: 1 or 2 AVX-512 FMA units"),
    Microarch("Ice Lake-SP (Xeon)", "intel", 6, _r(0x6A, 0x6C), {"avx512": 64, "avx2": 32, "avx": 16}, _INTEL_ARK,
              "per SKU: 1 or 2 AVX-512 FMA units"),
    Microarch("Sapphire / Emerald / Granite Rapids (Xeon)", "intel", 6, _r(0x8F, 0xCF, 0xAD, 0xAE),
              {"avx512": 64, "avx2": 32, "avx": 16}, _INTEL_ARK, "per SKU: 1 or 2 AVX-512 FMA units"),
)


def _xeon_fma_units(model_name: str) -> tuple[int | None, str]:
    """AVX-512 FMA units of a Xeon Scalable SKU from its name (Intel ARK), or None when the name does not say.

    Intel ARK lists one unit for Bronze 3xxx, Silver 4xxx and Gold 5xxx parts (except Gold 5122 and 5222) of
    Skylake-SP and Cascade Lake, and two for Gold 6xxx, Platinum 8xxx/9xxx and Xeon W. Later generations are
    decided by the same name rule (ARK lists two units on all Ice Lake-SP and Sapphire Rapids Gold and Platinum).
    """
    n = model_name or ""
    if re.search(r"\b(Bronze|Silver)\b", n):
        return 1, "Xeon Bronze/Silver: 1 AVX-512 FMA unit (Intel ARK)"
    m = re.search(r"\bGold\s+(\d{4})", n)
    if m:
        if m.group(1).startswith("5") and m.group(1) not in ("5122", "5222"):
            return 1, f"Xeon Gold {m.group(1)}: 1 AVX-512 FMA unit (Intel ARK)"
        return 2, f"Xeon Gold {m.group(1)}: 2 AVX-512 FMA units (Intel ARK)"
    if re.search(r"\bPlatinum\b|\bXeon\(R\)\s+W-|\bXeon W-", n):
        return 2, "Xeon Platinum / W: 2 AVX-512 FMA units (Intel ARK)"
    return None, ""


@dataclass(frozen=True)
class FlopPerCycle:
    """FLOP/cycle/core for one (CPU, ISA, precision) and how it was decided."""

    flop_per_cycle: int
    microarch: str | None        # None: not in the table, the ISA rule with 2 FMA units was assumed
    isa: str
    precision: str
    source: str                  # where the number comes from (a document, or "assumed")
    note: str                    # the decision in words (SKU rule, default taken, ...)

    @property
    def from_table(self) -> bool:
        return self.microarch is not None


def _norm_vendor(vendor: str) -> str:
    v = str(vendor or "").lower()
    if "amd" in v or "authenticamd" in v or "hygon" in v:
        return "amd"
    if "intel" in v or "genuineintel" in v:
        return "intel"
    return v


def _norm_isa(isa: str) -> str:
    k = re.sub(r"[^a-z0-9]", "", str(isa).lower())
    if k.startswith("avx512"):
        return "avx512"
    if k in ("avx2", "avx2fma", "fma", "fma3"):
        return "avx2"
    return k


def lookup(vendor: str, family: int | None, model: int | None, isa: str, precision: str = "fp32",
           model_name: str = "") -> FlopPerCycle:
    """FLOP/cycle/core of a CPU from its CPUID identity (pure: feed any CPU's values).

    Args:
        vendor: "amd"/"AuthenticAMD" or "intel"/"GenuineIntel" (case-insensitive).
        family: CPUID family as /proc/cpuinfo's "cpu family" prints it (25 = 19h for Zen 3/4); None if unknown.
        model: CPUID model as /proc/cpuinfo's "model" prints it (17 = 11h, Genoa); None if unknown.
        isa: the vector ISA the code runs ("avx512", "avx2", "avx", "sse", "scalar_fma", ...).
        precision: "fp32" or "fp64" (FP64 is half the FP32 rate on every row: half the lanes per vector).
        model_name: the marketing name, used only to decide Xeon SKUs with 1 or 2 AVX-512 FMA units.

    Returns:
        FlopPerCycle; ``microarch`` is None when the CPU is not in :data:`MICROARCHS`, and the value then follows
        the ISA rule of :func:`pyprof.peaks.database.flop_per_cycle` with 2 FMA units (stated in ``note``).

    Raises:
        InvalidInputError: precision other than fp32/fp64, or an ISA unknown to both the table and the ISA rule.
    """
    prec = str(precision).lower()
    if prec not in ("fp32", "fp64"):
        raise InvalidInputError(f"precision={precision!r} is not supported for CPU peaks; use 'fp32' or 'fp64'.")
    v, key = _norm_vendor(vendor), _norm_isa(isa)
    row = None
    if family is not None and model is not None:
        row = next((m for m in MICROARCHS if m.matches(v, int(family), int(model))), None)
    if row is not None and key in row.fp32:
        fp32 = row.fp32[key]
        note = row.note
        if key == "avx512" and row.note.startswith("per SKU"):
            units, why = _xeon_fma_units(model_name)
            if units is None:
                units, why = 2, ("SKU not stated in the model name (VMs often hide it): 2 AVX-512 FMA units assumed, "
                                 "as on Gold 6xxx/Platinum; the measured peak decides if this is a 1-unit SKU")
            fp32 = 32 * units  # 16 lanes x 2 (FMA) per unit
            note = why
        value = fp32 if prec == "fp32" else fp32 // 2
        return FlopPerCycle(value, row.name, key, prec, row.source, note)
    # Not in the table (new/unknown CPU, another vendor, scalar code): the ISA rule, said to be an assumption.
    try:
        value = flop_per_cycle(key if key != "scalarfma" else "scalar", prec, 2)
    except InvalidInputError:
        raise InvalidInputError(f"isa={isa!r} is not a known instruction set; use avx512, avx2, avx, sse or scalar.") \
            from None
    where = (f"{vendor} family {family} model {model}" if family is not None else f"{vendor} (family/model unknown)")
    why = "not in pyprof's microarchitecture table" if row is None else f"{row.name} has no {key} entry"
    return FlopPerCycle(value, None, key, prec, "assumed",
                        f"{where}: {why}; {key} with 2 FMA units assumed (the measured peak is the check)")


@dataclass(frozen=True)
class CrossCheck:
    """Table (theoretical at the observed clock) against the measured FMA-chain peak."""

    measured_flops_per_s: float
    theoretical_at_observed_clock_flops_per_s: float
    ratio: float                  # measured / theoretical-at-observed-clock
    agrees: bool                  # within DISAGREEMENT_FACTOR either way
    trusted_flops_per_s: float    # the theoretical figure when they agree, else the measurement
    note: str                     # "" when they agree; otherwise the sentence the report shows


def cross_check(measured_flops_per_s: float, theoretical_at_observed_clock_flops_per_s: float,
                derivation: str = "") -> CrossCheck:
    """Compare the table's peak at the observed clock with the measured one.

    Args:
        measured_flops_per_s: best FMA-chain run, FLOP/s.
        theoretical_at_observed_clock_flops_per_s: cores x observed clock x table FLOP/cycle/core, FLOP/s.
        derivation: how the theoretical figure was obtained, quoted in the note.

    Returns:
        CrossCheck; ``agrees`` is False when either figure exceeds the other by more than
        :data:`DISAGREEMENT_FACTOR`, and then ``trusted_flops_per_s`` is the measurement.

    Raises:
        InvalidInputError: a figure that is not positive.
    """
    m, t = float(measured_flops_per_s), float(theoretical_at_observed_clock_flops_per_s)
    if not (m > 0 and t > 0):
        raise InvalidInputError(f"cross_check needs positive FLOP/s, got measured={m!r}, theoretical={t!r}")
    ratio = m / t
    agrees = 1 / DISAGREEMENT_FACTOR <= ratio <= DISAGREEMENT_FACTOR
    note = ""
    if not agrees:
        word = "below" if ratio < 1 else "above"
        note = (f"the measured CPU peak ({m / 1e9:.1f} GFLOP/s) is {ratio:.2f}x the theoretical peak at the observed "
                f"clock ({t / 1e9:.1f} GFLOP/s), {word} it by more than {DISAGREEMENT_FACTOR}x: the FLOP/cycle "
                f"figure{' (' + derivation + ')' if derivation else ''} is likely wrong for this CPU (or the host "
                "is shared), so trust the measured peak")
    return CrossCheck(m, t, ratio, agrees, t if agrees else m, note)


# --------------------------------------------------------------------------- this machine's peaks


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
    crosscheck_note: str = ""          # non-empty when table and measurement disagree by more than 1.5x

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


def flop_per_cycle_of(info: CpuInfo, precision: str, isa: str | None = None) -> FlopPerCycle:
    """:func:`lookup` for a :class:`~pyprof.sources.cpu.host.CpuInfo`."""
    return lookup(info.vendor, info.family, info.model, isa or info.best_isa, precision, info.model_name)


def theoretical_peak(precision: str, info: CpuInfo | None = None) -> tuple[float | None, str]:
    """Theoretical peak FLOP/s of this CPU (or ``info``) and the arithmetic that gives it, in words.

    Returns:
        (FLOP/s or None when the clock is unknown, derivation naming cores, clock and its source, FLOP/cycle/core
        with the microarchitecture and its source).
    """
    if info is None:
        from pyprof.sources.cpu.host import cpu_info

        info = cpu_info()
    f = flop_per_cycle_of(info, precision)
    arch = (f"{f.microarch}{': ' + f.note if f.note else ''}; source: {f.source}" if f.from_table else f.note)
    cores = info.logical_cpus
    if info.nominal_clock_hz is None:
        return None, f"clock unknown; {f.flop_per_cycle} FLOP/cycle/core ({f.isa} {precision}: {arch})"
    peak = cores * info.nominal_clock_hz * f.flop_per_cycle
    return peak, (f"{cores} cores x {info.nominal_clock_hz / 1e9:.2f} GHz ({info.clock_source}) x {f.flop_per_cycle} "
                  f"FLOP/cycle ({f.isa} {precision}: {arch}) = {peak / 1e9:.1f} GFLOP/s")


@functools.cache
def measure_peak(precision: str = "fp32", min_time_s: float = 0.2, repeats: int = 3, isa: str = "auto") -> CpuPeak:
    """Measure this CPU's achievable FLOP/s with pyprof's FMA-chain microkernel (cached per arguments).

    Args:
        precision: "fp32" or "fp64".
        min_time_s: minimum duration of each timed repeat, seconds.
        repeats: timed repeats; the best is the achievable peak, the median is reported beside it.
        isa: "auto" (best supported) or one of the ISAs in ``cpu_info().isas``.

    Returns:
        CpuPeak with the theoretical figure at the observed clock and, when the two disagree by more than
        :data:`DISAGREEMENT_FACTOR`, ``crosscheck_note`` saying so.

    Raises:
        ValueError: unknown precision or ISA, or one this CPU does not support.
    """
    if precision not in ("fp32", "fp64"):
        raise ValueError(f"precision must be 'fp32' or 'fp64', got {precision!r}")
    from pyprof._native import load_core
    from pyprof.sources.cpu.host import cpu_info

    core = load_core()
    r = core.cpu.measure_peak(precision, isa, 0, float(min_time_s), int(repeats))
    clock = core.cpu.measure_clock_hz(0.05, 3)  # right after the FMA load, while the clocks are where it left them
    info = cpu_info()
    theo, how = theoretical_peak(precision, info)
    f = flop_per_cycle_of(info, precision, r["isa"])
    at_clock = info.logical_cpus * clock * f.flop_per_cycle
    note = ""
    if at_clock > 0 and r["best_flops_per_s"] > 0:
        note = cross_check(r["best_flops_per_s"], at_clock,
                           f"{f.flop_per_cycle} FLOP/cycle/core, {f.microarch or 'assumed'}").note
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
        crosscheck_note=note,
    )


__all__ = ["DISAGREEMENT_FACTOR", "MICROARCHS", "CpuPeak", "CrossCheck", "FlopPerCycle", "Microarch", "cross_check",
           "flop_per_cycle_of", "lookup", "measure_peak", "theoretical_peak"]
