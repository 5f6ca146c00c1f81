"""PM sampling (pyprof.gpu.pm, PmSampler) and the NVML sampler (pyprof.gpu.nvml).

CPU tests run CUPTI's real host API (it needs only a chip name), the formulas on synthetic raw samples, and the
NVML error handling through a stand-in NVML object (that tests the degradation logic, not a measurement).
GPU tests (marked ``gpu``) check real counters and NVML readings during a matmul loop.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from pyprof._native import load_cuda
from pyprof.sources.cuda import nvml as gn
from pyprof.sources.cuda import pm as gp

pynvml = pytest.importorskip("pynvml")


def _gpu_present() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


GPU_PRESENT = _gpu_present()
C, _WHY = load_cuda()
needs_cuda_part = pytest.mark.skipif(C is None, reason=f"pyprof._C_cuda not built: {_WHY}")

# GPU_COUNTERS.md section 2: the TriageCompute names that fit one PM-sampling pass on GH100.
GH100_TRIAGE = [
    "TPC.TriageCompute.sm__cycles_active.sum",
    "TPC.TriageCompute.sm__pipe_tensor_cycles_active_realtime.sum",
    "TPC.TriageCompute.sm__pipe_tensor_op_hmma_cycles_active_realtime.sum",
    "TPC.TriageCompute.sm__inst_executed_pipe_fma_realtime.sum",
    "TPC.TriageCompute.sm__pipe_fp64_cycles_active_realtime.sum",
    "TPC.TriageCompute.tpc__warps_active_realtime.sum",
    "FBSP.TriageCompute.dramc__cycles_elapsed.sum",
    "gpc__cycles_elapsed.max",
    "dram__bytes.sum",
]


# ---------------------------------------------------------------------------------------------------------------
# PM sampling: host side through the real CUPTI host API


@needs_cuda_part
def test_pm_config_gh100_triage_set_is_one_pass():
    cfg = C.pm_config("GH100", GH100_TRIAGE)
    assert cfg["num_passes"] == 1
    assert cfg["config_image_bytes"] > 0
    assert cfg["metrics"] == GH100_TRIAGE


@needs_cuda_part
@pytest.mark.parametrize("chip", ["GH100", "GA100"])
def test_pm_metric_set_uses_names_the_chip_has_and_is_one_pass(chip):
    ms = gp.pm_metric_set(chip)
    assert ms.num_passes == 1  # checked through pm_config, i.e. cuptiProfilerHostGetNumOfPasses
    base = set(C.pm_base_metrics(chip))
    for name in ms.roles.values():
        assert gp._base_name(name) in base, name
    assert {"sm_cycles_active", "tensor_pipe_cycles_active", "fma_pipe_inst", "gpc_cycles_elapsed",
            "dram_bytes"} <= set(ms.roles)
    # every ratio role carries its peak constant; peaks cost no extra pass (num_passes stayed 1)
    assert all(ms.peaks[r] == ms.roles[r] + ".peak_sustained" for r in ms.peaks)
    if chip == "GH100":
        assert ms.roles["sm_cycles_active"].startswith("TPC.TriageCompute.")
        assert "hmma_pipe_cycles_active" in ms.roles
    else:  # GA100 has no TriageCompute group names and no HMMA-only realtime pipe metric
        assert ms.roles["sm_cycles_active"] == "sm__cycles_active.sum"
        assert "hmma_pipe_cycles_active" not in ms.roles


@needs_cuda_part
def test_pm_base_metrics_gh100():
    names = C.pm_base_metrics("GH100")
    assert len(names) > 100
    assert "TPC.TriageCompute.sm__pipe_tensor_cycles_active_realtime" in names
    assert "dram__bytes" in names


@needs_cuda_part
def test_pm_config_unknown_metric_error_names_it():
    with pytest.raises(RuntimeError, match=r"no_such__metric\.sum"):
        C.pm_config("GH100", GH100_TRIAGE[:2] + ["no_such__metric.sum"])


@needs_cuda_part
def test_pm_config_more_than_one_pass_names_the_metric():
    heavy = "sm__throughput.avg.pct_of_peak_sustained_elapsed"  # alone costs many passes (GPU_COUNTERS.md s.1)
    with pytest.raises(RuntimeError, match=r"sm__throughput\.avg\.pct_of_peak_sustained_elapsed.*number 3 of 3"):
        C.pm_config("GH100", GH100_TRIAGE[:2] + [heavy])
    assert C.pm_config("GH100", GH100_TRIAGE[:2] + [heavy], require_one_pass=False)["num_passes"] > 1


@needs_cuda_part
def test_pm_config_unknown_chip_errors():
    with pytest.raises(RuntimeError, match="XX999"):
        C.pm_config("XX999", GH100_TRIAGE)


@needs_cuda_part
def test_pm_sample_ring_is_bounded_and_counts_drops():
    ring = C.testing.PmSampleRing(2)
    for i in range(5):
        ring.push(i, i + 1, [float(i)])
    # capacity 2, 5 pushed: 5 - 2 = 3 oldest overwritten and counted; the newest two remain, in order
    assert ring.dropped == 3
    assert ring.drain() == [(3, 4, [3.0]), (4, 5, [4.0])]
    assert len(ring) == 0


@needs_cuda_part
def test_pm_sampling_and_range_profiler_never_share_a_device():
    # Issue 15 likely 10: CUPTI documents neither on one device beside the other, so the second is refused with a
    # message naming the holder and the fix; another device is free, and a released claim frees the device.
    rp = C.testing.CounterClaim.acquire(3, "range_profiler")
    assert not isinstance(rp, str)
    try:
        refusal = C.testing.CounterClaim.acquire(3, "pm_sampling")
        assert isinstance(refusal, str)
        assert "Range Profiler" in refusal and "device 3" in refusal and "stop" in refusal
        other = C.testing.CounterClaim.acquire(4, "pm_sampling")
        assert not isinstance(other, str)
        other.release()
    finally:
        rp.release()
    again = C.testing.CounterClaim.acquire(3, "pm_sampling")
    assert not isinstance(again, str)
    again.release()


def test_pm_refusal_status_is_explained():
    from pyprof.sources.cuda import pm

    text = pm._explain("counters_in_use", "the Range Profiler holds device 0")
    assert text.startswith("PM sampling refused") and "Range Profiler" in text


@needs_cuda_part
@pytest.mark.skipif(GPU_PRESENT, reason="checks the no-GPU path")
def test_pm_sampler_without_gpu_reports_status_and_never_raises():
    s = C.PmSampler(0, GH100_TRIAGE, interval_ns=2_000_000, max_samples=16)
    assert s.start() == "no_device"
    st = s.stats()
    assert st["status"] == "no_device" and st["error"]
    s.stop()  # safe without a running session
    assert s.samples() == []


@pytest.mark.skipif(GPU_PRESENT, reason="checks the no-GPU path")
def test_pm_session_start_false_with_reason_here():
    sess = gp.PmSession(device=0, interval_ms=2.0)
    assert sess.start() is False
    assert sess.reason  # "PM sampling needs a GPU with a driver: ..." or why the CUDA part is missing
    sess.stop()
    assert len(sess.series()) == 0


# ---------------------------------------------------------------------------------------------------------------
# PM sampling: formulas on synthetic raw samples


def _h100_like_set() -> gp.PmMetricSet:
    names = [gp._base_name(n) for n in GH100_TRIAGE]
    return gp.pm_metric_set("GH100", available=names, verify=False)


def test_pm_series_formulas_on_synthetic_samples():
    ms = _h100_like_set()
    r, pk = ms.roles, ms.peaks
    elapsed = 3_300_000.0  # 2 ms at 1.65 GHz: 1.65e9 * 0.002 = 3.3e6 GPC cycles
    sms = 132.0  # peak of sm__cycles_active.sum per cycle = number of SMs

    def values(sm_frac, tensor_frac, fma_frac, dram_bytes):
        return {
            r["gpc_cycles_elapsed"]: elapsed,
            r["sm_cycles_active"]: sm_frac * sms * elapsed, pk["sm_cycles_active"]: sms,
            r["tensor_pipe_cycles_active"]: tensor_frac * sms * elapsed, pk["tensor_pipe_cycles_active"]: sms,
            r["hmma_pipe_cycles_active"]: 0.0, pk["hmma_pipe_cycles_active"]: sms,
            # FMA peak: 4 warp instructions per SM per cycle -> 528 for 132 SMs
            r["fma_pipe_inst"]: fma_frac * 528 * elapsed, pk["fma_pipe_inst"]: 528.0,
            r["fp64_pipe_cycles_active"]: 0.0, pk["fp64_pipe_cycles_active"]: sms,
            r["warps_active"]: 0.25 * 64 * sms * elapsed, pk["warps_active"]: 64 * sms,
            r["dram_bytes"]: dram_bytes,
            r["dram_cycles_elapsed"]: 1.0,
        }

    samples = [  # given out of order: the series sorts by start time
        {"start_ns": 1_002_000_000, "end_ns": 1_004_000_000, "values": values(1.0, 0.75, 0.0, 2e9)},
        {"start_ns": 1_000_000_000, "end_ns": 1_002_000_000, "values": values(0.5, 0.25, 0.1, 6e9)},
    ]
    sync = {"cupti_ts_at_start_ns": 999_000_000, "monotonic_ns_at_start": 50_000_000_000}
    s = gp.pm_series(samples, ms, sync)
    assert len(s) == 2
    np.testing.assert_allclose(s.t_s, [0.0, 0.002])  # (1.002e9 - 1.000e9) ns = 0.002 s
    np.testing.assert_allclose(s.duration_s, [0.002, 0.002])
    # 0.5 * 132 * 3.3e6 = 2.178e8 active SM-cycles / (132 * 3.3e6) = 0.5
    np.testing.assert_allclose(s.sm_active_ratio, [0.5, 1.0])
    np.testing.assert_allclose(s.tensor_pipe_active_ratio, [0.25, 0.75])
    np.testing.assert_allclose(s.hmma_pipe_active_ratio, [0.0, 0.0])
    # 0.1 * 528 * 3.3e6 = 1.7424e8 FMA warp insts / (528 * 3.3e6) = 0.1
    np.testing.assert_allclose(s.fma_pipe_inst_ratio, [0.1, 0.0])
    np.testing.assert_allclose(s.warps_active_ratio, [0.25, 0.25])
    # 6e9 B / 0.002 s = 3e12 B/s; 2e9 / 0.002 = 1e12
    np.testing.assert_allclose(s.dram_bytes_per_s, [3e12, 1e12])
    # 3.3e6 cycles / 0.002 s = 1.65e9 Hz
    np.testing.assert_allclose(s.sm_clock_hz, [1.65e9, 1.65e9])
    # 50e9 ns + (1.000e9 - 0.999e9) ns = 50.001e9 ns
    assert s.t0_monotonic_s == pytest.approx(50.001)
    assert "not FLOP counts" in s.disclaimer and "GH100" in s.disclaimer


def test_pm_series_ga100_like_set_has_no_hmma_and_zero_elapsed_is_nan():
    ga100 = ["sm__cycles_active", "sm__pipe_tensor_cycles_active_realtime", "sm__inst_executed_pipe_fma_realtime",
             "gpc__cycles_elapsed", "dram__bytes"]
    ms = gp.pm_metric_set("GA100", available=ga100, verify=False)
    assert "hmma_pipe_cycles_active" not in ms.roles and "fp64_pipe_cycles_active" not in ms.roles
    r, pk = ms.roles, ms.peaks
    v = {r["gpc_cycles_elapsed"]: 0.0, r["sm_cycles_active"]: 0.0, pk["sm_cycles_active"]: 108.0,
         r["tensor_pipe_cycles_active"]: 0.0, pk["tensor_pipe_cycles_active"]: 108.0,
         r["fma_pipe_inst"]: 0.0, pk["fma_pipe_inst"]: 432.0, r["dram_bytes"]: 0.0}
    s = gp.pm_series([{"start_ns": 5, "end_ns": 10, "values": v}], ms)
    assert s.hmma_pipe_active_ratio is None and s.fp64_pipe_active_ratio is None
    assert math.isnan(s.sm_active_ratio[0])  # 0 / (108 * 0): undefined, not 0 and not an exception
    assert s.t0_monotonic_s is None


def test_pm_metric_set_requires_sm_and_elapsed_roles():
    with pytest.raises(RuntimeError, match="sm_cycles_active"):
        gp.pm_metric_set("GH100", available=["dram__bytes", "gpc__cycles_elapsed"], verify=False)


# ---------------------------------------------------------------------------------------------------------------
# NVML: error handling through a stand-in NVML object (not a measurement)


class StandInNvml:
    """Just the pynvml calls the sampler makes; power raises NVML's NotSupported, energy is missing entirely."""

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0
    nvmlClocksEventReasonSwPowerCap = pynvml.nvmlClocksEventReasonSwPowerCap

    def __init__(self):
        self.calls = {"power": 0, "temp": 0}
        self.temp_failures = 1

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("handle", i)

    def nvmlDeviceGetClockInfo(self, h, kind):
        return {1: 1980, 2: 2619}[kind]

    def nvmlDeviceGetPowerUsage(self, h):
        self.calls["power"] += 1
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)  # pynvml returns its NVMLError_NotSupported subclass

    def nvmlDeviceGetTemperature(self, h, sensor):
        self.calls["temp"] += 1
        if self.temp_failures > 0:
            self.temp_failures -= 1
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)  # transient: retried next reading
        return 61

    def nvmlDeviceGetUtilizationRates(self, h):
        class U:
            gpu, memory = 100, 37

        return U()

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return pynvml.nvmlClocksEventReasonSwPowerCap


