"""Validation of pyprof's GPU FLOP figures on a GPU (issue 4's correctness list), and the cost of exact counters.

    python -m bench.gpu_validate --out bench/results/<gpu>-<date>          # everything below
    python -m bench.gpu_validate --only gemm,micro --out DIR               # a subset

Checks (each a row with expected, measured, ratio and pass/fail):
  gemm     BF16, FP16, TF32, FP8 (torch._scaled_mm) and FP64 GEMMs of 8192^3: library FLOPs (hooks) == 2*M*N*K exactly,
           tensor-pipe executed FLOPs (counters, kernel mode) == 2*M*N*K within 1%; M=1000: executed >= 2MNK, ratio.
  micro    pyprof's FFMA / HFMA2 / DFMA peak kernels under the counters: FP32 = 2 FLOP per FFMA thread-instruction,
           FP16 = 4 per HFMA2, FP64 = 2 per DFMA, so the counted FLOPs equal the kernel's own formula exactly.
  ncu      the same GEMM and micro kernels under ``ncu --metrics <same list> --clock-control none``: pyprof's values
           agree within 1%.
  cost     exact executed FLOPs of a whole training step (ResNet-50, GPT-2 small) in step mode: wall cost against
           (passes + 1) x step time, and ncu collecting the same metrics on the same step: pyprof >= 20x cheaper.
  pm       PM sampling overhead on the same step: <= 2% of step time.

Without a GPU it writes a JSON saying so and exits 0. Child processes (``--child ...``) are what ncu runs.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pyprof.report.atomic import atomic_write_text
GEMM_CASES = {  # name: (precision class of the library call, M, N, K)
    "bf16": ("bf16", 8192, 8192, 8192),
    "fp16": ("fp16", 8192, 8192, 8192),
    "tf32": ("tf32", 8192, 8192, 8192),
    "fp8": ("fp8", 8192, 8192, 8192),
    "fp64": ("fp64", 8192, 8192, 8192),
    "bf16_m1000": ("bf16", 1000, 8192, 8192),
}
COUNTER_PRECISION = {"bf16": "tensor_bf16", "fp16": "tensor_fp16", "tf32": "tensor_tf32", "fp8": "tensor_fp8",
                     "fp64": "tensor_fp64"}
MICRO_CASES = {"ffma": "fp32", "hfma2": "fp16", "dfma": "fp64"}


# ------------------------------------------------------------------------------------------------ workloads
def run_gemm(case: str, reps: int = 1) -> None:
    """Run one GEMM case ``reps`` times on cuda:0 (the same code in-process and under ncu)."""
    import torch

    prec, m, n, k = GEMM_CASES[case]
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    dev = torch.device("cuda")
    if prec == "fp8":
        a = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device=dev).to(torch.float8_e4m3fn).t()  # column-major B, as _scaled_mm wants
        one = torch.ones((), device=dev)
        for _ in range(reps):
            torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    else:
        dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32, "fp64": torch.float64}[prec]
        a = torch.randn(m, k, device=dev, dtype=dt)
        b = torch.randn(k, n, device=dev, dtype=dt)
        for _ in range(reps):
            a @ b
    torch.cuda.synchronize()


def run_micro(kind: str, iterations: int = 4096) -> dict[str, Any]:
    from pyprof._native import load_cuda
    mod, why = load_cuda()
    if mod is None:
        raise RuntimeError(why)
    return dict(mod.gpu_peak(kind, 0, iterations, 1))


# ------------------------------------------------------------------------------------------------ in-process checks
def _counted(fn, mode: str = "kernel") -> dict[str, Any]:
    """Run ``fn`` as one step under a CounterSession; returns the CounterResult as a dict."""
    from pyprof.sources.cuda.counters import CounterSession
    from pyprof.sources.cuda.session import jsonable
    s = CounterSession(mode)
    if not s.start():
        return {"error": s.reason}
    s.begin_step(0)
    fn()
    s.end_step(0)
    return jsonable(s.finish())


def check_gemm(case: str) -> dict[str, Any]:
    from pyprof.sources.cuda import libcalls
    prec, m, n, k = GEMM_CASES[case]
    expected = 2.0 * m * n * k
    run_gemm(case)  # warm-up: cuBLAS handles, heuristics, lazy loading
    libcalls.install_hooks()
    libcalls.drain_flops_by_precision()
    run_gemm(case)
    lib = libcalls.drain_flops_by_precision()
    res = _counted(lambda: run_gemm(case))
    libcalls.uninstall_hooks()
    ex = (res.get("flops_by_precision") or {}).get(COUNTER_PRECISION[prec])
    row = {"check": f"gemm {case}", "m": m, "n": n, "k": k, "expected_flops": expected,
           "library_flops": lib, "library_ok": lib.get(prec) == expected,
           "executed_tensor_flops": ex, "executed_over_expected": (ex / expected) if ex else None,
           "counter_error": res.get("error") or res.get("reason")}
    if m % 128 == 0:
        row["executed_ok"] = ex is not None and abs(ex / expected - 1) <= 0.01
    else:  # tile padding: executed >= algorithmic, report the ratio
        row["executed_ok"] = ex is not None and ex >= expected * 0.999
    return row


def check_micro(kind: str) -> dict[str, Any]:
    prec = MICRO_CASES[kind]
    out: dict[str, Any] = {}
    res = _counted(lambda: out.update(run_micro(kind)))
    expected = out.get("flops")
    rows = [r for r in res.get("kernels") or [] if (r.get("flops_by_precision") or {}).get(prec)]
    measured = max((r["flops_by_precision"][prec] for r in rows), default=None)
    return {"check": f"micro {kind}", "expected_flops": expected, "executed_flops": measured,
            "ok": expected is not None and measured is not None and abs(measured / expected - 1) <= 1e-6,
            "counter_error": res.get("error") or res.get("reason"), "kernel_rows": len(rows)}


# ------------------------------------------------------------------------------------------------ ncu
def parse_ncu_csv(text: str) -> list[dict[str, Any]]:
    """Rows of ``ncu --csv --page raw --print-units base``: one dict per kernel, metric values as floats.

    The first CSV line is the header, a second line of units follows when ncu prints units; numbers may carry
    thousands separators. Lines before the header (ncu's ``==PROF==`` log) are skipped.
    """
    lines = [ln for ln in text.splitlines() if ln.startswith('"')]
    if not lines:
        return []
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header = rows[0]
    body = rows[1:]
    if body and body[0] and body[0][0] in ("", "ID") and not body[0][0].isdigit():
        body = body[1:]  # units row
    out = []
    for r in body:
        d: dict[str, Any] = {}
        for h, v in zip(header, r):
            vv = v.replace(",", "")
            try:
                d[h] = float(vv)
            except ValueError:
                d[h] = v
        out.append(d)
    return out


def ncu_metrics(res_metrics: list[str]) -> list[str]:
    """The counter metrics ncu can collect as given (pyprof's list without peak-rate sub-metrics)."""
    return [m for m in res_metrics if ".peak_sustained" not in m and not m.endswith(".per_second")]


def check_ncu(case_kind: str, case: str, metrics: list[str], pyprof_values: dict[str, float]) -> dict[str, Any]:
    ncu = shutil.which("ncu")
    if ncu is None:
        return {"check": f"ncu {case}", "skipped": "ncu not on PATH"}
    cmd = [ncu, "--metrics", ",".join(metrics), "--clock-control", "none", "--csv", "--page", "raw",
           "--print-units", "base", sys.executable, "-m", "bench.gpu_validate", "--child", case_kind, case]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    rows = parse_ncu_csv(p.stdout)
    sums = {m: sum(r.get(m, 0.0) for r in rows if isinstance(r.get(m), float)) for m in metrics}
    agree = {}
    for m, v in sums.items():
        pv = pyprof_values.get(m)
        if pv and v:
            agree[m] = pv / v
    ok = bool(agree) and all(abs(r - 1) <= 0.01 for m, r in agree.items() if "time" not in m and "cycles" not in m)
    return {"check": f"ncu {case}", "command": " ".join(cmd), "returncode": p.returncode, "wall_s": wall,
            "kernels": len(rows), "ncu_sums": sums, "pyprof_over_ncu": agree, "ok": ok,
            "stderr_tail": p.stderr[-800:] if p.returncode else ""}


# ------------------------------------------------------------------------------------------------ cost and PM
def check_cost(model: str, steps: int = 3) -> dict[str, Any]:
    import torch

    from bench.gpu_overhead import make_step
    from pyprof.sources.cuda.counters import CounterSession
    from pyprof.sources.cuda.session import jsonable
    step, _model, facts = make_step(model, None)
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        t.append(time.perf_counter() - t0)
    step_s = statistics.median(t)
    s = CounterSession("step")
    if not s.start():
        return {"check": f"cost {model}", "error": s.reason}
    passes_needed = int(s.metric_set.num_passes or 1)
    t0 = time.perf_counter()
    for i in range(passes_needed):  # step mode: one pass per step, the passes of successive identical steps
        s.begin_step(i)
        step()
        s.end_step(i)
    res = jsonable(s.finish())
    cost = time.perf_counter() - t0
    passes = res.get("num_passes")
    row = {"check": f"cost {model}", **facts, "step_s": step_s, "num_passes": passes, "steps_run": passes_needed,
           "counter_wall_s": cost, "bound_s": (passes + 1) * step_s if passes else None,
           "within_bound": bool(passes) and cost <= (passes + 1) * step_s,
           "executed_flops_per_step": res.get("executed_flops"), "complete": res.get("complete"),
           "mixed": res.get("mixed")}
    ncu = shutil.which("ncu")
    if ncu and res.get("metrics"):
        plain = _timed([sys.executable, "-m", "bench.gpu_validate", "--child", "step", model])
        cmd = [ncu, "--metrics", ",".join(ncu_metrics(res["metrics"])), "--clock-control", "none", "--csv",
               "--page", "raw", sys.executable, "-m", "bench.gpu_validate", "--child", "step", model]
        under = _timed(cmd)
        row.update(ncu_command=" ".join(cmd), ncu_wall_s=under, plain_child_wall_s=plain,
                   ncu_cost_s=under - plain, pyprof_speedup_vs_ncu=(under - plain) / cost if cost else None)
    return row


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t0


def check_pm(model: str, steps: int = 20, blocks: int = 3) -> dict[str, Any]:
    import pyprof
    from bench.gpu_overhead import make_step
    step, m, facts = make_step(model, None)
    for _ in range(5):
        step()
    med: dict[bool, list[float]] = {False: [], True: []}
    status = None
    for _ in range(blocks):
        for pm in (False, True):
            with pyprof.profile(m, measure_peak=False, count_flops="off", autosave_s=None, pm_sampling=pm) as prof:
                for _ in range(steps):
                    step()
                    prof.step()
            r = prof.result()
            med[pm].append(r.totals.step_time_s_median)
            if pm:
                status = (r.gpu.to_dict() if r.gpu is not None else {}).get("status", {}).get("pm_sampling")
    ratios = [b / a - 1 for a, b in zip(med[False], med[True])]
    o = 100 * statistics.median(ratios)
    return {"check": f"pm overhead {model}", **facts, "overhead_pct": o, "ok": o <= 2.0, "pm_status": status}


# ------------------------------------------------------------------------------------------------ main
def _child(kind: str, case: str) -> int:
    if kind == "gemm":
        run_gemm(case)
    elif kind == "micro":
        run_micro(case)
    elif kind == "step":
        import torch

        from bench.gpu_overhead import make_step
        step, _m, _f = make_step(case, None)
        step()
        torch.cuda.synchronize()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="gemm,micro,ncu,cost,pm")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", nargs=2, metavar=("KIND", "CASE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return _child(*a.child)
    import torch

    res: dict[str, Any] = {"command": "python -m bench.gpu_validate " + " ".join(argv if argv is not None else sys.argv[1:]),
                           "torch": torch.__version__, "checks": []}
    if not torch.cuda.is_available():
        res["skipped"] = "no CUDA GPU visible to torch: nothing to validate"
    else:
        res["device"] = torch.cuda.get_device_name(0)
        want = set(a.only.split(","))

        def add(fn, *args):
            try:
                r = fn(*args)
            except Exception as e:  # one failed check must not hide the others
                r = {"check": f"{fn.__name__}{args}", "error": repr(e)}
            res["checks"].append(r)
            print(json.dumps(r)[:300], file=sys.stderr)
            return r

        if "gemm" in want:
            for case in GEMM_CASES:
                add(check_gemm, case)
        if "micro" in want:
            for kind in MICRO_CASES:
                add(check_micro, kind)
        if "ncu" in want:
            from pyprof.sources.cuda.counters import build_flop_metric_set
            try:
                ms = build_flop_metric_set(_chip(), include_peaks=False)
                metrics = ncu_metrics(ms.metrics)
            except Exception as e:
                metrics = []
                res["checks"].append({"check": "ncu", "error": repr(e)})
            for kind, case in (("gemm", "bf16"), ("gemm", "bf16_m1000"), ("micro", "ffma"), ("micro", "hfma2")):
                if metrics:
                    pv = _counted(lambda: run_gemm(case) if kind == "gemm" else run_micro(case))
                    add(check_ncu, kind, case, metrics, pv.get("total_values") or {})
        if "cost" in want:
            for model in ("resnet50", "gpt2"):
                add(check_cost, model)
        if "pm" in want:
            add(check_pm, "resnet50")
    text = json.dumps(res, indent=2, default=str)
    if a.out is not None:
        atomic_write_text(a.out / "gpu_validate.json", text + "\n")
    print(text)
    return 0


def _chip() -> str:
    from pyprof._native import load_cuda
    mod, why = load_cuda()
    if mod is None:
        raise RuntimeError(why)
    return mod.counters_chip_name(0)


if __name__ == "__main__":
    raise SystemExit(main())
