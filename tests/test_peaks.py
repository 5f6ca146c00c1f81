"""Tests for pyprof.hardware.peaks: the peak database, name matching, and CPU peak arithmetic."""

import math

import pytest

from pyprof.errors import InvalidInputError, UnknownHardwareError
from pyprof.peaks import database as peaks
from pyprof.peaks.database import (
    PEAKS,
    PRECISIONS,
    flop_per_cycle,
    hardware_kind,
    list_hardware,
    lookup,
    precisions,
    theoretical_cpu_peak_flops_per_s,
)

# ------------------------------------------------------------------ database invariants


def test_every_row_is_dense_and_well_formed():
    assert len(PEAKS) > 40
    for e in PEAKS:
        assert e.dense is True, e
        assert e.kind in peaks.KINDS, e
        assert e.precision in PRECISIONS, e
        assert e.clock in peaks.CLOCKS, e
        assert e.scope in peaks.SCOPES, e
        assert e.source, e
        assert math.isfinite(e.peak_flops_per_s) and e.peak_flops_per_s > 1e9, e


def test_one_row_per_hardware_precision_clock():
    keys = [(e.hardware, e.precision, e.clock) for e in PEAKS]
    assert len(keys) == len(set(keys))


# ------------------------------------------------------------------ name matching


@pytest.mark.parametrize(
    "name, expected",
    [
        ("h100", "NVIDIA H100 SXM5"),
        ("H100-SXM", "NVIDIA H100 SXM5"),
        ("  H100 sxm5 ", "NVIDIA H100 SXM5"),
        ("gtx580", "NVIDIA GeForce GTX 580"),
        ("GTX 580", "NVIDIA GeForce GTX 580"),
        ("gtx-580", "NVIDIA GeForce GTX 580"),
        ("A100", "NVIDIA A100 SXM4"),
        ("tpu-v4", "Google TPU v4"),
        ("k80", "NVIDIA Tesla K80"),
        ("gtx 580 (ai and compute)", "GTX 580 (AI and compute)"),
    ],
)
def test_lookup_is_case_space_dash_insensitive(name, expected):
    assert lookup(name, "bf16" if "tpu" in name else "fp32").hardware == expected


def test_unknown_hardware_lists_close_matches_and_how_to_list():
    with pytest.raises(UnknownHardwareError) as info:
        lookup("H10O")
    msg = str(info.value)
    assert "'H10O'" in msg
    assert "H100" in msg  # difflib close match
    assert "pyprof estimate --list-hardware" in msg
    assert "peak_flops_per_s=" in msg


def test_unknown_hardware_is_also_a_keyerror_and_pyprof_error():
    with pytest.raises(KeyError):
        hardware_kind("no such chip")


def test_unknown_precision_lists_available():
    with pytest.raises(InvalidInputError) as info:
        lookup("TPU v4", "fp32")
    assert "available: bf16" in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        lookup("V100", "bf16")  # Volta has no bf16
    assert "fp64, fp32, fp16" in str(info.value)


# ------------------------------------------------------------------ seed-era figures: spec vs what the post used


def test_gtx580_spec_and_used_rows():
    # spec: 512 cores x 1.544 GHz x 2 = 1.581e12
    assert lookup("GTX 580").peak_flops_per_s == pytest.approx(512 * 1.544e9 * 2, rel=1e-3)
    assert lookup("GTX 580").peak_flops_per_s == pytest.approx(1.581e12)
    assert lookup("GTX 580 (AI and compute)").peak_flops_per_s == pytest.approx(1.58e12)  # AlexNet
    assert lookup("GTX 580 (AI and compute, Dropout/ZFNet)").peak_flops_per_s == pytest.approx(1.54e12)
    assert "1.54" in lookup("GTX 580").note


