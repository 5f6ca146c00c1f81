"""The GPU session's success paths, on a CPU: fake sources (and a fake native hooks module) stand in for CUPTI,
the cuBLASLt/cuDNN loggers and NVML, so that what a GPU run does with their figures is tested without a GPU."""

from __future__ import annotations

import pytest

from pyprof.accounting.reconcile import gpu_totals
from pyprof.records import (
    GpuCounters,
    GpuRun,
    GpuStep,
    KernelStat,
    NvmlStepWindow,
    ProfileResult,
    Status,
    StepRecord,
)
from pyprof.sources.cuda import libcalls
from pyprof.sources.cuda.adapters import LibraryHookSource, TracerSource
from pyprof.sources.cuda.libcalls import HookStatus
from pyprof.sources.cuda.session import GpuOptions, GpuSession


# ------------------------------------------------------------------------------------------- library-hook status
def test_hook_status_parses_the_native_installed_text():
    # the exact text csrc/cuda/libhooks.cpp writes on success: "installed: <soname> (<path>)"
    h = HookStatus.parse("installed: libcublasLt.so.13 (/x/y/libcublasLt.so.13)")
    assert h.installed is True and h.library == "libcublasLt.so.13" and h.path == "/x/y/libcublasLt.so.13"
    assert h.reason == ""
    # two hooked copies: the first names the status, the whole text is kept
    two = HookStatus.parse("installed: libcublasLt.so.13 (/a (v1)/l.so); libcublasLt.so.12 (/b/l.so)")
    assert two.installed and two.library == "libcublasLt.so.13" and two.path == "/a (v1)/l.so"
    assert "libcublasLt.so.12" in two.text


@pytest.mark.parametrize("text", ["not loaded", "dlopen failed: /nope/libcublasLt.so.13: cannot open",
                                  "unavailable: pyprof._C_cuda not built", "error: boom",
                                  "ignored: not a cuBLASLt or cuDNN library", ""])
def test_hook_status_not_installed_keeps_the_reason(text):
    h = HookStatus.parse(text)
    assert h.installed is False and h.library is None and h.path is None
    assert h.reason == (text or "no status")


class _FakeHooksModule:
    """Stands in for pyprof._C_cuda's hook entry points: installs 'successfully', counts uninstalls and reports
    the running per-precision FLOP totals the real registry keeps."""

    def __init__(self) -> None:
        self.uninstalled = 0
        self.recorded = {"bf16": 0.0}

    def hooks_install(self, paths):
        return {"cublasLt": "installed: libcublasLt.so.13 (/x/y/libcublasLt.so.13)", "cudnn": "not loaded"}

    def hooks_uninstall(self):
        self.uninstalled += 1

    def hooks_stats(self):
        return {"installed": ["libcublasLt.so.13 (/x/y)"], "recorded_flops_by_precision": dict(self.recorded)}


def test_installed_hooks_are_active_uninstalled_at_finish_and_keep_flops_without_tracer(monkeypatch):
    """Issue 15 certain 1: '== "installed"' against "installed: <soname> (<path>)" made the hooks look absent."""
    fake = _FakeHooksModule()
    monkeypatch.setattr(libcalls, "load_cuda", lambda: (fake, ""))
    monkeypatch.setattr(libcalls, "_last_recorded", {})
    s = GpuSession(GpuOptions(tracer=False, nvml=False))
    s.start()
    st = s.status["library_hooks"]
    assert st.active is True, st
    assert st.libraries["cublasLt"].startswith("installed: libcublasLt.so.13")  # the report keeps the native text
    s.begin_step(0)
    fake.recorded["bf16"] += 2 * 4096 ** 3  # one 4096^3 BF16 GEMM during the step: 2 n^3 = 137438953472 FLOPs
    step = s.end_step(0, recording=True)
    assert step.library_flops_by_precision == {"bf16": 2 * 4096 ** 3}
    assert step.library_flops == 137438953472.0
    run = s.finish()
    assert fake.uninstalled == 1  # trace-level logging must not stay on after the profile
    assert run.library_hooks_stats["installed"] == ["libcublasLt.so.13 (/x/y)"]


