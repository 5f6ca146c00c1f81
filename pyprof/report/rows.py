"""The summary of a result as rows (section, label, value): data first, rendered by markdown.py and terminal.py."""

from __future__ import annotations

from typing import Any

from pyprof.constants import PFS_DAY_FLOP
from pyprof.records import GpuRun, KernelStat, ProfileResult
from pyprof.report.format import num, pct, si


def summary_rows(r: ProfileResult) -> list[tuple[str, str, str]]:
    t = r.totals
    rows: list[tuple[str, str, str]] = []
    add = lambda sec, k, v: rows.append((sec, k, v))
    add("run", "device", f"{r.device.kind}: {r.device.name}" + ("" if r.device.supported else " (not fully supported)"))
    if r.partial:
        add("run", "status", f"PARTIAL: {r.partial_reason}")
    add("run", "recorded steps", f"{t.steps} ({t.timed_steps} timed)")
    add("steps", "step time median / min / max", f"{num(t.step_time_s_median)} / {num(t.step_time_s_min)} / "
        f"{num(t.step_time_s_max)} s")
    add("steps", "wall time (recorded) / process CPU time", f"{num(t.wall_time_s)} s / {num(t.cpu_time_s)} s")
    if t.examples:
        add("steps", "examples", str(t.examples))
    add("flops", "analytic FLOPs (recorded steps)", si(t.analytic_flops, "FLOP"))
    if t.analytic_flops and t.analytic_flops_effective is not None and t.analytic_flops_effective != t.analytic_flops:
        add("flops", "analytic FLOPs, effective (masked work skipped)", si(t.analytic_flops_effective, "FLOP"))
    if t.analytic_flops_per_example:
        add("flops", "analytic FLOPs per example", si(t.analytic_flops_per_example, "FLOP"))
    hw = r.hardware_counters
    add("flops", "hardware FLOPs", si(t.hardware_flops, "FLOP") + (f" ({hw.get('source')})" if hw.get("available")
                                                                     else f" — unavailable: {hw.get('reason')}"))
    add("flops", "analytic counting", f"{t.counted_signatures} distinct step signature(s) counted; "
        f"counting cost {num(t.counting_time_s)} s")
    rec = r.reconciliation
    if rec is not None:
        add("utilization", "FLOP source", rec.flop_source)
        add("utilization", "achieved", si(rec.achieved_flops_per_s, "FLOP/s"))
        for p in rec.peaks:
            add("utilization", f"peak ({p.kind}, {p.precision})", f"{si(p.flops_per_s, 'FLOP/s')} — {p.source}")
        add("utilization", "utilization vs spec/theoretical peak (MFU)", pct(rec.utilization_vs_spec))
        share = uncounted_share(r)
        if share is not None:
            add("utilization", "op calls without a FLOP formula (priced 0 in MFU)",
                f"{pct(share)} (see the ledger; views and copies do no arithmetic)")
        add("utilization", "utilization vs measured peak", pct(rec.utilization_vs_measured))
        add("utilization", "HFU", f"{pct(rec.hfu)} ({rec.hfu_source})")
        add("method 2", "assumed utilization", f"{pct(rec.assumed_utilization)} ({rec.assumed_utilization_source})")
        if rec.error_factor is not None:
            add("method 2", "error factor of the assumption", f"{rec.error_factor:.2f}x ({rec.error_direction})")
            said = error_factor_sentence(rec.assumed_utilization, rec.error_factor, rec.error_direction)
            if said:
                add("method 2", "what the error factor compares", said)
        add("method 2", "Method 2 for this window / measured",
            f"{si(rec.method2_window_flops, 'FLOP')} / {si(rec.measured_window_flops, 'FLOP')}")
        tr = rec.training_run
        if tr:
            add("training run", "run", f"{tr['examples']:.4g} examples x {tr['epochs']:g} epochs, "
                f"{tr['projected_days']:.4g} days on this device")
            add("training run", "measured (counted FLOPs)", f"{si(tr['measured_flops'], 'FLOP')} = "
                f"{tr['measured_pfs_days']:.4g} pfs-days")
            if tr["method1_x3_flops"] is not None:
                add("training run", "Method 1 (forward x 3)", f"{si(tr['method1_x3_flops'], 'FLOP')} = "
                    f"{tr['method1_x3_pfs_days']:.4g} pfs-days ({num(tr['method1_x3_over_measured'], 3)}x measured)")
            if tr["method2_flops"] is not None:
                add("training run", "Method 2 (assumed utilization)", f"{si(tr['method2_flops'], 'FLOP')} = "
                    f"{tr['method2_flops'] / PFS_DAY_FLOP:.4g} pfs-days ({num(tr['method2_over_measured'], 3)}x measured)")
        for n in rec.notes:
            add("notes", "reconciliation", n)
    if r.gpu is not None:
        rows += gpu_rows(r)
    if r.device.note:
        add("notes", "device", r.device.note)
    for n in r.notes:
        add("notes", "run", n)
    return rows


