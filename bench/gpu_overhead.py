"""Overhead of pyprof's always-on GPU mode on a training step, against the same loop unprofiled and against
``torch.profiler`` with default settings, in one run.

    python -m bench.gpu_overhead --out bench/results/<gpu>-<date>            # ResNet-50 and GPT-2 small
    python -m bench.gpu_overhead --models resnet50 --steps 20 --blocks 3     # quicker

Method: for each model, blocks of ``--steps`` steps rotate through the modes (plain, plain with a device synchronize
per step, pyprof always-on, torch.profiler) so clock and thermal drift hit every mode alike; each step is timed on the
host with a ``torch.cuda.synchronize()`` after it. pyprof synchronizes at each step boundary itself (to attribute
kernels to steps exactly), so "plain+sync" separates the cost of that synchronize from the cost of the tracer, hooks
and NVML sampler. Overheads are medians of per-block ratios against "plain".

The target from issue 3: pyprof <= 1% over plain, and below torch.profiler's overhead. On a machine without a GPU the
script writes a JSON saying so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyprof.report.atomic import atomic_write_text

MODES = ("plain", "plain+sync", "pyprof", "torch.profiler")


def make_step(model_name: str, batch: int | None) -> tuple[Callable[[], None], Any, dict[str, Any]]:
    """A training step on the GPU in BF16 autocast: (step function, root module, facts)."""
    import torch

    torch.manual_seed(0)
    dev = torch.device("cuda")
    if model_name == "resnet50":
        from pyprof.bench.models.vision import resnet50
        b = batch or 128
        model = resnet50().to(dev).to(memory_format=torch.channels_last)
        x = torch.randn(b, 3, 224, 224, device=dev).to(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (b,), device=dev)
        loss_fn = torch.nn.CrossEntropyLoss()

        def fwd():
            return loss_fn(model(x), y)
        facts = {"model": "ResNet-50", "batch": b, "input": [b, 3, 224, 224]}
    elif model_name == "gpt2":
        from pyprof.bench.models.gpt2 import GPTLM, GPTConfig

        b = batch or 16
        c = GPTConfig()
        model = GPTLM(c).to(dev)
        idx = torch.randint(0, c.vocab, (b, c.n_ctx), device=dev)

        def fwd():
            logits = model(idx)
            return torch.nn.functional.cross_entropy(logits.view(-1, c.vocab).float(), idx.view(-1))
        facts = {"model": "GPT-2 small", "batch": b, "context": c.n_ctx}
    else:
        raise ValueError(f"--models: unknown model {model_name!r}; choose resnet50, gpt2")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    facts["precision"] = "bf16 autocast"
    return step, model, facts


def _block(mode: str, step: Callable[[], None], model: Any, n: int) -> tuple[list[float], dict[str, Any]]:
    import torch

    info: dict[str, Any] = {}
    times: list[float] = []

    def run(after: Callable[[], None] | None = None, sync: bool = True) -> None:
        for _ in range(n):
            t0 = time.perf_counter()
            step()
            if after is not None:
                after()
            if sync:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)

    torch.cuda.synchronize()
    if mode == "plain":
        # the plain loop does not synchronize per step; time the block and spread it (what a user's loop costs)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        torch.cuda.synchronize()
        times = [(time.perf_counter() - t0) / n] * n
    elif mode == "plain+sync":
        run()
    elif mode == "pyprof":
        import pyprof

        with pyprof.profile(model, measure_peak=False, count_flops="off", autosave_s=None) as prof:
            run(after=prof.step, sync=False)  # prof.step() synchronizes at the step boundary itself
        g = prof.result().gpu.to_dict() if prof.result().gpu is not None else {}  # typed GpuRun -> report dict
        info = {"status": {k: v.get("active") for k, v in (g.get("status") or {}).items()},
                "reasons": {k: v.get("reason") for k, v in (g.get("status") or {}).items() if not v.get("active")},
                "records_lost": {k: (g.get("tracer_stats") or {}).get(k)
                                 for k in ("dropped_by_cupti", "buffer_requests_refused", "pending_dropped")},
                "kernels_per_step": ((g.get("totals") or {}).get("kernel_count") or 0) / max(1, n)}
    elif mode == "torch.profiler":
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
            run()
    else:
        raise ValueError(mode)
    return times, info


def measure(model_name: str, batch: int | None, steps: int, blocks: int, warmup: int) -> dict[str, Any]:
    step, model, facts = make_step(model_name, batch)
    for _ in range(warmup):
        step()
    import torch

    torch.cuda.synchronize()
    per_mode: dict[str, list[float]] = {m: [] for m in MODES}
    block_medians: dict[str, list[float]] = {m: [] for m in MODES}
    infos: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for _b in range(blocks):
        for mode in MODES:
            if mode in errors:
                continue
            try:
                t, info = _block(mode, step, model, steps)
            except Exception as e:  # one mode failing (e.g. CUPTI held) must not hide the others
                errors[mode] = repr(e)
                continue
            per_mode[mode] += t
            block_medians[mode].append(statistics.median(t))
            if info:
                infos.append(info)
    out: dict[str, Any] = {**facts, "steps_per_block": steps, "blocks": blocks, "errors": errors,
                           "step_s_median": {m: (statistics.median(v) if v else None) for m, v in per_mode.items()},
                           "block_medians_s": block_medians, "pyprof_blocks": infos}
    base = block_medians["plain"]
    for m in MODES[1:]:
        ratios = [x / p - 1 for x, p in zip(block_medians[m], base)]
        out[f"overhead_pct_{m}"] = 100 * statistics.median(ratios) if ratios else None
    sync = block_medians["plain+sync"]
    pyp = block_medians["pyprof"]
    r = [x / s - 1 for x, s in zip(pyp, sync)]
    out["overhead_pct_pyprof_vs_plain+sync"] = 100 * statistics.median(r) if r else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,gpt2")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None, help="folder for gpu_overhead.json")
    a = ap.parse_args(argv)
    import torch

    res: dict[str, Any] = {"command": "python -m bench.gpu_overhead " + " ".join(argv if argv is not None else sys.argv[1:]),
                           "torch": torch.__version__}
    if not torch.cuda.is_available():
        res["skipped"] = "no CUDA GPU visible to torch: nothing to measure"
    else:
        res["device"] = torch.cuda.get_device_name(0)
        res["results"] = []
        for m in a.models.split(","):
            r = measure(m.strip(), a.batch, a.steps, a.blocks, a.warmup)
            res["results"].append(r)
            print(f"{r['model']}: plain {r['step_s_median']['plain']}, pyprof overhead "
                  f"{r.get('overhead_pct_pyprof')}%, torch.profiler {r.get('overhead_pct_torch.profiler')}%",
                  file=sys.stderr)
    text = json.dumps(res, indent=2)
    if a.out is not None:
        atomic_write_text(a.out / "gpu_overhead.json", text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
