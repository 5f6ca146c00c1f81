"""A small training script with no pyprof in it, for `pyprof run` tests.

    python train_small.py [--steps N] [--accum K] [--exit-code C] [--raise-at STEP]

MLP 32 -> 64 -> 10, micro-batch 8, K micro-batches accumulated per optimizer step, N optimizer steps.
"""

import argparse
import sys

import torch
import torch.nn as nn

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=4)
ap.add_argument("--accum", type=int, default=1)
ap.add_argument("--exit-code", type=int, default=0)
ap.add_argument("--raise-at", type=int, default=-1)
a = ap.parse_args()

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
loss_fn = nn.CrossEntropyLoss()
x, y = torch.randn(8, 32), torch.randint(0, 10, (8,))

if __name__ == "__main__":
    for step in range(a.steps):
        if step == a.raise_at:
            raise ValueError(f"train_small failed at step {step} on purpose")
        for _ in range(a.accum):
            (loss_fn(model(x), y) / a.accum).backward()
        opt.step()
        opt.zero_grad()
    print(f"train_small done: {a.steps} optimizer steps, argv={sys.argv[1:]}")
    sys.exit(a.exit_code)