def top_ops(r: ProfileResult, n: int = 10) -> list[tuple[str, int, float, float]]:
    """(op, calls, FLOPs, share) over the distinct counted signatures, largest first."""
    agg: dict[str, list[float]] = {}
    for fc in r.flop_counts:
        for name, op in fc.get("by_op", {}).items():
            a = agg.setdefault(name, [0, 0.0])
            a[0] += op.get("calls", 0)
            a[1] += op.get("flops", 0)
    total = sum(v[1] for v in agg.values()) or 1.0
    rows = sorted(((k, int(v[0]), v[1], v[1] / total) for k, v in agg.items()), key=lambda x: -x[2])
    return rows[:n]


def uncounted_ops(r: ProfileResult, n: int = 15) -> list[tuple[str, int, str]]:
    """(op, calls, kind) of ops with no FLOP formula, most called first."""
    agg: dict[str, list] = {}
    for fc in r.flop_counts:
        for u in fc.get("uncounted", []):
            a = agg.setdefault(u["name"], [0, u.get("kind", "other")])
            a[0] += u.get("calls", 0)
    return sorted(((k, v[0], v[1]) for k, v in agg.items()), key=lambda x: -x[1])[:n]


NVML_UTILIZATION_MEANING = ("NVML 'utilization' is the share of time one or more kernels ran (a one-thread kernel "
                            "reads 100%); it is not FLOP utilization")


def gpu_rows(r: ProfileResult) -> list[tuple[str, str, str]]:
    """Rows of the GPU section: sources, busy time, kernels, library FLOPs by precision, NVML, counters."""
    g = r.gpu if r.gpu is not None else GpuRun()
    rows: list[tuple[str, str, str]] = []
    add = lambda k, v: rows.append(("gpu", k, v))
    for src, st in g.status.items():
        add(f"source: {src}", "on" if st.active else f"off — {st.reason}")
    t = g.totals
    if t is not None and t.steps:
        add("timing", str(t.timing_source))
        if t.busy_time_s is not None:
            add("GPU busy time (union of kernels) / share of step time",
                f"{num(t.busy_time_s)} s / {pct(t.busy_fraction)}")
        if t.gpu_time_s is not None:
            add("GPU step time (CUDA events)", f"{num(t.gpu_time_s)} s")
        if t.kernel_count is not None:
            add("kernels", f"{int(t.kernel_count)} ({num(t.kernel_time_s)} s of kernel time)")
        add("share of kernel time without a FLOP count", pct(t.uncounted_kernel_time_share))
        add("library FLOPs (cuBLAS/cuBLASLt/cuDNN formula)", si(t.library_flops, "FLOP"))
        for row in t.by_precision:
            add(f"library {row.precision}", f"{si(row.library_flops, 'FLOP')}, "
                f"{si(row.achieved_flops_per_s, 'FLOP/s')} = {pct(row.utilization_vs_spec)} of "
                f"{si(row.spec_peak_flops_per_s, 'FLOP/s')}")
        if t.library_utilization is not None:
            add("library utilization (each precision against its own peak)", pct(t.library_utilization))
        if t.executed_flops is not None:
            add("executed FLOPs (hardware counters)", f"{si(t.executed_flops, 'FLOP')}; executed/library "
                f"{num(t.executed_over_library, 3)}, executed/analytic {num(t.executed_over_analytic, 3)} "
                "(HFU vs MFU made concrete)")
        if t.library_over_analytic is not None:
            add("library / analytic FLOPs", num(t.library_over_analytic, 3))
        if t.nvml_utilization_gpu_pct_mean is not None:
            add("NVML utilization.gpu (mean)", f"{num(t.nvml_utilization_gpu_pct_mean)}% — {NVML_UTILIZATION_MEANING}")
        if t.sm_clock_mhz_mean is not None:
            add("SM clock (NVML mean)", f"{num(t.sm_clock_mhz_mean)} MHz")
        if t.power_w_mean is not None:
            add("power (NVML mean)", f"{num(t.power_w_mean)} W")
        if t.energy_j is not None:
            add("energy / per analytic FLOP", f"{num(t.energy_j)} J / {si(t.energy_per_analytic_flop_j, 'J')}")
    ts = g.tracer_stats or {}
    if ts:
        lost = {k: ts.get(k) for k in ("dropped_by_cupti", "buffer_requests_refused", "pending_dropped")
                if ts.get(k) is not None}
        add("activity records lost", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in lost.items()) or "n/a")
    for n in g.notes:
        rows.append(("notes", "gpu", n))
    return rows


