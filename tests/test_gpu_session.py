"""The GPU side of pyprof.profile(): degradation without a GPU, and the GPU totals arithmetic (pure)."""

import pytest

import pyprof
from pyprof.accounting.reconcile import gpu_totals, peak_time_equivalent_s
from pyprof.errors import InvalidInputError
from pyprof.records import (
    GpuCounters,
    GpuRun,
    GpuStep,
    KernelStat,
    NvmlStepWindow,
    Status,
    StepRecord,
)
from pyprof.sources.cuda.session import GpuOptions, GpuSession


def _step(i, wall, gpu, analytic=None):
    return StepRecord(index=i, wall_time_s=wall, cpu_time_s=wall, analytic_flops=analytic,
                      analytic_flops_effective=analytic, analytic_forward_flops=None, analytic_origin="counted",
                      signature_id=0, gpu=gpu)


def test_peak_time_equivalent_each_precision_against_its_own_peak():
    # 1e12 BF16 FLOPs at 1e15 FLOP/s = 1 ms; 1e10 FP32 FLOPs at 5e13 = 0.2 ms; fp8 has no peak -> left out
    s, missing = peak_time_equivalent_s({"bf16": 1e12, "fp32": 1e10, "fp8": 3e9}, {"bf16": 1e15, "fp32": 5e13})
    assert s == pytest.approx(1.2e-3)
    assert missing == ["fp8"]
    assert peak_time_equivalent_s({"fp8": 1.0}, {}) == (None, ["fp8"])


def test_gpu_totals_sums_steps_and_utilization_by_precision():
    a = GpuStep(timing_source="cupti", busy_time_s=0.008, kernel_time_s=0.009, uncounted_kernel_time_s=0.003,
                kernel_count=40, library_flops_by_precision={"bf16": 4e12},
                nvml=NvmlStepWindow(start_s=0.0, end_s=0.01, n_samples=1, energy_j=5.0))
    b = GpuStep(timing_source="cupti", busy_time_s=0.006, kernel_time_s=0.006, uncounted_kernel_time_s=0.001,
                kernel_count=40, library_flops_by_precision={"bf16": 4e12, "fp32": 1e10},
                nvml=NvmlStepWindow(start_s=0.01, end_s=0.02, n_samples=1, energy_j=3.0))
    t = gpu_totals([_step(0, 0.010, a, analytic=1e13), _step(1, 0.010, b, analytic=1e13)],
                   {"bf16": 1e15, "fp32": 5e13})
    # busy 0.008 + 0.006 = 0.014 of wall 0.020 -> 0.7
    assert t.busy_fraction == pytest.approx(0.7)
    # uncounted 0.004 of kernel time 0.015
    assert t.uncounted_kernel_time_share == pytest.approx(0.004 / 0.015)
    assert t.kernel_count == 80
    assert t.library_flops_by_precision == {"bf16": 8e12, "fp32": 1e10}
    # peak time: 8e12/1e15 + 1e10/5e13 = 8e-3 + 2e-4 = 8.2e-3 s over 0.020 s -> 0.41
    assert t.library_utilization == pytest.approx(0.41)
    bf16 = next(r for r in t.by_precision if r.precision == "bf16")
    # 8e12 FLOP / 0.020 s = 4e14 FLOP/s = 40% of 1e15
    assert bf16.utilization_vs_spec == pytest.approx(0.4)
    # library 8.01e12 of analytic 2e13
    assert t.library_over_analytic == pytest.approx(8.01e12 / 2e13)
    # 8 J over 2e13 analytic FLOPs
    assert t.energy_per_analytic_flop_j == pytest.approx(4e-13)
    assert t.executed_flops is None  # no counters in these steps


def test_gpu_totals_refuses_partial_sums():
    a = GpuStep(busy_time_s=0.008)
    b = GpuStep(gpu_time_s=0.009)  # a step timed by CUDA events (tracer lost): no busy time
    t = gpu_totals([_step(0, 0.01, a), _step(1, 0.01, b)], {})
    assert t.busy_time_s is None and t.busy_fraction is None
    assert gpu_totals([_step(0, 0.01, None)], {}).steps == 0


def test_gpu_session_degrades_without_a_gpu():
    s = GpuSession(GpuOptions(counters="step", pm_sampling=True))
    s.start()
    for source in ("tracer", "nvml", "counters", "pm_sampling"):
        st = s.status[source]
        assert st.active is False and st.reason, (source, st)
    s.begin_step(0)
    step = s.end_step(0, recording=True)
    # no timing source runs without a GPU; the library hooks may install (nvidia-cublas wheel) but saw no call
    assert step is None or (step.busy_time_s is None and step.gpu_time_s is None and not step.library_flops)
    out = s.finish()
    assert out.status["tracer"].active is False


def test_profile_rejects_bad_gpu_arguments():
    with pytest.raises(InvalidInputError, match="counters='bogus'"):
        pyprof.profile(counters="bogus")
    with pytest.raises(InvalidInputError, match="device='tpu'"):
        pyprof.profile(device="tpu")


def test_profile_on_cuda_without_a_gpu_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(InvalidInputError, match="torch sees no CUDA GPU"):
        with pyprof.profile(device="cuda"):
            pass


