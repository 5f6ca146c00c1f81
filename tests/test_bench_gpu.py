"""The GPU bench scripts: their pure parts here, and on a machine without a GPU they say so and exit 0."""

import json

import pytest

from bench import gpu_checklib as gl
from bench import gpu_overhead, gpu_validate
from bench.gpu_checklib import Launch, Status


def test_ncu_csv_parser_reads_kernels_units_and_separators():
    # ncu --csv --page raw --print-units base: log lines, a header, a units row, one row per kernel
    text = "\n".join([
        "==PROF== Connected to process 123",
        '"ID","Kernel Name","sm__ops_path_tensor_src_bf16_dst_fp32.sum","gpu__time_duration.sum"',
        '"","","","nsecond"',
        '"0","sm90_xmma_gemm","1,099,511,627,776","1,234,567"',
        '"1","splitKreduce","0","2,000"',
    ])
    rows = gpu_validate.parse_ncu_csv(text)
    assert len(rows) == 2
    # 2 * 8192^3 = 1,099,511,627,776
    assert rows[0]["sm__ops_path_tensor_src_bf16_dst_fp32.sum"] == 2 * 8192 ** 3
    assert rows[1]["gpu__time_duration.sum"] == 2000.0 and rows[0]["Kernel Name"] == "sm90_xmma_gemm"
    assert gpu_validate.parse_ncu_csv("==PROF== nothing profiled") == []


def test_ncu_metric_list_drops_rates():
    ms = ["a.sum", "a.sum.peak_sustained", "sm__cycles_elapsed.avg.per_second", "sm__cycles_elapsed.avg"]
    assert gpu_validate.ncu_metrics(ms) == ["a.sum", "sm__cycles_elapsed.avg"]


