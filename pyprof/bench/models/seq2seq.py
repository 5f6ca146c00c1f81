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


def register_lstm_formulas() -> str:
    """Say where the LSTM FLOPs come from (kept for callers; registers nothing any more).

    pyprof's analytic counter has formulas for CPU LSTM/GRU layers (``aten.mkldnn_rnn_layer`` and its backward,
    :func:`pyprof.sources.flops.formulas.rnn_layer_flop`), so this workload no longer registers its own.

    Returns:
        A note for the report saying where the LSTM FLOPs come from.
    """
    return ("LSTM layers (aten.mkldnn_rnn_layer, CPU) counted by pyprof's formula: 2 x tokens x (|W_ih| + |W_hh|) "
            "forward, 2x that backward")
