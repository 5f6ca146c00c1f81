"""GPU peaks: the spec peak of the GPU at hand, the peak at the SM clock it actually ran at, and what it reaches.

Three figures per precision, side by side:

* **spec peak**: the peak database row (:mod:`pyprof.hardware.peaks`) when the device name matches a known product
  (H100 SXM/PCIe, H200, A100 SXM4, V100 SXM2, ...), else ``SMs x FLOP/clock/SM x max SM clock`` from
  :data:`FLOPS_PER_CLOCK_PER_SM`. :class:`SpecPeak` says which in ``method`` and ``source``.
* **clock-adjusted peak**: ``SMs x FLOP/clock/SM x observed SM clock``. GPUs change clock under load; a kernel at
  95% of this figure is issuing at 95% of the rate the hardware had while it ran.
* **measured**: custom microkernels (``pyprof._C_cuda.gpu_peak``: FFMA, DFMA, HFMA2, mma.sync, wgmma) and the best
  cuBLAS GEMM per precision through torch.

The dtype of a GEMM decides its peak class (:func:`precision_of`): a BF16 GEMM is measured against the BF16 tensor
peak, an FP32 SIMT kernel against FP32, an FP32 GEMM against TF32 only when TF32 is allowed. FP64 GEMMs on sm_80/sm_90
run on the FP64 tensor cores (DMMA), so they are measured against ``fp64_tensor`` there (:func:`gemm_peak_precision`).

Peak classes (:data:`PRECISIONS`) are those of the peak database plus ``fp16_simt`` (HFMA2 on the FMA pipe, not the
tensor cores) and ``int8`` (tensor-core integer ops, counted as operations per second like FLOP/s).

Nothing here needs a GPU to import; without one, :func:`detect_devices` returns ``([], reason)`` and
:func:`measure_gpu_peaks` returns its planned rows with ``reason`` set and no numbers.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any, cast

from pyprof.errors import InvalidInputError, UnknownHardwareError
from pyprof.peaks import database as _db

__all__ = [
    "FLOPS_PER_CLOCK_PER_SM",
    "FLOPS_PER_CLOCK_PER_SM_SOURCE",
    "GEMMS",
    "MICROKERNELS",
    "PRECISIONS",
    "TENSOR_CLOCK_CLASSES",
    "GpuDevice",
    "MeasuredPeak",
    "SpecPeak",
    "clock_adjusted_peak",
    "database_name",
    "detect_devices",
    "flops_per_clock_per_sm",
    "gemm_peak_precision",
    "measure_gpu_peaks",
    "nvml_sm_clock_hz",
    "precision_of",
    "spec_peak",
]

#: Peak classes: the peak database's precisions plus fp16_simt (half2 FMA pipe) and int8 (tensor-core integer).
PRECISIONS = ("fp64", "fp64_tensor", "fp32", "fp16_simt", "tf32", "fp16", "bf16", "fp8", "int8")

#: Dense FLOP (int8: operations) per clock per SM, by (compute capability major, minor) and peak class. On NVIDIA
#: GPUs tf32/fp16/bf16/fp8/int8 and fp64_tensor are tensor-core rates; fp64, fp32 and fp16_simt run on the CUDA cores.
#: Only the three datacenter families are listed: consumer parts of the same major version (sm_86, sm_89) have other
#: per-SM rates, and a wrong row would be worse than none (their spec peak falls back to "unavailable").
FLOPS_PER_CLOCK_PER_SM: dict[tuple[int, int], dict[str, int]] = {
    (7, 0): {"fp64": 64, "fp32": 128, "fp16_simt": 256, "fp16": 1024},
    (8, 0): {"fp64": 64, "fp64_tensor": 128, "fp32": 128, "fp16_simt": 512, "tf32": 1024, "fp16": 2048, "bf16": 2048,
             "int8": 4096},
    (9, 0): {"fp64": 128, "fp64_tensor": 256, "fp32": 256, "fp16_simt": 512, "tf32": 2048, "fp16": 4096,
             "bf16": 4096, "fp8": 8192, "int8": 8192},
}
FLOPS_PER_CLOCK_PER_SM_SOURCE = (
    "GPU_COUNTERS.md section 5 (sm_70: FP64 64, FP32 128, FP16 TC 1024; sm_80: FP64 64 (TC 128), FP32 128, TF32 1024, "
    "FP16/BF16 2048; sm_90: FP64 128 (TC 256), FP32 256, TF32 2048, FP16/BF16 4096, FP8 8192). fp16_simt and int8 from "
    "the NVIDIA V100/A100/H100 whitepapers: FP16 non-tensor 31.4 TFLOP/s = 80 SMs x 256 x 1.53 GHz, 78 = 108 x 512 x "
    "1.41 GHz, 133.8 = 132 x 512 x 1.98 GHz; INT8 tensor 624 TOPS = 108 x 4096 x 1.41 GHz, 1978.9 = 132 x 8192 x 1.83 GHz."
)

#: Microkernel kind -> the peak class it is measured against (pyprof._C_cuda.gpu_peak kinds).
MICROKERNELS: dict[str, str] = {
    "ffma": "fp32", "dfma": "fp64", "hfma2": "fp16_simt",
    "mma_bf16": "bf16", "mma_fp16": "fp16", "mma_tf32": "tf32", "wgmma_bf16": "bf16",
}
#: cuBLAS GEMM kind (through torch) -> operand precision (the peak class may differ: see gemm_peak_precision).
GEMMS: dict[str, str] = {
    "gemm_bf16": "bf16", "gemm_fp16": "fp16", "gemm_tf32": "tf32", "gemm_fp32": "fp32", "gemm_fp64": "fp64",
    "gemm_fp8": "fp8", "gemm_int8": "int8",
}

#: Peak classes NVIDIA quotes at its tensor clock, below the maximum SM clock on Hopper (1.83 GHz SXM/GH200, 1.62 H100
#: PCIe, about 1.545 NVL, against 1.98 GHz max: GPU_COUNTERS.md section 5). fp64_tensor is quoted at the maximum SM
#: clock (H100 SXM: 66.9 = 132 x 256 x 1.98 GHz), so it is not listed.
TENSOR_CLOCK_CLASSES = ("tf32", "fp16", "bf16", "fp8", "int8")

# Microkernel iterations for quick runs (0 = the kernel's own default, a few ms on an H100).
_QUICK_ITERATIONS = {"ffma": 1 << 13, "dfma": 1 << 12, "hfma2": 1 << 13, "mma_bf16": 1 << 12, "mma_fp16": 1 << 12,
                     "mma_tf32": 1 << 12, "wgmma_bf16": 1 << 12}


# ----------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class GpuDevice:
    """One CUDA device as the runtime reports it.

    Attributes:
        index: CUDA device index.
        name: Device name, e.g. ``"NVIDIA H100 80GB HBM3"``.
        compute_capability: ``(major, minor)``.
        sm_count: Streaming multiprocessors.
        max_sm_clock_hz: Maximum SM clock the driver reports (``cudaDevAttrClockRate``).
        memory_clock_hz: Memory clock.
        memory_bytes: Global memory size.
    """

    index: int
    name: str
    compute_capability: tuple[int, int]
    sm_count: int
    max_sm_clock_hz: float
    memory_clock_hz: float
    memory_bytes: int


@dataclass(frozen=True)
class SpecPeak:
    """The spec peak of one device at one precision, and where it comes from.

    Attributes:
        precision: Peak class (one of :data:`PRECISIONS`).
        flops_per_s: Dense peak, or None when neither the database nor the formula can give one.
        method: ``"database"`` (a peak database row), ``"formula"`` (SMs x FLOP/clk/SM x clock) or ``"unavailable"``.
        source: The database row's name and source, or the formula with its numbers.
        hardware: The database row's canonical name (``method == "database"`` only).
        flops_per_clock_per_sm: From :data:`FLOPS_PER_CLOCK_PER_SM`, when the family is listed.
        clock_hz: The clock the figure assumes: the given clock for a formula, the clock implied by a database row
            (``peak / (SMs x FLOP/clk/SM)``; H100 SXM's FP32 66.9 implies 1.98 GHz, its BF16 989.4 implies 1.83 GHz).
        reason: Why ``flops_per_s`` is None.
    """

    precision: str
    flops_per_s: float | None
    method: str
    source: str
    hardware: str | None = None
    flops_per_clock_per_sm: int | None = None
    clock_hz: float | None = None
    reason: str = ""


@dataclass
class MeasuredPeak:
    """One measured peak next to the spec peak and the peak at the observed SM clock.

    Attributes:
        kind: Microkernel kind (``"ffma"``, ``"mma_bf16"``, ...) or GEMM kind (``"gemm_bf16"``, ...).
        method: ``"microkernel"`` or ``"cublas"``.
        precision: The peak class it is measured against.
        device_index: CUDA device index.
        device_name: Device name, None without a device.
        measured_flops_per_s: Rate of the median launch (GEMMs: the best size's median), None when not measured.
        measured_flops_per_s_best: Rate of the fastest launch.
        spec_flops_per_s: :func:`spec_peak` for this device and precision.
        spec_method: ``"database"``, ``"formula"`` or ``"unavailable"``.
        spec_source: Where the spec figure comes from.
        observed_sm_clock_hz: SM clock while the kernel ran.
        clock_source: ``"clock64"`` (cycles counted in the kernel over its event time), ``"nvml"`` (SM clock samples
            taken while the GEMMs ran) or ``""``.
        clock_adjusted_peak_flops_per_s: :func:`clock_adjusted_peak` at ``observed_sm_clock_hz``.
        ratio_to_spec: ``measured / spec``.
        ratio_to_clock_adjusted: ``measured / clock-adjusted peak``.
        detail: Launch shape, iterations, repeats, FLOP formula, GEMM size, per-size results.
        reason: Why something is missing ("" when everything was measured).
    """

    kind: str
    method: str
    precision: str
    device_index: int
    device_name: str | None = None
    measured_flops_per_s: float | None = None
    measured_flops_per_s_best: float | None = None
    spec_flops_per_s: float | None = None
    spec_method: str = "unavailable"
    spec_source: str = ""
    observed_sm_clock_hz: float | None = None
    clock_source: str = ""
    clock_adjusted_peak_flops_per_s: float | None = None
    ratio_to_spec: float | None = None
    ratio_to_clock_adjusted: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of all fields."""
        return asdict(self)


# ----------------------------------------------------------------------------------------------- spec peaks


def _check_precision(precision: str) -> str:
    p = str(precision).strip().lower().replace("-", "_")
    if p not in PRECISIONS:
        raise InvalidInputError(
            f"precision={precision!r} is not a GPU peak class; use one of {', '.join(PRECISIONS)} "
            "(precision_of() maps torch dtypes and cuBLAS type names to these)."
        )
    return p


def flops_per_clock_per_sm(compute_capability: Sequence[int], precision: str) -> int | None:
    """Dense FLOP per clock per SM for a compute capability family and peak class.

    Args:
        compute_capability: ``(major, minor)``, e.g. ``(9, 0)``.
        precision: One of :data:`PRECISIONS`.

    Returns:
        The rate from :data:`FLOPS_PER_CLOCK_PER_SM`, or None when the family or the precision is not listed
        (e.g. sm_86, or fp8 before sm_90).

    Raises:
        InvalidInputError: unknown precision or malformed compute capability.
    """
    prec = _check_precision(precision)
    try:
        key = (int(compute_capability[0]), int(compute_capability[1]))
    except (TypeError, ValueError, IndexError):
        raise InvalidInputError(
            f"compute_capability={compute_capability!r} must be a (major, minor) pair such as (9, 0)."
        ) from None
    return FLOPS_PER_CLOCK_PER_SM.get(key, {}).get(prec)


_VENDOR_PREFIX = re.compile(r"^(nvidia|tesla|geforce)\s*", re.IGNORECASE)


def database_name(device_name: str) -> str | None:
    """Canonical peak-database name for a CUDA device name, or None when no row describes that product.

    The CUDA names differ from the datasheet names (the H100 SXM5 calls itself ``"NVIDIA H100 80GB HBM3"``), and
    variants with other SM counts or clocks must not borrow a row: H100 PCIe, H100/H200 NVL, A100 PCIe and GH200
    have their own rows; V100 PCIe/V100S and GB200 have none (their spec peak comes from the formula).

    Args:
        device_name: As ``cudaGetDeviceProperties`` or NVML report it, or a database name/alias.

    Returns:
        A canonical name accepted by :func:`pyprof.hardware.peaks.lookup`, or None.
    """
    if not isinstance(device_name, str) or not device_name.strip():
        return None
    stripped = device_name.strip()
    while True:
        s = _VENDOR_PREFIX.sub("", stripped)
        if s == stripped:
            break
        stripped = s
    key = re.sub(r"[^a-z0-9]", "", stripped.lower())
    # Order matters: "gh200" contains "h200" and "gb200" contains "b200"; NVL parts share the SXM die at lower clocks.
    if "gh200" in key:
        return "NVIDIA GH200"
    if "gb200" in key:
        return None  # Grace Blackwell: other rates than B200, no row yet
    if "h100" in key:
        return "NVIDIA H100 NVL" if "nvl" in key else ("NVIDIA H100 PCIe" if "pcie" in key else "NVIDIA H100 SXM5")
    if "h200" in key:
        return "NVIDIA H200 NVL" if "nvl" in key else "NVIDIA H200 SXM"
    if "a100" in key:
        return "NVIDIA A100 PCIe" if "pcie" in key else "NVIDIA A100 SXM4"
    if "v100" in key:
        # V100S is a PCIe part with other clocks; "v100sxm2" is the SXM2 part, not a V100S.
        return None if ("pcie" in key or re.search(r"v100s(?!xm)", key)) else "NVIDIA V100 SXM2"
    if "b200" in key:
        return "NVIDIA B200"
    for candidate in (device_name, stripped):  # any other GPU the database knows by name or alias
        try:
            if _db.hardware_kind(candidate) == "gpu":
                return _db.lookup(candidate, _db.precisions(candidate)[0]).hardware
        except (UnknownHardwareError, InvalidInputError):
            continue
    return None


def spec_peak(
    name: str,
    compute_capability: Sequence[int],
    sm_count: int,
    clock_hz: float,
    precision: str,
) -> SpecPeak:
    """Spec (dense) peak of a device at one precision.

    The peak database row when ``name`` matches a product there and the row has this precision; otherwise
    ``sm_count x FLOP/clk/SM x clock_hz``. Example (formula): H100 SXM BF16 at 1.83 GHz is 132 x 4096 x 1.83e9 =
    989.4e12, the database's figure.

    Args:
        name: Device name (CUDA or database spelling).
        compute_capability: ``(major, minor)``.
        sm_count: SMs on the device.
        clock_hz: Clock for the formula: the maximum SM clock the driver reports. Used for tensor classes only when
            no database row of the product gives NVIDIA's tensor clock; the source then says it is an upper bound.
        precision: Peak class (one of :data:`PRECISIONS`).

    Returns:
        A :class:`SpecPeak`; ``flops_per_s`` is None (with ``reason``) when neither source can give a figure.

    Raises:
        InvalidInputError: unknown precision or malformed compute capability.
    """
    prec = _check_precision(precision)
    fpc = flops_per_clock_per_sm(compute_capability, prec)
    hw = database_name(name)
    why_not_db = f"no peak database row matches {name!r}"
    if hw is not None:
        try:
            row = _db.lookup(hw, prec)
        except InvalidInputError:
            why_not_db = f"the peak database row {hw!r} has no {prec} figure"
        else:
            implied = None
            if fpc and sm_count and int(sm_count) > 0:
                implied = row.peak_flops_per_s / (int(sm_count) * fpc)
            return SpecPeak(prec, row.peak_flops_per_s, "database", f"{row.hardware} ({row.clock} clock): {row.source}",
                            hardware=row.hardware, flops_per_clock_per_sm=fpc, clock_hz=implied)
        # The row lacks this class (e.g. int8): a tensor class takes the tensor clock the row's own tensor figures
        # imply, never the maximum SM clock (that would overstate Hopper tensor peaks by 8-15%).
        if fpc is not None and prec in TENSOR_CLOCK_CLASSES:
            tc = _implied_tensor_clock(hw, compute_capability, sm_count)
            if tc is not None:
                clock_hz_t, how = tc
                cc = tuple(int(x) for x in compute_capability[:2])
                sms = int(sm_count)
                return SpecPeak(
                    prec, sms * fpc * clock_hz_t, "formula",
                    f"formula: {sms} SMs x {fpc} FLOP/clk/SM (sm_{cc[0]}{cc[1]} {prec}) x {clock_hz_t / 1e9:.3f} GHz, "
                    f"the tensor clock {how} ({why_not_db})",
                    hardware=hw, flops_per_clock_per_sm=fpc, clock_hz=clock_hz_t,
                )
    cc = tuple(int(x) for x in compute_capability[:2])
    if fpc is None:
        return SpecPeak(prec, None, "unavailable", "", flops_per_clock_per_sm=None,
                        reason=f"{why_not_db}, and FLOPS_PER_CLOCK_PER_SM has no {prec} rate for compute capability "
                        f"{cc[0]}.{cc[1]}")
    sms = int(sm_count) if sm_count else 0
    clock = float(clock_hz) if clock_hz else 0.0
    if sms <= 0 or not math.isfinite(clock) or clock <= 0:
        return SpecPeak(prec, None, "unavailable", "", flops_per_clock_per_sm=fpc,
                        reason=f"{why_not_db}, and the formula needs a positive SM count and clock "
                        f"(got sm_count={sm_count!r}, clock_hz={clock_hz!r})")
    which = "the given clock"
    if prec in TENSOR_CLOCK_CLASSES and cc[0] >= 9:
        which = ("the given clock; NVIDIA quotes Hopper tensor rates at a tensor clock below the maximum SM clock "
                 "(1.83 GHz SXM/GH200, 1.62 H100 PCIe, about 1.545 NVL, against 1.98 max), so at the maximum SM clock "
                 "this is an upper bound, 8-15% above the vendor's figure")
    return SpecPeak(
        prec, sms * fpc * clock, "formula",
        f"formula: {sms} SMs x {fpc} FLOP/clk/SM (sm_{cc[0]}{cc[1]} {prec}) x {clock / 1e9:.3f} GHz, {which} "
        f"({why_not_db})",
        flops_per_clock_per_sm=fpc, clock_hz=clock,
    )


def _implied_tensor_clock(hardware: str, compute_capability: Sequence[int],
                          sm_count: int) -> tuple[float, str] | None:
    """The tensor clock a database row's own tensor figure implies: ``peak / (SMs x FLOP/clk/SM)``.

    H100 SXM5: 989.4e12 / (132 x 4096) = 1.830 GHz. Returns ``(clock_hz, how)`` or None when the row has no tensor
    figure the table can divide, or the SM count is not positive.
    """
    if not sm_count or int(sm_count) <= 0:
        return None
    for cls in ("bf16", "fp16", "tf32", "fp8"):
        fpc = flops_per_clock_per_sm(compute_capability, cls)
        if fpc is None:
            continue
        try:
            row = _db.lookup(hardware, cls)
        except InvalidInputError:
            continue
        clock = row.peak_flops_per_s / (int(sm_count) * fpc)
        return clock, (f"implied by the database's {cls} figure for {row.hardware}: "
                       f"{row.peak_flops_per_s / 1e12:g}e12 / ({int(sm_count)} x {fpc})")
    return None


def clock_adjusted_peak(
    compute_capability: Sequence[int], sm_count: int, observed_clock_hz: float | None, precision: str
) -> float | None:
    """Peak at an observed SM clock: ``sm_count x FLOP/clk/SM x observed_clock_hz``.

    Args:
        compute_capability: ``(major, minor)``.
        sm_count: SMs on the device.
        observed_clock_hz: The SM clock while the kernel ran (clock64 cycles over time, or NVML).
        precision: Peak class.

    Returns:
        FLOP/s, or None when the family/precision is not in :data:`FLOPS_PER_CLOCK_PER_SM` or the clock/SM count is
        missing or not positive.

    Raises:
        InvalidInputError: unknown precision or malformed compute capability.
    """
    fpc = flops_per_clock_per_sm(compute_capability, precision)
    if fpc is None or not sm_count or int(sm_count) <= 0 or observed_clock_hz is None:
        return None
    clock = float(observed_clock_hz)
    if not math.isfinite(clock) or clock <= 0:
        return None
    return int(sm_count) * fpc * clock


# ----------------------------------------------------------------------------------------------- dtypes


_TYPENAMES = {
    # torch dtype names (str(torch.bfloat16) == "torch.bfloat16"), short names, cuBLAS/cudaDataType names
    "bfloat16": "bf16", "bf16": "bf16", "r16bf": "bf16", "cudar16bf": "bf16", "computetype32ffast16bf": "bf16",
    "float16": "fp16", "half": "fp16", "fp16": "fp16", "f16": "fp16", "r16f": "fp16", "cudar16f": "fp16",
    "compute16f": "fp16", "computetype32ffast16f": "fp16",
    "tf32": "tf32", "tensorfloat32": "tf32", "compute32ffasttf32": "tf32", "computetype32ffasttf32": "tf32",
    "float32": "fp32", "float": "fp32", "fp32": "fp32", "f32": "fp32", "r32f": "fp32", "cudar32f": "fp32",
    "compute32f": "fp32", "compute32fpedantic": "fp32",
    "float64": "fp64", "double": "fp64", "fp64": "fp64", "f64": "fp64", "r64f": "fp64", "cudar64f": "fp64",
    "compute64f": "fp64", "compute64fpedantic": "fp64",
    "fp8": "fp8", "float8": "fp8", "float8e4m3fn": "fp8", "float8e4m3fnuz": "fp8", "float8e5m2": "fp8",
    "float8e5m2fnuz": "fp8", "e4m3": "fp8", "e5m2": "fp8", "r8fe4m3": "fp8", "r8fe5m2": "fp8", "cudar8fe4m3": "fp8",
    "cudar8fe5m2": "fp8",
    "int8": "int8", "i8": "int8", "r8i": "int8", "cudar8i": "int8", "compute32i": "int8", "compute32ipedantic": "int8",
}
# FP32 operands run as TF32 on the tensor cores only when TF32 is allowed.
_FP32_WHEN_TF32 = {"fp32"}


def precision_of(dtype_or_typename: Any, allow_tf32: bool = False) -> str:
    """Peak class of a torch dtype or a cuBLAS/CUDA type name.

    ``torch.bfloat16``/``"R_16BF"`` -> bf16, ``torch.float16``/``"R_16F"`` -> fp16, ``torch.float32``/``"R_32F"``/
    ``"COMPUTE_32F"`` -> fp32, or tf32 when ``allow_tf32``; ``"COMPUTE_32F_FAST_TF32"`` -> tf32 always;
    ``torch.float64``/``"R_64F"`` -> fp64; ``torch.float8_e4m3fn``/``"R_8F_E4M3"`` -> fp8; ``torch.int8``/``"R_8I"``
    -> int8. Case, ``torch.``, ``CUBLAS_``/``CUDA_`` prefixes, dashes and underscores are ignored.

    Args:
        dtype_or_typename: A ``torch.dtype`` or a type name string.
        allow_tf32: Whether FP32 matmuls may use TF32 (``torch.backends.cuda.matmul`` TF32 setting).

    Returns:
        One of :data:`PRECISIONS` (never ``fp64_tensor`` or ``fp16_simt``: those depend on the kernel, see
        :func:`gemm_peak_precision`).

    Raises:
        InvalidInputError: a type with no peak class (e.g. ``torch.int64``, ``"complex64"``).
    """
    text = str(dtype_or_typename).strip().lower()
    text = re.sub(r"^(torch\.|cublas_|cublas)", "", text)
    key = re.sub(r"[^a-z0-9]", "", text)
    prec = _TYPENAMES.get(key)
    if prec is None:
        raise InvalidInputError(
            f"{dtype_or_typename!r} has no GPU peak class; known: torch float/bfloat16/float16/float32/float64/"
            "float8_*/int8 dtypes and cuBLAS names such as R_16BF, R_16F, R_32F, R_64F, R_8F_E4M3, R_8I, COMPUTE_32F_FAST_TF32."
        )
    if prec in _FP32_WHEN_TF32 and allow_tf32:
        return "tf32"
    return prec


def gemm_peak_precision(precision: str, compute_capability: Sequence[int]) -> str:
    """Peak class a cuBLAS GEMM of operand precision ``precision`` runs at on this family.

    FP64 GEMMs on sm_80 and sm_90 run on the FP64 tensor cores (DMMA, twice the FP64 FMA rate), so they are measured
    against ``fp64_tensor``; everything else keeps its class.

    Args:
        precision: Operand peak class from :func:`precision_of`.
        compute_capability: ``(major, minor)``.

    Returns:
        The peak class.
    """
    prec = _check_precision(precision)
    if prec == "fp64" and flops_per_clock_per_sm(compute_capability, "fp64_tensor") is not None:
        return "fp64_tensor"
    return prec


# ----------------------------------------------------------------------------------------------- devices


def detect_devices() -> tuple[list[GpuDevice], str]:
    """The CUDA devices present, from ``pyprof._C_cuda.probe()``.

    Returns:
        ``(devices, "")``, or ``([], reason)`` when the CUDA part is not built, there is no driver, or no GPU.
    """
    from pyprof._native import load_cuda
    mod, reason = load_cuda()
    if mod is None:
        return [], reason
    p = mod.probe()
    if not p["devices"]:
        status = p.get("status") or "no GPU"
        return [], f"no CUDA device: {status} (driver version {p.get('driver_version', 0)})"
    devices = [
        GpuDevice(
            index=int(d["index"]),
            name=str(d["name"]),
            compute_capability=(int(d["compute_capability"][0]), int(d["compute_capability"][1])),
            sm_count=int(d["sm_count"]),
            max_sm_clock_hz=float(d["sm_clock_khz"]) * 1e3,
            memory_clock_hz=float(d["memory_clock_khz"]) * 1e3,
            memory_bytes=int(d["memory_bytes"]),
        )
        for d in p["devices"]
    ]
    return devices, ""


def _nvml_handle(index: int) -> tuple[Any, str]:
    """NVML handle for CUDA device ``index`` (matched by UUID through torch when it can be, since NVML numbers devices
    without regard to CUDA_VISIBLE_DEVICES), or ``(None, reason)``."""
    try:
        import pynvml
    except ImportError:
        return None, "pynvml (nvidia-ml-py) is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError has many subclasses; any of them means no NVML here
        return None, f"NVML init failed: {e}"
    from pyprof.sources.cuda.nvml import handle_for_cuda_device
    try:
        return handle_for_cuda_device(pynvml, index), ""
    except Exception as e:
        return None, f"NVML has no device {index}: {e}"


def nvml_sm_clock_hz(index: int = 0) -> tuple[float | None, str]:
    """Current SM clock of CUDA device ``index`` from NVML.

    Returns:
        ``(clock_hz, "")`` or ``(None, reason)``.
    """
    handle, reason = _nvml_handle(index)
    if handle is None:
        return None, reason
    import pynvml

    try:
        return float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)) * 1e6, ""
    except Exception as e:
        return None, f"NVML SM clock unavailable: {e}"