@pytest.mark.parametrize(
    "used_name, used_tflops, spec_name, spec_clock, spec_tflops",
    [
        ("K20 (AI and compute)", 3.5, "K20", "base", 3.52),
        ("K20 (AI and compute)", 3.5, "K20X", "base", 3.94),
        ("K40 (AI and compute)", 4.2, "K40", "base", 4.29),
        ("K40 (AI and compute)", 4.2, "K40", "boost", 5.05),
        ("K80 (AI and compute)", 8.5, "K80", "boost", 8.13),
        ("K80 (AI and compute)", 8.5, "K80", "base", 5.6),
        ("Titan Black (AI and compute)", 5.1, "Titan Black", "boost", 5.645),
        ("Titan X (AI and compute)", 6.0, "Titan X", "boost", 6.69),
    ],
)
def test_seed_used_and_spec_rows_are_separate(used_name, used_tflops, spec_name, spec_clock, spec_tflops):
    used = lookup(used_name)
    spec = lookup(spec_name, clock=spec_clock)
    assert used.peak_flops_per_s == pytest.approx(used_tflops * 1e12)
    assert spec.peak_flops_per_s == pytest.approx(spec_tflops * 1e12)
    assert used.hardware != spec.hardware
    assert "AI and compute" in used.source


def test_default_clock_is_boost_where_both_stored():
    assert lookup("K40").clock == "boost"
    assert lookup("K40").peak_flops_per_s == pytest.approx(5.05e12)
    assert lookup("K40", clock="base").peak_flops_per_s == pytest.approx(4.29e12)  # 2880 x 0.745 GHz x 2 = 4.29e12
    with pytest.raises(InvalidInputError, match="available clocks"):
        lookup("H100", "bf16", clock="base")


def test_k80_is_a_board():
    assert lookup("K80").scope == "board"
    assert lookup("K80 (AI and compute)").scope == "board"
    assert lookup("K40").scope == "chip"


def test_titan_black_base_clock_matches_the_posts_figure():
    # 2880 cores x 0.889 GHz x 2 = 5.12e12, the post used 5.1
    assert lookup("Titan Black", clock="base").peak_flops_per_s == pytest.approx(2880 * 0.889e9 * 2, rel=1e-3)


# ------------------------------------------------------------------ modern accelerators