def test_field_reader_degrades_one_field_and_records_reason_once():
    nv = StandInNvml()
    reader = gn.NvmlFieldReader(nv)
    first = reader.read(("handle", 0))
    second = reader.read(("handle", 0))
    # the other fields come back although power fails and energy's function does not exist
    assert first["sm_clock_mhz"] == 1980 and first["mem_clock_mhz"] == 2619
    assert first["utilization_gpu_pct"] == 100 and first["utilization_memory_pct"] == 37
    assert first["throttle_reasons"] == ("sw_power_cap",)
    assert first["power_mw"] is None and second["power_mw"] is None
    assert first["energy_mj"] is None
    # NotSupported is permanent: asked once, not again on the second reading
    assert nv.calls["power"] == 1
    assert "NOT_SUPPORTED" in reader.reasons["power_mw"]
    assert "lacks" in reader.reasons["energy_mj"]
    # a transient error: None the first time, the value the next, and its reason kept (once)
    assert first["temperature_c"] is None and second["temperature_c"] == 61
    assert nv.calls["temp"] == 2
    assert "temperature_c" in reader.reasons
    assert set(reader.reasons) == {"power_mw", "energy_mj", "temperature_c"}


def test_nvml_sampler_thread_with_stand_in_keeps_going_and_stops():
    nv = StandInNvml()
    s = gn.NvmlSampler(interval_s=0.01, nvml=nv)
    assert s.start() is True
    time.sleep(0.1)
    s.stop()
    got = s.samples(0)
    assert len(got) >= 3  # one at start, some from the thread, one at stop
    assert all(x.power_mw is None and x.sm_clock_mhz == 1980 for x in got)
    assert not any(t.name == "pyprof-nvml" and t.is_alive() for t in threading.enumerate())
    assert "NOT_SUPPORTED" in s.reasons[0]["power_mw"]
    s.stop()  # twice is fine


