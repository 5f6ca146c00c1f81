"""Compute-to-target end to end on a CPU: two architectures trained to the same test accuracy on scikit-learn's digits.

    python -m bench.efficiency_digits                      # table on stdout
    python -m bench.efficiency_digits --json               # JSON on stdout
    python -m bench.efficiency_digits --plot curves.svg    # also the FLOPs-based learning curves
    python -m bench.efficiency_digits --out DIR            # report.json + report.md with the curves (curves.svg)

Data: scikit-learn's 8x8 digits (1,797 images shipped inside the package; no download), pixels scaled to [0, 1], a
fixed 1,437 / 360 train / test split. Runs: A = a small CNN (the baseline), B = an MLP. Both train with SGD
(momentum 0.9, batch 32) under ``pyprof.profile(schedule=None)``, so every step's analytic FLOPs are recorded and the
cumulative FLOPs after each epoch are the training compute; test accuracy is evaluated after every epoch with a
second model instance that pyprof does not hook (evaluation is not training compute). The result is each run's
compute to the target accuracy (interpolated between epochs, and the paper's first-epoch-at-or-above figure) and the
efficiency factor of B over A split into epochs x FLOPs-per-epoch, as in Hernandez & Brown (2020), Table 1.

Requires scikit-learn (``pip install scikit-learn``); matplotlib only for ``--plot``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

N_TEST = 360


def make_mlp(hidden: int = 32) -> Any:
    """64 -> hidden -> 10 MLP on flattened 8x8 digits."""
    import torch.nn as nn

    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def make_cnn(channels: int = 8) -> Any:
    """Small CNN on 8x8 digits: conv 1->c (3x3, pad 1) -> ReLU -> pool 2 -> conv c->2c -> ReLU -> pool 2 -> linear."""
    import torch.nn as nn

    c = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),        # 8x8 -> 4x4
        nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 4x4 -> 2x2
        nn.Flatten(), nn.Linear(2 * c * 2 * 2, 10),
    )


def closed_form_train_flops_per_example(kind: str, *, hidden: int = 32, channels: int = 8) -> int:
    """Training FLOPs per example by hand (2 FLOP per multiply-add; bias, activations, pooling, loss not counted).

    Forward + backward = 3 x forward per layer (input gradient and weight gradient), except the first layer,
    whose input needs no gradient: 2 x forward.
    """
    if kind == "mlp":
        first, rest = 2 * 64 * hidden, [2 * hidden * 10]
    elif kind == "cnn":
        c = channels
        first = 2 * c * 1 * 9 * 8 * 8                 # conv1: c x 8x8 outputs, 1 x 3x3 MACs each
        rest = [2 * (2 * c) * c * 9 * 4 * 4,          # conv2: 2c x 4x4 outputs, c x 3x3 MACs each
                2 * (2 * c * 4) * 10]                 # linear: 8c -> 10
    else:
        raise ValueError(f"unknown model {kind!r}: use 'mlp' or 'cnn'")
    return 2 * first + 3 * sum(rest)


@dataclass
class DigitsEfficiency:
    """What :func:`run_digits_efficiency` measured."""

    target: float
    curves: list[Any]                      # pyprof.efficiency.LearningCurve, A then B
    results: list[Any]                     # TargetResult, A then B (interpolated)
    results_paper: list[Any]               # TargetResult, first evaluation at or above target (no interpolation)
    factor: Any | None                     # EfficiencyFactor of B over A (None if a run missed the target)
    factor_paper: Any | None
    flops_per_epoch: dict[str, float]      # counted by pyprof
    closed_form_flops_per_epoch: dict[str, int]
    wall_time_s: dict[str, float]
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "target": self.target, "config": self.config,
            "curves": [c.to_dict() for c in self.curves],
            "compute_to_target": [r.to_dict() for r in self.results],
            "compute_to_target_paper_convention": [r.to_dict() for r in self.results_paper],
            "efficiency_factor": self.factor.to_dict() if self.factor else None,
            "efficiency_factor_paper_convention": self.factor_paper.to_dict() if self.factor_paper else None,
            "flops_per_epoch": self.flops_per_epoch,
            "closed_form_flops_per_epoch": self.closed_form_flops_per_epoch,
            "wall_time_s": self.wall_time_s,
        }


def _data(seed: int) -> tuple[Any, Any, Any, Any]:
    import torch

    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("the digits example needs scikit-learn: pip install scikit-learn") from e
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    te, tr = perm[:N_TEST], perm[N_TEST:]
    return x[tr], y[tr], x[te], y[te]


def train_run(kind: str, data: tuple[Any, Any, Any, Any], *, epochs: int, batch: int, lr: float, seed: int,
              hidden: int, channels: int) -> tuple[Any, float]:
    """Train one model under ``pyprof.profile`` and return its learning curve (test accuracy vs FLOPs) and seconds."""
    import torch

    import pyprof
    from pyprof.accounting.efficiency import LearningCurve
    xtr, ytr, xte, yte = data
    make = (lambda: make_mlp(hidden)) if kind == "mlp" else (lambda: make_cnn(channels))
    torch.manual_seed(seed)
    model = make()
    evaluator = make()  # not hooked by pyprof: its forward passes are not counted as training FLOPs
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    curve = LearningCurve(kind, metric_name="test accuracy", higher_is_better=True)
    order_gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    with pyprof.profile(model, schedule=None, measure_peak=False, hardware_counters=False, autosave_s=None,
                        name=f"digits-{kind}") as prof:
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(len(xtr), generator=order_gen)
            for i in range(0, len(order), batch):
                idx = order[i:i + batch]
                loss = loss_fn(model(xtr[idx]), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                prof.step(examples=len(idx))
            evaluator.load_state_dict(model.state_dict())
            evaluator.eval()
            with torch.no_grad():
                correct = int((evaluator(xte).argmax(1) == yte).sum())
            curve.log_profile(prof, correct / len(yte), epoch=epoch)
    return curve, time.perf_counter() - t0


def run_digits_efficiency(*, target: float = 0.95, epochs: int = 15, batch: int = 32, lr: float = 0.05,
                          seed: int = 0, hidden: int = 32, channels: int = 8, threads: int | None = 1,
                          plot: str | None = None) -> DigitsEfficiency:
    """Train the CNN (A) and the MLP (B) on digits and compare their compute to ``target`` test accuracy.

    Args:
        target: Test accuracy both runs must reach.
        epochs: Epochs each run trains (the whole curve is kept; the target is found on it).
        batch: Minibatch size.
        lr: SGD learning rate (momentum 0.9).
        seed: Seeds the split, the initialization and the batch order.
        hidden: MLP hidden width.
        channels: CNN first-layer channels.
        threads: ``torch.set_num_threads`` for the run (None leaves it).
        plot: Write the FLOPs-based learning curves there (needs matplotlib).

    Returns:
        The :class:`DigitsEfficiency`.
    """
    import torch

    from pyprof.accounting.efficiency import compute_to_target, efficiency_factor_from_results, plot_learning_curves

    data = _data(seed)
    n_train = len(data[0])
    curves, walls = [], {}
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for kind in ("cnn", "mlp"):
            curve, wall = train_run(kind, data, epochs=epochs, batch=batch, lr=lr, seed=seed, hidden=hidden,
                                    channels=channels)
            curves.append(curve)
            walls[kind] = wall
    finally:
        torch.set_num_threads(threads_before)
    results = [compute_to_target(c, target) for c in curves]
    paper = [compute_to_target(c, target, interpolate=False) for c in curves]
    factor = factor_paper = None
    if all(r.reached for r in results):
        factor = efficiency_factor_from_results(results[0], results[1])
        factor_paper = efficiency_factor_from_results(paper[0], paper[1])
    fpe = {c.name: c.points[0].flops / c.points[0].epoch for c in curves}
    closed = {k: n_train * closed_form_train_flops_per_example(k, hidden=hidden, channels=channels)
              for k in ("cnn", "mlp")}
    if plot:
        plot_learning_curves(curves, plot, target=target, title="digits: test accuracy vs training FLOP")
    cfg = dict(target=target, epochs=epochs, batch=batch, lr=lr, seed=seed, hidden=hidden, channels=channels,
               threads=threads, n_train=n_train, n_test=N_TEST)
    return DigitsEfficiency(target, curves, results, paper, factor, factor_paper, fpe, closed, walls, cfg)


def format_result(r: DigitsEfficiency) -> str:
    """A plain-text table of the result."""
    lines = [f"digits (sklearn), {r.config['n_train']} train / {r.config['n_test']} test, target test accuracy "
             f"{r.target:g}, {r.config['epochs']} epochs each",
             f"{'run':<5} {'FLOP/epoch':>11} {'closed form':>11} {'best acc':>8} {'epochs->tgt':>11} "
             f"{'FLOP->tgt':>10} {'pfs-days':>9} {'paper epochs':>12} {'wall s':>6}"]
    for c, t, p in zip(r.curves, r.results, r.results_paper):
        ep = f"{t.epochs:.2f}" if t.reached else "never"
        fl = f"{t.flops:.4g}" if t.reached else "-"
        pd = f"{t.pfs_days:.3g}" if t.reached else "-"
        pe = f"{p.epochs:g}" if p.reached else "never"
        lines.append(f"{c.name:<5} {r.flops_per_epoch[c.name]:>11.5g} {r.closed_form_flops_per_epoch[c.name]:>11} "
                     f"{t.best_metric:>8.3f} {ep:>11} {fl:>10} {pd:>9} {pe:>12} {r.wall_time_s[c.name]:>6.1f}")
    for t in r.results:
        lines.append(f"  {t.run}: {t.note}")
    if r.factor is not None:
        lines.append(f"efficiency factor (interpolated): {r.factor}")
        lines.append(f"efficiency factor (paper convention, first epoch at or above target): {r.factor_paper}")
    else:
        lines.append("no efficiency factor: a run never reached the target (see above)")
    return "\n".join(lines)


def write_report(r: DigitsEfficiency, out_dir: str) -> list[str]:
    """Write the run as a report folder: ``report.json`` (every figure), ``curves.svg`` (the FLOPs-based learning
    curves of both runs in one figure, log compute on x) and ``report.md`` (the table with the figure embedded).
    Each file is written atomically."""
    import io
    from pathlib import Path

    from pyprof.accounting.efficiency import plot_learning_curves
    from pyprof.report import atomic_write_text
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [str(atomic_write_text(out / "report.json", json.dumps(r.to_dict(), indent=2) + "\n"))]
    svg_tmp = out / ".curves.tmp.svg"
    plot_learning_curves(r.curves, str(svg_tmp), target=r.target, title="digits: test accuracy vs training FLOP")
    paths.append(str(atomic_write_text(out / "curves.svg", svg_tmp.read_text(encoding="utf-8"))))
    svg_tmp.unlink()
    buf = io.StringIO()
    buf.write("# Compute to target: digits, CNN (A) vs MLP (B)\n\n![FLOPs-based learning curves](curves.svg)\n\n```\n")
    buf.write(format_result(r) + "\n```\n")
    paths.append(str(atomic_write_text(out / "report.md", buf.getvalue())))
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these tiny models)")
    ap.add_argument("--plot", default=None, help="write the learning curves (.svg/.png)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--out", default=None, help="write report.json, report.md and curves.svg into this folder")
    a = ap.parse_args(argv)
    r = run_digits_efficiency(target=a.target, epochs=a.epochs, seed=a.seed, threads=a.threads, plot=a.plot)
    sys.stdout.write(json.dumps(r.to_dict(), indent=2) + "\n" if a.json else format_result(r) + "\n")
    if a.out:
        print("report: " + ", ".join(write_report(r, a.out)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
