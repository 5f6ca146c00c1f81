"""Overhead of pyprof.profile() on CPU training loops, measured side by side in one run (paired steps).

    python -m bench.overhead                  # every workload, a table on stdout, JSON with --out
    python -m bench.overhead --quick          # fewer pairs
    python -m bench.overhead --only mlp_tiny,varlen --pairs 400

Design (issue 12, "Performance of counting"): two twin models with the same weights and data, one inside
``pyprof.profile()`` with its default settings, one not. Single steps alternate between them (the order flips every
pair so that neither side always runs first), and both are timed by the same outer ``time.perf_counter()`` around the
whole step *including* ``prof.step()``. The overhead is the ratio of mean step times over all pairs after warm-up,
with a 95% bootstrap interval from resampling pairs ("overhead": every pair, the steps that ran the analytic count
included; "steady": the pairs whose profiled step did not count, i.e. pyprof's always-on cost). Memory: the process
RSS after warm-up and at the end.

Workloads: an MLP with ~0.5 ms steps (the hardest case for a fixed per-step cost), an MLP and a CNN from
``pyprof.bench.examples``, an LSTM, a GPT-style LM, the same LM with the sequence length cycling through 50 values,
and with a random batch x length every step (the cases that used to recount most steps).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WORKLOADS = ("mlp_tiny", "mlp", "cnn", "lstm", "gpt", "varlen", "randshape")


@dataclass
class OverheadResult:
    workload: str
    pairs: int
    step_s_mean_plain: float
    step_s_mean_profiled: float
    overhead_pct: float                     # (mean profiled / mean plain - 1) x 100
    overhead_pct_ci95: tuple[float, float]  # bootstrap over pairs
    pyprof_us_per_step: float               # mean profiled - mean plain, in microseconds
    steady_overhead_pct: float              # the same over the pairs whose profiled step did not count FLOPs
    steady_overhead_pct_ci95: tuple[float, float]
    steady_pairs: int
    steps_by_origin: dict[str, int] = field(default_factory=dict)  # counted / reused / derived / missing
    steps_in_rates_pct: float = 0.0         # recorded steps that enter the rates (not perturbed by counting)
    rss_mb_after_warmup: float = 0.0
    rss_mb_end: float = 0.0


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _make(workload: str, seed: int) -> tuple[Any, Callable[[int], None]]:
    """A model and ``step(i)`` for one twin; both twins get the same weights (same seed) and the same inputs."""
    import torch
    from torch import nn

    from pyprof.bench.examples import make_cnn, make_mlp

    torch.manual_seed(seed)
    rng = random.Random(seed)
    if workload in ("mlp_tiny", "mlp", "cnn"):
        model = make_cnn() if workload == "cnn" else make_mlp(64, 128, 10) if workload == "mlp_tiny" else make_mlp()
        batch = 16 if workload == "mlp_tiny" else 64
        x = torch.randn(batch, 3, 32, 32) if workload == "cnn" else torch.randn(batch, 64 if workload == "mlp_tiny" else 512)
        y = torch.randint(0, 10, (batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def step(i: int) -> None:
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return model, step
    if workload == "lstm":
        model = nn.LSTM(64, 128, num_layers=2, batch_first=True)
        x = torch.randn(16, 32, 64)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def step(i: int) -> None:
            model(x)[0].sum().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return model, step
    from pyprof.bench.models.gpt2 import GPTLM, GPTConfig

    model = GPTLM(GPTConfig(n_layer=2, n_head=4, d_model=128, n_ctx=128, vocab=1000))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    lengths = [16 + 2 * k for k in range(50)]
    shapes = [(rng.randint(1, 8), rng.randint(8, 64)) for _ in range(4096)]

    def shape(i: int) -> tuple[int, int]:
        if workload == "varlen":
            return 8, lengths[i % len(lengths)]
        if workload == "randshape":
            return shapes[i % len(shapes)]
        return 8, 64

    def step(i: int) -> None:
        b, t = shape(i)
        ids = torch.randint(0, 1000, (b, t), generator=torch.Generator().manual_seed(i))
        logits = model(ids)
        nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return model, step


def _bootstrap_ratio_ci(plain: list[float], prof: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    k = len(plain)
    ratios = []
    for _ in range(n):
        idx = [rng.randrange(k) for _ in range(k)]
        ratios.append(100 * (sum(prof[i] for i in idx) / sum(plain[i] for i in idx) - 1))
    ratios.sort()
    return ratios[int(0.025 * n)], ratios[int(0.975 * n) - 1]


def measure(workload: str, pairs: int = 200, warmup: int = 20) -> OverheadResult:
    """Paired single steps of a plain and a profiled twin; see the module docstring."""
    import pyprof

    _, plain_step = _make(workload, seed=0)
    prof_model, prof_step = _make(workload, seed=0)
    plain_t: list[float] = []
    prof_t: list[float] = []
    with pyprof.profile(prof_model, measure_peak=False) as prof:
        rss_warm = 0.0
        for i in range(warmup + pairs):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for side in order:
                t0 = time.perf_counter()
                if side == 0:
                    plain_step(i)
                else:
                    prof_step(i)
                    prof.step()
                dt = time.perf_counter() - t0
                if i >= warmup:
                    (plain_t if side == 0 else prof_t).append(dt)
            if i == warmup - 1:
                rss_warm = _rss_mb()
        rss_end = _rss_mb()
    r = prof.result()
    # Steady state: the pairs whose profiled step ran no analytic count (its first step, new shapes and the sparse
    # verification recounts are the counted ones); recorded step i is pair i (schedule None records every step).
    counted = {s.index - warmup for s in r.steps if s.perturbed}
    keep = [k for k in range(len(prof_t)) if k not in counted]
    sp, sq = [plain_t[k] for k in keep], [prof_t[k] for k in keep]
    origins: dict[str, int] = {}
    for s in r.steps:
        origins[s.analytic_origin] = origins.get(s.analytic_origin, 0) + 1
    mp, mq = statistics.fmean(plain_t), statistics.fmean(prof_t)
    return OverheadResult(
        workload=workload, pairs=pairs, step_s_mean_plain=mp, step_s_mean_profiled=mq,
        overhead_pct=100 * (mq / mp - 1), overhead_pct_ci95=_bootstrap_ratio_ci(plain_t, prof_t),
        pyprof_us_per_step=(mq - mp) * 1e6, steps_by_origin=origins,
        steady_overhead_pct=100 * (statistics.fmean(sq) / statistics.fmean(sp) - 1),
        steady_overhead_pct_ci95=_bootstrap_ratio_ci(sp, sq), steady_pairs=len(keep),
        steps_in_rates_pct=100 * sum(not s.perturbed for s in r.steps) / max(1, len(r.steps)),
        rss_mb_after_warmup=rss_warm, rss_mb_end=rss_end)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="60 pairs per workload instead of 300")
    ap.add_argument("--pairs", type=int, default=None)
    ap.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated subset of {', '.join(WORKLOADS)}")
    ap.add_argument("--out", type=Path, default=None, help="write overhead.json there")
    a = ap.parse_args(argv)
    names = [n.strip() for n in a.only.split(",") if n.strip()]
    bad = [n for n in names if n not in WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from {', '.join(WORKLOADS)}")
    pairs = a.pairs or (60 if a.quick else 300)
    results = [measure(n, pairs=pairs) for n in names]
    print(f"{'workload':10} {'plain step':>11} {'overhead':>9} {'95% CI':>17} {'steady':>8} {'95% CI':>17} "
          f"{'in rates':>9} {'RSS warm->end':>15}  origins")
    for r in results:
        lo, hi = r.overhead_pct_ci95
        slo, shi = r.steady_overhead_pct_ci95
        print(f"{r.workload:10} {r.step_s_mean_plain * 1e3:9.3f}ms {r.overhead_pct:8.2f}% [{lo:6.2f}, {hi:6.2f}]% "
              f"{r.steady_overhead_pct:7.2f}% [{slo:6.2f}, {shi:6.2f}]% {r.steps_in_rates_pct:8.1f}% "
              f"{r.rss_mb_after_warmup:6.0f}->{r.rss_mb_end:4.0f} MB  {r.steps_by_origin}")
    if a.out is not None:
        from pyprof.report.atomic import atomic_write_text

        a.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(a.out / "overhead.json", json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