def test_nvml_sampler_init_failure_is_a_reason_not_an_exception():
    class NoDriver(StandInNvml):
        def nvmlInit(self):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    s = gn.NvmlSampler(nvml=NoDriver())
    assert s.start() is False
    assert "NVML is unavailable" in s.reason and "Driver Not Loaded" in s.reason


@pytest.mark.skipif(GPU_PRESENT, reason="checks the no-driver path")
def test_nvml_sampler_start_false_here():
    s = gn.NvmlSampler()
    assert s.start() is False
    assert "NVML" in s.reason
    info = gn.device_info(0)
    assert info.name is None and "NVML is unavailable" in info.reasons["name"]


# ---------------------------------------------------------------------------------------------------------------
# NVML: window aggregation and throttle decoding


def _s(t, power_mw, energy_mj, sm=1980, temp=60, util=100, reasons=()):
    return gn.NvmlSample(t_s=t, device=0, sm_clock_mhz=sm, mem_clock_mhz=2619, power_mw=power_mw,
                         energy_mj=energy_mj, temperature_c=temp, utilization_gpu_pct=util,
                         utilization_memory_pct=40, throttle_reasons=reasons)


def test_window_energy_from_counter_and_means():
    samples = [
        _s(9.9, 100_000, 990_000),  # outside the window
        _s(10.0, 300_000, 1_000_000, sm=1980, temp=60, util=100),
        _s(10.1, 310_000, 1_031_000, sm=1755, temp=62, util=90, reasons=("sw_power_cap",)),
        _s(10.2, 320_000, 1_063_000, sm=1980, temp=65, util=80),
        _s(10.3, 330_000, 1_096_000, sm=1980, temp=63, util=70, reasons=("hw_slowdown", "sw_power_cap")),
        _s(10.5, 900_000, 2_000_000),  # outside
        gn.NvmlSample(t_s=10.1, device=1, power_mw=1.0),  # another device
    ]
    w = gn.aggregate_window(samples, 10.0, 10.3, device=0)
    assert w.n_samples == 4
    assert w.energy_source == "energy_counter"
    assert w.energy_j == pytest.approx(96.0)  # (1_096_000 - 1_000_000) mJ = 96_000 mJ = 96 J
    assert w.power_mw_mean == pytest.approx(315_000)  # (300 + 310 + 320 + 330) k / 4
    assert w.power_mw_max == 330_000
    assert w.sm_clock_mhz_mean == pytest.approx(1923.75)  # (1980 * 3 + 1755) / 4 = 7695 / 4
    assert w.sm_clock_mhz_max == 1980
    assert w.temperature_c_max == 65
    assert w.utilization_gpu_pct_mean == pytest.approx(85.0)  # (100 + 90 + 80 + 70) / 4
    assert w.throttle_reasons_seen == ("hw_slowdown", "sw_power_cap")
    assert "one-thread kernel reads 100%" in w.utilization_meaning
    # energy per FLOP: 96 J / 1.2e15 FLOP = 8e-14 J/FLOP
    assert gn.energy_per_flop_j(w.energy_j, 1.2e15) == pytest.approx(8e-14)