def test_gpu_scripts_without_a_gpu_write_a_reason(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    assert gpu_overhead.main(["--out", str(tmp_path)]) == 0
    assert "no CUDA GPU" in json.loads((tmp_path / "gpu_overhead.json").read_text())["skipped"]
    assert gpu_validate.main(["--out", str(tmp_path)]) == 0
    d = json.loads((tmp_path / "gpu_validate.json").read_text())
    assert "no CUDA GPU" in d["skipped"] and d["checks"] == []


# ------------------------------------------------------------------------------------------ issue 15 certain 2 and 3


def test_a_crashing_check_is_a_failed_row_with_its_reason():
    def boom():
        raise TypeError("'method' object is not iterable")
    r = gl.run_check("ncu gemm bf16", boom)
    assert r["status"] == "failed" and "TypeError" in r["reason"] and "not iterable" in r["reason"]
    # A check that returns no status is a failure too (the old rows had none).
    assert gl.run_check("x", lambda: {"ok": True})["status"] == "failed"
    counts = gl.summarize([r, gl.row("y", Status.PASSED), gl.row("z", Status.UNAVAILABLE, "no counters")])
    assert counts == {"passed": 1, "failed": 1, "skipped": 0, "unavailable": 1}
    with pytest.raises(ValueError, match="needs a reason"):
        gl.row("silent", Status.FAILED)


def test_ncu_case_passes_the_metric_list_not_the_method(monkeypatch):
    # issue 15 certain 2: ncu_metrics(ms.metrics) passed the bound method; the TypeError was swallowed and no ncu
    # comparison ever ran. The metric list must reach check_ncu as a list of names.
    from pyprof.sources.cuda import counters as gc
    names = [gc.simt_metric("ffma"), "gpu__time_duration", "sm__cycles_elapsed"]
    ms = gc.build_flop_metric_set("GH100", names, query_passes=False)
    monkeypatch.setattr(gc, "build_flop_metric_set", lambda chip, **kw: ms)
    monkeypatch.setattr(gpu_validate, "_chip", lambda: "GH100")
    monkeypatch.setattr(gpu_validate, "_counted", lambda fn, mode="kernel": {"total_values": {"a.sum": 1.0}})
    seen = {}

    def fake_check_ncu(kind, case, metrics, values):
        seen["metrics"] = metrics
        return gl.row("ncu", Status.PASSED)
    monkeypatch.setattr(gpu_validate, "check_ncu", fake_check_ncu)
    r = gl.run_check("ncu micro ffma", gpu_validate.check_ncu_case, "micro", "ffma")
    assert r["status"] == "passed", r
    assert seen["metrics"] == [gc.simt_metric("ffma") + ".sum", "gpu__time_duration.sum", "sm__cycles_elapsed.avg"]


def test_validate_main_counts_failures_and_exits_nonzero(monkeypatch, tmp_path):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake GPU")

    def broken(*a):
        raise RuntimeError("counter image too small")
    monkeypatch.setattr(gpu_validate, "check_micro", broken)
    assert gpu_validate.main(["--only", "micro", "--out", str(tmp_path)]) == 1
    d = json.loads((tmp_path / "gpu_validate.json").read_text())
    # every micro kind (ffma, hfma2, dfma, mma_bf16, wgmma_bf16) is a failed row naming the error
    assert d["summary"]["failed"] == len(gpu_validate.MICRO_CASES) == 5 and d["summary"]["passed"] == 0
    assert all(c["status"] == "failed" and "counter image too small" in c["reason"] for c in d["checks"])


def test_difference_of_two_launches_cancels_setup_work():
    # issue 15 certain 3. FFMA kernel, T = 1000 threads, 8 chains: formula(I) = 2 x 8 x I x T = 16,000 I FLOP.
    # Setup outside the chains, per launch: T x (8 FFMA x 2 + 7 FADD) = 1000 x 23 = 23,000 FLOP.
    a = Launch(2048, 16_000 * 2048, 16_000 * 2048 + 23_000)   # 32,768,000 + 23,000 = 32,791,000
    b = Launch(4096, 16_000 * 4096, 16_000 * 4096 + 23_000)   # 65,536,000 + 23,000 = 65,559,000
    # One launch alone is off by 23,000 / 32,768,000 = 7.0e-4: the old 1e-6 check failed on correct counters.
    assert abs(a.counted_flops / a.formula_flops - 1) > 1e-6
    d = gl.difference_check(a, b)
    # (65,559,000 - 32,791,000) / (65,536,000 - 32,768,000) = 32,768,000 / 32,768,000 = 1
    assert d.exact and d.ratio == 1.0 and d.matched == 1.0
    assert d.setup_flops_per_launch == 23_000    # 32,791,000 - 1 x 32,768,000
    # HFMA2: formula 4 FLOP per instruction, ncu weights 2 per instruction, counter once per instruction -> 0.5.
    h_a = Launch(2048, 4 * 1000, 2 * 1000 + 10)
    h_b = Launch(4096, 4 * 2000, 2 * 2000 + 10)
    h = gl.difference_check(h_a, h_b, accepted=(0.5, 1.0))
    assert h.exact and h.matched == 0.5   # (4010 - 2010) / (8000 - 4000) = 0.5
    # A counter off by one FMA per 1000 is not exact: (65,559,000 + 32,768 - 32,791,000) / 32,768,000 = 1.001
    off = gl.difference_check(a, Launch(4096, b.formula_flops, b.counted_flops + 32_768))
    assert not off.exact and "1.001" in off.reason
    with pytest.raises(ValueError, match="different iteration counts"):
        gl.difference_check(a, a)


def test_check_micro_runs_the_difference_on_fake_counters(monkeypatch):
    # The whole micro check on a CPU: fake gpu_peak output and fake kernel-mode rows with setup FLOPs included.
    T = 1000

    def fake_run_micro(kind, iterations=4096):
        return {"iterations": iterations, "flops": 16_000.0 * iterations, "formula": "2 x 8 x I x T"}

    def fake_counted(fn, mode="kernel"):
        box = {}
        import bench.gpu_validate as gv
        orig = gv.run_micro
        try:
            gv.run_micro = lambda kind, it=4096: box.update(fake_run_micro(kind, it)) or box
            fn()
        finally:
            gv.run_micro = orig
        per = 16_000.0 * box["iterations"] + 23 * T
        return {"kernels": [{"flops_by_precision": {"fp32": per}}, {"flops_by_precision": {"fp32": per}},
                            {"flops_by_precision": {}}]}
    monkeypatch.setattr(gpu_validate, "_counted", fake_counted)

    class FakeNative:
        @staticmethod
        def gpu_peak_kinds():
            return ["ffma", "dfma", "hfma2"]
    import pyprof._native
    monkeypatch.setattr(pyprof._native, "load_cuda", lambda: (FakeNative, ""))
    assert gpu_validate.check_micro("wgmma_bf16")["status"] == "skipped"   # not built here: said, not failed
    r = gpu_validate.check_micro("ffma")
    assert r["status"] == "passed", r
    assert r["ratio"] == 1.0 and r["setup_flops_per_launch"] == 23_000   # 23 x 1000 threads


def test_ncu_refusals_degrade_and_agreement_is_judged():
    assert "container" in gl.ncu_refusal("==ERROR== LibraryNotLoaded: libnvperf")
    assert gl.ncu_refusal("==PROF== Disconnected") == ""
    ratios, bad = gl.agreement({"a.sum": 100.5, "b.sum": 50.0, "gpu__time_duration.sum": 2.0, "z.sum": 0.0},
                               {"a.sum": 100.0, "b.sum": 52.0, "gpu__time_duration.sum": 1.0, "z.sum": 0.0})
    # a: 100.5/100 = 1.005 (inside 1%); b: 50/52 = 0.9615 (outside); time reported, not judged; z: both 0 -> 1.0
    assert ratios["a.sum"] == pytest.approx(1.005) and bad == ["b.sum"]
    assert ratios["gpu__time_duration.sum"] == 2.0 and ratios["z.sum"] == 1.0


def test_check_gemm_statuses_on_fake_sources(monkeypatch):
    # 2 x 8192^3 = 1,099,511,627,776 FLOPs for the bf16 case.
    from pyprof.sources.cuda import libcalls
    expected = 2 * 8192 ** 3
    lib = {"flops": {"bf16": float(expected)}}
    monkeypatch.setattr(gpu_validate, "run_gemm", lambda case, reps=1: None)
    monkeypatch.setattr(libcalls, "install_hooks", lambda: {})
    monkeypatch.setattr(libcalls, "uninstall_hooks", lambda: None)
    monkeypatch.setattr(libcalls, "drain_flops_by_precision", lambda: dict(lib["flops"]))
    # Counters refused by the environment: unavailable, with the reason, not a pyprof failure.
    monkeypatch.setattr(gpu_validate, "_counted", lambda fn, mode="kernel": {
        "error": "ERR_NVGPUCTRPERM", "error_status": "insufficient_privileges"})
    r = gpu_validate.check_gemm("bf16")
    assert r["status"] == "unavailable" and "ERR_NVGPUCTRPERM" in r["reason"] and r["library_ok"]
    # Counters read 2MNK x 1.004 (inside 1%): passed.
    monkeypatch.setattr(gpu_validate, "_counted", lambda fn, mode="kernel": {
        "flops_by_precision": {"tensor_bf16": expected * 1.004}})
    assert gpu_validate.check_gemm("bf16")["status"] == "passed"
    # The library records half the FLOPs (a batch or K misread): failed, whatever the counters say.
    lib["flops"] = {"bf16": expected / 2}
    r = gpu_validate.check_gemm("bf16")
    assert r["status"] == "failed" and "library FLOPs" in r["reason"]