def test_hooks_adapter_in_the_session_uninstalls_at_finish(monkeypatch):
    """The typed status drives the adapter: installed -> active, uninstall exactly once at finish."""
    fake = _FakeHooksModule()
    monkeypatch.setattr(libcalls, "load_cuda", lambda: (fake, ""))
    monkeypatch.setattr(libcalls, "_last_recorded", {})
    tracer = TracerSource()  # never started: inactive, so the hooks sum FLOPs per step themselves
    s = GpuSession(sources=[LibraryHookSource(tracer)])
    s.start()
    assert s.status["library_hooks"].active and "without the kernel tracer" in s.status["library_hooks"].reason
    s.finish()
    s.finish()  # a second finish must not uninstall again
    assert fake.uninstalled == 1


# ---------------------------------------------------------------------------------------------- fake sources
class FakeSource:
    """A source that reports fixed parts; ``fail_at`` names the method that raises."""

    def __init__(self, name, part=None, run=None, status=None, fail_at=None):
        self.name, self.part, self.run = name, part, run or GpuRun()
        self.status = status or Status(True, "")
        self.fail_at = fail_at
        self.calls: list[tuple] = []

    def _maybe_fail(self, method):
        self.calls.append((method,))
        if self.fail_at == method:
            raise RuntimeError(f"{self.name} broke in {method}")

    def start(self):
        self._maybe_fail("start")
        return self.status

    def begin_step(self, index, recording):
        self._maybe_fail("begin_step")

    def end_step(self, index, recording):
        self._maybe_fail("end_step")
        return self.part

    def finish(self):
        self._maybe_fail("finish")
        return self.run


def _tracer_like():
    part = GpuStep(timing_source="cupti", window_time_s=0.010, busy_time_s=0.008, idle_time_s=0.002,
                   kernel_count=40, kernel_time_s=0.009, uncounted_kernel_time_s=0.003,
                   library_flops_by_precision={"bf16": 4e12}, library_flops=4e12)
    kernels = [KernelStat(name="sm90_gemm", device=0, grid=[132, 1, 1], block=[384, 1, 1], count=40,
                          total_time_s=0.018, max_time_s=0.0005, library_flops=8e12, precision="bf16",
                          library_calls=40, achieved_flops_per_s=8e12 / 0.018)]
    return FakeSource("tracer", part=part, run=GpuRun(kernels=kernels, tracer_stats={"dropped_by_cupti": 0}))


def _nvml_like():
    part = GpuStep(nvml=NvmlStepWindow(start_s=0.0, end_s=0.01, n_samples=1, sm_clock_mhz_mean=1755.0,
                                       power_mw_mean=500_000.0, energy_j=5.0))
    return FakeSource("nvml", part=part, run=GpuRun(nvml={"reasons": {}, "utilization_meaning": "m"}))