def test_window_energy_falls_back_to_integrated_power():
    samples = [_s(10.0 + 0.1 * i, p, None) for i, p in enumerate((300_000, 310_000, 320_000, 330_000))]
    w = gn.aggregate_window(samples, 10.0, 10.3, device=0, reasons={"energy_mj": "not supported"})
    assert w.energy_source == "integrated_power"
    # trapezoid, W * s: (300 + 310) / 2 * 0.1 + (310 + 320) / 2 * 0.1 + (320 + 330) / 2 * 0.1
    #                  = 30.5 + 31.5 + 32.5 = 94.5 J
    assert w.energy_j == pytest.approx(94.5)


def test_window_without_samples_says_why():
    w = gn.aggregate_window([_s(1.0, 300_000, 5)], 2.0, 3.0, device=0, reasons={"power_mw": "no permission"})
    assert w.n_samples == 0 and w.energy_j is None and w.power_mw_mean is None
    assert w.reasons["power_mw"] == "no permission"
    assert "no NVML sample" in w.reasons["*"]


def test_energy_per_flop_none_safe():
    assert gn.energy_per_flop_j(None, 1e12) is None
    assert gn.energy_per_flop_j(10.0, None) is None
    assert gn.energy_per_flop_j(10.0, 0) is None
    assert gn.energy_per_flop_j(10.0, 2e12) == pytest.approx(5e-12)  # 10 / 2e12


