"""FLOP/cycle/core from the microarchitecture (pure: no test depends on the host CPU) and the measured cross-check."""

import pytest

from pyprof.errors import InvalidInputError
from pyprof.peaks.cpu import DISAGREEMENT_FACTOR, cross_check, lookup, theoretical_peak
from pyprof.sources.cpu.host import CpuInfo


def test_zen4_avx512_is_32_fp32_flop_per_cycle_not_64():
    # AMD EPYC family 25 (19h) model 17 (11h), Genoa: 512-bit FMAs on two 256-bit pipes: 2 x 8 lanes x 2 = 32
    f = lookup("AuthenticAMD", 25, 17, "avx512", "fp32")
    assert f.microarch == "Zen 4"
    assert f.flop_per_cycle == 32
    assert "57647" in f.source
    # FP64: half the lanes, 2 x 4 x 2 = 16
    assert lookup("amd", 25, 17, "avx512", "fp64").flop_per_cycle == 16
    # Zen 4 desktop (Raphael, model 61h = 97) is the same core: 32
    assert lookup("amd", 25, 0x61, "avx512").flop_per_cycle == 32


def test_zen5_server_has_full_512_bit_pipes_and_mobile_does_not():
    # Turin, family 1Ah (26) model 02h: 2 pipes x 16 lanes x 2 = 64
    assert lookup("amd", 26, 2, "avx512").flop_per_cycle == 64
    # Strix Point, family 1Ah model 24h (36): 256-bit datapath, 2 x 8 x 2 = 32
    assert lookup("amd", 26, 0x24, "avx512").flop_per_cycle == 32
    # Same Turin core with AVX2 code: 2 x 8 x 2 = 32
    assert lookup("amd", 26, 2, "avx2").flop_per_cycle == 32


@pytest.mark.parametrize("family,model,name", [(23, 0x31, "Zen 2"), (25, 0x01, "Zen 3"), (25, 0x21, "Zen 3")])
def test_zen2_and_zen3_avx2_two_256_bit_fma(family, model, name):
    # 2 FMA pipes x 8 FP32 lanes x 2 FLOP = 32
    f = lookup("AuthenticAMD", family, model, "avx2")
    assert (f.microarch, f.flop_per_cycle) == (name, 32)


def test_zen1_splits_256_bit_ops_over_128_bit_pipes():
    # Naples, family 17h model 01h: 2 x 4 lanes x 2 = 16
    assert lookup("amd", 23, 1, "avx2").flop_per_cycle == 16


@pytest.mark.parametrize("model_name,expected", [
    ("Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", 64),   # 2 units x 16 lanes x 2 = 64
    ("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", 64),       # Gold 6xxx: 2 units
    ("Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz", 32),       # Gold 5xxx: 1 unit x 16 x 2 = 32
    ("Intel(R) Xeon(R) Gold 5122 CPU @ 3.60GHz", 64),       # the Gold 5 exception with 2 units
    ("Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz", 32),     # Silver: 1 unit
    ("Intel(R) Xeon(R) Bronze 3106 CPU @ 1.70GHz", 32),     # Bronze: 1 unit
])
def test_skylake_sp_and_cascade_lake_fma_units_by_sku(model_name, expected):
    # family 6 model 55h (85) = Skylake-SP / Cascade Lake
    f = lookup("GenuineIntel", 6, 0x55, "avx512", "fp32", model_name)
    assert f.flop_per_cycle == expected
    assert "ARK" in f.note


def test_xeon_with_hidden_sku_defaults_to_two_units_and_says_so():
    # A VM shows "Intel Xeon Processor (Icelake)": the SKU is unknown, 2 units assumed (2 x 16 x 2 = 64), said in the note
    f = lookup("intel", 6, 0x6A, "avx512", "fp32", "Intel Xeon Processor (Icelake)")
    assert f.flop_per_cycle == 64
    assert "assumed" in f.note and "measured peak decides" in f.note
    # Sapphire Rapids (8Fh = 143) with the same rule
    assert lookup("intel", 6, 0x8F, "avx512", "fp32", "Intel(R) Xeon(R) Gold 5415+").flop_per_cycle == 32


def test_intel_client_cores():
    # Skylake client (5Eh = 94): 2 x 256-bit FMA, 2 x 8 x 2 = 32
    assert lookup("intel", 6, 0x5E, "avx2").flop_per_cycle == 32
    # Ice Lake client (7Eh = 126) AVX-512 on one fused unit: 1 x 16 x 2 = 32
    assert lookup("intel", 6, 0x7E, "avx512").flop_per_cycle == 32
    # Sandy Bridge (2Ah = 42) has no FMA: 8-lane multiply + 8-lane add = 16
    assert lookup("intel", 6, 0x2A, "avx").flop_per_cycle == 16
    # Alder Lake (97h) says the hybrid cores in its note
    assert "E-cores" in lookup("intel", 6, 0x97, "avx2").note