@pytest.mark.parametrize(
    "name, precision, tflops",
    [
        ("V100", "fp32", 15.7),
        ("V100", "fp16", 125.0),
        ("A100", "fp32", 19.5),
        ("A100", "tf32", 156.0),
        ("A100", "bf16", 312.0),
        ("A100", "fp64", 9.75),
        ("A100", "fp64_tensor", 19.5),
        ("H100", "fp32", 66.9),
        ("H100", "tf32", 494.7),
        ("H100", "bf16", 989.4),
        ("H100", "fp8", 1978.9),
        ("H100", "fp64", 33.5),
        ("H100", "fp64_tensor", 66.9),
        ("H100 PCIe", "fp32", 51.2),
        ("H100 PCIe", "bf16", 756.5),  # NVIDIA: 1513 with sparsity / 2
        ("H200", "bf16", 989.4),
        ("B200", "bf16", 2250.0),
        ("B200", "fp8", 4500.0),
        ("MI300X", "fp32", 163.4),
        ("MI300X", "bf16", 1307.4),
        ("TPU v2", "bf16", 45.0),
        ("TPU v3", "bf16", 123.0),
        ("TPU v4", "bf16", 275.0),
        ("TPU v5e", "bf16", 197.0),
        ("TPU v5p", "bf16", 459.0),
    ],
)
def test_modern_dense_peaks(name, precision, tflops):
    assert lookup(name, precision).peak_flops_per_s == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize(
    "typed, canonical",
    [
        # issue 14: names users type, with memory sizes, vendor words and form factors.
        ("A100 80GB", "NVIDIA A100 SXM4"),            # no form factor: the SXM4 part (same peaks as PCIe anyway)
        ("A100 40GB", "NVIDIA A100 SXM4"),
        ("A100 80GB PCIe", "NVIDIA A100 PCIe"),
        ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 PCIe"),
        ("A100 SXM4 80GB", "NVIDIA A100 SXM4"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5"),
        ("H100 SXM5 80GB", "NVIDIA H100 SXM5"),
        ("H100 PCIe 80GB", "NVIDIA H100 PCIe"),
        ("H100 NVL", "NVIDIA H100 NVL"),
        ("H200 141GB", "NVIDIA H200 SXM"),
        ("H200 NVL", "NVIDIA H200 NVL"),
        ("GH200", "NVIDIA GH200"),
        ("NVIDIA GH200 144G HBM3e", "NVIDIA GH200"),
        ("Grace Hopper", "NVIDIA GH200"),
        ("HGX B200", "NVIDIA B200"),
        ("B200 192GB", "NVIDIA B200"),
        ("MI250X", "AMD Instinct MI250X"),
        ("AMD Instinct MI250X 128GB", "AMD Instinct MI250X"),
        ("MI250", "AMD Instinct MI250"),
        ("AMD Instinct MI300X 192GB", "AMD Instinct MI300X"),
        ("tpu-v4", "Google TPU v4"),
        ("v5e", "Google TPU v5e"),
        ("TPU v5 lite", "Google TPU v5e"),
        ("v5p", "Google TPU v5p"),
        ("Trillium", "Google TPU v6e"),
        ("trn1", "AWS Trainium"),
        ("Trainium", "AWS Trainium"),
    ],
)
def test_common_names_resolve(typed, canonical):
    assert lookup(typed, precisions(typed)[0]).hardware == canonical


def test_reduced_names_never_drop_a_digit_that_names_the_product():
    # Bare numbers are kept ("GTX 580" is not "GTX"); only sizes with a G/GB unit are dropped.
    assert lookup("GTX 580").hardware == "NVIDIA GeForce GTX 580"
    with pytest.raises(UnknownHardwareError):
        lookup("GTX 999")
    with pytest.raises(UnknownHardwareError):
        lookup("A200 80GB")


@pytest.mark.parametrize(
    "name, precision, tflops",
    [
        # Hopper tensor rates at the tensor clock, CUDA-core and FP64 rates at the maximum SM clock.
        ("H100 PCIe", "fp8", 1513.0),        # 114 SMs x 8192 x 1.62 GHz = 1512.9 (3026 sparse / 2)
        ("H100 PCIe", "fp64", 25.6),         # 114 x 128 x 1.755 GHz = 25.6
        ("H100 NVL", "bf16", 835.5),         # 132 x 4096 x 1.545 GHz = 835.3 (1671 sparse / 2)
        ("H100 NVL", "fp32", 60.0),
        ("H200 NVL", "fp8", 1670.5),         # 3341 sparse / 2
        ("GH200", "bf16", 989.4),            # 132 x 4096 x 1.83 GHz
        ("GH200", "fp64", 33.5),             # 132 x 128 x 1.98 GHz = 33.45
        ("A100 PCIe", "tf32", 156.0),        # 108 x 1024 x 1.41 GHz = 155.9
        ("B200", "tf32", 1125.0),            # HGX B200 18 PF sparse / 8 GPUs / 2
        ("B200", "fp64", 37.0),              # HGX B200 296 TF / 8
        ("MI250X", "bf16", 383.0),           # 220 CUs x 1024 x 1.7 GHz = 383.0
        ("MI250X", "fp64", 47.9),            # 220 x 128 x 1.7 GHz = 47.87
        ("MI300X", "fp8", 2614.9),           # 304 CUs x 4096 x 2.1 GHz = 2614.7
        ("MI300X", "tf32", 653.7),           # 304 x 1024 x 2.1 GHz = 653.7
        ("TPU v6e", "bf16", 918.0),
        ("Trn1", "bf16", 190.0),
        ("Trn1", "fp32", 47.5),
    ],
)
def test_accelerator_family_rows(name, precision, tflops):
    assert lookup(name, precision).peak_flops_per_s == pytest.approx(tflops * 1e12)


def test_hopper_sources_name_both_clocks_and_mi250x_is_a_board():
    for name in ("H100", "H100 PCIe", "H200", "GH200"):
        src = lookup(name, "bf16").source
        assert "tensor clock" in src and "maximum SM clock" in src, name
    assert lookup("MI250X", "bf16").scope == "board"   # two GCDs per OAM module
    assert hardware_kind("Trn1") == "tpu"              # non-GPU matrix accelerator


def test_h100_bf16_matches_sm_clock_arithmetic():
    # 132 SMs x 4096 FLOP/clk/SM x 1.83e9 Hz = 9.894e14 (GPU_COUNTERS.md section 5)
    assert lookup("H100", "bf16").peak_flops_per_s == pytest.approx(132 * 4096 * 1.83e9, rel=1e-3)
    # A100: 108 SMs x 2048 x 1.41e9 = 3.119e14
    assert lookup("A100", "bf16").peak_flops_per_s == pytest.approx(108 * 2048 * 1.41e9, rel=1e-3)


def test_no_sparse_figure_stored():
    # NVIDIA's "with sparsity" H100 BF16 figure is 1978.9 TFLOP/s; the dense bf16 row must be half of it.
    assert lookup("H100", "bf16").peak_flops_per_s == pytest.approx(1978.9e12 / 2, rel=1e-4)


def test_precisions_and_kinds_and_listing():
    assert precisions("H100-SXM") == ["fp64", "fp64_tensor", "fp32", "tf32", "fp16", "bf16", "fp8"]
    assert precisions("TPU v5p") == ["bf16"]
    assert hardware_kind("h100") == "gpu"
    assert hardware_kind("tpu v4") == "tpu"
    assert hardware_kind("EPYC 7763") == "cpu"
    names = list_hardware()
    assert len(names) == len(set(names))
    assert "NVIDIA H100 SXM5" in names and "K80 (AI and compute)" in names
    assert names.count("NVIDIA Tesla K40") == 1  # two clock rows, one name


# ------------------------------------------------------------------ CPU arithmetic


@pytest.mark.parametrize(
    "isa, precision, fma_units, expected",
    [
        ("avx512", "fp32", 2, 64),  # 16 lanes x 2 units x 2 (FMA)
        ("avx512", "fp64", 2, 32),  # 8 lanes x 2 x 2
        ("avx512", "fp32", 1, 32),  # 16 x 1 x 2 (one-FMA-unit Xeon Silver)
        ("AVX2+FMA", "fp32", 2, 32),  # 8 x 2 x 2
        ("avx2", "fp64", 2, 16),  # 4 x 2 x 2
        ("avx", "fp32", 2, 16),  # 8 lanes x (1 mul port + 1 add port)
        ("sse", "fp32", 2, 8),  # 4 lanes x (1 mul + 1 add)
        ("sse", "fp64", 2, 4),  # 2 lanes x 2
        ("scalar", "fp32", 2, 4),  # 1 lane x 2 units x 2 (FMA)
        ("scalar", "fp64", 2, 4),  # scalar: FP64 same as FP32
    ],
)
def test_flop_per_cycle(isa, precision, fma_units, expected):
    assert flop_per_cycle(isa, precision, fma_units) == expected


def test_flop_per_cycle_rejects_bad_input():
    with pytest.raises(InvalidInputError, match="isa='neon'"):
        flop_per_cycle("neon", "fp32")
    with pytest.raises(InvalidInputError, match="'fp32' or 'fp64'"):
        flop_per_cycle("avx2", "bf16")
    with pytest.raises(InvalidInputError, match="fma_units"):
        flop_per_cycle("avx2", "fp32", 0)


def test_theoretical_cpu_peak():
    # 64 cores x 2.45e9 Hz x 32 FLOP/cycle = 5.0176e12
    assert theoretical_cpu_peak_flops_per_s(64, 2.45e9, 32) == pytest.approx(5.0176e12)
    # 40 x 2.3e9 x 64 = 5.888e12 (Xeon 8380, AVX-512 FP32) -- and the database row agrees
    assert lookup("Xeon 8380").peak_flops_per_s == pytest.approx(40 * 2.3e9 * 64)
    assert lookup("Xeon 8380", "fp64").peak_flops_per_s == pytest.approx(40 * 2.3e9 * 32)
    assert "40 cores x 2.3 GHz" in lookup("Xeon 8380").source


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 2.4e9, 32), "cores=0"),
        ((8.5, 2.4e9, 32), "cores=8.5"),
        ((8, float("nan"), 32), "clock_hz=nan"),
        ((8, -1.0, 32), "clock_hz=-1.0"),
        ((8, 2.4, 32), "not GHz"),
        ((8, 2.4e9, 0), "flop_per_cycle_per_core=0"),
    ],
)
def test_theoretical_cpu_peak_rejects_bad_input(args, match):
    with pytest.raises(InvalidInputError, match=match):
        theoretical_cpu_peak_flops_per_s(*args)