def test_throttle_reason_decoding_from_pynvml_constants():
    mask = pynvml.nvmlClocksEventReasonSwPowerCap | pynvml.nvmlClocksEventReasonHwSlowdown  # 0x4 | 0x8
    assert gn.decode_throttle_reasons(mask, pynvml) == ("sw_power_cap", "hw_slowdown")
    assert gn.decode_throttle_reasons(0, pynvml) == ()
    assert gn.decode_throttle_reasons(pynvml.nvmlClocksEventReasonGpuIdle, pynvml) == ("gpu_idle",)
    assert gn.decode_throttle_reasons(0x4 | 0x100000, pynvml) == ("sw_power_cap", "unknown_0x100000")
    # ThrottleReasonAll (0x7ff) names every bit pynvml defines: 11 distinct bits, the UserDefinedClocks alias
    # of ApplicationsClocksSetting (0x2) counted once
    assert len(gn.decode_throttle_reasons(pynvml.nvmlClocksThrottleReasonAll, pynvml)) == 11


# ---------------------------------------------------------------------------------------------------------------
# GPU


def _matmul_loop(seconds: float, dtype_name: str = "bfloat16") -> int:
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(8192, 8192, device="cuda", dtype=dtype)
    b = torch.randn(8192, 8192, device="cuda", dtype=dtype)
    n = 0
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        for _ in range(4):
            a @ b
        n += 4
        torch.cuda.synchronize()
    return n


