"""Overhead of pyprof.profile() on CPU training loops, against the same loops unprofiled, in one run.

    python -m bench.overhead            # CNN and MLP, prints a table and JSON
    python -m bench.overhead --quick    # fewer steps (what the tests run)

Method: for each model, alternate blocks of unprofiled and profiled steps (same model, same data, same process) and
compare the median step times, so that clock and load drift hit both sides alike. Counting happens once per step
signature during the profile's warm-up step, so the recorded steps carry only the always-on cost (step timing, the
forward hook that checks the signature, counter reads); the one-off counting cost is reported separately.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass


@dataclass
class OverheadResult:
    model: str
    batch: int
    steps_per_block: int
    blocks: int
    step_s_median_plain: float
    step_s_median_profiled: float
    overhead_pct: float            # median over blocks of (profiled / plain - 1) x 100
    overhead_pct_pooled: float     # (median of all profiled steps / median of all plain steps - 1) x 100
    overhead_pct_blocks: list[float]
    instrumented_us_per_step: float  # pyprof's own per-step work timed directly: prof.step() + the forward hook
    counting_cost_s: float         # time of the warm-up step that ran analytic counting, minus a median step


def _loop(kind: str, batch: int):
    import torch

    from pyprof.bench.examples import make_cnn, make_mlp

    torch.manual_seed(0)
    model = make_cnn() if kind == "cnn" else make_mlp()
    x = torch.randn(batch, 3, 32, 32) if kind == "cnn" else torch.randn(batch, 512)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return model, step


def measure(kind: str, batch: int, steps: int, blocks: int) -> OverheadResult:
    import pyprof

    model, step = _loop(kind, batch)
    for _ in range(5):  # warm the allocator and the kernels chosen before anything is timed
        step()
    plain_all: list[float] = []
    prof_all: list[float] = []
    block_pct: list[float] = []
    counting: list[float] = []
    for _ in range(blocks):
        plain = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            plain.append(time.perf_counter() - t0)
        with pyprof.profile(model, schedule=pyprof.schedule(warmup=1, active=steps, repeat=1), measure_peak=False,
                            examples_per_step=batch) as prof:
            for _ in range(steps + 1):
                step()
                prof.step()
        r = prof.result()
        profiled = [s.wall_time_s for s in r.steps]
        plain_all += plain
        prof_all += profiled
        block_pct.append(100 * (statistics.median(profiled) / statistics.median(plain) - 1))
        counting.append(r.totals.counting_time_s)
    mp, mq = statistics.median(plain_all), statistics.median(prof_all)
    instrumented = _instrumented_cost_s(model, kind, batch)
    # The counting step is a warm-up step (not recorded), so estimate its cost from a separate counted run.
    with pyprof.profile(model, measure_peak=False) as prof:
        for _ in range(3):
            step()
            prof.step()
    steps_c = prof.result().steps
    cost = steps_c[0].wall_time_s - statistics.median(s.wall_time_s for s in steps_c[1:])
    return OverheadResult(kind, batch, steps, blocks, mp, mq, statistics.median(block_pct), 100 * (mq / mp - 1),
                          block_pct, instrumented * 1e6, max(0.0, cost))


def _instrumented_cost_s(model, kind: str, batch: int, n: int = 2000) -> float:
    """Time pyprof's per-step work alone: the root-forward hook (signature check) and prof.step()."""
    import torch

    import pyprof

    x = torch.randn(batch, 3, 32, 32) if kind == "cnn" else torch.randn(batch, 512)
    with pyprof.profile(model, schedule=pyprof.schedule(warmup=1, active=n + 1, repeat=1), measure_peak=False) as prof:
        model(x)
        prof.step()  # the warm-up step counts this signature
        t0 = time.perf_counter()
        for _ in range(n):
            prof._on_root_forward(model, (x,), {})
            prof.step()
        return (time.perf_counter() - t0) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer steps (about 10 s)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", action="store_true", help="print only JSON")
    a = ap.parse_args(argv)
    steps, blocks = (10, 5) if a.quick else (10, 30)
    results = [measure(kind, a.batch, steps, blocks) for kind in ("cnn", "mlp")]
    if a.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    print(f"{'model':6} {'batch':>5} {'plain step':>11} {'profiled':>11} {'overhead':>9} {'pooled':>8} "
          f"{'pyprof work/step':>17} {'= % of step':>11} {'counting (once)':>16}")
    for r in results:
        print(f"{r.model:6} {r.batch:5d} {r.step_s_median_plain * 1e3:9.3f}ms {r.step_s_median_profiled * 1e3:9.3f}ms "
              f"{r.overhead_pct:8.2f}% {r.overhead_pct_pooled:7.2f}% {r.instrumented_us_per_step:14.1f} us "
              f"{100 * r.instrumented_us_per_step * 1e-6 / r.step_s_median_plain:10.2f}% {r.counting_cost_s * 1e3:13.1f} ms")
    print(json.dumps([asdict(r) for r in results]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