def test_session_merges_the_sources_parts_into_one_gpu_step_and_one_run_section():
    tracer, nvml = _tracer_like(), _nvml_like()
    s = GpuSession(sources=[tracer, nvml])
    s.start()
    assert s.status == {"tracer": Status(True, ""), "nvml": Status(True, "")}
    steps = []
    for i in range(2):
        s.begin_step(i, recording=True)
        g = s.end_step(i, recording=True)
        steps.append(StepRecord(index=i, wall_time_s=0.010, cpu_time_s=0.010, analytic_flops=1e13,
                                analytic_flops_effective=1e13, analytic_forward_flops=None,
                                analytic_origin="counted", signature_id=0, gpu=g))
    g = steps[0].gpu
    # one GpuStep carrying both parts: the tracer's times and FLOPs, NVML's clock
    assert g.busy_time_s == 0.008 and g.library_flops == 4e12 and g.nvml.sm_clock_mhz_mean == 1755.0
    s.begin_step(2, recording=False)
    assert s.end_step(2, recording=False) is None  # warm-up steps run the sources but return nothing
    run = s.finish()
    assert run.kernels[0].name == "sm90_gemm" and run.tracer_stats == {"dropped_by_cupti": 0}
    assert run.nvml["utilization_meaning"] == "m" and run.notes == []
    t = gpu_totals(steps, {"bf16": 1e15})
    # busy 2 x 0.008 = 0.016 of wall 2 x 0.010 = 0.020 -> 0.8
    assert t.busy_fraction == pytest.approx(0.8)
    # 2 x 4e12 = 8e12 bf16 FLOPs in 0.020 s = 4e14 FLOP/s = 40% of 1e15
    assert t.by_precision[0].utilization_vs_spec == pytest.approx(0.4)
    # 2 x 5 J over 2 x 1e13 analytic FLOPs = 5e-13 J/FLOP; 500,000 mW mean = 500 W
    assert t.energy_per_analytic_flop_j == pytest.approx(5e-13) and t.power_w_mean == pytest.approx(500.0)
    assert t.sm_clock_mhz_mean == pytest.approx(1755.0)


def test_a_source_that_fails_at_start_degrades_to_a_reason():
    refused = FakeSource("counters", status=Status(False, "ERR_NVGPUCTRPERM: no permission", mode="step"))
    broken = FakeSource("pm_sampling", fail_at="start")
    ok = _tracer_like()
    s = GpuSession(sources=[refused, broken, ok])
    s.start()
    assert s.status["counters"] == Status(False, "ERR_NVGPUCTRPERM: no permission", mode="step")
    assert s.status["pm_sampling"].active is False and "broke in start" in s.status["pm_sampling"].reason
    s.begin_step(0, True)
    assert s.end_step(0, True).busy_time_s == 0.008  # the working source goes on
    s.finish()
    # inactive sources are never stepped or finished
    assert refused.calls == [("start",)] and broken.calls == [("start",)]


def test_a_source_that_raises_in_end_step_becomes_a_note_and_never_reaches_the_loop():
    bad = FakeSource("nvml", fail_at="end_step",
                     run=GpuRun(nvml={"reasons": {}, "utilization_meaning": "kept"}))
    tracer = _tracer_like()
    s = GpuSession(sources=[bad, tracer])
    s.start()
    s.begin_step(0, True)
    with pytest.warns(RuntimeWarning, match="nvml failed"):
        g = s.end_step(0, True)  # must not raise
    assert g.busy_time_s == 0.008  # the other source's part still arrives
    assert s.status["nvml"].active is False and "broke in end_step" in s.status["nvml"].reason
    s.begin_step(1, True)
    s.end_step(1, True)
    assert bad.calls.count(("end_step",)) == 1  # dropped: not stepped again
    run = s.finish()
    assert any("nvml" in n and "end_step" in n for n in run.notes)
    assert run.nvml == {"reasons": {}, "utilization_meaning": "kept"}  # what it had is still reported
    assert bad.calls.count(("finish",)) == 1


def test_a_source_that_raises_in_finish_is_a_note():
    s = GpuSession(sources=[FakeSource("pm_sampling", fail_at="finish")])
    s.start()
    run = s.finish()
    assert any("pm_sampling did not stop cleanly" in n for n in run.notes)


# ---------------------------------------------------------------------------------------------- JSON, unchanged
#: A GPU section exactly as schema 1.1 reports were written when these were dicts (keys and their order).
LEGACY_STEP = {"timing_source": "cupti", "window_time_s": 0.01, "busy_time_s": 0.008,
               "busy_time_s_by_device": {"0": 0.008}, "idle_time_s": 0.002, "kernel_count": 40,
               "kernel_time_s": 0.009, "uncounted_kernel_time_s": 0.003, "library_flops_by_precision": {"bf16": 4e12},
               "library_flops": 4e12, "library_kernel_count": 10, "memcpy_count": 1, "memcpy_bytes": 4096,
               "memcpy_time_s": 1e-06,
               "nvml": {"start_s": 1.0, "end_s": 1.01, "n_samples": 1, "sm_clock_mhz_mean": 1755.0,
                        "sm_clock_mhz_max": 1755.0, "mem_clock_mhz_mean": None, "mem_clock_mhz_max": None,
                        "power_mw_mean": 5e5, "power_mw_max": 5e5, "energy_j": 5.0, "energy_source": "energy_counter",
                        "temperature_c_max": 50.0, "utilization_gpu_pct_mean": 100.0,
                        "utilization_memory_pct_mean": 20.0, "throttle_reasons_seen": []},
               "counters_ran": True}