def test_unknown_cpu_falls_back_to_the_isa_rule_and_says_it_is_assumed():
    # Not in the table: ISA rule with 2 FMA units, AVX2: 8 lanes x 2 units x 2 = 32
    f = lookup("intel", 6, 0x01, "avx2")
    assert f.microarch is None and f.source == "assumed" and f.flop_per_cycle == 32
    assert "not in pyprof's microarchitecture table" in f.note
    with pytest.raises(InvalidInputError, match="precision"):
        lookup("amd", 25, 17, "avx512", "bf16")
    with pytest.raises(InvalidInputError, match="instruction set"):
        lookup("amd", None, None, "neon9000")


def test_theoretical_peak_of_a_given_zen4_cpu_info():
    info = CpuInfo(model_name="AMD EPYC 9654", vendor="amd", logical_cpus=2, physical_cores=2,
                   nominal_clock_hz=2.6e9, clock_source="test", isas=["avx512", "avx2"], family=25, model=17)
    peak, how = theoretical_peak("fp32", info)
    # 2 cores x 2.6e9 Hz x 32 FLOP/cycle = 166.4e9 FLOP/s (the old rule gave 64 and twice this)
    assert peak == pytest.approx(166.4e9)
    assert "Zen 4" in how and "32 FLOP/cycle" in how


def test_cross_check_trusts_the_measurement_beyond_1_5x():
    # Measured 100 against a table figure of 200 at the observed clock: ratio 0.5 < 1/1.5, disagreement
    c = cross_check(100e9, 200e9, "64 FLOP/cycle/core")
    assert c.ratio == pytest.approx(0.5) and not c.agrees
    assert c.trusted_flops_per_s == 100e9
    assert "0.50x" in c.note and "trust the measured peak" in c.note
    # 180 against 200: ratio 0.9, within 1.5x, the table stands and nothing is said
    c = cross_check(180e9, 200e9)
    assert c.agrees and c.trusted_flops_per_s == 200e9 and c.note == ""
    # just inside the bound on the high side: 1.49 x 100 = 149
    assert cross_check(149e9, 100e9).agrees and not cross_check(151e9, 100e9).agrees
    assert DISAGREEMENT_FACTOR == 1.5
    with pytest.raises(InvalidInputError):
        cross_check(0, 1e9)


def test_bench_peak_sampler_takes_the_best_and_flags_a_busy_host():
    from pyprof.bench.runner import PeakSampler

    vals = iter([144e9, 232e9, 230e9, 0.0])
    s = PeakSampler(measure=lambda: next(vals))
    for when in ("start", "after a", "end", "broken"):
        s.sample(when)
    out = s.summary()
    # 0.0 is not a measurement: three samples remain; best 232, lowest 144
    assert out["samples"] == 3
    assert out["best_flops_per_s"] == 232e9
    # spread (232 - 144) / 232 = 0.379; 144 / 232 = 0.62 < 0.8: busy
    assert out["spread"] == pytest.approx(88 / 232)
    assert out["host_busy"] is True and "host was busy" in out["note"]
    quiet = PeakSampler(measure=lambda: 200e9)
    quiet.sample("start")
    quiet.sample("end")
    assert quiet.summary()["host_busy"] is False and quiet.summary()["spread"] == 0


def test_bench_restates_utilization_against_the_robust_peak():
    from pyprof.bench.runner import apply_robust_peak
    from pyprof.report.bench_schema import WorkloadResult

    w = WorkloadResult(id="x", name="x", family="f", assumed_utilization=0.17)
    w.achieved_flops_per_s = 115.2e9
    peaks = {"measured": {"flops_per_s": 144e9}}
    apply_robust_peak(peaks, [w], [], {"samples": 3, "best_flops_per_s": 232e9}, 0.17)
    # 115.2 / 144 = 0.80 at the busy start; against the robust 232: 115.2 / 232 = 0.4966
    assert w.utilization_vs_measured == pytest.approx(115.2 / 232)
    assert peaks["measured"]["flops_per_s"] == 232e9
    # error factor: 0.4966 / 0.17 = 2.92 (the assumption underestimates)
    assert w.error_factor_vs_measured == pytest.approx((115.2 / 232) / 0.17)


def test_database_cpu_rows_agree_with_the_microarchitecture_table():
    from pyprof.peaks.database import flop_per_cycle

    # EPYC 7763 (Milan, family 19h model 01h, Zen 3) is priced in the database with avx2 x 2 FMA units = 32
    assert lookup("amd", 0x19, 0x01, "avx2").flop_per_cycle == flop_per_cycle("avx2", "fp32") == 32
    # Xeon Platinum 8380 (Ice Lake-SP, 6Ah) and 8480+ (Sapphire Rapids, 8Fh): avx512 x 2 units = 64
    for model, name in ((0x6A, "Intel(R) Xeon(R) Platinum 8380"), (0x8F, "Intel(R) Xeon(R) Platinum 8480+")):
        assert lookup("intel", 6, model, "avx512", "fp32", name).flop_per_cycle == flop_per_cycle("avx512", "fp32")
