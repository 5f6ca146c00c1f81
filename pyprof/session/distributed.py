"""Multi-rank runs: every rank profiles, rank 0 gathers a compact payload per rank and writes one job report.

Two lines turn a per-rank profile into a job report (only rank 0 gets one; the others get None)::

    with pyprof.profile(model, schedule=pyprof.schedule(warmup=2, active=20)) as prof:
        ...; prof.step()
    job = pyprof.distributed.aggregate(prof.result(), output_dir="pyprof-report")

or, the same in one block: ``with pyprof.distributed.profile(model, output_dir=..., ...) as prof:``.

The gather runs over the job's own process group (the default group, or ``group=``): each rank sends the size of its
payload and then the payload (JSON + zlib, about 0.55 kB) to rank 0 by point-to-point ``isend``; rank 0 posts one
``irecv`` per rank and waits on each with ``Work.wait(timeout)``, so the wait is bounded per rank whatever the
group's own timeout is. Measured on gloo (torch 2.13, CPU): a rank that exits or raises before sending closes its
connection and rank 0's wait fails at once ("Connection closed by peer"); a rank that is alive but never sends makes
rank 0's wait raise after ``timeout_s`` ("Timed out waiting ... for recv"). Either way rank 0 goes on, names the rank in
``missing_ranks`` with the reason, and writes the report from the ranks it has. The reason says what was observed on
both sides: how long rank 0 waited, whether the rank's size or payload arrived, and what the rank itself wrote into
the job's store about its send (a rank that reached the gather but gave up waiting for a late rank 0 says so there, and
is never called crashed).

Payloads hold no per-step lists and only a top-5 op table, so 1,024 ranks gather about 0.6 MB (``bench/payload_size.py``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import socket
import statistics
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Literal, cast

from pyprof.errors import InvalidInputError, ReportError
from pyprof.records import JOB_KIND, JOB_SCHEMA_VERSION, ProfileResult  # noqa: F401  (re-exported)
from pyprof.report.job import MARKDOWN_RANK_ROWS, JobReport, read_job_report  # noqa: F401  (moved; re-exported)
from pyprof.report.job import ranges as _ranges
from pyprof.session.profile import Profile

#: Version of the per-rank payload; rank 0 names a rank whose payload version it cannot read as missing.
PAYLOAD_VERSION = 1
#: Bump the major when a field of the job report changes meaning or is removed, the minor when fields are added.
#: Point-to-point tag of pyprof's gather messages, chosen to stay clear of tags a training script is likely to use.
GATHER_TAG = 0x7970  # "yp"
#: Ops in the top-N table of a payload: enough to see what dominates, small enough for 1,000s of ranks.
PAYLOAD_TOP_OPS = 5
#: Longest note kept in a payload, and how many notes.
_NOTE_CHARS, _NOTES = 200, 3
#: Prefixes of collective ops as the analytic counter names them (it sees them when they go through the dispatcher).
_COLLECTIVE_PREFIXES = ("c10d.", "c10d::", "_c10d_functional", "c10d_functional")


# ---------------------------------------------------------------------------------------------------- payload
def _finite(x: Any) -> float | None:
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _safe(fn, default=None):
    """Degrade per field: a field that cannot be computed becomes ``default`` instead of failing the payload."""
    try:
        return fn()
    except Exception:
        return default


def _top_ops(result: ProfileResult, n: int) -> list[list[Any]]:
    agg: dict[str, float] = {}
    for fc in result.flop_counts:
        for name, op in (fc.get("by_op") or {}).items():
            agg[name] = agg.get(name, 0.0) + float(op.get("flops", 0) or 0)
    total = sum(agg.values()) or 1.0
    return [[k, round(v / total, 4)] for k, v in sorted(agg.items(), key=lambda kv: -kv[1])[:n]]


def _collective_calls(result: ProfileResult) -> int | None:
    calls = 0
    for fc in result.flop_counts:
        for u in fc.get("uncounted") or []:
            if str(u.get("name", "")).startswith(_COLLECTIVE_PREFIXES):
                calls += int(u.get("calls", 0) or 0)
        for name, op in (fc.get("by_op") or {}).items():
            if name.startswith(_COLLECTIVE_PREFIXES):
                calls += int(op.get("calls", 0) or 0)
    return calls


def build_payload(result: ProfileResult, *, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
    """The compact per-rank summary that is gathered: no per-step lists, a top-5 op table, a few short notes.

    Every field is computed on its own; one that fails is None (degrade per field, not per rank).

    Args:
        result: this rank's profile result.
        rank: this rank's index in the gather group.
        world_size: ranks in the gather group.

    Returns:
        A JSON-serializable dict (see :func:`encode_payload`).
    """
    t = result.totals
    rec = result.reconciliation
    spec = _safe(lambda: next((p for p in rec.peaks if p.kind in ("spec", "theoretical")), None)) if rec else None
    measured = _safe(lambda: next((p for p in rec.peaks if p.kind == "measured"), None)) if rec else None
    calls = _safe(lambda: _collective_calls(result))
    return {
        "v": PAYLOAD_VERSION,
        "rank": int(rank),
        "world_size": int(world_size),
        "host": _safe(lambda: result.run.get("host")) or _safe(socket.gethostname),
        "pid": _safe(lambda: result.run.get("pid")),
        "device": _safe(lambda: f"{result.device.kind}: {result.device.name}"),
        "partial": bool(result.partial),
        "partial_reason": (result.partial_reason or "")[:_NOTE_CHARS] or None,
        "steps": _safe(lambda: int(t.steps)),
        "timed_steps": _safe(lambda: int(t.timed_steps)),
        "timed_wall_time_s": _safe(lambda: _finite(t.timed_wall_time_s)),
        "step_time_s": {
            "min": _safe(lambda: _finite(t.step_time_s_min)),
            "median": _safe(lambda: _finite(t.step_time_s_median)),
            "max": _safe(lambda: _finite(t.step_time_s_max)),
        },
        "flops": {
            # model FLOPs of the timed steps (recomputation taken out): the numerator of MFU
            "model_timed": _safe(lambda: _finite(rec.measured_window_flops)) if rec else None,
            "analytic_timed": _safe(lambda: _finite(t.timed_analytic_flops)),
            "analytic_recorded": _safe(lambda: _finite(t.analytic_flops)),
            "hardware_timed": _safe(lambda: _finite(t.timed_hardware_flops)),
            "source": _safe(lambda: rec.flop_source) if rec else None,
        },
        "examples_timed": _safe(lambda: t.timed_examples),
        "achieved_flops_per_s": _safe(lambda: _finite(rec.achieved_flops_per_s)) if rec else None,
        "peak_flops_per_s": _safe(lambda: _finite(spec.flops_per_s)) if spec else None,
        "peak_kind": _safe(lambda: f"{spec.kind} {spec.precision}") if spec else None,
        "measured_peak_flops_per_s": _safe(lambda: _finite(measured.flops_per_s)) if measured else None,
        "mfu": _safe(lambda: _finite(rec.mfu)) if rec else None,
        "hfu": _safe(lambda: _finite(rec.hfu)) if rec else None,
        "utilization_vs_measured": _safe(lambda: _finite(rec.utilization_vs_measured)) if rec else None,
        "comm": {
            "time_s": None,
            "reason": "no kernel tracer in this pyprof version (the CUPTI tracer is pending): communication time "
                      "is not measured",
            "collective_calls_counted": calls,
        },
        "top_ops": _safe(lambda: _top_ops(result, PAYLOAD_TOP_OPS), []),
        "notes": [str(n)[:_NOTE_CHARS] for n in (result.notes or [])[:_NOTES]],
    }


def encode_payload(payload: dict[str, Any]) -> bytes:
    """JSON (compact, NaN/inf as null) + zlib level 6."""
    from pyprof.report.json_report import json_safe
    return zlib.compress(json.dumps(json_safe(payload), separators=(",", ":"), allow_nan=False).encode("utf-8"), 6)


def decode_payload(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_payload`.

    Raises:
        ReportError: the bytes are not a pyprof payload of a version this pyprof reads.
    """
    try:
        d = json.loads(zlib.decompress(data).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"a rank's payload is not valid zlib+JSON ({e}); ranks may run different pyprof versions: "
                          "install the same pyprof on every node") from e
    if not isinstance(d, dict) or d.get("v") != PAYLOAD_VERSION:
        raise ReportError(f"a rank's payload has version {d.get('v') if isinstance(d, dict) else '?'}, this pyprof "
                          f"reads {PAYLOAD_VERSION}: install the same pyprof on every node")
    return d