LEGACY_EVENTS_STEP = {"timing_source": "cuda events", "gpu_time_s": 0.009}
LEGACY_RUN = {
    "status": {"tracer": {"active": True, "reason": ""},
               "library_hooks": {"active": True, "reason": "", "libraries": {"cublasLt": "installed: l (/p)"}},
               "counters": {"active": True, "reason": "", "mode": "step"}},
    "notes": ["a note"],
    "kernels": [{"name": "k", "device": 0, "grid": [1, 1, 1], "block": [32, 1, 1], "count": 2, "total_time_s": 0.1,
                 "max_time_s": 0.06, "library_flops": 0.0, "precision": None, "library_calls": 0,
                 "achieved_flops_per_s": None}],
    "tracer_stats": {"dropped_by_cupti": 0},
    "library_hooks_stats": {"calls_by_library": {"cublasLt": 3}},
    "nvml": {"reasons": {}, "utilization_meaning": "m"},
    "counters": {"mode": "step", "complete": True, "num_passes": 5, "chip": "GH100", "metrics": ["a"],
                 "steps_profiled": [1, 2], "step_values": {"a": 1.0}, "total_values": {"a": 1.0}, "kernels": [],
                 "flops_by_precision": {"fp32": 1e6}, "executed_flops": 1e6, "percent_of_peak": {"fp32": None},
                 "mixed": False, "mixed_reason": "", "excluded_kernels": 0, "dropped_ranges": 0, "notes": [],
                 "reason": ""},
    "totals": {"steps": 0, "reason": "no timed step has GPU figures"},
}


def test_legacy_gpu_json_reads_and_writes_back_field_for_field():
    assert GpuStep.from_dict(LEGACY_STEP).to_dict() == LEGACY_STEP
    assert list(GpuStep.from_dict(LEGACY_STEP).to_dict()) == list(LEGACY_STEP)  # same key order too
    assert GpuStep.from_dict(LEGACY_EVENTS_STEP).to_dict() == LEGACY_EVENTS_STEP
    assert GpuRun.from_dict(LEGACY_RUN).to_dict() == LEGACY_RUN
    assert list(GpuRun.from_dict(LEGACY_RUN).to_dict()["counters"]) == list(LEGACY_RUN["counters"])
    assert isinstance(GpuRun.from_dict(LEGACY_RUN).counters, GpuCounters)


def test_full_gpu_totals_serialize_with_the_legacy_keys():
    step = StepRecord(index=0, wall_time_s=0.01, cpu_time_s=0.01, analytic_flops=None, analytic_flops_effective=None,
                      analytic_forward_flops=None, analytic_origin="off", signature_id=None,
                      gpu=GpuStep.from_dict(LEGACY_STEP))
    d = gpu_totals([step], {"bf16": 1e15}).to_dict()
    # the keys gpu_totals wrote as a dict, in that order; executed_flops_per_step only once counters completed
    assert list(d) == ["steps", "wall_time_s", "timing_source", "busy_time_s", "busy_fraction", "gpu_time_s",
                       "kernel_count", "kernel_time_s", "uncounted_kernel_time_s", "uncounted_kernel_time_share",
                       "library_flops", "library_flops_by_precision", "library_peak_time_s", "library_utilization",
                       "library_utilization_missing_peaks", "by_precision", "executed_flops", "executed_over_library",
                       "executed_over_analytic", "library_over_analytic", "energy_j", "energy_per_analytic_flop_j",
                       "energy_per_library_flop_j", "nvml_utilization_gpu_pct_mean", "sm_clock_mhz_mean",
                       "power_w_mean"]
    assert type(d["by_precision"][0]) is dict


