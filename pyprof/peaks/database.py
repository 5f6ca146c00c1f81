"""Peak FLOP/s database: vendor spec peaks and the peaks the seed documents actually used.

Every stored row is a *dense* peak (NVIDIA's "with sparsity" figures are 2x the dense rate and are never
stored). Each row records the precision, the clock the figure assumes (``boost``, ``base`` or ``n/a``), whether
it is per chip or per board, and where the number comes from.

Spec rows versus "the peak the seed used"
-----------------------------------------
"AI and compute" (OpenAI, 2018) did not always use the vendor's spec peak: it used 8.5 TFLOP/s for a K80 board
(spec: 5.6 base, 8.13 boost as recorded in SEED_DATA.md), 5.1 for a Titan Black (spec 5.645 at boost clock), and
so on. Both kinds of figure are stored as **separate rows with separate names**:

* the spec row has the canonical product name, e.g. ``"NVIDIA Tesla K80"``, with aliases ``"K80"``, ...;
* the row holding the figure the post used has the name ``"<short name> (AI and compute)"``, e.g.
  ``"K80 (AI and compute)"``, and its ``source`` says which worked examples used it.

So ``lookup("K80")`` gives the datasheet figure and ``lookup("K80 (AI and compute)")`` gives 8.5e12, and
no caller can mix the two up silently. The GTX 580 has two used figures: ``"GTX 580 (AI and compute)"``
(1.58 TFLOP/s, AlexNet) and ``"GTX 580 (AI and compute, Dropout/ZFNet)"`` (1.54 TFLOP/s). A row's ``note`` says
how a used figure relates to the spec (e.g. the Titan Black's 5.1 equals the *base*-clock peak, 5.12).

Where a product has both a base-clock and a boost-clock spec (K40, K80, Titan Black, Titan X), both are stored
under the same name with different ``clock``; :func:`lookup` returns the boost row unless ``clock="base"`` is asked for.

Name matching ignores case, spaces, dashes, underscores, dots and parentheses: ``"h100"``, ``"H100-SXM"``,
``"gtx580"`` and ``"GTX 580"`` all work. A name that matches nothing is tried again without vendor words and memory
sizes (``"NVIDIA A100 80GB PCIe"`` -> ``"A100 PCIe"``, ``"AMD Instinct MI300X 192GB"`` -> ``"MI300X"``); form factors
(SXM, PCIe, NVL) are kept, since they change the peak.

CPU peaks are ``cores x clock_hz x FLOP/cycle/core`` (see :func:`flop_per_cycle`); the derivation is spelled out in
each CPU row's ``source``.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import TypedDict

from pyprof.errors import InvalidInputError, UnknownHardwareError

__all__ = [
    "CLOCKS",
    "KINDS",
    "PEAKS",
    "PRECISIONS",
    "PeakEntry",
    "flop_per_cycle",
    "hardware_kind",
    "list_hardware",
    "lookup",
    "precisions",
    "theoretical_cpu_peak_flops_per_s",
]

KINDS = ("gpu", "cpu", "tpu")
PRECISIONS = ("fp64", "fp64_tensor", "fp32", "tf32", "fp16", "bf16", "fp8")
CLOCKS = ("boost", "base", "n/a")
SCOPES = ("chip", "board")

_LIST_HINT = (
    "Run `pyprof estimate --list-hardware` to see the known hardware, "
    "or pass the peak explicitly (peak_flops_per_s=..., or --peak-tflops on the command line)."
)


@dataclass(frozen=True)
class PeakEntry:
    """One dense peak FLOP/s figure for one piece of hardware at one precision.

    Attributes:
        hardware: Canonical name, e.g. ``"NVIDIA H100 SXM5"`` or ``"K80 (AI and compute)"``.
        kind: ``"gpu"``, ``"cpu"`` or ``"tpu"`` (TPUs and other non-GPU matrix accelerators: AWS Trainium).
        precision: One of :data:`PRECISIONS`. On NVIDIA GPUs tf32/fp16/bf16/fp8 are tensor-core rates and
            ``fp64_tensor`` is the FP64 tensor-core rate; ``fp32`` and ``fp64`` are the CUDA-core rates.
        peak_flops_per_s: Dense peak in FLOP/s.
        dense: Always True for stored rows (sparse figures are 2x and never stored).
        clock: ``"boost"``, ``"base"`` or ``"n/a"`` (TPUs, or a figure not tied to a stated clock).
        scope: ``"chip"`` or ``"board"`` (a K80 board carries two GK210 GPUs).
        source: Where the figure comes from (datasheet, the "AI and compute" post, a derivation).
        aliases: Other accepted names.
        note: How the figure relates to other rows (e.g. a used figure versus the spec).
    """

    hardware: str
    kind: str
    precision: str
    peak_flops_per_s: float
    dense: bool
    clock: str
    scope: str
    source: str
    aliases: tuple[str, ...] = ()
    note: str = ""

    @property
    def peak_tflops_per_s(self) -> float:
        """The peak in TFLOP/s (1e12 FLOP/s)."""
        return self.peak_flops_per_s / 1e12


_T = 1e12  # TFLOP/s -> FLOP/s
_AIC = '"AI and compute" (OpenAI, 2018), appendix'
_SEED = "SEED_DATA.md"
_GPUC = "GPU_COUNTERS.md section 5"


class _RowOptions(TypedDict, total=False):
    """Keyword arguments that several `_rows` calls share (passed as ``**options``)."""

    scope: str
    aliases: tuple[str, ...]
    note: str


def _rows(
    hardware: str,
    kind: str,
    rates_tflops: dict[str, float],
    *,
    clock: str,
    scope: str = "chip",
    source: str,
    aliases: tuple[str, ...] = (),
    note: str = "",
) -> list[PeakEntry]:
    return [
        PeakEntry(
            hardware=hardware,
            kind=kind,
            precision=precision,
            peak_flops_per_s=tflops * _T,
            dense=True,
            clock=clock,
            scope=scope,
            source=source,
            aliases=aliases,
            note=note,
        )
        for precision, tflops in rates_tflops.items()
    ]


def _build() -> tuple[PeakEntry, ...]:
    r: list[PeakEntry] = []
    # ---------------------------------------------------------------- seed-era GPUs: spec rows
    r += _rows(
        "NVIDIA GeForce GTX 580", "gpu", {"fp32": 1.581}, clock="base",
        source="NVIDIA GTX 580 spec: 512 CUDA cores x 1.544 GHz shader clock x 2 FLOP/FMA = 1.581 TFLOP/s "
        f"(Fermi has no boost clock; the shader clock is its only clock) [{_SEED}]",
        aliases=("GTX 580", "GTX580", "GeForce GTX 580", "GTX 580 3GB"),
        note="The post used 1.58 for AlexNet (= spec, rounded) and 1.54 for Dropout and ZFNet; "
        "see the '(AI and compute)' rows.",
    )
    r += _rows(
        "NVIDIA Tesla K20", "gpu", {"fp32": 3.52}, clock="base",
        source=f"NVIDIA Tesla K20/K20c spec: 2496 CUDA cores x 0.706 GHz x 2 = 3.52 TFLOP/s [{_SEED}]",
        aliases=("K20", "Tesla K20", "K20c", "Tesla K20c", "K20m"),
        note="K20X is a different board (3.94); the post used 3.5 for 'K20'.",
    )
    r += _rows(
        "NVIDIA Tesla K20X", "gpu", {"fp32": 3.94}, clock="base",
        source=f"NVIDIA Tesla K20X spec: 2688 CUDA cores x 0.732 GHz x 2 = 3.94 TFLOP/s [{_SEED}]",
        aliases=("K20X", "Tesla K20X"),
    )
    k40: _RowOptions = dict(aliases=("K40", "Tesla K40", "K40c", "K40m"),
                            note="The post used 4.2 (slightly below the 4.29 base-clock spec).")
    r += _rows(
        "NVIDIA Tesla K40", "gpu", {"fp32": 5.05}, clock="boost",
        source=f"NVIDIA Tesla K40 spec at boost: 2880 CUDA cores x 0.875 GHz x 2 = 5.04 TFLOP/s (5.05 in {_SEED})",
        **k40,
    )
    r += _rows(
        "NVIDIA Tesla K40", "gpu", {"fp32": 4.29}, clock="base",
        source=f"NVIDIA Tesla K40 spec at base: 2880 CUDA cores x 0.745 GHz x 2 = 4.29 TFLOP/s [{_SEED}]",
        **k40,
    )
    k80: _RowOptions = dict(scope="board", aliases=("K80", "Tesla K80"),
                            note="Board of two GK210 GPUs (2 x 2496 CUDA cores); the post used 8.5 per board.")
    r += _rows(
        "NVIDIA Tesla K80", "gpu", {"fp32": 8.13}, clock="boost",
        source=f"{_SEED} (boost-clock figure as recorded there; 4992 cores x 2 FLOP x 0.875 GHz max boost "
        "would give 8.74 TFLOP/s)",
        **k80,
    )
    r += _rows(
        "NVIDIA Tesla K80", "gpu", {"fp32": 5.6}, clock="base",
        source=f"NVIDIA Tesla K80 spec at base: 4992 CUDA cores x 0.560 GHz x 2 = 5.59 TFLOP/s [{_SEED}]",
        **k80,
    )
    tb: _RowOptions = dict(aliases=("Titan Black", "GTX Titan Black", "GeForce GTX Titan Black", "TitanBlack"),
                           note="The post's 5.1 equals the base-clock peak (5.12), not the 5.645 boost spec.")
    r += _rows(
        "NVIDIA GeForce GTX Titan Black", "gpu", {"fp32": 5.645}, clock="boost",
        source=f"NVIDIA spec: 2880 CUDA cores x 0.980 GHz boost x 2 = 5.645 TFLOP/s [{_SEED}]",
        **tb,
    )
    r += _rows(
        "NVIDIA GeForce GTX Titan Black", "gpu", {"fp32": 5.12}, clock="base",
        source="derived: 2880 CUDA cores x 0.889 GHz base x 2 = 5.12 TFLOP/s",
        **tb,
    )
    tx: _RowOptions = dict(aliases=("Titan X", "TitanX", "GTX Titan X", "Titan X Maxwell", "GeForce GTX Titan X"),
                           note="Maxwell GM200 Titan X (2015), not the Pascal Titan X. The post used 6 (close to "
                           "the 6.14 base-clock peak).")
    r += _rows(
        "NVIDIA GeForce GTX Titan X (Maxwell)", "gpu", {"fp32": 6.69}, clock="boost",
        source=f"NVIDIA spec: 3072 CUDA cores x 1.089 GHz boost x 2 = 6.69 TFLOP/s [{_SEED}]",
        **tx,
    )
    r += _rows(
        "NVIDIA GeForce GTX Titan X (Maxwell)", "gpu", {"fp32": 6.14}, clock="base",
        source="derived: 3072 CUDA cores x 1.000 GHz base x 2 = 6.14 TFLOP/s",
        **tx,
    )
    # ---------------------------------------------------------------- seed-era GPUs: figures the post used
    r += _rows(
        "GTX 580 (AI and compute)", "gpu", {"fp32": 1.58}, clock="n/a",
        source=f"{_AIC}: AlexNet Method 2, '2 * (1.58 * 10^-3 PF) * 5.5 * 0.33'",
        aliases=("GTX 580 AIC", "GTX 580 (AI and compute, AlexNet)"),
        note="Equals the 1.581 spec, rounded.",
    )
    r += _rows(
        "GTX 580 (AI and compute, Dropout/ZFNet)", "gpu", {"fp32": 1.54}, clock="n/a",
        source=f"{_AIC}: Dropout and 'Visualizing and Understanding Conv Nets', '1.54 TFLOPS/GTX 580'",
        aliases=("GTX 580 AIC Dropout", "GTX 580 (AI and compute, Dropout)", "GTX 580 (AI and compute, ZFNet)"),
        note="2.6% below the 1.581 spec; the post does not say why.",
    )
    r += _rows(
        "K20 (AI and compute)", "gpu", {"fp32": 3.5}, clock="n/a",
        source=f"{_AIC}: Seq2Seq Method 2, '3.5 TFLOPS/ K20 GPU'",
        aliases=("K20 AIC",), note="K20/K20c spec 3.52, K20X 3.94.",
    )
    r += _rows(
        "K40 (AI and compute)", "gpu", {"fp32": 4.2}, clock="n/a",
        source=f"{_AIC}: Neural Architecture Search Method 2, '800 K40's * 28 days * 4.2 TFLOPS/GPU'",
        aliases=("K40 AIC",), note="Spec 4.29 base, 5.05 boost.",
    )
    r += _rows(
        "K80 (AI and compute)", "gpu", {"fp32": 8.5}, clock="n/a", scope="board",
        source=f"{_AIC}: Xception and Neural Machine Translation Method 2, '8.5 TFLOPS/GPU'",
        aliases=("K80 AIC",), note="Per K80 board (two GPUs); spec 5.6 base, 8.13 boost.",
    )
    r += _rows(
        "Titan Black (AI and compute)", "gpu", {"fp32": 5.1}, clock="n/a",
        source=f"{_AIC}: VGG Method 2, '4 Titan Black GPU's * 15 days * 5.1 TFLOPS/GPU'",
        aliases=("Titan Black AIC",), note="Spec 5.645 at boost; 5.12 at base clock.",
    )
    r += _rows(
        "Titan X (AI and compute)", "gpu", {"fp32": 6.0}, clock="n/a",
        source=f"{_AIC}: DeepSpeech2 Method 2, '16 TitanX GPU's * 5 days * 6 TFLOPS/GPU'",
        aliases=("TitanX AIC", "Titan X AIC"), note="Spec 6.69 at boost; 6.14 at base clock.",
    )
    # ---------------------------------------------------------------- modern accelerators
    # NVIDIA quotes tensor-core rates (tf32/fp16/bf16/fp8) at a tensor clock below the maximum SM clock, and the
    # CUDA-core rates (fp32, fp64) and FP64 tensor rate at the maximum SM clock (GPU_COUNTERS.md section 5). Each
    # Hopper row's source names both clocks. Dense figures are NVIDIA's "with sparsity" figures halved.
    r += _rows(
        "NVIDIA V100 SXM2", "gpu", {"fp64": 7.8, "fp32": 15.7, "fp16": 125.0}, clock="boost",
        source=f"NVIDIA V100 datasheet; 80 SMs x 1.53 GHz x (FP64 64, FP32 128, FP16 TC 1024 FLOP/clk/SM) "
        f"[{_SEED}, {_GPUC}]",
        aliases=("V100", "V100 SXM2", "Tesla V100", "V100-SXM2-16GB", "V100-SXM2-32GB"),
        note="fp16 is the tensor-core rate (no bf16 on Volta).",
    )
    ampere = {"fp64": 9.75, "fp64_tensor": 19.5, "fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0}
    r += _rows(
        "NVIDIA A100 SXM4", "gpu", ampere, clock="boost",
        source=f"NVIDIA A100 datasheet (dense); 108 SMs x 1.41 GHz x (FP64 64, FP64 TC 128, FP32 128, TF32 1024, "
        f"FP16/BF16 2048 FLOP/clk/SM) [{_SEED}, {_GPUC}]",
        aliases=("A100", "A100 SXM4", "A100 SXM", "A100-SXM4-40GB", "A100-SXM4-80GB", "A100 80GB", "A100 40GB",
                 "A100 80GB SXM", "A100 40GB SXM"),
        note="40 GB and 80 GB boards have the same peaks; 'A100' without a form factor means the SXM4 part.",
    )
    r += _rows(
        "NVIDIA A100 PCIe", "gpu", ampere, clock="boost",
        source="NVIDIA A100 datasheet, PCIe columns (40 GB and 80 GB): the same dense peaks as SXM4, 108 SMs x "
        f"1.41 GHz boost [{_GPUC}]",
        aliases=("A100 PCIe", "A100-PCIE-40GB", "A100-PCIE-80GB", "A100 80GB PCIe", "A100 40GB PCIe"),
        note="Same spec as SXM4; its 250-300 W power limit holds sustained clocks lower.",
    )
    hopper = {"fp64": 33.5, "fp64_tensor": 66.9, "fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4,
              "fp8": 1978.9}
    hopper_src = ("132 SMs; fp64 33.5 = 132 x 128 x 1.98 GHz, fp64_tensor and fp32 66.9 = 132 x 256 x 1.98 GHz "
                  "(maximum SM clock); tf32 494.7 = 132 x 2048 x 1.83 GHz, fp16/bf16 989.4 = 132 x 4096 x 1.83 GHz, "
                  "fp8 1978.9 = 132 x 8192 x 1.83 GHz (the 1.83 GHz tensor clock NVIDIA's tensor figures assume)")
    r += _rows(
        "NVIDIA H100 SXM5", "gpu", hopper, clock="boost",
        source=f"NVIDIA H100 datasheet, SXM column (dense); {hopper_src} [{_SEED}, {_GPUC}]",
        aliases=("H100", "H100 SXM", "H100 SXM5", "H100-SXM5-80GB", "H100 80GB HBM3", "H100 80GB", "HGX H100",
                 "DGX H100"),
    )
    r += _rows(
        "NVIDIA H100 PCIe", "gpu",
        {"fp64": 25.6, "fp64_tensor": 51.2, "fp32": 51.2, "tf32": 378.0, "fp16": 756.5, "bf16": 756.5,
         "fp8": 1513.0},
        clock="boost",
        source="NVIDIA H100 datasheet, PCIe column (sparse 756 TF32, 1513 FP16/BF16, 3026 FP8 halved); 114 SMs; "
        "fp64 25.6 = 114 x 128 x 1.755 GHz, fp64_tensor and fp32 51.2 = 114 x 256 x 1.755 GHz (maximum SM clock); "
        "tf32 378 = 114 x 2048 x 1.62 GHz, fp16/bf16 756.5 = 114 x 4096 x 1.62 GHz, fp8 1513 = 114 x 8192 x 1.62 GHz "
        f"(1.62 GHz tensor clock) [{_SEED}, {_GPUC}]",
        aliases=("H100 PCIe", "H100-PCIe", "H100 PCIE 80GB"),
    )
    nvl = {"fp64": 30.0, "fp64_tensor": 60.0, "fp32": 60.0, "tf32": 417.5, "fp16": 835.5, "bf16": 835.5,
           "fp8": 1670.5}
    nvl_src = ("per GPU (sparse 835 TF32, 1671 FP16/BF16, 3341 FP8 halved); 132 SMs; fp32 60 = 132 x 256 x ~1.78 GHz; "
               "fp16/bf16 835.5 = 132 x 4096 x ~1.545 GHz (the tensor clock these figures imply)")
    r += _rows(
        "NVIDIA H100 NVL", "gpu", nvl, clock="boost",
        source=f"NVIDIA H100 datasheet, NVL column, {nvl_src} [{_GPUC}]",
        aliases=("H100 NVL", "H100 NVL 94GB", "H100NVL"),
        note="An early NVIDIA brief gave figures for a pair of NVL boards; these are per GPU.",
    )
    r += _rows(
        "NVIDIA H200 SXM", "gpu", hopper, clock="boost",
        source=f"NVIDIA H200 datasheet, SXM column: same die and clocks as H100 SXM5, so the same rates; {hopper_src} "
        f"[{_SEED}, {_GPUC}]",
        aliases=("H200", "H200 SXM", "H200 SXM 141GB", "H200 141GB", "HGX H200", "DGX H200"),
    )
    r += _rows(
        "NVIDIA H200 NVL", "gpu", nvl, clock="boost",
        source=f"NVIDIA H200 datasheet, NVL column (the same rates as H100 NVL), {nvl_src} [{_GPUC}]",
        aliases=("H200 NVL", "H200NVL"),
    )
    r += _rows(
        "NVIDIA GH200", "gpu", hopper, clock="boost",
        source=f"NVIDIA GH200 Grace Hopper Superchip datasheet, the Hopper GPU's rates (the same as H100 SXM5); "
        f"{hopper_src} [{_GPUC}]",
        aliases=("GH200", "Grace Hopper", "GH200 Grace Hopper", "GH200 Grace Hopper Superchip", "GH200 480GB",
                 "GH200 144GB", "GH200 96GB"),
        note="Per Hopper GPU; the Grace CPU's FLOPs are not included.",
    )
    r += _rows(
        "NVIDIA B200", "gpu", {"fp64": 37.0, "fp64_tensor": 37.0, "tf32": 1125.0, "fp16": 2250.0, "bf16": 2250.0,
                               "fp8": 4500.0},
        clock="boost",
        source="NVIDIA HGX B200 datasheet divided by its 8 GPUs (sparse 18 PF TF32, 36 PF FP16/BF16, 72 PF FP8 "
        f"halved; FP64 and FP64 tensor 296 TF); NVIDIA states no clock for these figures [{_SEED}]",
        aliases=("B200", "HGX B200", "DGX B200", "B200 SXM", "B200 SXM6"),
        note="No CUDA-core FP32 figure is published for B200; fp16 = bf16 on tensor cores.",
    )
    r += _rows(
        "AMD Instinct MI250X", "gpu",
        {"fp64": 47.9, "fp64_tensor": 95.7, "fp32": 47.9, "fp16": 383.0, "bf16": 383.0}, clock="boost",
        scope="board",
        source="AMD Instinct MI250X datasheet: 220 CUs x 1.7 GHz peak engine clock; fp64/fp32 vector 47.9 = 220 x "
        "128 x 1.7 GHz, fp64 matrix 95.7, fp16/bf16 matrix 383 = 220 x 1024 x 1.7 GHz",
        aliases=("MI250X", "Instinct MI250X", "AMD MI250X"),
        note="Per OAM module, which software sees as two GCDs (devices): per device, halve. Packed FP32 and FP32 "
        "matrix rates are 95.7; fp64_tensor holds the FP64 matrix rate.",
    )
    r += _rows(
        "AMD Instinct MI250", "gpu",
        {"fp64": 45.3, "fp64_tensor": 90.5, "fp32": 45.3, "fp16": 362.1, "bf16": 362.1}, clock="boost",
        scope="board",
        source="AMD Instinct MI250 datasheet: 208 CUs x 1.7 GHz peak engine clock; fp64/fp32 vector 45.3, fp64 "
        "matrix 90.5, fp16/bf16 matrix 362.1 = 208 x 1024 x 1.7 GHz",
        aliases=("MI250", "Instinct MI250", "AMD MI250"),
        note="Per OAM module of two GCDs (devices): per device, halve.",
    )
    r += _rows(
        "AMD Instinct MI300X", "gpu",
        {"fp64": 81.7, "fp64_tensor": 163.4, "fp32": 163.4, "tf32": 653.7, "fp16": 1307.4, "bf16": 1307.4,
         "fp8": 2614.9},
        clock="boost",
        source="AMD Instinct MI300X datasheet (dense): 304 CUs x 2.1 GHz peak engine clock; fp64 vector 81.7, "
        "fp64 matrix and fp32 163.4, tf32 653.7 = 304 x 1024 x 2.1 GHz, fp16/bf16 1307.4 = 304 x 2048 x 2.1 GHz, "
        f"fp8 2614.9 = 304 x 4096 x 2.1 GHz [{_SEED}]",
        aliases=("MI300X", "Instinct MI300X", "AMD MI300X"),
        note="fp64_tensor holds the FP64 matrix rate; FP32 vector and matrix rates are equal.",
    )
    tpus: tuple[tuple[str, float, tuple[str, ...], str], ...] = (
        ("Google TPU v2", 45.0, ("TPU v2", "TPUv2", "v2"), "TPU v2"),
        ("Google TPU v3", 123.0, ("TPU v3", "TPUv3", "v3"), "TPU v3"),
        ("Google TPU v4", 275.0, ("TPU v4", "TPUv4", "v4", "TPU v4 pod"), "TPU v4"),
        ("Google TPU v5e", 197.0, ("TPU v5e", "TPUv5e", "v5e", "v5litepod", "TPU v5 lite", "v5lite", "TPU v5litepod"),
         "TPU v5e"),
        ("Google TPU v5p", 459.0, ("TPU v5p", "TPUv5p", "v5p"), "TPU v5p"),
        ("Google TPU v6e", 918.0, ("TPU v6e", "TPUv6e", "v6e", "Trillium", "TPU Trillium"), "TPU v6e"),
    )
    for tpu, tflops, tpu_aliases, page in tpus:
        r += _rows(
            tpu, "tpu", {"bf16": tflops}, clock="n/a",
            source=f"Google Cloud TPU documentation ({page} system architecture page), peak BF16 per chip [{_SEED}]",
            aliases=tpu_aliases,
        )
    # AWS Trainium is a matrix-engine accelerator, not a TPU; it is stored with kind "tpu" (non-GPU matrix
    # accelerator) so that estimates apply the same utilization prior as to TPUs.
    r += _rows(
        "AWS Trainium", "tpu", {"fp32": 47.5, "tf32": 190.0, "fp16": 190.0, "bf16": 190.0, "fp8": 190.0},
        clock="n/a",
        source="AWS Neuron documentation, Trainium architecture: per chip 190 TFLOPS FP8/FP16/BF16/TF32 and 47.5 "
        "TFLOPS FP32 (trn1.32xlarge: 16 chips)",
        aliases=("Trainium", "Trainium1", "Trn1", "Trn1n", "AWS Trn1", "AWS Trainium1"),
        note="Per Trainium chip (two NeuronCores-v2); a trn1.32xlarge instance holds 16.",
    )
    # ------------------------------------------------------- CPUs (examples; cores x clock x FLOP/cycle)
    for name, cores, clock_hz, isa, aliases, extra in (
        ("Intel Xeon Platinum 8380", 40, 2.3e9, "avx512", ("Xeon 8380", "Ice Lake 8380"),
         "AVX-512 heavy code usually runs below the base clock, so this is an upper bound."),
        ("Intel Xeon Platinum 8480+", 56, 2.0e9, "avx512", ("Xeon 8480+", "Xeon 8480", "Sapphire Rapids 8480+"),
         "AMX tile (bf16/int8) rates are not included."),
        ("AMD EPYC 7763", 64, 2.45e9, "avx2", ("EPYC 7763", "Milan 7763"),
         "Zen 3: two 256-bit FMA pipes per core."),
    ):
        rates = {}
        sources = []
        for precision in ("fp32", "fp64"):
            fpc = flop_per_cycle(isa, precision)
            rates[precision] = theoretical_cpu_peak_flops_per_s(cores, clock_hz, fpc) / _T
            sources.append(f"{precision}: {cores} cores x {clock_hz / 1e9:g} GHz base x {fpc} FLOP/cycle/core "
                           f"({isa}, 2 FMA units) = {rates[precision]:.3f} TFLOP/s")
        r += _rows(name, "cpu", rates, clock="base", source="derived: " + "; ".join(sources) + ".",
                   aliases=aliases, note=extra)
    return tuple(r)


# --------------------------------------------------------------------- CPU arithmetic (used by _build)

#: Vector lanes per instruction for FP32, and whether the ISA has fused multiply-add.
_ISA = {
    "avx512": (16, True),
    "avx2": (8, True),   # AVX2 + FMA3 (Haswell and later, Zen)
    "avx": (8, False),   # Sandy/Ivy Bridge: separate multiply and add ports
    "sse": (4, False),   # SSE2..SSE4: separate multiply and add ports
    "scalar": (1, True),  # scalar FMA (one lane)
}
_ISA_ALIASES = {
    "avx512": "avx512", "avx512f": "avx512",
    "avx2": "avx2", "avx2fma": "avx2", "fma": "avx2", "fma3": "avx2",
    "avx": "avx", "avx1": "avx",
    "sse": "sse", "sse2": "sse", "sse3": "sse", "sse4": "sse", "sse41": "sse", "sse42": "sse",
    "scalar": "scalar", "scalarfma": "scalar",
}


def flop_per_cycle(isa: str, precision: str, fma_units: int = 2) -> int:
    """Peak FLOP per cycle per core for a SIMD instruction set.

    ``lanes x fma_units x (2 if the ISA has FMA else 1)``, where lanes are FP32 lanes per vector (halved for FP64):

    * ``"avx512"``: 16 lanes, FMA. With 2 FMA units: 16 x 2 x 2 = 64 (FP32), 32 (FP64).
    * ``"avx2"`` (AVX2 + FMA3): 8 lanes, FMA. With 2 units: 8 x 2 x 2 = 32 (FP32), 16 (FP64).
    * ``"avx"`` (no FMA): 8 lanes. 8 x 2 x 1 = 16 (FP32).
    * ``"sse"`` (no FMA): 4 lanes. 4 x 2 x 1 = 8 (FP32), 4 (FP64).
    * ``"scalar"`` (scalar FMA): 1 lane. 1 x 2 x 2 = 4 (FP32 and FP64 alike; scalar code is not lane-limited).

    Choice for ISAs without FMA (SSE, AVX): ``fma_units`` then counts the vector arithmetic ports, one multiply
    port and one add port on the classic Intel cores, each retiring one FLOP per lane per cycle. So the default
    ``fma_units=2`` gives SSE 4 lanes x (1 mul + 1 add) = 8 FP32 FLOP/cycle, the usual textbook figure.

    Args:
        isa: ``"avx512"``, ``"avx2"``, ``"avx"``, ``"sse"`` or ``"scalar"`` (case, dashes and ``+`` ignored;
            ``"AVX2+FMA"`` works).
        precision: ``"fp32"`` or ``"fp64"``.
        fma_units: FMA units per core (or arithmetic ports, for ISAs without FMA). Most server cores have 2;
            some AVX-512 parts (e.g. Xeon Silver/Bronze) have 1. This ISA rule does not know the core: Zen 4 runs
            AVX-512 on 256-bit pipes (32 FP32 FLOP/cycle, not 64). For a real CPU use
            :func:`pyprof.peaks.cpu.lookup` (vendor, family, model: a microarchitecture table with sources).

    Returns:
        FLOP per cycle per core.

    Raises:
        InvalidInputError: unknown ISA or precision, or ``fma_units`` not a positive integer.
    """
    key = _ISA_ALIASES.get(re.sub(r"[^a-z0-9]", "", str(isa).lower()))
    if key is None:
        raise InvalidInputError(
            f"isa={isa!r} is not a known instruction set; use one of {sorted(_ISA)} "
            "(e.g. 'avx2' for AVX2+FMA, 'avx512' for AVX-512)."
        )
    prec = str(precision).lower()
    if prec not in ("fp32", "fp64"):
        raise InvalidInputError(
            f"precision={precision!r} is not supported for CPU peaks; use 'fp32' or 'fp64'."
        )
    if isinstance(fma_units, bool) or not isinstance(fma_units, int) or fma_units < 1:
        raise InvalidInputError(
            f"fma_units={fma_units!r} must be a positive whole number (most server cores have 2 FMA units)."
        )
    lanes, has_fma = _ISA[key]
    if prec == "fp64" and lanes > 1:
        lanes //= 2
    return lanes * fma_units * (2 if has_fma else 1)


def theoretical_cpu_peak_flops_per_s(cores: int, clock_hz: float, flop_per_cycle_per_core: int) -> float:
    """Theoretical CPU peak: ``cores x clock_hz x flop_per_cycle_per_core``.

    Args:
        cores: Physical cores used (not hardware threads: SMT does not add FMA units).
        clock_hz: Clock in Hz (say which clock you mean: base, all-core turbo, AVX-512 license frequency).
        flop_per_cycle_per_core: From :func:`flop_per_cycle`, e.g. 32 for FP32 AVX2 with 2 FMA units.

    Returns:
        Peak FLOP/s. Example: 64 cores x 2.45e9 Hz x 32 = 5.018e12 FLOP/s.

    Raises:
        InvalidInputError: a non-positive or non-finite argument, or non-integer cores.
    """
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise InvalidInputError(f"cores={cores!r} must be a positive whole number of physical cores.")
    if isinstance(flop_per_cycle_per_core, bool) or not isinstance(flop_per_cycle_per_core, int) \
            or flop_per_cycle_per_core < 1:
        raise InvalidInputError(
            f"flop_per_cycle_per_core={flop_per_cycle_per_core!r} must be a positive whole number; "
            "compute it with flop_per_cycle(isa, precision)."
        )
    try:
        clock = float(clock_hz)
    except (TypeError, ValueError):
        raise InvalidInputError(f"clock_hz={clock_hz!r} must be a number in Hz (e.g. 2.45e9).") from None
    if not math.isfinite(clock) or clock <= 0:
        raise InvalidInputError(f"clock_hz={clock_hz!r} must be a positive finite number in Hz (e.g. 2.45e9).")
    if clock < 1e6:
        raise InvalidInputError(
            f"clock_hz={clock_hz!r} is below 1 MHz; pass the clock in Hz (2.45e9), not GHz (2.45)."
        )
    return cores * clock * flop_per_cycle_per_core


PEAKS: tuple[PeakEntry, ...] = _build()


# --------------------------------------------------------------------- lookup

def _norm(name: str) -> str:
    """Case/space/dash-insensitive key: lowercase, keep letters, digits and '+' only."""
    return re.sub(r"[^a-z0-9+]", "", str(name).lower())


def _index() -> dict[str, str]:
    idx: dict[str, str] = {}
    for e in PEAKS:
        for n in (e.hardware, *e.aliases):
            k = _norm(n)
            prev = idx.get(k)
            if prev is not None and prev != e.hardware:
                raise RuntimeError(f"peak database: name {n!r} is ambiguous ({prev!r} and {e.hardware!r})")
            idx[k] = e.hardware
    return idx


_INDEX = _index()
_ALL_NAMES = sorted({n for e in PEAKS for n in (e.hardware, *e.aliases)})

# Words users and drivers put around a product name that do not change its peak: vendor and brand prefixes, memory
# sizes ("80GB", "141GB", GH200's "144G") and memory kinds. "NVIDIA A100 80GB", "AMD Instinct MI250X 128GB" and
# "NVIDIA H100 80GB HBM3" reduce to the product name. Form factors (SXM, PCIe, NVL) are kept: they change the peak.
_NOISE = re.compile(r"\b(nvidia|amd|google|aws|amazon|tesla|instinct|cloud|\d+\s*g(?:i?b)?|hbm\d?e?)\b")


def _reduced(name: str) -> str:
    return _norm(_NOISE.sub(" ", str(name).lower().replace("_", " ")))


def _reduced_index() -> dict[str, set[str]]:
    idx: dict[str, set[str]] = {}
    for e in PEAKS:
        for n in (e.hardware, *e.aliases):
            k = _reduced(n)
            if k:
                idx.setdefault(k, set()).add(e.hardware)
    return idx


_REDUCED = _reduced_index()


def _canonical(hardware: str) -> str:
    if not isinstance(hardware, str) or not hardware.strip():
        raise UnknownHardwareError(f"hardware={hardware!r} is empty or not a string. {_LIST_HINT}")
    found = _INDEX.get(_norm(hardware))
    if found is not None:
        return found
    # Second chance without vendor words and memory sizes; only an unambiguous product is accepted.
    reduced = _REDUCED.get(_reduced(hardware), set())
    if len(reduced) == 1:
        return next(iter(reduced))
    # Close matches on the normalised form, reported with their readable spelling.
    by_norm: dict[str, str] = {}
    for n in _ALL_NAMES:
        by_norm.setdefault(_norm(n), n)
    close_keys = difflib.get_close_matches(_norm(hardware), list(by_norm), n=5, cutoff=0.5)
    close = [by_norm[k] for k in close_keys]
    hint = f" Close matches: {', '.join(repr(c) for c in close)}." if close else ""
    raise UnknownHardwareError(f"Unknown hardware {hardware!r}.{hint} {_LIST_HINT}")


def _rows_for(canonical: str) -> list[PeakEntry]:
    return [e for e in PEAKS if e.hardware == canonical]


def lookup(hardware: str, precision: str = "fp32", clock: str | None = None) -> PeakEntry:
    """Find the dense peak for ``hardware`` at ``precision``.

    Args:
        hardware: Canonical name or alias; case, spaces, dashes, dots and parentheses are ignored
            (``"h100"``, ``"H100-SXM"``, ``"gtx580"`` all work).
        precision: One of ``fp64, fp64_tensor, fp32, tf32, fp16, bf16, fp8``.
        clock: ``"boost"`` or ``"base"`` where both are stored (K40, K80, Titan Black, Titan X). ``None`` takes
            the boost row when there is a choice.

    Returns:
        The matching :class:`PeakEntry`.

    Raises:
        UnknownHardwareError: the name is unknown (the message lists close matches).
        InvalidInputError: the hardware has no figure at that precision or clock (the message lists those it has).
    """
    canonical = _canonical(hardware)
    rows = _rows_for(canonical)
    prec = str(precision).strip().lower().replace("-", "_")
    have = sorted({e.precision for e in rows}, key=PRECISIONS.index)
    at_prec = [e for e in rows if e.precision == prec]
    if not at_prec:
        raise InvalidInputError(
            f"{canonical} has no stored peak for precision={precision!r}; available: {', '.join(have)}. "
            "Pass one of those, or give the peak explicitly with peak_flops_per_s= (--peak-tflops)."
        )
    if clock is None:
        for pref in ("boost", "n/a", "base"):
            for e in at_prec:
                if e.clock == pref:
                    return e
    want = str(clock).strip().lower()
    for e in at_prec:
        if e.clock == want:
            return e
    clocks = sorted({e.clock for e in at_prec})
    raise InvalidInputError(
        f"{canonical} has no {prec} peak at clock={clock!r}; available clocks: {', '.join(clocks)}."
    )


def precisions(hardware: str) -> list[str]:
    """Precisions with a stored peak for ``hardware``, in the order fp64, fp64_tensor, fp32, tf32, fp16, bf16, fp8.

    Raises:
        UnknownHardwareError: the name is unknown.
    """
    return sorted({e.precision for e in _rows_for(_canonical(hardware))}, key=PRECISIONS.index)


def list_hardware() -> list[str]:
    """Canonical names of all hardware in the database, in database order (spec rows, seed rows, modern, CPUs)."""
    return list(dict.fromkeys(e.hardware for e in PEAKS))


def hardware_kind(hardware: str) -> str:
    """``"gpu"``, ``"cpu"`` or ``"tpu"`` for ``hardware``.

    Raises:
        UnknownHardwareError: the name is unknown.
    """
    return _rows_for(_canonical(hardware))[0].kind
