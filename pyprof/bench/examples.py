"""Built-in example training loops (a small CNN and an MLP) with closed-form FLOP counts.

They are the README's first command until the benchmark suite lands, and the end-to-end test checks pyprof's count
against :func:`closed_form_flops`, which is derived by hand from the layer shapes, independently of the counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExampleSpec:
    name: str
    batch: int
    steps: int


def make_mlp(d_in: int = 512, hidden: int = 1024, d_out: int = 10) -> Any:
    import torch.nn as nn

    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def make_cnn(channels: int = 16, classes: int = 10) -> Any:
    import torch.nn as nn

    # 3x32x32 input -> conv 3->c (3x3, pad 1) -> ReLU -> maxpool 2 -> conv c->2c (3x3, pad 1) -> ReLU -> maxpool 2
    # -> flatten (2c x 8 x 8) -> linear -> classes
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * channels * 8 * 8, classes),
    )


def closed_form_flops(kind: str, batch: int, *, d_in: int = 512, hidden: int = 1024, d_out: int = 10,
                      channels: int = 16, classes: int = 10) -> dict[str, int]:
    """Forward and backward FLOPs of one training step, by hand (2 FLOP per multiply-add; bias, activations,
    pooling and loss not counted, as in the analytic counter's convention).

    Backward of a layer = 2 x its forward (input gradient + weight gradient), except the first layer, whose input
    needs no gradient: 1 x forward.
    """
    if kind == "mlp":
        layers = [2 * batch * d_in * hidden, 2 * batch * hidden * hidden, 2 * batch * hidden * d_out]
    elif kind == "cnn":
        c = channels
        layers = [
            2 * batch * c * 3 * 9 * 32 * 32,          # conv1: out c x 32 x 32, each 3 x 3x3 MACs
            2 * batch * (2 * c) * c * 9 * 16 * 16,    # conv2: out 2c x 16 x 16, each c x 3x3 MACs
            2 * batch * (2 * c * 8 * 8) * classes,    # linear
        ]
    else:
        raise ValueError(f"unknown example {kind!r}: use 'mlp' or 'cnn'")
    forward = sum(layers)
    backward = layers[0] + 2 * sum(layers[1:])
    return {"forward": forward, "backward": backward, "total": forward + backward}


def run_example(kind: str = "cnn", *, batch: int = 64, steps: int = 20, warmup: int = 2, output_dir: str | None = None,
                seed: int = 0, measure_peak: bool = True, training_examples: float | None = 50_000,
                training_epochs: float | None = 30) -> Any:
    """Train an example model for a few steps under ``pyprof.profile`` and return the result.

    The projected training run defaults to a CIFAR-10-sized run (50,000 examples x 30 epochs).
    """
    import torch

    from pyprof.session.profile import profile, schedule

    torch.manual_seed(seed)
    if kind == "mlp":
        model, x = make_mlp(), torch.randn(batch, 512)
    elif kind == "cnn":
        model, x = make_cnn(), torch.randn(batch, 3, 32, 32)
    else:
        raise ValueError(f"unknown example {kind!r}: use 'mlp' or 'cnn'")
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    with profile(model, schedule=schedule(warmup=warmup, active=steps, repeat=1), examples_per_step=batch,
                 output_dir=output_dir, measure_peak=measure_peak, name=f"example-{kind}",
                 training_examples=training_examples, training_epochs=training_epochs) as prof:
        for _ in range(warmup + steps):
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            prof.step()
    return prof.result()