def test_reports_render_the_gpu_section(tmp_path):
    """A CPU result given a GPU section (as a GPU run writes it) renders it in Markdown, terminal and HTML."""
    import torch

    from pyprof.report import (
        read_report,
        render_markdown,
        render_terminal,
        write_reports,
    )
    from pyprof.report.html import render_profile_html
    m = torch.nn.Linear(8, 8)
    with pyprof.profile(m, measure_peak=False, report_formats=("json",)) as prof:
        for _ in range(2):
            m(torch.randn(4, 8)).sum().backward()
            prof.step()
    r = prof.result()
    g = GpuStep(timing_source="cupti", busy_time_s=0.008, kernel_time_s=0.009, uncounted_kernel_time_s=0.003,
                kernel_count=40, library_flops_by_precision={"bf16": 4e12})
    r.steps[0].gpu = g
    r.gpu = GpuRun(status={"tracer": Status(True, ""), "counters": Status(False, "off (pass counters='kernel')")},
                   totals=gpu_totals([r.steps[0]], {"bf16": 1e15}),
                   kernels=[KernelStat(name="sm90_xmma_gemm_bf16bf16_bf16f32", device=0, grid=[132, 1, 1],
                                       block=[384, 1, 1], count=3, total_time_s=0.0061, max_time_s=0.0021,
                                       library_flops=4e12, precision="bf16", library_calls=3,
                                       achieved_flops_per_s=6.5e14)])
    md = render_markdown(r)
    assert "## GPU kernels" in md and "sm90_xmma_gemm_bf16bf16_bf16f32" in md
    assert "library bf16" in md and "off — off (pass counters='kernel')" in md
    assert "library utilization" in render_terminal(r)
    html = render_profile_html(r, with_plots=False)
    assert 'id="gpu-kernels"' in html and 'data-v="4000000000000.0"' in html
    write_reports(r, tmp_path, ("json",))
    back = read_report(tmp_path / "report.json")
    assert back.gpu.totals.kernel_count == 40 and back.steps[0].gpu.busy_time_s == 0.008
    assert back.gpu == r.gpu and back.steps[0].gpu == g  # typed records survive to_json / read_report whole


def test_counter_flops_become_the_runs_hardware_flops():
    """Once step-mode counters have all their passes, their executed FLOPs per step feed HFU (pure wiring check)."""
    import torch

    m = torch.nn.Linear(8, 8)
    with pyprof.profile(m, measure_peak=False, peak=1e12, count_flops="off") as prof:
        for _ in range(3):
            m(torch.randn(4, 8)).sum().backward()
            prof.step()
        prof._gpu_section = GpuRun(counters=GpuCounters(mode="step", complete=True, executed_flops=1e6, num_passes=5,
                                                        mixed=True, mixed_reason="step 2 ran other kernels"))
        r = prof.result()
    # 3 recorded steps x 1e6 executed FLOPs
    assert r.totals.hardware_flops == 3e6 and r.hardware_counters["available"] is True
    assert r.reconciliation.hfu == pytest.approx(3e6 / r.totals.timed_wall_time_s / 1e12)
    assert any("mixed" in n for n in r.notes)


def test_profile_measures_each_library_precision_against_its_peak_class():
    """FP64 GEMMs run on H100's FP64 tensor cores: the FP64 row is the 66.9 TFLOP/s DMMA peak, not 33.5 FMA."""
    from pyprof.peaks.resolve import gpu_spec_peaks, resolve
    from pyprof.records import DeviceReport
    dev = DeviceReport(kind="cuda", name="NVIDIA H100 80GB HBM3", supported=True,
                       details={"index": 0, "compute_capability": [9, 0], "sm_count": 132, "sm_clock_hz": 1.98e9})
    pk = {k: (v.flops_per_s if v else None) for k, v in gpu_spec_peaks(dev).items()}
    assert pk["bf16"] == pytest.approx(989.4e12) and pk["fp8"] == pytest.approx(1978.9e12)
    assert pk["fp64"] == pytest.approx(66.9e12) and pk["tf32"] == pytest.approx(494.7e12)
    ps = resolve(dev, "bf16", measure=False, final=False)
    assert ps.spec.flops_per_s == pytest.approx(989.4e12) and ps.measured is None


@pytest.mark.gpu
def test_gpu_profile_of_a_bf16_matmul_loop_carries_library_flops_and_busy_time():
    import torch

    n = 4096
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    with pyprof.profile(device="cuda", measure_peak=False, count_flops="off",
                        schedule=pyprof.schedule(warmup=2, active=5)) as prof:
        for _ in range(7):
            for _ in range(10):
                a @ b
            prof.step()
    r = prof.result()
    t = r.gpu.totals
    assert r.gpu.status["tracer"].active, r.gpu.status
    # 5 recorded steps x 10 matmuls x 2 n^3
    assert t.library_flops_by_precision.get("bf16") == 5 * 10 * 2 * n ** 3
    assert 0.5 < t.busy_fraction <= 1.0
    assert r.gpu.kernels and r.gpu.kernels[0].library_flops > 0
    from pyprof.report import render_terminal
    print(render_terminal(r))


@pytest.mark.gpu
def test_gpu_profile_of_cupy_code_without_torch_work():
    cp = pytest.importorskip("cupy")
    n = 2048
    a = cp.random.rand(n, n, dtype=cp.float32)
    with pyprof.profile(device="cuda", measure_peak=False, count_flops="off") as prof:
        for _ in range(3):
            a @ a
            prof.step()
    t = prof.result().gpu.totals
    assert t.kernel_count >= 3 and t.busy_time_s > 0
    # 3 recorded steps x 2 n^3 (FP32 or TF32, as CuPy's cuBLAS handle chooses)
    assert sum(t.library_flops_by_precision.values()) == 3 * 2 * n ** 3