@pytest.mark.gpu
def test_gpu_nvml_sampler_during_matmul():
    s = gn.NvmlSampler(devices=[0], interval_s=0.05)
    assert s.start(), s.reason
    t0 = time.monotonic()
    _matmul_loop(2.0)
    t1 = time.monotonic()
    s.stop()
    w = s.window(t0, t1)[0]
    assert w.n_samples >= 20  # 2 s / 0.05 s = 40 readings expected; half is plenty
    assert w.sm_clock_mhz_mean is not None and w.sm_clock_mhz_mean > 0, w.reasons
    assert w.power_mw_mean is not None and w.power_mw_mean > 0, w.reasons
    assert w.energy_j is not None and w.energy_j > 0, w.reasons
    info = gn.device_info(0)
    assert info.name


@pytest.mark.gpu
def test_gpu_pm_session_tensor_ratio_during_bf16_matmul():
    import torch

    torch.ones(1, device="cuda")  # context first, as in a training process
    sess = gp.PmSession(device=0, interval_ms=2.0)
    if not sess.start():
        if sess.status == "permission_denied":
            pytest.skip(sess.reason)
        pytest.fail(sess.reason)
    _matmul_loop(1.5)
    sess.stop()
    s = sess.series()
    st = sess.stats()
    assert len(s) >= 100, st  # 1.5 s at 2 ms -> ~750 samples
    sm = s.sm_active_ratio[np.isfinite(s.sm_active_ratio)]
    assert sm.min() >= 0.0 and sm.max() <= 1.0 + 1e-6, (sm.min(), sm.max())
    busy = s.tensor_pipe_active_ratio[s.sm_active_ratio > 0.9]
    assert len(busy) >= 50, st
    assert np.median(busy) > 0.3, np.median(busy)
    assert st["decoded"] >= len(s)


@pytest.mark.gpu
def test_gpu_range_profiler_and_pm_sampling_refuse_each_other():
    # Issue 15 likely 10 on a real device: the second counter client is refused with the holder named.
    import torch

    from pyprof.sources.cuda import counters as gc

    torch.ones(1, device="cuda")
    try:
        rp = C.RangeProfiler(0, [gc.simt_metric("ffma") + ".sum"], "step", 16)
    except C.CounterPermissionError as e:
        pytest.skip(str(e))
    s = C.PmSampler(0, GH100_TRIAGE, interval_ns=2_000_000, max_samples=16)
    try:
        assert s.start() == "counters_in_use", s.stats()
        assert "Range Profiler" in s.stats()["error"]
    finally:
        rp.close()
    assert s.start() in ("running", "permission_denied"), s.stats()  # the device is free again
    s.stop()
