"""Training-step workloads of the seed documents' architectures, each built for a preset and a device.

The ten CNNs of "Measuring the Algorithmic Efficiency of Neural Networks" (Hernandez & Brown 2020, Table 1 and
Figure 4) all run, none skipped: torchvision's model where ``torchvision.models`` imports and has the architecture,
else pyprof's own definition from ``pyprof.bench.models`` (layer for layer torchvision's where torchvision has the
model; MobileNet v1 and ShuffleNet v1 from their papers). Each workload records which definition it ran in its
``source`` and ``config["model_definition"]``. The GPT-2-small-shaped LM and the LSTM seq2seq are defined in
``pyprof.bench.models``; the CuPy GEMM loop is the framework-agnostic path.

Training follows the paper's protocol where it applies: SGD with momentum 0.9, weight decay 1e-4, lr 0.01 for the
pre-batch-norm nets (AlexNet, VGG) and 0.1 otherwise; cross-entropy loss on random data of the right shape (the data
does not change the FLOPs or, to first order, the speed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


class SkipWorkload(Exception):
    """A workload cannot run here (missing package, device); the message is the reason shown in the report."""


@dataclass
class Prepared:
    """A workload ready to run: ``step()`` runs one training step (forward, backward, optimizer)."""

    model: Any
    step: Callable[[], None]
    examples_per_step: int
    config: dict[str, Any]
    source: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Workload:
    id: str
    name: str
    family: str
    make: Callable[[str, str], Prepared]   # (preset "quick"|"full", device) -> Prepared


@functools.lru_cache(maxsize=1)
def torchvision_models() -> tuple[Any, str]:
    """``(torchvision.models, "")`` or ``(None, reason)`` when it does not import."""
    try:
        import torchvision.models as tvm

        return tvm, ""
    except Exception as e:  # ImportError, or a RuntimeError from an operator registration mismatch
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return None, f"torchvision.models does not import ({type(e).__name__}: {msg[:200]})"


def _optimizer(model: Any, lr: float) -> Any:
    import torch

    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)


def _classifier_step(model: Any, x: Any, y: Any, lr: float) -> Callable[[], None]:
    import torch

    opt = _optimizer(model, lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


@dataclass(frozen=True)
class VisionModel:
    """One seed CNN and where its definition comes from.

    Attributes:
        id: Workload id (``pyprof bench --only ID``).
        name: Display name.
        own: pyprof's definition, ``"module.function"`` under ``pyprof.bench.models`` (``function(num_classes=1000)``).
        torchvision: The ``torchvision.models`` builder, or None where torchvision has no such model.
        torchvision_kwargs: Keyword arguments for that builder.
        lr: SGD learning rate (the paper's protocol: 0.01 for the nets without batch norm, 0.1 otherwise).
        quick_batch: Batch of the quick preset (at 112x112). 8, except where that would make a step much more work
            than the heaviest of the other quick workloads (ResNet-18: 1.8 G multiply-adds per 224x224 image).
    """

    id: str
    name: str
    own: str
    torchvision: str | None
    torchvision_kwargs: tuple[tuple[str, Any], ...] = ()
    lr: float = 0.1
    quick_batch: int = 8


#: The ten seed CNNs by workload id, each with pyprof's definition so that none is skipped without torchvision.
VISION: dict[str, VisionModel] = {v.id: v for v in (
    VisionModel("alexnet", "AlexNet", "vision.alexnet", "alexnet", lr=0.01),
    # VGG-11 and ResNet-50 are 4.2x and 2.3x ResNet-18's multiply-adds per image (7.6 and 4.1 G): smaller quick batches
    # keep their quick steps near ResNet-18's (a third of the quick suite's CNN time on a 2-core CPU otherwise).
    VisionModel("vgg11", "VGG-11", "vision.vgg11", "vgg11", lr=0.01, quick_batch=2),
    VisionModel("googlenet", "GoogLeNet", "vision.googlenet", "googlenet",
                # the auxiliary classifiers are training-only heads outside the published parameter count
                (("aux_logits", False), ("init_weights", True))),
    VisionModel("resnet18", "ResNet-18", "vision.resnet18", "resnet18"),
    VisionModel("resnet50", "ResNet-50", "vision.resnet50", "resnet50", quick_batch=4),
    VisionModel("mobilenet_v1", "MobileNet v1", "mobile.mobilenet_v1", None),
    VisionModel("mobilenet_v2", "MobileNetV2", "vision.mobilenet_v2", "mobilenet_v2"),
    VisionModel("shufflenet_v1", "ShuffleNet v1 1x (g=3)", "mobile.shufflenet_v1", None),
    VisionModel("shufflenet_v2", "ShuffleNetV2 1x", "mobile.shufflenet_v2_x1_0", "shufflenet_v2_x1_0"),
    VisionModel("efficientnet_b0", "EfficientNet-B0", "mobile.efficientnet_b0", "efficientnet_b0"),
)}


def build_vision_model(spec: VisionModel, tvm: Any, why: str) -> tuple[Any, str, Literal["torchvision", "pyprof"],
                                                                        list[str]]:
    """Instantiate ``spec`` from torchvision when ``tvm`` (``torchvision.models`` or None) has it, else pyprof's own.

    Args:
        spec: The architecture.
        tvm: The imported ``torchvision.models`` module, or None.
        why: Why torchvision is unavailable (shown in a note when ``tvm`` is None).

    Returns:
        ``(model, source, definition, notes)``: the ``torch.nn.Module``; where it came from, e.g.
        ``"torchvision.models.vgg11"`` or ``"pyprof.bench.models.vision.vgg11"``; ``"torchvision"`` or ``"pyprof"``;
        notes for the report saying why pyprof's definition was used.
    """
    import importlib

    if tvm is not None and spec.torchvision is not None:
        return (getattr(tvm, spec.torchvision)(**dict(spec.torchvision_kwargs)), f"torchvision.models.{spec.torchvision}",
                "torchvision", [])
    module, func = spec.own.rsplit(".", 1)
    model = getattr(importlib.import_module(f"pyprof.bench.models.{module}"), func)()
    if spec.torchvision is None:
        note = "torchvision has no such model; pyprof's definition from the paper"
    else:
        note = (f"{why}; using pyprof's definition, layer for layer torchvision.models.{spec.torchvision} (same "
                "parameter count and multiply-adds)")
    return model, f"pyprof.bench.models.{spec.own}", "pyprof", [note]


def _vision(spec: VisionModel) -> Callable[[str, str], Prepared]:
    def make(preset: str, device: str) -> Prepared:
        import torch

        tvm, why = torchvision_models()
        torch.manual_seed(0)
        model, source, definition, notes = build_vision_model(spec, tvm, why)
        batch, res = (spec.quick_batch, 112) if preset == "quick" else (256, 224)
        model = model.to(device).train()
        x = torch.randn(batch, 3, res, res, device=device)
        y = torch.randint(0, 1000, (batch,), device=device)
        cfg = {"batch": batch, "resolution": res, "optimizer": f"SGD lr={spec.lr} momentum=0.9 weight_decay=1e-4",
               "precision": "fp32", "model_definition": definition}
        if preset == "quick":
            notes.append(f"quick preset: batch {batch} at {res}x{res} (the paper: 256 at 224x224)")
        return Prepared(model, _classifier_step(model, x, y, spec.lr), batch, cfg, source, notes)

    return make


def _gpt(preset: str, device: str) -> Prepared:
    import torch

    from pyprof.bench.models.gpt2 import GPTLM, GPTConfig

    c = GPTConfig(n_layer=4, n_head=4, d_model=256, n_ctx=128, vocab=8192) if preset == "quick" else GPTConfig()
    batch = 4 if preset == "quick" else 8
    torch.manual_seed(0)
    model = GPTLM(c).to(device).train()
    idx = torch.randint(0, c.vocab, (batch, c.n_ctx + 1), device=device)
    x, y = idx[:, :-1], idx[:, 1:]
    opt = _optimizer(model, 0.1)

    def step() -> None:
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c.vocab), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    cfg = {"batch": batch, "tokens_per_step": batch * c.n_ctx, "n_layer": c.n_layer, "n_head": c.n_head,
           "d_model": c.d_model, "n_ctx": c.n_ctx, "vocab": c.vocab, "precision": "fp32",
           "optimizer": "SGD lr=0.1 momentum=0.9 weight_decay=1e-4"}
    notes = ["examples = sequences; causal attention counted dense in flops_per_step (pyprof's convention), "
             "the effective count is in the embedded profile"]
    if preset == "quick":
        notes.append("quick preset: GPT-2-small *shape* scaled down (4 layers, d_model 256, context 128, vocab 8192)")
    return Prepared(model, step, batch, cfg, "pyprof.bench.models.gpt2", notes)


def _seq2seq(preset: str, device: str) -> Prepared:
    import torch

    from pyprof.bench.models.seq2seq import Seq2Seq, Seq2SeqConfig, register_lstm_formulas

    note = register_lstm_formulas()
    if preset == "quick":
        c, batch, length = Seq2SeqConfig(layers=2, hidden=256, embed=256, src_vocab=8000, tgt_vocab=8000), 16, 16
    else:
        c, batch, length = Seq2SeqConfig(), 128, 30
    torch.manual_seed(0)
    model = Seq2Seq(c).to(device).train()
    src = torch.randint(0, c.src_vocab, (batch, length), device=device)
    tgt = torch.randint(0, c.tgt_vocab, (batch, length + 1), device=device)
    opt = _optimizer(model, 0.1)

    def step() -> None:
        logits = model(src, tgt[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c.tgt_vocab), tgt[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    cfg = {"batch": batch, "src_len": length, "tgt_len": length, "layers": c.layers, "hidden": c.hidden,
           "embed": c.embed, "src_vocab": c.src_vocab, "tgt_vocab": c.tgt_vocab, "precision": "fp32",
           "optimizer": "SGD lr=0.1 momentum=0.9 weight_decay=1e-4"}
    notes = [note]
    if preset == "quick":
        notes.append("quick preset: 2 layers of 256 cells, vocabularies of 8,000 (the paper: 4 x 1000, 160k/80k)")
    return Prepared(model, step, batch, cfg, "pyprof.bench.models.seq2seq", notes)


WORKLOADS: tuple[Workload, ...] = (
    *(Workload(v.id, v.name, "cnn", _vision(v)) for v in VISION.values()),
    Workload("gpt2_small", "GPT-2-small-shaped LM", "transformer", _gpt),
    Workload("lstm_seq2seq", "LSTM seq2seq", "rnn", _seq2seq),
)

#: The framework-agnostic CuPy GEMM loop is run by the runner itself (it is not a torch module).
CUPY_ID = "cupy_gemm"


def cupy_gemm_loop(preset: str, steps: int) -> dict[str, Any]:
    """Time a loop of CuPy FP32 GEMMs with CUDA events; FLOPs analytic (2n^3 per GEMM).

    Raises:
        SkipWorkload: CuPy missing or no GPU.
    """
    try:
        import cupy as cp
    except Exception as e:
        raise SkipWorkload(f"cupy does not import ({type(e).__name__}: {e}); install pyprof[gpu] on a GPU machine") \
            from e
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            raise SkipWorkload("cupy found no GPU")
    except cp.cuda.runtime.CUDARuntimeError as e:
        raise SkipWorkload(f"cupy found no usable GPU ({e})") from e
    n = 2048 if preset == "quick" else 8192
    a = cp.random.rand(n, n, dtype=cp.float32)
    b = cp.random.rand(n, n, dtype=cp.float32)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(steps):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) * 1e-3)
    return {"n": n, "flops_per_step": 2.0 * n ** 3, "times_s": times}


def select(only: list[str] | None) -> list[Workload]:
    """Workloads by id (all when ``only`` is empty).

    Raises:
        ValueError: an id that is not a workload, with the list of ids.
    """
    if not only:
        return list(WORKLOADS)
    ids = {w.id: w for w in WORKLOADS}
    bad = [o for o in only if o not in ids and o != CUPY_ID]
    if bad:
        raise ValueError(f"unknown workload(s) {bad}; choose from {sorted([*ids, CUPY_ID])}")
    return [ids[o] for o in only if o in ids]
