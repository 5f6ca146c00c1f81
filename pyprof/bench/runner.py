"""The ``pyprof bench`` runner: peaks and bandwidth, microbenchmarks, training-step workloads, reports.

Data flows one way: measurements here -> :class:`~pyprof.report.bench_schema.BenchReport` -> writers in
``pyprof.report``. A workload or microbenchmark that raises is recorded as failed with its error and the suite goes on;
only a failure of the runner itself propagates (the CLI turns it into a non-zero exit).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyprof.bench import micro as _micro
from pyprof.bench.workloads import CUPY_ID, SkipWorkload, cupy_gemm_loop, select
from pyprof.constants import ASSUMED_UTILIZATION_CPU, ASSUMED_UTILIZATION_GPU
from pyprof.report.bench_schema import BenchReport, MicroResult, WorkloadResult


@dataclass(frozen=True)
class Options:
    preset: str = "quick"            # "quick" or "full"
    device: str = "auto"             # "auto", "cpu", "cuda", "cuda:1"
    only: tuple[str, ...] = ()       # workload ids and/or "micro"; empty = everything
    out: Path | None = Path("pyprof-bench")
    warmup: int | None = None        # steps; None = the preset's
    active: int | None = None
    html: bool = True
    trace: bool = True
    micro: bool = True


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; others validated.

    Raises:
        ValueError: CUDA asked for but unavailable, or an unknown device type.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: torch sees no CUDA GPU (torch {torch.__version__}, "
                             f"CUDA build: {torch.version.cuda}); use --device cpu")
        return device
    if device == "cpu":
        return device
    raise ValueError(f"--device {device!r} unknown: use auto, cpu or cuda[:index]")


class _Progress:
    """rich progress bar on stderr; silent when ``enabled`` is False (tests)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.p = Progress(TextColumn("[bold]pyprof bench"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TextColumn("{task.description}"),
                              console=Console(stderr=True), transient=False)
            self.p.start()
            self.task = self.p.add_task("starting", total=total)

    def label(self, text: str) -> None:
        if self.enabled:
            self.p.update(self.task, description=text)

    def advance(self) -> None:
        if self.enabled:
            self.p.advance(self.task)

    def stop(self) -> None:
        if self.enabled:
            self.p.stop()


def _peaks(device: str) -> tuple[dict[str, Any], list[str]]:
    """Spec/theoretical and measured peaks (FP32) of the device, with provenance."""
    notes: list[str] = []
    peaks: dict[str, Any] = {"precision": "fp32", "spec": None, "measured": None}
    if device == "cpu":
        from pyprof.peaks import cpu
        theo, how = cpu.theoretical_peak("fp32")
        peaks["spec"] = {"flops_per_s": theo, "kind": "theoretical", "source": how}
        p = cpu.measure_peak("fp32")
        peaks["measured"] = {"flops_per_s": p.measured_flops_per_s, "kind": "measured",
                             "median_flops_per_s": p.measured_median_flops_per_s,
                             "source": f"pyprof FMA-chain microkernel ({p.isa}, {p.threads} threads, best of "
                                       f"{len(p.runs_flops_per_s)})"}
        if p.crosscheck_note:  # the FLOP/cycle table and the measurement disagree by more than 1.5x
            notes.append(p.crosscheck_note)
        return peaks, notes
    import torch

    from pyprof.peaks import gpu as gp
    from pyprof.sources.cuda.session import jsonable
    dev = torch.device(device)
    idx = dev.index if dev.index is not None else 0
    props = torch.cuda.get_device_properties(idx)
    cc = (props.major, props.minor)
    devs, _why = gp.detect_devices()
    clock = next((d.max_sm_clock_hz for d in devs if d.index == idx), 0.0)
    peaks["by_precision"] = {}
    for prec in ("fp32", "tf32", "bf16", "fp16", "fp8", "fp64"):
        sp = gp.spec_peak(props.name, cc, props.multi_processor_count, clock, gp.gemm_peak_precision(prec, cc))
        if sp.flops_per_s:
            peaks["by_precision"][prec] = {"flops_per_s": sp.flops_per_s, "source": sp.source}
    if "fp32" in peaks["by_precision"]:
        peaks["spec"] = {"kind": "spec", **peaks["by_precision"]["fp32"]}
    else:
        notes.append(f"'{props.name}' has no FP32 spec peak (not in the database, no FLOP/clock table row)")
    try:
        rows = gp.measure_gpu_peaks(idx, quick=True)
        peaks["gpu_measured"] = jsonable(rows)
        ffma = next((r for r in rows if r.kind == "ffma" and r.measured_flops_per_s), None)
        if ffma is not None:
            peaks["measured"] = {"flops_per_s": ffma.measured_flops_per_s, "kind": "measured",
                                 "source": "pyprof FFMA-chain microkernel (median launch)"}
    except Exception as e:
        notes.append(f"measuring the GPU peaks failed: {e!r}")
    return peaks, notes


def _summarize_profile(r: Any) -> dict[str, Any]:
    """The embedded profile result, without per-step data and long op lists."""
    d = r.to_dict()
    d.pop("steps", None)
    fcs = []
    for fc in d.get("flop_counts", []):
        fc = dict(fc)
        fc.pop("by_module", None)
        fc["uncounted"] = fc.get("uncounted", [])[:10]
        fcs.append(fc)
    d["flop_counts"] = fcs
    return d


def _run_workload(w: Any, opts: Options, device: str, peaks: dict[str, Any], assumed: float,
                  tables: list) -> WorkloadResult:
    import pyprof
    from pyprof.accounting.estimate import error_direction, error_factor

    res = WorkloadResult(id=w.id, name=w.name, family=w.family, assumed_utilization=assumed)
    t_start = time.perf_counter()
    try:
        prep = w.make(opts.preset, device)
    except SkipWorkload as e:
        res.status, res.reason = "skipped", str(e)
        return res
    except Exception as e:
        res.status, res.reason = "failed", f"building the model failed: {type(e).__name__}: {e}"
        return res
    res.source, res.config, res.notes = prep.source, prep.config, list(prep.notes)
    res.params = sum(p.numel() for p in prep.model.parameters())
    warmup = opts.warmup if opts.warmup is not None else (2 if opts.preset == "quick" else 5)
    active = opts.active if opts.active is not None else (3 if opts.preset == "quick" else 20)
    spec = (peaks.get("spec") or {}).get("flops_per_s")
    try:
        kw: dict[str, Any] = {}
        if device != "cpu" and spec:
            kw["peak"] = float(spec)
        with pyprof.profile(prep.model, schedule=pyprof.schedule(warmup=warmup, active=active, repeat=1),
                            examples_per_step=prep.examples_per_step, name=f"bench-{w.id}", **kw) as prof:
            for _ in range(warmup + active):
                prep.step()
                prof.step()
        r = prof.result()
    except Exception as e:
        res.status, res.reason = "failed", f"{type(e).__name__}: {e}"
        res.notes.append(traceback.format_exc(limit=3))
        return res
    t = r.totals
    res.steps_timed = t.timed_steps
    res.step_time_s_median, res.step_time_s_min, res.step_time_s_max = (t.step_time_s_median, t.step_time_s_min,
                                                                        t.step_time_s_max)
    if t.timed_examples and t.timed_wall_time_s:
        res.examples_per_s = t.timed_examples / t.timed_wall_time_s
    timed = [s for s in r.steps if not s.perturbed] or r.steps
    if timed and timed[0].analytic_flops is not None:
        res.flops_per_step = float(statistics.median([s.analytic_flops for s in timed if s.analytic_flops]))
    rec = r.reconciliation
    if rec is not None:
        res.achieved_flops_per_s = rec.achieved_flops_per_s
        res.utilization_vs_spec = rec.utilization_vs_spec
        res.utilization_vs_measured = rec.utilization_vs_measured
        res.error_factor, res.error_direction = rec.error_factor, rec.error_direction
        res.notes += rec.notes
    res.peak_spec_flops_per_s = spec
    res.peak_measured_flops_per_s = (peaks.get("measured") or {}).get("flops_per_s")
    if res.utilization_vs_measured is None and res.achieved_flops_per_s and res.peak_measured_flops_per_s:
        res.utilization_vs_measured = res.achieved_flops_per_s / res.peak_measured_flops_per_s
    if res.utilization_vs_measured:
        res.error_factor_vs_measured = error_factor(assumed, res.utilization_vs_measured)
        if not res.error_direction:
            res.error_direction = error_direction(assumed, res.utilization_vs_measured)
    if spec:
        res.step_utilization_vs_spec = [s.analytic_flops / s.wall_time_s / spec if s.analytic_flops else None
                                        for s in timed]
    res.profile = _summarize_profile(r)
    res.notes += [n for n in r.notes if n not in res.notes]
    if opts.trace:
        _trace_one_step(prep, device, res, tables)
    res.wall_time_s = time.perf_counter() - t_start
    return res


def _trace_one_step(prep: Any, device: str, res: WorkloadResult, tables: list) -> None:
    """One extra step under torch.profiler: kernel (GPU) or leaf-operator (CPU) timeline and time by class."""
    try:
        import torch.profiler as tp

        from pyprof.report.trace import aggregate, table_from_torch_profiler

        acts = [tp.ProfilerActivity.CPU] + ([tp.ProfilerActivity.CUDA] if device != "cpu" else [])
        with tp.profile(activities=acts, with_flops=True) as p:  # FLOPs per op in the trace
            prep.step()
        table = table_from_torch_profiler(p)
        agg = aggregate(table)
        res.kernel_time_s = agg["time_s_by_class"]
        res.kernel_source = ("torch.profiler, one step after the timed ones: outermost classified operators on the CPU "
                             f"({agg['records']} records)")
        tables.append((res.name, table))
    except Exception as e:  # the breakdown is optional data: degrade to a note
        res.notes.append(f"time breakdown unavailable: {type(e).__name__}: {e}")


#: A host is flagged busy when its slowest short peak measurement reads below this fraction of its best: a quiet host
#: repeats an FMA chain within a few percent, so a 20% dip means other work took the cores (or clocks dropped).
BUSY_HOST_MIN_OVER_BEST = 0.8
#: Short measurements of the CPU peak: each ``min_time_s`` long, best of ``repeats``; taken before the suite, after
#: every workload and at the end, so the robust peak (the best of all) is not an artefact of one busy moment.
PEAK_SAMPLE_MIN_TIME_S = 0.05
PEAK_SAMPLE_REPEATS = 2


class PeakSampler:
    """Repeated short measurements of the CPU FMA peak across a run, and their robust summary.

    ``measure`` is injected so tests can feed numbers; by default it is pyprof's FMA-chain microkernel, uncached.
    """

    def __init__(self, measure: Any = None) -> None:
        self._measure = measure
        self.samples: list[tuple[str, float]] = []   # (when, FLOP/s); bounded by the number of workloads + 2

    def sample(self, when: str) -> float | None:
        """Take one short measurement labelled ``when``; None (and nothing recorded) when it fails."""
        try:
            if self._measure is None:
                from pyprof.peaks.cpu import measure_peak
                v = measure_peak.__wrapped__("fp32", PEAK_SAMPLE_MIN_TIME_S, PEAK_SAMPLE_REPEATS).measured_flops_per_s
            else:
                v = float(self._measure())
        except Exception:  # a failed sample leaves the others standing
            return None
        if v and v > 0:
            self.samples.append((when, float(v)))
            return float(v)
        return None

    def summary(self) -> dict[str, Any]:
        """best (the robust peak), min, median, spread = (best - min) / best, and whether the host was busy."""
        vals = [v for _, v in self.samples]
        if not vals:
            return {"samples": 0}
        best, low = max(vals), min(vals)
        busy = low / best < BUSY_HOST_MIN_OVER_BEST
        out: dict[str, Any] = {
            "samples": len(vals), "best_flops_per_s": best, "min_flops_per_s": low,
            "median_flops_per_s": statistics.median(vals), "spread": (best - low) / best, "host_busy": busy,
            "by_time": [{"when": w, "flops_per_s": v} for w, v in self.samples],
        }
        out["note"] = (
            f"the CPU peak was measured {len(vals)} times across the run (best of {PEAK_SAMPLE_REPEATS} x "
            f"{PEAK_SAMPLE_MIN_TIME_S:g} s each); utilizations use the best, {best / 1e9:.1f} GFLOP/s; the lowest read "
            f"{low / 1e9:.1f} GFLOP/s (spread {out['spread']:.0%})" +
            (f": the host was busy (lowest below {BUSY_HOST_MIN_OVER_BEST:.0%} of the best), so step times, and the "
             "utilizations read from them, are uncertain" if busy else ""))
        return out


def _throttle(device: str, sampler: PeakSampler | None) -> dict[str, Any]:
    """Compare the FMA peak at the end of the suite with the one at the start (CPU)."""
    if device != "cpu" or sampler is None or len(sampler.samples) < 2:
        return {"checked": False, "throttled": None,
                "note": "clock throttling is not checked on GPUs in this version (needs NVML clock reasons)"
                if device != "cpu" else "too few peak measurements to compare the start and end of the run"}
    start, end = sampler.samples[0][1], sampler.samples[-1][1]
    ratio = end / start
    thr = ratio < 0.9
    return {"checked": True, "throttled": thr, "peak_start_flops_per_s": start,
            "peak_end_flops_per_s": end, "end_over_start": ratio,
            "note": (f"the FMA peak fell to {ratio:.0%} of its start value by the end of the suite: clocks throttled "
                     "or the host got busier; utilizations late in the run read low") if thr else
                    (f"FMA peak at the end is {ratio:.0%} of the start: no throttling seen" +
                     ("; the start value was low, so the host was busy early in the run" if ratio > 1.1 else ""))}


def apply_robust_peak(peaks: dict[str, Any], results: list[WorkloadResult], micro: list[MicroResult],
                      summary: dict[str, Any], assumed: float) -> None:
    """Re-state every utilization against the robust (best across the run) measured peak, in place."""
    from pyprof.accounting.estimate import error_direction, error_factor

    best = summary.get("best_flops_per_s")
    if not best:
        return
    m = peaks.get("measured") or {}
    if m.get("flops_per_s"):
        best = max(best, m["flops_per_s"])
    peaks["measured"] = {**m, "flops_per_s": best, "kind": "measured",
                         "source": f"pyprof FMA-chain microkernel, best of {summary['samples']} short measurements "
                                   "across the run"}
    peaks["measured_across_run"] = summary
    for r in results:
        if r.achieved_flops_per_s:
            r.peak_measured_flops_per_s = best
            r.utilization_vs_measured = r.achieved_flops_per_s / best
            r.error_factor_vs_measured = error_factor(assumed, r.utilization_vs_measured)
            if not r.error_direction:
                r.error_direction = error_direction(assumed, r.utilization_vs_measured)
    bw = (peaks.get("memory_bandwidth") or {}).get("bytes_per_s")
    for mr in micro:
        if mr.status == "ok" and (mr.peak_kind or "").startswith("measured"):
            _micro._roofline(mr, best, bw)  # same arithmetic as during the run, against the robust peak


def run_suite(opts: Options, progress: bool = True) -> BenchReport:
    """Run the suite and return its report (does not write files; see :func:`write_outputs`).

    Raises:
        ValueError: bad options (device, workload ids).
    """
    import torch

    from pyprof import __version__
    from pyprof._native import load_cuda
    device = resolve_device(opts.device)
    only = [o for o in opts.only if o != "micro"]
    workloads = select(only)
    want_micro = opts.micro and (not opts.only or "micro" in opts.only)
    want_cupy = not opts.only or CUPY_ID in opts.only
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    bar = _Progress(3 + len(workloads) + int(want_micro) + int(want_cupy), progress)
    notes: list[str] = []
    try:
        bar.label("peaks")
        peaks, pnotes = _peaks(device)
        notes += pnotes
        sampler = PeakSampler() if device == "cpu" else None
        if sampler is not None:
            sampler.sample("start")
        bar.advance()
        bar.label("memory bandwidth")
        mp = _micro.QUICK if opts.preset == "quick" else _micro.FULL
        bw = _micro.measure_bandwidth(device, mp.bandwidth_n)
        peaks["memory_bandwidth"] = bw
        bar.advance()
        cuda_mod, cuda_reason = load_cuda()
        if device == "cpu":
            dev: dict[str, Any] = {"kind": "cpu", "name": "cpu"}
            try:
                from pyprof.sources.cpu.host import cpu_info
                info = cpu_info()
                dev = {"kind": "cpu", "name": info.model_name, "details": info.to_dict()}
            except Exception as e:
                notes.append(f"CPU facts unavailable: {e}")
        else:
            dev = {"kind": "cuda", "name": torch.cuda.get_device_name(torch.device(device)),
                   "details": {"capability": list(torch.cuda.get_device_capability(torch.device(device)))}}
        assumed = ASSUMED_UTILIZATION_CPU if device == "cpu" else ASSUMED_UTILIZATION_GPU
        measured_pk = (peaks.get("measured") or {}).get("flops_per_s")
        spec_pk = (peaks.get("spec") or {}).get("flops_per_s")

        def peak_for(dtype: str) -> tuple[float | None, str]:
            if device == "cpu":
                if dtype in ("fp32", "fp64") or not measured_pk:
                    return measured_pk, "measured FP32 peak"
                return measured_pk, (f"measured FP32 peak (no {dtype} peak kernel: AMX / AVX512-BF16 units can "
                                     "exceed it, so utilization above 1 is possible)")
            row = peaks.get("by_precision", {}).get(dtype)
            return (row["flops_per_s"], f"spec {dtype} peak") if row else (spec_pk, "spec FP32 peak")

        micro_results: list[MicroResult] = []
        timing_src = ""
        if want_micro:
            bar.label("microbenchmarks")
            micro_results, timing_src = _micro.run_micro(mp, device, peak_for, bw["bytes_per_s"],
                                                         progress=lambda s: bar.label(f"micro {s}"))
            bar.advance()
        results: list[WorkloadResult] = []
        tables: list = []
        for w in workloads:
            bar.label(w.name)
            results.append(_run_workload(w, opts, device, peaks, assumed, tables))
            if sampler is not None and results[-1].status == "ok":  # a skipped workload took no time
                sampler.sample(f"after {w.id}")
            bar.advance()
        if want_cupy:
            bar.label("CuPy GEMM loop")
            results.append(_run_cupy(opts, assumed, peaks))
            bar.advance()
        bar.label("throttle check")
        if sampler is not None:
            sampler.sample("end")
        throttle = _throttle(device, sampler)
        bar.advance()
        if throttle.get("throttled"):
            notes.append(throttle["note"])
        if sampler is not None:
            summary = sampler.summary()
            apply_robust_peak(peaks, results, micro_results, summary, assumed)
            if summary.get("note"):
                notes.append(summary["note"])
    finally:
        bar.stop()
    gpu_engine = "not built" if cuda_mod is None else "built"
    sources = {
        "workload_time": ("wall clock at step boundaries (pyprof.profile" +
                          (", torch.cuda.synchronize() at each boundary" if device != "cpu" else "") + ")"),
        "workload_flops": "analytic count (pyprof.flops dispatch mode), once per step signature in a warm-up step",
        "micro_time": timing_src,
        "micro_flops": "analytic (2 FLOP per multiply-add), minimal bytes",
        "peaks": ("theoretical = cores x clock x FLOP/cycle; measured = pyprof FMA microkernel" if device == "cpu"
                  else "spec peaks from pyprof's peak database (else SMs x FLOP/clock/SM x clock); measured = pyprof's "
                       "GPU microkernels and the best cuBLAS GEMM per precision (peaks.gpu_measured)"),
        "memory_bandwidth": bw["method"],
        "kernel_timeline": "torch.profiler (one extra traced step per workload)" if opts.trace else "off",
        "gpu_engine": (f"pyprof._C_cuda {gpu_engine}" + (f" ({cuda_reason})" if cuda_reason else "") +
                       "; on a GPU each workload's profile carries the CUPTI tracer's busy time and kernel table, "
                       "library FLOPs by precision and NVML figures (the embedded profile's gpu section); the GPU "
                       "checks (python -m bench.gpu_overhead / gpu_validate) write their own JSON next to the report"),
    }
    return BenchReport(
        run={"name": "pyprof bench", "preset": opts.preset, "started_at": started,
             "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "wall_time_s": time.perf_counter() - t0, "pyprof_version": __version__, "torch_version": torch.__version__,
             "python_version": platform.python_version(), "host": socket.gethostname(), "pid": os.getpid(),
             "argv": list(sys.argv), "only": list(opts.only), "torch_threads": torch.get_num_threads()},
        device=dev, sources=sources, peaks=peaks, assumed_utilization=assumed,
        assumed_utilization_source=('"AI and compute" (2018): 17% for CPUs' if device == "cpu"
                                    else '"AI and compute" (2018): 33% for GPUs'),
        throttle=throttle, microbenchmarks=micro_results, workloads=results, notes=notes,
        trace={"tables": tables} if tables else None,  # replaced by the export's record when written
    )


def _run_cupy(opts: Options, assumed: float, peaks: dict[str, Any]) -> WorkloadResult:
    from pyprof.accounting.estimate import error_direction, error_factor

    res = WorkloadResult(id=CUPY_ID, name="CuPy GEMM loop", family="framework-agnostic", source="cupy",
                         assumed_utilization=assumed)
    try:
        d = cupy_gemm_loop(opts.preset, 10 if opts.preset == "quick" else 50)
    except SkipWorkload as e:
        res.status, res.reason = "skipped", str(e)
        return res
    except Exception as e:
        res.status, res.reason = "failed", f"{type(e).__name__}: {e}"
        return res
    res.config = {"n": d["n"], "precision": "fp32"}
    res.steps_timed = len(d["times_s"])
    res.step_time_s_median = statistics.median(d["times_s"])
    res.step_time_s_min, res.step_time_s_max = min(d["times_s"]), max(d["times_s"])
    res.flops_per_step = d["flops_per_step"]
    res.achieved_flops_per_s = res.flops_per_step / res.step_time_s_median
    spec = (peaks.get("spec") or {}).get("flops_per_s")
    res.peak_spec_flops_per_s = spec
    if spec:
        res.utilization_vs_spec = res.achieved_flops_per_s / spec
        res.error_factor = error_factor(assumed, res.utilization_vs_spec)
        res.error_direction = error_direction(assumed, res.utilization_vs_spec)
    res.notes.append("timed with CUDA events per GEMM; FLOPs analytic 2n^3")
    return res


def write_outputs(report: BenchReport, out: Path, *, html: bool = True, trace: bool = True) -> dict[str, Path]:
    """Write report.json, report.md, report.html and trace.json.gz (when a timeline was recorded) into ``out``."""
    from pyprof.report.atomic import atomic_write_text
    from pyprof.report.bench_schema import to_bench_json
    from pyprof.report.bench_text import render_bench_markdown
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    tables = (report.trace or {}).get("tables") if report.trace else None
    report.trace = None
    if tables and trace:
        from pyprof.report.trace import merge_tables, write_chrome_trace

        try:
            info = write_chrome_trace(merge_tables(tables), out / "trace.json.gz", process_name="pyprof bench")
            info["path"] = "trace.json.gz"
            info["source"] = "torch.profiler operators (outermost classified), one step per workload, workloads back to back"
            report.trace = info
            paths["trace"] = out / "trace.json.gz"
        except Exception as e:
            report.notes.append(f"writing the trace failed: {type(e).__name__}: {e}")
    d = report.to_dict()
    paths["json"] = atomic_write_text(out / "report.json", to_bench_json(d))
    paths["md"] = atomic_write_text(out / "report.md", render_bench_markdown(d))
    if html:
        from pyprof.report.html import render_bench_html
        paths["html"] = atomic_write_text(out / "report.html", render_bench_html(d))
    return paths