# ----------------------------------------------------------------------------------------------- measurement


def _finish(row: MeasuredPeak, dev: GpuDevice) -> MeasuredPeak:
    """Fill spec, clock-adjusted peak and ratios of a row whose measurement and clock are set."""
    spec = spec_peak(dev.name, dev.compute_capability, dev.sm_count, dev.max_sm_clock_hz, row.precision)
    row.spec_flops_per_s = spec.flops_per_s
    row.spec_method = spec.method
    row.spec_source = spec.source or spec.reason
    row.clock_adjusted_peak_flops_per_s = clock_adjusted_peak(
        dev.compute_capability, dev.sm_count, row.observed_sm_clock_hz, row.precision)
    if row.measured_flops_per_s is not None:
        if row.spec_flops_per_s:
            row.ratio_to_spec = row.measured_flops_per_s / row.spec_flops_per_s
        if row.clock_adjusted_peak_flops_per_s:
            row.ratio_to_clock_adjusted = row.measured_flops_per_s / row.clock_adjusted_peak_flops_per_s
    return row


def _run_microkernel(mod: Any, kind: str, dev: GpuDevice, quick: bool) -> MeasuredPeak:
    row = MeasuredPeak(kind=kind, method="microkernel", precision=MICROKERNELS[kind], device_index=dev.index,
                       device_name=dev.name)
    try:
        r = mod.gpu_peak(kind, dev.index, _QUICK_ITERATIONS[kind] if quick else 0, 3 if quick else 5)
    except (RuntimeError, ValueError) as e:
        row.reason = f"{kind} did not run: {e}"
        return _finish(row, dev)
    row.measured_flops_per_s = float(r["flops_per_s"])
    row.measured_flops_per_s_best = float(r["flops_per_s_best"])
    if r["sm_clock_hz"] > 0:
        row.observed_sm_clock_hz = float(r["sm_clock_hz"])
        row.clock_source = "clock64"
    row.detail = {k: r[k] for k in ("formula", "flops", "seconds_median", "seconds_best", "seconds", "blocks",
                                    "threads_per_block", "iterations", "repeats", "warmup", "sm_count")}
    return _finish(row, dev)


