"""pytest-benchmark benchmarks of pyprof itself (run with `python -m pytest tests/benchmarks --benchmark-enable`).

In the default run (`--benchmark-disable` in pyproject) each body runs once, on a reduced size, so the correctness
assertions still hold as tests. No assertion here is about time: the times are the benchmark's output.
"""

import pytest
import torch

import pyprof
from pyprof.report.trace import aggregate, synthetic_table, write_chrome_trace


def test_report_generation_1e6_kernel_records(benchmark, tmp_path):
    """Aggregate 10^6 kernel records, render the bench HTML of the result, export the trace capped at 10^5 events.

    It took about 1 s on an idle 2-vCPU VM; the default run uses 2 x 10^5 records (the same code path, a fifth of it).
    """
    from pyprof.report.bench_schema import BenchReport, WorkloadResult
    from pyprof.report.html import render_bench_html
    n = 200_000 if benchmark.disabled else 1_000_000
    table = synthetic_table(n)

    def generate():
        agg = aggregate(table)
        w = WorkloadResult(id="syn", name="synthetic", family="cnn", kernel_time_s=agg["time_s_by_class"])
        rep = BenchReport(run={"preset": "quick", "pyprof_version": "0", "torch_version": "t", "started_at": "",
                               "wall_time_s": 0.0}, device={"kind": "cuda", "name": "synthetic"}, sources={},
                          peaks={"precision": "fp32", "spec": None, "measured": None}, assumed_utilization=0.33,
                          assumed_utilization_source="", throttle={"note": ""}, workloads=[w])
        html = render_bench_html(rep.to_dict(), with_plots=False)
        info = write_chrome_trace(table, tmp_path / "t.json.gz", max_events=100_000)
        return html, info

    html, info = benchmark.pedantic(generate, rounds=1, iterations=1)
    # n records, at most 100,000 written: 10^6 - 10^5 = 900,000 dropped (2 x 10^5 - 10^5 = 100,000 in the default run)
    assert info["events_dropped"] == n - 100_000 and "synthetic" in html


def _loop():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    x, y = torch.randn(32, 256), torch.randint(0, 10, (32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return model, x, step


def test_profiler_overhead_per_step_cpu(benchmark):
    """pyprof's own per-step work on a recorded step: the root-forward signature check and prof.step().

    Every step is recorded (no schedule), as in a real loop. Verification is off: its recounts are deliberate, and
    with no model run between hooks a recount would find 0 FLOPs and switch to counting every step.
    """
    model, x, _ = _loop()
    with pyprof.profile(model, measure_peak=False, verify_every=0, hardware_counters=False) as prof:
        model(x)
        prof.step()

        def per_step():
            prof._on_root_forward(model, (x,), {})
            prof.step()

        benchmark(per_step)
    assert prof.result().totals.steps >= 1


@pytest.mark.gpu
def test_profiler_overhead_per_step_gpu(benchmark):
    model = torch.nn.Linear(1024, 1024).cuda()
    x = torch.randn(64, 1024, device="cuda")
    with pyprof.profile(model, schedule=pyprof.schedule(warmup=1, active=1), measure_peak=False) as prof:
        model(x)
        prof.step()
        benchmark(lambda: (prof._on_root_forward(model, (x,), {}), prof.step()))


def test_analytic_counting_per_distinct_step(benchmark):
    """Cost of counting one new step signature (forward + backward + optimizer of a small MLP)."""
    _, _, step = _loop()
    fc = benchmark(lambda: pyprof.count_flops(step))
    # 2 x 32 x (256*256 + 256*10) forward = 4,358,144; backward 2x except the first layer's input grad: total
    # forward + (2 x second layer + 1 x first layer) = 4,358,144 + 2 x 163,840 + 4,194,304 = 8,880,128
    assert fc.total_flops == 8_880_128
