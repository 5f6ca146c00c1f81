"""Kernel records as a compact column table: classification, aggregation, and the Chrome-trace / Perfetto export.

A :class:`KernelTable` holds one row per kernel (or, on CPU, per leaf operator) in numpy columns, so that a million
records aggregate in milliseconds and never exist as a million Python objects. Sources fill it (the torch profiler on
CPU today; the CUPTI tracer when it lands); writers read it. The trace export is gzip-compressed JSON that
chrome://tracing and ui.perfetto.dev open, capped at ``max_events`` with the count of what was left out recorded in
the file and returned to the caller.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyprof.report.bench_schema import KERNEL_CLASSES

log = logging.getLogger("pyprof.trace")

#: Default cap on events written to a trace file (a 200k-event trace is ~20 MB of JSON before gzip).
DEFAULT_MAX_EVENTS = 200_000

# Order matters: the first class whose pattern matches a (lower-cased) name wins. Patterns cover aten operator names
# (CPU) and the usual CUDA kernel names (cuBLAS/CUTLASS gemm, cuDNN conv, flash/fmha attention, elementwise kernels).
_CLASS_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("attention", re.compile(r"attention|flash|fmha|sdpa")),
    ("conv", re.compile(r"conv|winograd|implicit_gemm|mkldnn_convolution|cudnn.*fprop|dgrad|wgrad")),
    ("gemm", re.compile(r"gemm|\bmm\b|aten::mm|aten::bmm|aten::addmm|aten::baddbmm|matmul|linear|cutlass|"
                        r"sgemm|hgemm|xmma|mkldnn_?rnn|aten::_?lstm|aten::dot|aten::mv|addmm|bmm|mmbackward")),
    ("elementwise", re.compile(r"elementwise|vectorized|unrolled|aten::(add|sub|mul|div|relu|gelu|sigmoid|tanh|"
                               r"threshold|hardtanh|clamp|fill|copy|zero|neg|exp|log|sqrt|rsqrt|pow|where|"
                               r"dropout|native_dropout|addcmul|addcdiv|lerp|_foreach)|(relu|gelu|threshold|mul|add|sub|div|sigmoid|tanh|"
                               r"hardtanh|clamp)backward")),
)


def kernel_class(name: str) -> str:
    """Class of a kernel or operator name: one of ``KERNEL_CLASSES`` ("other" when no pattern matches)."""
    low = name.lower()
    for cls, pat in _CLASS_PATTERNS:
        if pat.search(low):
            return cls
    return "other"


@dataclass
class KernelTable:
    """Kernel records in columns. ``name_id`` indexes ``names``; ``cls`` indexes ``KERNEL_CLASSES``."""

    names: list[str]
    name_id: np.ndarray   # int32
    start_ns: np.ndarray  # int64, from any common origin
    end_ns: np.ndarray    # int64
    flops: np.ndarray     # float64, 0 where unknown
    cls: np.ndarray       # int8
    tid: np.ndarray       # int32: stream (GPU) or thread (CPU)
    thread_names: dict[int, str] = field(default_factory=dict)  # tid -> track name shown by Perfetto

    def __len__(self) -> int:
        return int(self.name_id.shape[0])

    @classmethod
    def from_rows(cls, rows: list[tuple[str, int, int, float, int]]) -> KernelTable:
        """Build from (name, start_ns, end_ns, flops, tid) rows; classes come from :func:`kernel_class`."""
        names: list[str] = []
        index: dict[str, int] = {}
        ids = np.empty(len(rows), np.int32)
        for i, r in enumerate(rows):
            j = index.get(r[0])
            if j is None:
                j = index[r[0]] = len(names)
                names.append(r[0])
            ids[i] = j
        return cls(
            names=names,
            name_id=ids,
            start_ns=np.array([r[1] for r in rows], np.int64),
            end_ns=np.array([r[2] for r in rows], np.int64),
            flops=np.array([r[3] for r in rows], np.float64),
            cls=classify_names(names)[ids] if rows else np.empty(0, np.int8),
            tid=np.array([r[4] for r in rows], np.int32),
        )


def classify_names(names: list[str]) -> np.ndarray:
    """Class index (into ``KERNEL_CLASSES``) of each distinct name."""
    return np.array([KERNEL_CLASSES.index(kernel_class(n)) for n in names], np.int8)


def synthetic_table(n: int, distinct: int = 500, seed: int = 0) -> KernelTable:
    """A synthetic table of ``n`` back-to-back kernels on 4 streams, for benchmarks and tests."""
    rng = np.random.default_rng(seed)
    stems = ["sm90_xmma_gemm_bf16", "cudnn_conv_fprop", "flash_fwd_kernel", "vectorized_elementwise_kernel",
             "reduce_kernel"]
    names = [f"{stems[i % len(stems)]}_{i}" for i in range(distinct)]
    name_id = rng.integers(0, distinct, n, dtype=np.int32)
    dur = rng.integers(1_000, 200_000, n, dtype=np.int64)
    tid = rng.integers(0, 4, n, dtype=np.int32)
    start = np.cumsum(dur) - dur
    return KernelTable(names, name_id, start, start + dur, rng.random(n) * 1e9, classify_names(names)[name_id], tid)


def aggregate(table: KernelTable, top: int = 20) -> dict[str, Any]:
    """Time by kernel class and the top kernels by time (JSON-ready).

    Returns:
        ``{"records", "time_s_by_class": {cls: s}, "flops_by_class": {cls: FLOP}, "top": [{name, class, calls,
        time_s, flops}], "span_s"}``. Times add kernel durations: overlapping kernels on different streams add up.
    """
    n = len(table)
    dur_s = (table.end_ns - table.start_ns).astype(np.float64) * 1e-9
    k = len(KERNEL_CLASSES)
    by_cls_t = np.bincount(table.cls, weights=dur_s, minlength=k) if n else np.zeros(k)
    by_cls_f = np.bincount(table.cls, weights=table.flops, minlength=k) if n else np.zeros(k)
    m = len(table.names)
    by_name_t = np.bincount(table.name_id, weights=dur_s, minlength=m) if n else np.zeros(m)
    by_name_f = np.bincount(table.name_id, weights=table.flops, minlength=m) if n else np.zeros(m)
    calls = np.bincount(table.name_id, minlength=m) if n else np.zeros(m, np.int64)
    order = np.argsort(-by_name_t)[:top]
    name_cls = classify_names(table.names) if m else np.empty(0, np.int8)
    return {
        "records": n,
        "span_s": float((table.end_ns.max() - table.start_ns.min()) * 1e-9) if n else 0.0,
        "time_s_by_class": {c: float(by_cls_t[i]) for i, c in enumerate(KERNEL_CLASSES)},
        "flops_by_class": {c: float(by_cls_f[i]) for i, c in enumerate(KERNEL_CLASSES)},
        "top": [{"name": table.names[j], "class": KERNEL_CLASSES[int(name_cls[j])], "calls": int(calls[j]),
                 "time_s": float(by_name_t[j]), "flops": float(by_name_f[j])} for j in order if calls[j]],
    }


def write_chrome_trace(table: KernelTable, path: str | os.PathLike, *, max_events: int = DEFAULT_MAX_EVENTS,
                       process_name: str = "pyprof") -> dict[str, Any]:
    """Write the table as a gzip Chrome-trace JSON (``.json.gz``) that chrome://tracing and Perfetto open.

    When there are more than ``max_events`` records, the longest ``max_events`` are kept (short kernels matter least
    on a timeline) and the number left out is logged and stored in the file's ``otherData.dropped_events``.

    Returns:
        ``{"path", "events_written", "events_dropped", "max_events"}``.
    """
    n = len(table)
    keep = np.arange(n)
    dropped = 0
    if n > max_events:
        dur = table.end_ns - table.start_ns
        keep = np.sort(np.argpartition(-dur, max_events - 1)[:max_events])
        dropped = n - max_events
        log.warning("pyprof trace: %d of %d kernel records left out of %s (cap %d events, longest kept)",
                    dropped, n, path, max_events)
    t0 = int(table.start_ns.min()) if n else 0
    ts_us = (table.start_ns[keep] - t0) / 1e3
    dur_us = (table.end_ns[keep] - table.start_ns[keep]) / 1e3
    names = [json.dumps(s) for s in table.names]
    cls_names = [json.dumps(c) for c in KERNEL_CLASSES]
    # Events are formatted by hand: json.dumps of a list of dicts is ~3x slower at this size.
    ids, cl, tids, fl = (table.name_id[keep].tolist(), table.cls[keep].tolist(), table.tid[keep].tolist(),
                         table.flops[keep].tolist())
    parts = [
        f'{{"name":{names[i]},"cat":{cls_names[c]},"ph":"X","pid":1,"tid":{t},"ts":{s:.3f},"dur":{d:.3f},'
        f'"args":{{"flops":{f:.6g}}}}}'
        for i, c, t, s, d, f in zip(ids, cl, tids, ts_us.tolist(), dur_us.tolist(), fl)
    ]
    meta = json.dumps({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": process_name}})
    # Name every track: without thread_name events Perfetto shows bare numbers.
    for t in sorted(set(tids)):
        meta += "," + json.dumps({"name": "thread_name", "ph": "M", "pid": 1, "tid": t,
                                  "args": {"name": table.thread_names.get(t, f"thread {t}")}})
    other = json.dumps({"dropped_events": dropped, "records": n, "max_events": max_events, "writer": "pyprof"})
    text = '{"traceEvents":[' + ",".join([meta, *parts]) + '],"displayTimeUnit":"ns","otherData":' + other + "}"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as f:
        f.write(text)
    os.replace(tmp, p)
    return {"path": str(p), "events_written": len(keep), "events_dropped": int(dropped), "max_events": max_events}


def table_from_torch_profiler(prof: Any) -> KernelTable:
    """Operators of a ``torch.profiler.profile`` run (CPU activity) as a kernel table.

    Each row is the *outermost* operator whose name has a class (``aten::linear``, an autograd node such as
    ``AddmmBackward0``), so its children (``aten::mm``, allocations) are counted once, inside it; unclassified leaves
    outside any classified operator are rows of class "other". Python time between operators is not in the table.
    """
    rows = []
    cache: dict[str, str] = {}

    def cls_of(name: str) -> str:
        c = cache.get(name)
        if c is None:
            c = cache[name] = kernel_class(name)
        return c

    subtree: dict[int, float] = {}

    def flops_of(e: Any) -> float:
        # torch's profiler (with_flops=True) puts FLOPs on the leaf op (aten::addmm), not on the outermost
        # classified one we keep (aten::linear): a row carries its own FLOPs, else the sum of its children's.
        k = id(e)
        v = subtree.get(k)
        if v is None:
            own = float(getattr(e, "flops", 0) or 0)
            v = own if own else sum(flops_of(ch) for ch in (getattr(e, "cpu_children", None) or []))
            subtree[k] = v
        return v

    for e in prof.events():
        c = cls_of(e.name)
        parent = getattr(e, "cpu_parent", None)
        inside = False
        while parent is not None:
            if cls_of(parent.name) != "other":
                inside = True
                break
            parent = getattr(parent, "cpu_parent", None)
        if inside or (c == "other" and getattr(e, "cpu_children", None)):
            continue
        tr = e.time_range
        rows.append((e.name, int(tr.start * 1e3), int(tr.end * 1e3), flops_of(e),
                     int(getattr(e, "thread", 0) or 0) % (2**31)))
    t = KernelTable.from_rows(rows)
    t.thread_names = {int(x): f"CPU thread {int(x)}" for x in set(t.tid.tolist())}
    return t


def merge_tables(tables: list[tuple[str, KernelTable]]) -> KernelTable:
    """Concatenate tables (one per workload) on one timeline, each on its own track, back to back."""
    names: list[str] = []
    index: dict[str, int] = {}
    cols: dict[str, list[np.ndarray]] = {"name_id": [], "start": [], "end": [], "flops": [], "cls": [], "tid": []}
    offset = 0
    for k, (label, t) in enumerate(tables):
        if not len(t):
            continue
        remap = np.array([index.setdefault(f"{label}: {n}", len(index)) for n in t.names], np.int32)
        t0 = int(t.start_ns.min())
        cols["name_id"].append(remap[t.name_id])
        cols["start"].append(t.start_ns - t0 + offset)
        cols["end"].append(t.end_ns - t0 + offset)
        cols["flops"].append(t.flops)
        cols["cls"].append(t.cls)
        cols["tid"].append(np.full(len(t), k, np.int32))
        offset += int(t.end_ns.max()) - t0 + 1_000_000
    names = list(index)
    if not cols["name_id"]:
        return KernelTable([], np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64),
                           np.empty(0, np.float64), np.empty(0, np.int8), np.empty(0, np.int32))
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    return KernelTable(names, cat["name_id"], cat["start"], cat["end"], cat["flops"], cat["cls"], cat["tid"],
                       thread_names={k: label for k, (label, _t) in enumerate(tables)})


# --------------------------------------------------------------------------- a profile's trace

#: Track ids of a profile's trace (Perfetto draws one row per tid, named by the thread_name metadata events).
PROFILE_TRACKS = {1: "steps (measured wall time)", 2: "ops per step (analytic FLOPs; width = FLOP share, not timed)"}


def profile_trace(d: dict[str, Any], *, max_ops_per_step: int = 50) -> dict[str, Any]:
    """A ``pyprof.profile()`` report (its JSON dict) as a Trace Event Format object for Perfetto / chrome://tracing.

    Contents:
        * track "steps": one complete ("X") event per recorded step, its measured wall time as duration, with
          args ``flops`` (analytic), ``flop_per_s``, ``examples``, ``origin``;
        * track "ops per step": the counted ops of the step's signature (``flop_counts[signature_id].by_op``), each
          with ``flops`` and ``calls``, laid side by side inside the step with widths proportional to their FLOP
          share, because the analytic counter records what ran, not when (``args.timing`` says so);
        * counter ("C") tracks "achieved FLOP/s" and "utilization" (against each peak of the reconciliation), one
          sample per step, so Perfetto draws utilization over time.

    Steps are laid back to back in index order (the report stores durations, not start times); a gap in the step
    indices (steps the schedule did not record) is an instant event naming the steps missing, and the counters
    are not joined across it. Ops are capped at ``max_ops_per_step`` (largest first) to bound the file.

    Returns:
        ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}`` (JSON-ready).
    """
    pid = 1
    ev: list[dict[str, Any]] = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                                 "args": {"name": f"pyprof: {d.get('run', {}).get('name', 'run')}"}}]
    for tid, name in PROFILE_TRACKS.items():
        ev.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}})
        ev.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
    rec = d.get("reconciliation") or {}
    peaks = [(f"vs {p.get('kind')} peak", p.get("flops_per_s")) for p in rec.get("peaks") or [] if p.get("flops_per_s")]
    counts = d.get("flop_counts") or []
    ts = 0.0
    prev_index: int | None = None
    ops_written = 0
    for s in d.get("steps") or []:
        idx = int(s.get("index", 0))
        dur_us = max(float(s.get("wall_time_s") or 0.0) * 1e6, 0.001)
        if prev_index is not None and idx > prev_index + 1:
            ev.append({"name": f"steps {prev_index + 1}-{idx - 1} not recorded", "ph": "i", "s": "p", "pid": pid,
                       "tid": 1, "ts": ts})
            # counters restart after the gap instead of being drawn across it
            ev.append({"name": "achieved FLOP/s", "ph": "C", "pid": pid, "ts": ts, "args": {"FLOP/s": 0}})
            if peaks:
                ev.append({"name": "utilization", "ph": "C", "pid": pid, "ts": ts,
                           "args": {label: 0 for label, _ in peaks}})
        prev_index = idx
        flops = s.get("analytic_flops")
        fps = (flops / (dur_us / 1e6)) if flops else None
        args = {"step": idx, "flops": flops, "flop_per_s": fps, "examples": s.get("examples"),
                "origin": s.get("analytic_origin"), "timing_perturbed": bool(s.get("perturbed"))}
        ev.append({"name": f"step {idx}", "cat": "step", "ph": "X", "pid": pid, "tid": 1, "ts": ts, "dur": dur_us,
                   "args": args})
        sig = s.get("signature_id")
        fc = counts[sig] if isinstance(sig, int) and 0 <= sig < len(counts) else None
        if fc and flops:
            ops = sorted(((n, o) for n, o in (fc.get("by_op") or {}).items() if o.get("flops")),
                         key=lambda kv: -kv[1]["flops"])[:max_ops_per_step]
            total = sum(o["flops"] for _, o in ops) or 1
            t = ts
            for n, o in ops:
                w = dur_us * o["flops"] / total
                ev.append({"name": n, "cat": "op", "ph": "X", "pid": pid, "tid": 2, "ts": t, "dur": w,
                           "args": {"flops": o["flops"], "calls": o.get("calls"), "shapes": "not recorded by the "
                                    "analytic counter", "timing": "not measured: width is the op's FLOP share"}})
                t += w
                ops_written += 1
        if fps is not None and not s.get("perturbed"):
            ev.append({"name": "achieved FLOP/s", "ph": "C", "pid": pid, "ts": ts, "args": {"FLOP/s": fps}})
            if peaks:
                ev.append({"name": "utilization", "ph": "C", "pid": pid, "ts": ts,
                           "args": {label: fps / pk for label, pk in peaks}})
        ts += dur_us
    return {"traceEvents": ev, "displayTimeUnit": "ms",
            "otherData": {"writer": "pyprof", "kind": "pyprof.profile.trace", "steps": len(d.get("steps") or []),
                          "ops_events": ops_written, "layout": "steps back to back in index order (durations "
                          "measured, start times not stored); op widths are FLOP shares, not timings"}}


def write_profile_trace(d: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write :func:`profile_trace` of ``d`` as gzip JSON (``trace.json.gz``), atomically; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
        json.dump(profile_trace(d), f, separators=(",", ":"), allow_nan=False)
    os.replace(tmp, p)
    return p