def gpu_kernels(r: ProfileResult, n: int = 20) -> list[KernelStat]:
    """Top kernels by total time (the tracer's per-kernel table), as stored in the report."""
    return list((r.gpu.kernels if r.gpu is not None else None) or [])[:n]


def error_factor_sentence(assumed: float | None, factor: float | None, direction: str | None,
                          whose: str = "this run's") -> str | None:
    """The error factor in plain words: what it compares and what it does to a Method 2 estimate.

    Example: assumed 0.17, factor 3.5, "overestimate" -> "the 17% assumption overestimates this run's utilization
    3.5x, so a Method 2 estimate from this hardware time would overstate the compute 3.5x". None when unknown.
    """
    if assumed is None or factor is None or not direction:
        return None
    a = f"{100 * assumed:.3g}%"
    if direction == "exact" or abs(factor - 1) < 5e-3:
        return f"the {a} assumption matches {whose} utilization, so a Method 2 estimate from this hardware time " \
               "would be right"
    over = direction == "overestimate"
    x = _factor(factor)
    return (f"the {a} assumption {'overestimates' if over else 'underestimates'} {whose} utilization {x}x, "
            f"so a Method 2 estimate from this hardware time would {'overstate' if over else 'understate'} the "
            f"compute {x}x")


def _factor(f: float) -> str:
    """3.5 -> "3.5", 141.7 -> "142": two significant digits below 10, whole numbers above (no 1.4e+02)."""
    return f"{f:.0f}" if f >= 10 else f"{f:.2g}"


def module_flops(flop_counts: list[dict]) -> dict[str, float]:
    """Analytic FLOPs by module path, summed over the distinct step signatures (as :func:`top_ops` does)."""
    agg: dict[str, float] = {}
    for fc in flop_counts or []:
        for name, f in (fc.get("by_module") or {}).items():
            agg[name] = agg.get(name, 0.0) + float(f or 0)
    return agg


def _parent(path: str) -> str | None:
    if path == "Global":
        return None
    return path.rsplit(".", 1)[0] if "." in path else "Global"


def module_tree(flop_counts: list[dict]) -> list[dict]:
    """Modules as a forest for the HTML tree: ``[{"name", "path", "flops", "share", "children": [...]}]``.

    ``share`` is of the "Global" total (all FLOPs of the counted signatures); children sort largest first. A path
    whose parent was not recorded hangs under its nearest recorded ancestor.
    """
    agg = module_flops(flop_counts)
    total = agg.get("Global") or max(agg.values(), default=0.0) or 1.0
    nodes: dict[str, dict[str, Any]] = {
        p: {"name": p.rsplit(".", 1)[-1], "path": p, "flops": f, "share": f / total, "children": []}
        for p, f in agg.items()}
    roots: list[dict[str, Any]] = []
    for p, n in nodes.items():
        q = _parent(p)
        while q is not None and q not in nodes:
            q = _parent(q)
        (nodes[q]["children"] if q is not None else roots).append(n)

    def sort(ns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ns.sort(key=lambda n: -n["flops"])
        for n in ns:
            sort(n["children"])
        return ns

    return sort(roots)


def top_modules(flop_counts: list[dict], n: int = 10) -> list[tuple[str, float, float]]:
    """(module path, FLOPs, share of the total) of the ``n`` largest modules other than "Global"."""
    agg = module_flops(flop_counts)
    total = agg.get("Global") or 1.0
    rows = sorted(((p, f, f / total) for p, f in agg.items() if p != "Global"), key=lambda x: -x[1])
    return rows[:n]


def uncounted_share(r: ProfileResult) -> float | None:
    """Share of op calls without a FLOP formula in the first counted step signature (None when nothing was counted).

    A count's ``op_calls`` and its ledger (``uncounted``) come from the analytic counter; ops in the ledger are priced
    at zero FLOPs, so a large share of arithmetic ops there would make MFU read low.
    """
    best = None
    for fc in r.flop_counts:
        calls = fc.get("op_calls") if isinstance(fc, dict) else None
        if calls:
            best = fc
            break
    if best is None:
        return None
    unc = sum(int(u.get("calls", 0)) for u in best.get("uncounted", []))
    return min(1.0, unc / best["op_calls"])