# ---------------------------------------------------------------------------------------------------- job report
def _stats(values: list[float | None]) -> dict[str, float | None]:
    v = [x for x in values if x is not None]
    if not v:
        return {"min": None, "median": None, "max": None, "max_over_min": None}
    lo, hi = min(v), max(v)
    return {"min": lo, "median": statistics.median(v), "max": hi, "max_over_min": (hi / lo) if lo > 0 else None}


def build_job_report(payloads: list[dict[str, Any]], world_size: int, missing_reasons: dict[int, str] | None = None,
                     *, gather: dict[str, Any] | None = None) -> JobReport:
    """Combine per-rank payloads into a :class:`JobReport` (pure: no communication; tested on synthetic payloads).

    Args:
        payloads: one decoded payload per reporting rank.
        world_size: ranks in the gather group.
        missing_reasons: rank -> why its payload is missing; ranks neither here nor in ``payloads`` are added as
            missing with reason "no payload".
        gather: facts about the gather (seconds, bytes), copied into the report.

    Returns:
        The job report.
    """
    rows = sorted(payloads, key=lambda p: p.get("rank", 0))
    have = {p.get("rank") for p in rows}
    missing = dict(missing_reasons or {})
    for r in range(world_size):
        if r not in have and r not in missing:
            missing[r] = "no payload"
    notes: list[str] = []

    model = [(p.get("flops") or {}).get("model_timed") for p in rows]
    walls = [p.get("timed_wall_time_s") for p in rows]
    peaks = [p.get("peak_flops_per_s") for p in rows]
    flops_total = float(sum(v for v in model if v is not None)) if rows and all(v is not None for v in model) else None
    if rows and flops_total is None:
        notes.append("some ranks have no model FLOP count (counting off or failed there): no job FLOP total")
    wall = max((w for w in walls if w), default=None)
    peak_sum = float(sum(v for v in peaks if v is not None)) if rows and all(v is not None for v in peaks) else None
    if rows and peak_sum is None:
        notes.append("some ranks have no peak FLOP/s: no job utilization (pass peak='<hardware>' to pyprof.profile)")
    if peaks and peak_sum is not None and len({round(p, 3) for p in peaks if p is not None}) > 1:
        notes.append("ranks report different peaks: job utilization divides by the sum of the per-rank peaks")
    flops_per_s = flops_total / wall if flops_total is not None and wall else None
    utilization = flops_total / (peak_sum * wall) if flops_total is not None and peak_sum and wall else None
    steps = [s for s in (p.get("steps") for p in rows) if s is not None]
    if steps and min(steps) != max(steps):
        notes.append(f"ranks recorded different numbers of steps ({min(steps)} to {max(steps)}): a rank stopped "
                     "early or the schedule differs between ranks")
    partial_ranks: list[Any] = [p.get("rank") for p in rows if p.get("partial")]  # ints in build_payload's payloads
    if partial_ranks:
        notes.append(f"rank(s) {_ranges(partial_ranks)} report partial results (their code raised or was interrupted)")
    if missing:
        notes.append(f"rank(s) {_ranges(sorted(missing))} are missing: totals cover the {len(rows)} rank(s) that "
                     "reported")

    med = {p.get("rank"): (p.get("step_time_s") or {}).get("median") for p in rows}
    known = {r: v for r, v in med.items() if v is not None}
    skew = {
        "step_time_s": _stats([(p.get("step_time_s") or {}).get("median") for p in rows]),
        "flops_per_s": _stats([p.get("achieved_flops_per_s") for p in rows]),
        "mfu": _stats([p.get("mfu") for p in rows]),
        "slowest_rank": max(known, key=known.__getitem__) if known else None,
        "fastest_rank": min(known, key=known.__getitem__) if known else None,
    }
    calls = [(p.get("comm") or {}).get("collective_calls_counted") for p in rows]
    comm_times = [(p.get("comm") or {}).get("time_s") for p in rows]
    comm_known = [c for c in comm_times if c is not None]
    comm = {
        "time_s_total": float(sum(comm_known)) if comm_known and len(comm_known) == len(rows) else None,
        "collective_calls_counted_total": int(sum(c for c in calls if c)) if any(c is not None for c in calls) else None,
        "note": ("communication kernel time is not measured in this pyprof version (no kernel tracer yet); "
                 "collective calls seen by the analytic counter are counted where they pass through the dispatcher"
                 if not comm_known else "communication time from the kernel tracer"),
    }
    totals = {
        "ranks_reporting": len(rows),
        "model_flops": flops_total,
        "analytic_flops_recorded": float(sum(v for v in ((p.get("flops") or {}).get("analytic_recorded") for p in rows)
                                             if v is not None)) if rows else None,
        "wall_time_s": wall,
        "flops_per_s": flops_per_s,
        "peak_flops_per_s_sum": peak_sum,
        "utilization": utilization,
        "utilization_formula": "sum(model FLOPs of timed steps) / (sum(peak FLOP/s) x max(timed wall time s))",
        "steps_min": min(steps) if steps else None,
        "steps_max": max(steps) if steps else None,
    }
    return JobReport(
        world_size=int(world_size),
        rows=rows,
        missing_ranks=sorted(missing),
        missing_reasons={int(k): v for k, v in sorted(missing.items())},
        totals=totals,
        skew=skew,
        comm=comm,
        gather=dict(gather or {}),
        partial=bool(missing) or bool(partial_ranks),
        notes=notes,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


# ---------------------------------------------------------------------------------------------------- gather
def _tensor_device(dist: Any, group: Any) -> Any:
    import torch

    backend = str(_safe(lambda: dist.get_backend(group), "")).lower()
    if "nccl" in backend and torch.cuda.is_available():  # NCCL moves CUDA tensors only
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"{type(e).__name__}: {s[:300]}"


def _gather_payloads(data: bytes, *, group: Any, timeout_s: float) -> tuple[list[bytes | None], dict[int, str], float]:
    """Send this rank's bytes to group rank 0; on rank 0, receive every rank's bytes with a bounded wait per rank.

    Returns:
        (bytes per group rank or None where missing (rank 0 only; other ranks get []), rank -> reason, seconds).
    """
    import torch
    import torch.distributed as dist

    rank, world = dist.get_rank(group), dist.get_world_size(group)
    dev = _tensor_device(dist, group)
    to_global = (lambda r: r) if group is None else (lambda r: dist.get_global_rank(group, r))
    t0 = time.monotonic()
    timeout = _dt.timedelta(seconds=timeout_s)
    store = _store(dist)
    seq = _next_gather_seq()
    if rank != 0:
        size = torch.tensor([len(data)], dtype=torch.int64, device=dev)
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(dev)
        sent = 0
        try:
            # isend returns None only on a rank outside ``group``; aggregate() returns before gathering there.
            works = cast("list[dist.Work]", [dist.isend(size, to_global(0), group=group, tag=GATHER_TAG),
                                             dist.isend(buf, to_global(0), group=group, tag=GATHER_TAG + 1)])
            for w in works:
                w.wait(timeout)
                sent += 1
        except Exception as e:
            waited = time.monotonic() - t0
            what = ("waiting for rank 0 to receive its payload size" if sent == 0 else
                    "waiting for rank 0 to receive its payload (the size was received)")
            if "Timed out" in str(e) or "timeout" in str(e).lower():
                note = (f"it reached the gather and gave up after {waited:.3g} s (its timeout_s={timeout_s:g}) "
                        f"{what}: rank 0 was not receiving yet (it reached the gather later)")
            else:
                note = f"it reached the gather; its send failed after {waited:.3g} s {what}: {_short(e)}"
            _note(store, seq, to_global(rank), note)
            raise
        _note(store, seq, to_global(rank), f"delivered its payload in {time.monotonic() - t0:.3g} s")
        return [], {}, time.monotonic() - t0

    out: list[bytes | None] = [None] * world
    out[0] = data
    missing: dict[int, str] = {}
    deadline = t0 + timeout_s
    sizes = {r: torch.zeros(1, dtype=torch.int64, device=dev) for r in range(1, world)}

    def post(bufs: dict[int, Any], tag: int) -> dict[int, Any]:
        """One irecv per rank; a rank whose connection is already closed fails here at once (gloo)."""
        works = {}
        for r, b in bufs.items():
            try:
                works[r] = dist.irecv(b, to_global(r), group=group, tag=tag)
            except Exception as e:
                missing[r] = _waited_reason(e, timeout_s)
        return works

    def wait(works: dict[int, Any], until: float, late: str) -> list[int]:
        """Wait on each receive until the deadline; returns the ranks that arrived, records the others."""
        done = []
        for r, w in works.items():
            left = max(0.001, until - time.monotonic())
            try:
                if w.wait(_dt.timedelta(seconds=left)) is False:
                    missing[r] = late
                else:
                    done.append(r)
            except Exception as e:
                missing[r] = _waited_reason(e, timeout_s)
        return done

    got = wait(post(sizes, GATHER_TAG), deadline, f"no payload within {timeout_s:g} s")
    # the payload follows its size at once; give it the time left, but at least a few seconds
    payload_deadline = max(deadline, time.monotonic() + min(timeout_s, 10.0))
    bufs = {}
    for r in got:
        n = int(sizes[r].item())
        if not (0 < n <= 64 * 1024 * 1024):
            missing[r] = f"announced a payload of {n} bytes; expected 1 B to 64 MiB"
            continue
        bufs[r] = torch.empty(n, dtype=torch.uint8, device=dev)
    for r in wait(post(bufs, GATHER_TAG + 1), payload_deadline, f"payload not complete within {timeout_s:g} s"):
        out[r] = bytes(bufs[r].cpu().numpy().tobytes())
    waited = time.monotonic() - t0
    for r in list(missing):
        missing[r] = _observed_reason(missing[r], size_received=r in got, waited_s=waited,
                                      note=_read_note(store, seq, to_global(r)))
    return out, missing, waited


def _waited_reason(e: BaseException, timeout_s: float) -> str:
    """What rank 0's receive observed, in plain words; :func:`_observed_reason` adds what the rank itself recorded."""
    s = str(e)
    if "Timed out" in s or "timeout" in s.lower():
        return f"no payload within timeout_s={timeout_s:g} s"
    if "closed" in s.lower() or "reset" in s.lower():
        # gloo's own text guesses "typically caused by a remote worker crashing"; keep only what was observed.
        return "its connection closed before its payload arrived"
    return f"receive failed: {_short(e)}"


def _observed_reason(observed: str, *, size_received: bool, waited_s: float, note: str | None) -> str:
    """Why a rank is missing, from what was observed on both sides; a rank is blamed only when it left no word.

    Args:
        observed: what rank 0's receive saw (:func:`_waited_reason`).
        size_received: whether the rank's first message (its payload size) arrived.
        waited_s: how long rank 0 waited from reaching the gather.
        note: what the rank recorded in the job's store about its own send (None: nothing recorded).
    """
    got = "its payload size arrived, the payload did not" if size_received else "nothing from it arrived"
    head = f"rank 0 waited {waited_s:.3g} s from reaching the gather; {got}; {observed}"
    if note is not None:
        return f"{head}. The rank recorded: {note}"
    if "closed" in observed:
        return (f"{head}. The rank recorded nothing about its send: its process ended before its gather (it "
                "crashed or exited, or never called aggregate)")
    return (f"{head}. The rank recorded nothing about its send: it is still training, hung, or skipped the gather")


_GATHER_SEQ = 0


def _next_gather_seq() -> int:
    """The n-th gather of this process; every rank calls aggregate() in the same order, so the numbers agree."""
    global _GATHER_SEQ
    _GATHER_SEQ += 1
    return _GATHER_SEQ


def _store(dist: Any) -> Any:
    """The job's key-value store (the rendezvous TCPStore, hosted by rank 0's process), or None where unavailable.

    A sending rank writes there how its send ended, so rank 0 can tell a rank that gave up waiting for a late rank 0
    from one that crashed: the store outlives the rank's connection.
    """
    return _safe(lambda: dist.distributed_c10d._get_default_store(), None)


def _note_key(seq: int, global_rank: int) -> str:
    return f"pyprof/gather/{seq}/rank{global_rank}"


def _note(store: Any, seq: int, global_rank: int, text: str) -> None:
    if store is not None:
        _safe(lambda: store.set(_note_key(seq, global_rank), text[:_NOTE_CHARS]))


def _read_note(store: Any, seq: int, global_rank: int) -> str | None:
    if store is None:
        return None

    def read() -> str | None:
        key = _note_key(seq, global_rank)
        if not store.check([key]):  # non-blocking: a rank that wrote nothing must not make rank 0 wait
            return None
        raw = store.get(key)
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    return _safe(read, None)


def aggregate(
    result: ProfileResult,
    *,
    group: Any = None,
    timeout_s: float = 60.0,
    output_dir: str | os.PathLike | None = None,
    echo: bool = True,
) -> JobReport | None:
    """Gather every rank's result to rank 0 and build (and write) the job report. Call it on every rank.

    Without an initialized ``torch.distributed`` process group the job is this one process (a report of 1 rank).
    Never raises because of another rank: a rank that fails, exits or never calls ``aggregate`` is named in
    ``missing_ranks`` after at most ``timeout_s`` (plus up to 10 s for a payload whose size already arrived).

    Args:
        result: this rank's :class:`~pyprof.result.ProfileResult` (``prof.result()``).
        group: the process group to gather over (default: the default group). For an NCCL job, passing a gloo group
            (``dist.new_group(backend="gloo")``, made at setup) keeps the wait bounded without relying on NCCL's
            watchdog.
        timeout_s: how long rank 0 waits for the ranks' payloads (and a rank for its send to complete).
        output_dir: rank 0 writes ``report.json`` and ``report.md`` (the job report) there.
        echo: rank 0 prints a short job summary to stderr (other ranks print nothing).

    Returns:
        The :class:`JobReport` on rank 0, None on every other rank.

    Raises:
        InvalidInputError: ``timeout_s`` is not a finite number > 0, or ``result`` is not a ProfileResult.
    """
    if not isinstance(result, ProfileResult):
        raise InvalidInputError(f"aggregate() needs a ProfileResult (prof.result()), got {type(result).__name__}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (0 < timeout_s < float("inf")):
        raise InvalidInputError(f"timeout_s={timeout_s!r} must be a finite number of seconds > 0")
    import torch.distributed as dist

    initialized = dist.is_available() and dist.is_initialized()
    rank = dist.get_rank(group) if initialized else 0
    world = dist.get_world_size(group) if initialized else 1
    if rank < 0:  # this process is not a member of ``group``
        return None
    payload = build_payload(result, rank=rank, world_size=world)
    data = encode_payload(payload)
    raw: list[bytes | None]
    missing: dict[int, str]
    secs: float
    if world == 1:
        raw, missing, secs = [data], {}, 0.0
    else:
        try:
            raw, missing, secs = _gather_payloads(data, group=group, timeout_s=float(timeout_s))
        except Exception as e:
            if rank != 0:
                warnings.warn(f"pyprof: rank {rank} could not send its profile to rank 0: {_short(e)}; rank 0's job "
                              "report lists it as missing", RuntimeWarning, stacklevel=2)
                return None
            raise
    if rank != 0:
        return None
    payloads: list[dict[str, Any]] = []
    sizes: list[int] = []
    for r, b in enumerate(raw):
        if b is None:
            missing.setdefault(r, "no payload")
            continue
        try:
            payloads.append(decode_payload(b))
            sizes.append(len(b))
        except ReportError as e:
            missing[r] = str(e)
    job = build_job_report(payloads, world, missing, gather={
        "seconds": secs,
        "timeout_s": float(timeout_s),
        "payload_bytes_total": sum(sizes),
        "payload_bytes_max": max(sizes) if sizes else None,
        "backend": str(_safe(lambda: dist.get_backend(group), "none")) if initialized else "none (single process)",
        "method": "point-to-point isend/irecv to rank 0 over the job's process group, Work.wait(timeout) per rank",
    })
    if output_dir is not None:
        job.write(output_dir)
    if echo:
        _echo(job, output_dir)
    return job


def _echo(job: JobReport, output_dir: Any) -> None:
    from pyprof.report.format import pct, si

    t = job.totals
    msg = (f"pyprof job: {len(job.rows)}/{job.world_size} ranks, {si(t.get('model_flops'), 'FLOP')}, "
           f"{si(t.get('flops_per_s'), 'FLOP/s')}, utilization {pct(t.get('utilization'))}")
    if job.missing_ranks:
        msg += f"; MISSING rank(s) {_ranges(job.missing_ranks)}"
    if output_dir is not None:
        msg += f"; report in {output_dir}/report.json"
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- wrapper
class DistributedProfile(Profile):
    """A :class:`~pyprof.profiler.Profile` that aggregates over the process group when its block ends.

    Each rank's own full report goes to ``<output_dir>/rank<N>/`` when ``rank_reports`` is True (no two ranks write
    the same file); rank 0 writes the job report to ``<output_dir>/``. ``job_report`` is the JobReport on rank 0.
    """

    def __init__(self, model: Any = None, *, output_dir: str | os.PathLike | None = None, group: Any = None,
                 timeout_s: float = 60.0, rank_reports: bool = False, echo: bool = True, **kwargs: Any) -> None:
        import torch.distributed as dist

        rank = dist.get_rank(group) if dist.is_available() and dist.is_initialized() else 0
        per_rank = Path(output_dir) / f"rank{rank}" if (output_dir is not None and rank_reports) else None
        super().__init__(model, output_dir=per_rank, **kwargs)
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (0 < timeout_s < float("inf")):
            raise InvalidInputError(f"timeout_s={timeout_s!r} must be a finite number of seconds > 0")
        self.job_output_dir = Path(output_dir) if output_dir is not None else None
        self.group = group
        self.timeout_s = float(timeout_s)
        self.echo = echo
        self.job_report: JobReport | None = None

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            try:
                if self._result is not None:
                    self.job_report = aggregate(self._result, group=self.group, timeout_s=self.timeout_s,
                                                output_dir=self.job_output_dir, echo=self.echo)
            except Exception as e:  # the gather must never turn a finished training run into a failure
                if exc_type is None:
                    warnings.warn(f"pyprof: aggregating the job report failed: {e!r}", RuntimeWarning, stacklevel=2)
        return False


def profile(model: Any = None, *, output_dir: str | os.PathLike | None = None, group: Any = None,
            timeout_s: float = 60.0, rank_reports: bool = False, echo: bool = True, **kwargs: Any) -> DistributedProfile:
    """``pyprof.profile()`` for a ``torch.distributed`` job: every rank measures, rank 0 writes one job report.

    Args:
        model: as for :func:`pyprof.profile`.
        output_dir: rank 0 writes the job's ``report.json`` / ``report.md`` there.
        group: the process group to gather over (default: the default group).
        timeout_s: bound on rank 0's wait for each rank's payload (see :func:`aggregate`).
        rank_reports: also write each rank's full single-process report to ``<output_dir>/rank<N>/``.
        echo: rank 0 prints a one-line job summary to stderr.
        **kwargs: every other :func:`pyprof.profile` argument (schedule, peak, examples_per_step, ...).

    Returns:
        A :class:`DistributedProfile` context manager; after the block, ``prof.job_report`` on rank 0.
    """
    return DistributedProfile(model, output_dir=output_dir, group=group, timeout_s=timeout_s,
                              rank_reports=rank_reports, echo=echo, **kwargs)
