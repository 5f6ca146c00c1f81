"""bench/gpu_check.sh on a machine without a GPU, and the report notes for library FLOPs pyprof cannot attribute yet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyprof.sources.cuda import libcalls
from pyprof.sources.cuda.libcalls import AttributionGap

# ------------------------------------------------------------------------------------------ attribution notes


def test_graph_replay_note_counts_graph_kernels_without_library_flops():
    recs = [
        {"graph_id": 0, "start_ns": 0, "end_ns": 1_000, "library_flops": 0.0},           # eager, no library call
        {"graph_id": 7, "start_ns": 1_000, "end_ns": 3_001_000, "library_flops": 0.0},   # replayed GEMM: 3 ms
        {"graph_id": 7, "start_ns": 3_001_000, "end_ns": 4_001_000, "library_flops": 0.0},  # 1 ms
        {"graph_id": 7, "start_ns": 0, "end_ns": 5, "library_flops": 2e9},               # attributed: not counted
    ]
    note = libcalls.graph_replay_note(recs)
    assert note is not None and note.gap is AttributionGap.CUDA_GRAPH_REPLAY
    assert note.count == 2                       # the two graph kernels with no library FLOPs
    assert note.time_s == pytest.approx(4e-3)    # 3,000,000 ns + 1,000,000 ns = 4 ms
    assert note.text.startswith("CUDA-graph replays: library FLOPs not attributed")
    assert libcalls.graph_replay_note(recs[:1]) is None    # no graph kernel
    assert libcalls.graph_replay_note(None) is None        # records not kept


def test_cudnn_backend_note_says_where_the_flops_come_from():
    note = libcalls.cudnn_backend_note(53, analytic_counting=True)
    assert note is not None and note.gap is AttributionGap.CUDNN_BACKEND and note.count == 53
    assert note.text == ("53 cuDNN backend execution(s) not attributed; their FLOPs come from the analytic count")
    assert "missing from library FLOPs" in libcalls.cudnn_backend_note(1, analytic_counting=False).text
    assert libcalls.cudnn_backend_note(0, True) is None
    with pytest.raises(ValueError, match="negative"):
        libcalls.cudnn_backend_note(-1, True)


# ------------------------------------------------------------------------------------------ bench/gpu_check.sh on a CPU

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"
STEP_NAMES = ("build", "pytest", "bindings", "counters", "modes", "ncu", "peaks", "overhead")


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    e = dict(os.environ, PYTHON=os.environ.get("PYTHON", "python3"), **env)
    e.pop("OUT", None)
    return subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "out"), *args], capture_output=True,
                          text=True, timeout=120, env=e, check=False, cwd=str(ROOT))


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_gpu_check_without_a_gpu_reports_each_step_and_exits_0(tmp_path):
    p = _run(tmp_path, "--no-build", GPU_CHECK_ASSUME_NO_GPU="1")
    assert p.returncode == 0, p.stderr
    out = tmp_path / "out"
    files = sorted(f.name for f in out.iterdir())
    assert len(files) <= 8 and "summary.md" in files and "checks.json" in files
    summary = (out / "summary.md").read_text()
    for name in STEP_NAMES[1:]:
        assert f"| {name} | no GPU |" in summary, name
    assert "| build | skipped |" in summary and "Nothing ran on a GPU" in summary
    checks = json.loads((out / "checks.json").read_text())
    assert set(checks["steps"]) == {"bindings", "counters", "modes", "ncu"}
    # 4 Python steps, one skipped row each, none failed
    assert checks["summary"] == {"passed": 0, "failed": 0, "skipped": 4, "unavailable": 0}


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_gpu_check_stops_starting_steps_when_the_budget_is_spent(tmp_path):
    # A stand-in nvidia-smi makes the script believe a GPU is there; a 20 s budget leaves 20 - 10 (reserve) < 15 s
    # for the first step, so every step is reported "out of time" instead of being started and killed.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-0)'\n")
    fake.chmod(0o755)
    p = _run(tmp_path, "--no-build", GPU_CHECK_BUDGET_S="20", PATH=f"{bindir}:{os.environ['PATH']}")
    summary = (tmp_path / "out" / "summary.md").read_text()
    for name in STEP_NAMES[1:]:
        assert f"| {name} | skipped |" in summary and "out of time" in summary, name
    assert p.returncode == 0   # nothing failed: nothing was started


def test_gpu_check_rejects_unknown_arguments(tmp_path):
    p = _run(tmp_path, "--frobnicate")
    assert p.returncode == 2 and "unknown argument '--frobnicate'" in p.stderr


def test_binding_evaluation_names_the_kernel_that_carries_the_flops():
    from bench.gpu_check import evaluate_binding, is_gemm_kernel
    assert is_gemm_kernel("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64") and is_gemm_kernel("nvjet_hsh_")
    assert not is_gemm_kernel("void cublasLt::splitKreduce_kernel<32, 16, int, float>")
    # 2 x 64 x 64 x 65536 = 536,870,912 FLOPs bound to the reduction kernel after the GEMM: the defect to catch.
    recs = [{"name": "sm90_xmma_gemm_bf16", "library_flops": 0.0},
            {"name": "cublasLt::splitKreduce_kernel", "library_flops": 536_870_912.0, "precision": "bf16"}]
    r = evaluate_binding("split-K", 536_870_912.0, "bf16", recs)
    assert r["status"] == "failed" and "not the GEMM: cublasLt::splitKreduce_kernel" in r["reason"]
    recs[0]["library_flops"], recs[1]["library_flops"] = 536_870_912.0, 0.0
    recs[0]["precision"] = "bf16"
    assert evaluate_binding("split-K", 536_870_912.0, "bf16", recs)["status"] == "passed"
    r = evaluate_binding("tf32", 536_870_912.0, "tf32", recs)
    assert r["status"] == "failed" and "precision" in r["reason"]