@contextmanager
def _fp32_matmul_mode(torch: Any, tf32: bool) -> Iterator[None]:
    """Set TF32 on or off for FP32 matmuls, and restore the caller's setting afterwards."""
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):
        old = m.fp32_precision
        m.fp32_precision = "tf32" if tf32 else "ieee"
        try:
            yield
        finally:
            m.fp32_precision = old
    else:
        old = m.allow_tf32
        m.allow_tf32 = tf32
        try:
            yield
        finally:
            m.allow_tf32 = old


def _gemm_callable(torch: Any, kind: str, n: int, device: Any) -> Any:
    """A zero-argument call that runs one n x n x n GEMM of ``kind`` (operands allocated here)."""
    g = torch.Generator(device=device).manual_seed(0)
    if kind in ("gemm_bf16", "gemm_fp16", "gemm_tf32", "gemm_fp32", "gemm_fp64"):
        dtype = {"gemm_bf16": torch.bfloat16, "gemm_fp16": torch.float16, "gemm_tf32": torch.float32,
                 "gemm_fp32": torch.float32, "gemm_fp64": torch.float64}[kind]
        a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
        b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
        out = torch.empty(n, n, device=device, dtype=dtype)
        return lambda: torch.matmul(a, b, out=out)
    if kind == "gemm_fp8":
        if not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
            raise RuntimeError("this torch has no torch._scaled_mm / float8_e4m3fn")
        a = torch.randn(n, n, device=device, generator=g).to(torch.float8_e4m3fn)
        # _scaled_mm wants B column-major: the transpose of a row-major tensor.
        b = torch.randn(n, n, device=device, generator=g).to(torch.float8_e4m3fn).t()
        one = torch.ones((), device=device, dtype=torch.float32)
        return lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    if kind == "gemm_int8":
        if not hasattr(torch, "_int_mm"):
            raise RuntimeError("this torch has no torch._int_mm")
        a = torch.randint(-8, 8, (n, n), device=device, dtype=torch.int8, generator=g)
        b = torch.randint(-8, 8, (n, n), device=device, dtype=torch.int8, generator=g)
        return lambda: torch._int_mm(a, b)
    raise InvalidInputError(f"unknown GEMM kind {kind!r}; use one of {', '.join(GEMMS)}")


