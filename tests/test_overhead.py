"""The profiler's own cost, checked without a clock.

What made pyprof slow in the past was doing per step what should happen once per step signature (counting every
step costs more than the step itself). That is checked here by what pyprof records, which load cannot change. The
cost itself is measured and reported, not asserted, by `python -m pytest tests/benchmarks --benchmark-enable` and
`python -m bench.overhead` (README, "Performance"): on a shared 2-vCPU VM any wall-clock bound fails at random.
"""

import torch

import pyprof
from pyprof.bench.examples import make_mlp


def test_per_step_work_never_recounts_a_known_signature():
    model, x = make_mlp(), torch.randn(64, 512)
    n = 50
    # verify_every=0: verification recounts are deliberate (the 50th reused step, then rarer; tests/test_counting.py
    # checks their schedule); this test is about the per-step path, which must never recount.
    with pyprof.profile(model, schedule=pyprof.schedule(warmup=1, active=n, repeat=1), measure_peak=False,
                        hardware_counters=False, verify_every=0) as prof:
        model(x)
        prof.step()  # warm-up step: the one signature is counted here
        for _ in range(n):
            # exactly the per-step work that tests/benchmarks times: the root-forward signature check and step()
            prof._on_root_forward(model, (x,), {})
            prof.step()
    r = prof.result()
    assert r.totals.counted_signatures == 1
    assert len(r.steps) == n
    assert {s.analytic_origin for s in r.steps} == {"reused"} and not any(s.perturbed for s in r.steps)
    # MLP 512 -> 1024 -> 1024 -> 10, batch 64, forward only: 2 x 64 x (512*1024 + 1024*1024 + 1024*10)
    # = 2 x 64 x 1,583,104 = 202,637,312 FLOP per step, reused from the warm-up count every step
    assert {s.analytic_flops for s in r.steps} == {202_637_312}