def test_report_with_a_gpu_section_round_trips_through_json(tmp_path):
    from pyprof.records import DeviceReport, Totals
    from pyprof.report import read_report, to_json

    steps = [StepRecord(index=0, wall_time_s=0.01, cpu_time_s=0.01, analytic_flops=None,
                        analytic_flops_effective=None, analytic_forward_flops=None, analytic_origin="off",
                        signature_id=None, gpu=GpuStep.from_dict(LEGACY_STEP))]
    totals = Totals(**dict.fromkeys(Totals.__dataclass_fields__, 0))
    r = ProfileResult(schema_version="1.1", run={"name": "x"}, device=DeviceReport("cuda", "H100", True), config={},
                      steps=steps, totals=totals, flop_counts=[], hardware_counters={}, cpu_peaks={},
                      reconciliation=None, gpu=GpuRun.from_dict(LEGACY_RUN))
    text = to_json(r)
    (tmp_path / "report.json").write_text(text)
    back = read_report(tmp_path / "report.json")
    assert back.gpu == r.gpu and back.steps[0].gpu == r.steps[0].gpu
    assert to_json(back) == text


def test_profile_on_a_fake_gpu_carries_typed_gpu_records_into_the_reports(monkeypatch, tmp_path):
    """The whole GPU path of pyprof.profile() on a CPU: fake device, fake sources, real assembly and writers."""
    import torch

    import pyprof
    import pyprof.session.profile as prof_mod
    import pyprof.sources.cuda.session as sess_mod
    from pyprof.records import DeviceReport
    from pyprof.report import read_report, render_markdown

    h100 = DeviceReport(kind="cuda", name="NVIDIA H100 80GB HBM3", supported=False,
                        details={"index": 0, "compute_capability": [9, 0], "sm_count": 132, "sm_clock_hz": 1.98e9})
    monkeypatch.setattr(prof_mod, "detect_device", lambda device_arg, model: h100)
    counters = FakeSource("counters", part=GpuStep(counters_ran=True), status=Status(True, "", mode="step"),
                          run=GpuRun(counters=GpuCounters(mode="step", complete=True, num_passes=2,
                                                          executed_flops=3e12)))
    real = sess_mod.GpuSession
    monkeypatch.setattr(sess_mod, "GpuSession",
                        lambda options: real(options, sources=[_tracer_like(), _nvml_like(), counters]))
    m = torch.nn.Linear(8, 8)
    with pyprof.profile(m, measure_peak=False, count_flops="off", output_dir=tmp_path,
                        report_formats=("json", "md")) as prof:
        for _ in range(3):
            m(torch.randn(4, 8))
            prof.step()
    r = prof.result()
    assert r.device.supported is True  # the tracer source is active
    assert r.gpu.status["counters"].mode == "step" and r.steps[0].gpu.busy_time_s == 0.008
    # every step ran counters in this fake, so all 3 are "perturbed" and the totals fall back to all of them
    assert r.gpu.totals.steps == 3 and r.gpu.totals.kernel_count == 3 * 40
    # executed FLOPs 3e12 per step, applied to every recorded step: 3 x 3e12
    assert r.totals.hardware_flops == 9e12 and r.gpu.totals.executed_flops == 9e12
    # library 3 x 4e12 = 1.2e13: executed / library = 9e12 / 1.2e13 = 0.75
    assert r.gpu.totals.executed_over_library == pytest.approx(0.75)
    assert r.gpu.totals.executed_flops_per_step == 3e12
    assert "sm90_gemm" in render_markdown(r)
    back = read_report(tmp_path / "report.json")
    assert back.gpu == r.gpu and back.steps[2].gpu == r.steps[2].gpu