def _time_gemm(torch: Any, fn: Any, warmup: int, repeats: int, nvml_handle: Any) -> tuple[list[float], list[float]]:
    """Times ``repeats`` calls with CUDA events after ``warmup`` calls; samples NVML's SM clock while they run."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    for s, e in zip(starts, ends):
        s.record()
        fn()
        e.record()
    clocks: list[float] = []
    if nvml_handle is not None:
        import pynvml

        # The calls above are queued; sample while the GPU works through them (bounded, in case the queue is short).
        deadline = time.monotonic() + 5.0
        while not ends[-1].query() and time.monotonic() < deadline:
            try:
                clocks.append(float(pynvml.nvmlDeviceGetClockInfo(nvml_handle, pynvml.NVML_CLOCK_SM)) * 1e6)
            except Exception:
                break
            time.sleep(0.002)
    torch.cuda.synchronize()
    return [s.elapsed_time(e) * 1e-3 for s, e in zip(starts, ends)], clocks


def _run_gemm(torch: Any, kind: str, dev: GpuDevice, quick: bool, nvml_handle: Any, nvml_reason: str) -> MeasuredPeak:
    operand = GEMMS[kind]
    row = MeasuredPeak(kind=kind, method="cublas", precision=gemm_peak_precision(operand, dev.compute_capability),
                       device_index=dev.index, device_name=dev.name)
    sizes = [4096] if quick else [2048, 4096, 8192]
    warmup, repeats = (2, 5) if quick else (3, 10)
    device = torch.device("cuda", dev.index)
    per_size = []
    best: dict[str, Any] | None = None
    try:
        with torch.cuda.device(device), _fp32_matmul_mode(torch, tf32=kind == "gemm_tf32"):
            for n in sizes:
                fn = _gemm_callable(torch, kind, n, device)
                seconds, clocks = _time_gemm(torch, fn, warmup, repeats, nvml_handle)
                flops = 2.0 * n * n * n  # 2*M*N*K: one multiply and one add per MAC
                med = statistics.median(seconds)
                res = {"m": n, "n": n, "k": n, "flops": flops, "seconds_median": med, "seconds_best": min(seconds),
                       "flops_per_s": flops / med, "flops_per_s_best": flops / min(seconds),
                       "sm_clock_hz_median": statistics.median(clocks) if clocks else None}
                per_size.append(res)
                if best is None or res["flops_per_s"] > best["flops_per_s"]:
                    best = res
                del fn
    except (RuntimeError, InvalidInputError) as e:  # torch raises RuntimeError for unsupported dtypes/archs
        row.reason = f"{kind} did not run: {e}"
    finally:
        torch.cuda.empty_cache()
    if best is not None:
        row.measured_flops_per_s = best["flops_per_s"]
        row.measured_flops_per_s_best = best["flops_per_s_best"]
        if best["sm_clock_hz_median"]:
            row.observed_sm_clock_hz = best["sm_clock_hz_median"]
            row.clock_source = "nvml"
        elif not row.reason:
            row.reason = f"no observed SM clock: {nvml_reason or 'no NVML samples while the GEMMs ran'}"
        row.detail = {"best": best, "sizes": per_size, "warmup": warmup, "repeats": repeats,
                      "operand_precision": operand, "formula": "2*M*N*K"}
    return _finish(row, dev)


def measure_gpu_peaks(
    device: int = 0, precisions: Sequence[str] | None = None, quick: bool = False
) -> list[MeasuredPeak]:
    """Measure the achievable peaks of one GPU: microkernels, then the best cuBLAS GEMM per precision.

    Microkernels (``pyprof._C_cuda.gpu_peak``): ffma, dfma, hfma2, mma_bf16/fp16/tf32, wgmma_bf16 (sm_90a builds on
    H100/H200). GEMMs through torch, square sizes 2048/4096/8192 (4096 only when ``quick``), warm-up, median of
    repeats timed with CUDA events; bf16, fp16, tf32, fp32, fp64, fp8 (``torch._scaled_mm``), int8 (``torch._int_mm``).
    Every row carries the measured rate, the spec peak, the peak at the observed SM clock, and the ratios.

    Args:
        device: CUDA device index.
        precisions: Peak classes to measure (a row is kept when its class or its GEMM's operand precision is listed);
            None for all.
        quick: Fewer iterations, repeats and sizes (seconds instead of about a minute).

    Returns:
        One :class:`MeasuredPeak` per planned measurement. Without a GPU (or without the CUDA part / torch CUDA),
        the affected rows have no numbers and say why in ``reason``; nothing raises for a missing GPU.

    Raises:
        InvalidInputError: an unknown precision in ``precisions`` or a negative device.
    """
    if isinstance(device, bool) or not isinstance(device, int) or device < 0:
        raise InvalidInputError(f"device={device!r} must be a CUDA device index (an int >= 0).")
    wanted = None if precisions is None else {_check_precision(p) for p in precisions}

    def keep(*classes: str) -> bool:
        return wanted is None or any(c in wanted for c in classes)

    kinds = [k for k, p in MICROKERNELS.items() if keep(p)]
    gemms = [k for k, p in GEMMS.items() if keep(p, "fp64_tensor" if p == "fp64" else p)]

    devices, reason = detect_devices()
    dev = next((d for d in devices if d.index == device), None)
    if dev is None:
        why = reason or f"no CUDA device {device} (found {len(devices)})"
        return ([MeasuredPeak(kind=k, method="microkernel", precision=MICROKERNELS[k], device_index=device,
                              reason=why) for k in kinds]
                + [MeasuredPeak(kind=k, method="cublas", precision=GEMMS[k], device_index=device, reason=why)
                   for k in gemms])

    from pyprof._native import load_cuda
    mod = cast(ModuleType, load_cuda()[0])  # detect_devices found a device, so the module loaded
    built = set(mod.gpu_peak_kinds())
    rows: list[MeasuredPeak] = []
    for k in kinds:
        if k not in built:
            rows.append(_finish(MeasuredPeak(kind=k, method="microkernel", precision=MICROKERNELS[k],
                                             device_index=dev.index, device_name=dev.name,
                                             reason=f"{k} is not in this build (gpu_peak_kinds: {sorted(built)})"),
                                dev))
            continue
        rows.append(_run_microkernel(mod, k, dev, quick))

    torch: Any  # the module, or None when it cannot be imported (then torch_reason says why)
    try:
        import torch

        torch_reason = "" if torch.cuda.is_available() else "torch.cuda.is_available() is False (CPU-only torch?)"
    except ImportError as e:
        torch, torch_reason = None, f"torch is not importable: {e}"
    nvml_handle, nvml_reason = _nvml_handle(dev.index) if not torch_reason else (None, "")
    for k in gemms:
        if torch_reason:
            rows.append(_finish(MeasuredPeak(kind=k, method="cublas", precision=gemm_peak_precision(
                GEMMS[k], dev.compute_capability), device_index=dev.index, device_name=dev.name,
                reason=torch_reason), dev))
            continue
        if k == "gemm_fp8" and dev.compute_capability < (8, 9):
            rows.append(_finish(MeasuredPeak(kind=k, method="cublas", precision="fp8", device_index=dev.index,
                                             device_name=dev.name,
                                             reason="FP8 GEMMs need compute capability 8.9 or newer"), dev))
            continue
        rows.append(_run_gemm(torch, k, dev, quick, nvml_handle, nvml_reason))
    return rows
