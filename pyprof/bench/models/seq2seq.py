"""An LSTM encoder-decoder in the shape of Sutskever et al. 2014 ("Sequence to Sequence Learning"): deep LSTMs,
source and target embeddings, a softmax over the target vocabulary, teacher forcing. The paper used 4 layers of 1000
cells, 1000-dimensional embeddings, 160,000 source / 80,000 target words; the quick preset shrinks all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class Seq2SeqConfig:
    layers: int = 4
    hidden: int = 1000
    embed: int = 1000
    src_vocab: int = 160_000
    tgt_vocab: int = 80_000


class Seq2Seq(nn.Module):
    """``forward(src, tgt_in)`` returns logits (batch, tgt_len, tgt_vocab)."""

    def __init__(self, c: Seq2SeqConfig = Seq2SeqConfig()) -> None:
        super().__init__()
        self.config = c
        self.src_emb = nn.Embedding(c.src_vocab, c.embed)
        self.tgt_emb = nn.Embedding(c.tgt_vocab, c.embed)
        self.encoder = nn.LSTM(c.embed, c.hidden, c.layers, batch_first=True)
        self.decoder = nn.LSTM(c.embed, c.hidden, c.layers, batch_first=True)
        self.out = nn.Linear(c.hidden, c.tgt_vocab)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        _, state = self.encoder(self.src_emb(src))
        y, _ = self.decoder(self.tgt_emb(tgt_in), state)
        return self.out(y)


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _lstm_layer_flops(input_shape, w_ih_shape, w_hh_shape) -> int:
    # Per token: gate pre-activations 4H x (I + H) multiply-adds = 2 x (|W_ih| + |W_hh|) FLOP. Gate nonlinearities and
    # the cell update (O(H) per token) are left out, as the analytic counter leaves out pointwise ops everywhere.
    tokens = _prod(input_shape[:-1])
    return 2 * tokens * (_prod(w_ih_shape) + _prod(w_hh_shape))


def _mkldnn_rnn_layer_flop(input, weight0, weight1, *args, out_shape=None, **kwargs) -> int:
    return _lstm_layer_flops(input, weight0, weight1)


def _mkldnn_rnn_layer_backward_flop(input, weight1, weight2, *args, out_shape=None, **kwargs) -> int:
    # Gradients of the inputs/hidden state and of the weights: each costs as much as the forward.
    return 2 * _lstm_layer_flops(input, weight1, weight2)


def register_lstm_formulas() -> str:
    """Give pyprof's analytic counter formulas for CPU LSTM layers (``aten.mkldnn_rnn_layer`` and its backward).

    PyTorch's CPU LSTM runs as one oneDNN op per layer, for which neither torch's nor pyprof's counter has a formula;
    without this the seq2seq workload would count only its output projection. Registered once per process through the
    public hook :func:`pyprof.register_formula`.

    Returns:
        A note for the report saying where the LSTM FLOPs come from.
    """
    import torch

    import pyprof
    from pyprof.sources.flops.registry import DuplicateFormulaError
    note = ("LSTM layers (aten.mkldnn_rnn_layer, CPU) counted with pyprof.bench.models.seq2seq's formula: "
            "2 x tokens x (|W_ih| + |W_hh|) forward, 2x that backward")
    ops = ((getattr(torch.ops.aten, "mkldnn_rnn_layer", None), _mkldnn_rnn_layer_flop),
           (getattr(torch.ops.aten, "mkldnn_rnn_layer_backward", None), _mkldnn_rnn_layer_backward_flop))
    for op, f in ops:
        if op is None:
            continue
        try:
            pyprof.register_formula(op, f)
        except DuplicateFormulaError:
            pass  # registered earlier in this process (or pyprof gained its own formula: keep that one)
    return note
