"""Memory and save time of pyprof.profile() over long runs (issue 13 item 2): RSS and autosave cost at 10^4, 10^5 and
10^6 recorded steps.

    python -m bench.memory                      # 1e4, 1e5, 1e6 steps; about 1-3 min on an idle core
    python -m bench.memory --steps 1e4,1e5      # shorter
    python -m bench.memory --json out.json      # the table as JSON too

One process runs one profile and stops at each checkpoint (cumulative step counts), where it measures:

- ``rss_mib``: the process's resident set size (psutil) after ``gc.collect()``; the target is flat once the step
  window (3 x 1024 rows) has filled, i.e. the same at 1e5 and 1e6 steps;
- ``snapshot_ms``: what an autosave costs the training thread: taking the immutable snapshot (copies of the bounded
  window, the running totals and small tables), the median of ``--saves`` repeats;
- ``save_ms``: building the result from that snapshot and writing report.json + report.md (what the background
  thread does), median of ``--saves``; the target is independent of the step count;
- ``report_kib``: the size of report.json;
- ``max_step_during_save_ms`` / ``max_step_idle_ms``: the longest ``prof.step()`` while a background save runs, and
  over as many steps with none running, and how many of those steps took over 1 ms (``over_1ms_*``): a save
  must not stall a step by more than a millisecond. The save thread shares the GIL (pyprof lowers the switch
  interval to 0.5 ms while it runs), so a loop of empty steps, which never releases the GIL, is the worst case; a
  real step spends most of its time in torch kernels, which release it. On a loaded machine the idle figures show
  the scheduler's own stalls: compare the two columns.

The steps are synthetic and as short as possible (the fast path: ``model=None``, ``count_flops="off"``, no hardware
counters, nothing between two ``prof.step()`` calls), so that 10^6 of them take tens of seconds rather than the hours
of a real loop; a step record holds the same fields either way. Autosaves are off (``autosave_s=None``) during the
run so that the measured saves are the only ones.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import threading
import time
from typing import Any


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _step_times(prof: Any, n: int, while_alive: threading.Thread | None = None) -> list[float]:
    """Durations (s) of up to ``n`` ``prof.step()`` calls, stopping when ``while_alive`` has finished."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        prof.step()
        times.append(time.perf_counter() - t0)
        if while_alive is not None and not while_alive.is_alive():
            break
    return times


def run(checkpoints: list[int], saves: int) -> list[dict[str, Any]]:
    import pyprof
    from pyprof.report import write_reports

    out = tempfile.mkdtemp(prefix="pyprof-bench-memory-")
    rows: list[dict[str, Any]] = []
    with pyprof.profile(None, count_flops="off", hardware_counters=False, measure_peak=False, output_dir=out,
                        autosave_s=None, name="bench.memory") as prof:
        gc.collect()
        base = _rss_mib()  # torch and pyprof imported, the profile started, no step recorded yet
        done = 0
        t_start = time.perf_counter()
        for target in checkpoints:
            n_steps = max(0, target - done)
            t0 = time.perf_counter()
            for _ in range(n_steps):
                prof.step()
            steps_s = time.perf_counter() - t0
            done = max(done, target)
            gc.collect()
            rss = _rss_mib()
            snap_ms, save_ms = [], []
            for _ in range(saves):
                t0 = time.perf_counter()
                build = prof._result_builder(final=False, partial_reason="bench")
                t1 = time.perf_counter()
                write_reports(build(), out, prof.report_formats)
                t2 = time.perf_counter()
                snap_ms.append((t1 - t0) * 1e3)
                save_ms.append((t2 - t1) * 1e3)
            # a real background save, and the steps that run beside it
            prof._autosave()
            saver = prof._saver
            during = _step_times(prof, 10**6, while_alive=saver)
            prof._join_saver()
            idle = _step_times(prof, len(during))
            n_during = len(during)
            done += 2 * n_during  # these steps count too (each checkpoint is then slightly more than its target)
            rows.append({
                "steps": target,  # recorded before the measurements (plus the 2 x steps_during_save of earlier rows)
                "rss_mib": round(rss, 1),
                "rss_over_start_mib": round(rss - base, 1),
                "snapshot_ms": round(statistics.median(snap_ms), 3),
                "save_ms": round(statistics.median(save_ms), 1),
                "report_kib": round(os.path.getsize(os.path.join(out, "report.json")) / 1024, 1),
                "max_step_during_save_ms": round(max(during) * 1e3, 3),
                "max_step_idle_ms": round(max(idle) * 1e3, 3),
                "over_1ms_during_save": sum(t > 1e-3 for t in during),
                "over_1ms_idle": sum(t > 1e-3 for t in idle),
                "steps_during_save": n_during,
                "us_per_step": round(steps_s / max(1, n_steps) * 1e6, 2),
                "elapsed_s": round(time.perf_counter() - t_start, 1),
            })
            print(_line(rows[-1]), flush=True)
    return rows


COLUMNS = ("steps", "rss_mib", "rss_over_start_mib", "snapshot_ms", "save_ms", "report_kib",
           "max_step_during_save_ms", "max_step_idle_ms", "over_1ms_during_save", "over_1ms_idle",
           "steps_during_save", "us_per_step", "elapsed_s")


def _line(row: dict[str, Any]) -> str:
    return " | ".join(f"{row[c]:>{len(c)}}" for c in COLUMNS)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default="1e4,1e5,1e6", help="cumulative checkpoints, comma-separated")
    ap.add_argument("--saves", type=int, default=5, help="timed saves per checkpoint (median)")
    ap.add_argument("--json", default=None, help="also write the table as JSON to this file")
    a = ap.parse_args(argv)
    checkpoints = sorted(int(float(s)) for s in a.steps.split(","))
    print(f"pyprof bench.memory: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}", flush=True)
    print(" | ".join(COLUMNS), flush=True)
    rows = run(checkpoints, a.saves)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"kind": "pyprof.bench.memory", "rows": rows, "cpus": os.cpu_count(),
                       "loadavg": os.getloadavg()[0]}, f, indent=2)


if __name__ == "__main__":
    main()
