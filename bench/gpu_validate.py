"""Validation of pyprof's GPU FLOP figures on a GPU (issue 4's correctness list), and the cost of exact counters.

    python -m bench.gpu_validate --out bench/results/<gpu>-<date>          # everything below
    python -m bench.gpu_validate --only gemm,micro --out DIR               # a subset

Checks (each a row with a typed ``status``: passed, failed, skipped or unavailable, and a ``reason`` whenever it did
not pass; ``summary`` counts them and the exit code is 1 when any failed, so no failure is ever swallowed):
  gemm     BF16, FP16, TF32, FP8 (torch._scaled_mm) and FP64 GEMMs of 8192^3: library FLOPs (hooks) == 2*M*N*K exactly,
           tensor-pipe executed FLOPs (counters, kernel mode) == 2*M*N*K within 1%; M=1000: executed >= 2MNK, ratio.
  micro    pyprof's FFMA / HFMA2 / DFMA peak kernels under the counters, exact by the difference of two launches with
           different iteration counts (the kernels run setup FMAs/ADDs outside their timed chains, so one launch never
           equals its formula): FFMA and DFMA counted/formula = 1 exactly; HFMA2 = 0.5 (counter ticks once per HFMA2
           thread instruction; ncu's FP16 definition counts 2 FLOP per HFMA2) or 1.0 (once per lane): the row says which.
  ncu      the same GEMM and micro kernels under ``ncu --metrics <same list> --clock-control none --cache-control
           none``: pyprof's values agree within 1%. Where the container refuses counters (ncu "LibraryNotLoaded",
           ERR_NVGPUCTRPERM) the row is "unavailable" and says so.
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

from bench.gpu_checklib import (
    Launch,
    Status,
    agreement,
    difference_check,
    ncu_refusal,
    row,
    run_check,
    summarize,
)
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
#: Peak kernel -> the counter precision its chains land in (gpu_peak kinds).
MICRO_CASES = {"ffma": "fp32", "hfma2": "fp16", "dfma": "fp64", "mma_bf16": "tensor_bf16", "wgmma_bf16": "tensor_bf16"}
#: counted/formula ratios that count as exact, and what each one means. FFMA and DFMA: 1 only. HFMA2: pyprof follows
#: ncu (2 FLOP per HFMA2 thread instruction) while the kernel's formula counts 4 (two lanes), so 0.5 if the counter
#: ticks once per instruction, 1.0 if once per lane. Tensor kernels: 1.0 if "math ops" are FLOPs (2 per FMA), 0.5 if
#: they are FMAs (GPU_COUNTERS.md section 1: unverified on Hopper).
MICRO_ACCEPTED: dict[str, dict[float, str]] = {
    "hfma2": {0.5: "hfma counter ticks once per HFMA2 thread instruction (ncu's FP16 roofline: 2 FLOP per HFMA2, "
                   "half the arithmetic)",
              1.0: "hfma counter ticks once per FP16 lane (2 per HFMA2)"},
    "mma_bf16": {1.0: "tensor math ops are FLOPs (2 per multiply-add), mma.sync path",
                 0.5: "tensor math ops are multiply-adds (FMAs), not FLOPs: weight 2 needed, mma.sync path"},
    "wgmma_bf16": {1.0: "tensor math ops are FLOPs (2 per multiply-add), wgmma path",
                   0.5: "tensor math ops are multiply-adds (FMAs), not FLOPs: weight 2 needed, wgmma path"},
}


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
    """One ``gpu_peak`` call: an untimed warm-up launch and one timed launch, both of ``iterations``."""
    from pyprof._native import load_cuda
    mod, why = load_cuda()
    if mod is None:
        raise RuntimeError(why)
    return dict(mod.gpu_peak(kind, 0, iterations, 1))


# ------------------------------------------------------------------------------------------------ in-process checks
# Counter statuses that mean the environment refuses counters (not a pyprof defect): CounterSession.status values.
_REFUSED = {"insufficient_privileges", "counters_in_use", "unsupported"}


def _counted(fn, mode: str = "kernel") -> dict[str, Any]:
    """Run ``fn`` as one step under a CounterSession; returns the CounterResult as a dict, or ``{"error",
    "error_status"}`` when the session does not start (``error_status``: CounterSession.status)."""
    from pyprof.sources.cuda.counters import CounterSession
    from pyprof.sources.cuda.session import jsonable
    s = CounterSession(mode)
    if not s.start():
        return {"error": s.reason or "counter session did not start", "error_status": s.status}
    s.begin_step(0)
    fn()
    s.end_step(0)
    return jsonable(s.finish())


def _counter_failure(check: str, res: dict[str, Any], **fields: Any) -> dict[str, Any] | None:
    """The row for a counter session that did not start: UNAVAILABLE when the environment refuses, else FAILED."""
    if "error" not in res:
        return None
    status = Status.UNAVAILABLE if res.get("error_status") in _REFUSED else Status.FAILED
    return row(check, status, f"counters: {res['error']}", **fields)


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
    check = f"gemm {case}"
    facts = {"m": m, "n": n, "k": k, "expected_flops": expected, "library_flops": lib,
             "library_ok": lib.get(prec) == expected}
    failed = _counter_failure(check, res, **facts)
    if failed is not None:
        if not facts["library_ok"]:  # the library part ran and disagreed: that is a failure whatever the counters
            failed.update(status=Status.FAILED.value,
                          reason=f"library FLOPs {lib.get(prec)} != 2MNK = {expected:.0f}; {failed['reason']}")
        return failed
    ex = (res.get("flops_by_precision") or {}).get(COUNTER_PRECISION[prec])
    if m % 128 == 0:
        executed_ok = ex is not None and abs(ex / expected - 1) <= 0.01
        want = "within 1% of 2MNK"
    else:  # tile padding: executed >= algorithmic, report the ratio
        executed_ok = ex is not None and ex >= expected * 0.999
        want = ">= 2MNK (tile padding)"
    fields = dict(facts, executed_tensor_flops=ex, executed_over_expected=(ex / expected) if ex else None,
                  executed_ok=executed_ok, counter_notes=res.get("notes"))
    problems = []
    if not facts["library_ok"]:
        problems.append(f"library FLOPs {lib.get(prec)} != 2MNK = {expected:.0f}")
    if not executed_ok:
        problems.append(f"executed {COUNTER_PRECISION[prec]} FLOPs {ex} not {want} ({expected:.0f})")
    return row(check, Status.FAILED if problems else Status.PASSED, "; ".join(problems), **fields)


#: Iteration counts of the two launches the exact micro check differences (small: under a second each, replayed).
MICRO_ITERATIONS = (2048, 4096)


def _per_launch(kind: str, iterations: int) -> tuple[Launch | None, dict[str, Any]]:
    """The counted FLOPs of one launch of ``kind``: the peak kernel's rows under kernel mode (warm-up and timed
    launch are identical; both must read the same)."""
    prec = MICRO_CASES[kind]
    out: dict[str, Any] = {}
    res = _counted(lambda: out.update(run_micro(kind, iterations)))
    if "error" in res:
        return None, res
    vals = [r["flops_by_precision"][prec] for r in res.get("kernels") or []
            if (r.get("flops_by_precision") or {}).get(prec)]
    info = {"rows": len(vals), "values": vals[:4], "iterations": out.get("iterations"), "formula": out.get("formula")}
    if not vals or out.get("flops") is None:
        return None, {"error": f"no kernel row with {prec} FLOPs (rows: {len(res.get('kernels') or [])})", **info}
    if max(vals) != min(vals):
        info["note"] = "identical launches read different counts"
    return Launch(int(out["iterations"]), float(out["flops"]), float(max(vals))), info


def check_micro(kind: str) -> dict[str, Any]:
    """Exact counter semantics on a peak kernel, by the difference of two launches (:func:`difference_check`)."""
    check = f"micro {kind} (difference of two launches)"
    from pyprof._native import load_cuda
    mod, why = load_cuda()
    if mod is None:
        return row(check, Status.SKIPPED, f"pyprof's CUDA part does not load: {why}")
    if kind not in mod.gpu_peak_kinds():
        return row(check, Status.SKIPPED, f"this build or GPU cannot run {kind} (gpu_peak_kinds: "
                                          f"{', '.join(mod.gpu_peak_kinds())})")
    a, info_a = _per_launch(kind, MICRO_ITERATIONS[0])
    if a is None:
        return _counter_failure(check, info_a) or row(check, Status.FAILED, info_a["error"], low=info_a)
    b, info_b = _per_launch(kind, MICRO_ITERATIONS[1])
    if b is None:
        return _counter_failure(check, info_b) or row(check, Status.FAILED, info_b["error"], high=info_b)
    meanings = MICRO_ACCEPTED.get(kind, {1.0: "exact"})
    d = difference_check(a, b, tuple(meanings))
    fields: dict[str, Any] = {"low": {**info_a, "counted": a.counted_flops, "formula_flops": a.formula_flops},
                              "high": {**info_b, "counted": b.counted_flops, "formula_flops": b.formula_flops},
                              "ratio": d.ratio, "setup_flops_per_launch": d.setup_flops_per_launch,
                              "single_launch_ratio": a.counted_flops / a.formula_flops if a.formula_flops else None}
    if d.exact and d.matched is not None:
        fields["finding"] = meanings[d.matched]
    return row(check, Status.PASSED if d.exact else Status.FAILED, d.reason, **fields)


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


#: ncu options for agreement: no clock locking (CUPTI does not lock clocks either) and no cache flush between passes
#: (ncu flushes by default, CUPTI does not, so DRAM bytes would differ otherwise). GPU_COUNTERS.md section 7 item 6.
NCU_OPTIONS = ("--clock-control", "none", "--cache-control", "none", "--csv", "--page", "raw", "--print-units", "base")


def ncu_command(ncu: str, metrics: list[str], child: list[str]) -> list[str]:
    """The ncu command line that collects ``metrics`` on ``python -m bench.gpu_validate --child *child``."""
    return [ncu, "--metrics", ",".join(metrics), *NCU_OPTIONS, sys.executable, "-m", "bench.gpu_validate",
            "--child", *child]


def check_ncu(case_kind: str, case: str, metrics: list[str], pyprof_values: dict[str, float],
              timeout_s: float = 300) -> dict[str, Any]:
    check = f"ncu {case_kind} {case}"
    ncu = shutil.which("ncu")
    if ncu is None:
        return row(check, Status.SKIPPED, "ncu not on PATH")
    if not pyprof_values:
        return row(check, Status.FAILED, "pyprof collected no counter values for this case to compare")
    cmd = ncu_command(ncu, metrics, [case_kind, case])
    t0 = time.perf_counter()
    p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - t0
    rows = parse_ncu_csv(p.stdout)
    facts = {"command": " ".join(cmd), "returncode": p.returncode, "wall_s": wall, "kernels": len(rows),
             "output_tail": (p.stdout[-400:] + p.stderr[-800:]) if (p.returncode or not rows) else ""}
    refused = ncu_refusal(p.stdout + p.stderr)
    if refused and not rows:
        return row(check, Status.UNAVAILABLE, refused, **facts)
    if not rows:
        return row(check, Status.FAILED, f"ncu returned {p.returncode} and no kernel rows", **facts)
    sums = {m: sum(r[m] for r in rows if isinstance(r.get(m), float)) for m in metrics}
    ratios, bad = agreement(pyprof_values, sums)
    judged = [m for m in ratios if m not in bad]
    reason = ""
    if bad:
        reason = "pyprof/ncu outside 1%: " + ", ".join(f"{m} {ratios.get(m, float('nan')):.4f}" for m in bad)
    elif not judged:
        reason = "no metric could be compared (all missing or zero on one side)"
    return row(check, Status.FAILED if reason else Status.PASSED, reason, **facts, ncu_sums=sums,
               pyprof_over_ncu=ratios)


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
        return row(f"cost {model}", Status.UNAVAILABLE if s.status in _REFUSED else Status.FAILED,
                   f"counters: {s.reason or s.status}")
    passes_needed = int(s.metric_set.num_passes or 1)
    t0 = time.perf_counter()
    for i in range(passes_needed):  # step mode: one pass per step, the passes of successive identical steps
        s.begin_step(i)
        step()
        s.end_step(i)
    res = jsonable(s.finish())
    cost = time.perf_counter() - t0
    passes = res.get("num_passes")
    within = bool(passes) and cost <= (passes + 1) * step_s
    problems = ([] if res.get("complete") else ["the pass set did not complete"]) + \
        ([] if within else [f"counter wall {cost:.3f} s above (passes + 1) x step time"])
    out = row(f"cost {model}", Status.FAILED if problems else Status.PASSED, "; ".join(problems), **facts,
              step_s=step_s, num_passes=passes, steps_run=passes_needed, counter_wall_s=cost,
              bound_s=(passes + 1) * step_s if passes else None, within_bound=within,
              executed_flops_per_step=res.get("executed_flops"), complete=res.get("complete"), mixed=res.get("mixed"))
    ncu = shutil.which("ncu")
    if ncu and res.get("metrics"):
        plain = _timed([sys.executable, "-m", "bench.gpu_validate", "--child", "step", model])
        cmd = ncu_command(ncu, ncu_metrics(res["metrics"]), ["step", model])
        under = _timed(cmd)
        out.update(ncu_command=" ".join(cmd), ncu_wall_s=under, plain_child_wall_s=plain,
                   ncu_cost_s=under - plain, pyprof_speedup_vs_ncu=(under - plain) / cost if cost else None)
    return out


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
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
    return row(f"pm overhead {model}", Status.PASSED if o <= 2.0 else Status.FAILED,
               "" if o <= 2.0 else f"PM sampling overhead {o:.2f}% > 2% of step time", **facts, overhead_pct=o,
               pm_status=status)


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

        def add(name: str, fn, *args) -> dict[str, Any]:
            r = run_check(name, fn, *args)
            res["checks"].append(r)
            loud = "FAILED: " if r["status"] == Status.FAILED.value else ""
            print(loud + json.dumps(r, default=str)[:300], file=sys.stderr)
            return r

        if "gemm" in want:
            for case in GEMM_CASES:
                add(f"gemm {case}", check_gemm, case)
        if "micro" in want:
            for kind in MICRO_CASES:
                add(f"micro {kind}", check_micro, kind)
        if "ncu" in want:
            for kind, case in NCU_CASES:
                add(f"ncu {kind} {case}", check_ncu_case, kind, case)
        if "cost" in want:
            for model in ("resnet50", "gpt2"):
                add(f"cost {model}", check_cost, model)
        if "pm" in want:
            add("pm overhead resnet50", check_pm, "resnet50")
    res["summary"] = summarize(res["checks"])
    text = json.dumps(res, indent=2, default=str)
    if a.out is not None:
        atomic_write_text(a.out / "gpu_validate.json", text + "\n")
    print(text)
    if res["summary"]["failed"]:
        print(f"gpu_validate: {res['summary']['failed']} check(s) FAILED (see 'reason' in each row)", file=sys.stderr)
        return 1
    return 0


NCU_CASES = (("gemm", "bf16"), ("gemm", "bf16_m1000"), ("micro", "ffma"), ("micro", "hfma2"))


def check_ncu_case(kind: str, case: str) -> dict[str, Any]:
    """pyprof's kernel-mode counters and ncu on the same case. A metric set that cannot be built is a failure of
    this check (the old script called ``ncu_metrics(ms.metrics)`` on the bound method, and the TypeError was
    swallowed, so no ncu comparison ever ran)."""
    from pyprof.sources.cuda.counters import build_flop_metric_set
    ms = build_flop_metric_set(_chip(), include_peaks=False)
    metrics = ncu_metrics(ms.metrics())
    pv = _counted(lambda: run_gemm(case) if kind == "gemm" else run_micro(case))
    failed = _counter_failure(f"ncu {kind} {case}", pv)
    if failed is not None:
        return failed
    return check_ncu(kind, case, metrics, pv.get("total_values") or {})


def _chip() -> str:
    from pyprof._native import load_cuda
    mod, why = load_cuda()
    if mod is None:
        raise RuntimeError(why)
    return mod.counters_chip_name(0)


if __name__ == "__main__":
    raise SystemExit(main())
