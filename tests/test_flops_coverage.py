"""Ops that counted 0 (issue 12, item 4): recurrent layers, the rest of the matmul family, complex dtypes and
higher-order ops, each against a hand count; and the ledger over the model zoo holds no matmul-like op.
Hand arithmetic sits next to each assertion."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from pyprof.sources.flops import CountStatus, count_flops
from pyprof.sources.flops.formulas import (
    cudnn_rnn_backward_flop,
    cudnn_rnn_flop,
    trilinear_flop,
)

aten = torch.ops.aten


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _r(*shape, grad=False, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype, requires_grad=grad)


# ----------------------------------------------------------------------------------------------------------------
# Recurrent layers
# ----------------------------------------------------------------------------------------------------------------


def test_lstm_forward_and_backward():
    lstm = nn.LSTM(8, 16)
    x = _r(5, 3, 8)
    fwd = count_flops(lambda: lstm(x))
    # 2 * T * B * 4H * (I + H) = 2 * 5 * 3 * 64 * 24 = 46,080 (4 gates, W_ih 64x8 and W_hh 64x16 per token)
    assert fwd.total_flops == 46_080
    r = count_flops(lambda: lstm(x)[0].sum().backward())
    if "aten.mkldnn_rnn_layer" in r.by_op:
        # oneDNN's backward has no output mask: grads of input/hidden (one forward) and of the weights (one more)
        assert r.backward_flops == 2 * 46_080
    else:  # a build without oneDNN RNNs runs LSTM as addmm/mm: dX is skipped (the input needs no grad)
        assert r.backward_flops > 46_080
    assert r.forward_flops == 46_080


def test_gru_forward_counts_three_gates():
    gru = nn.GRU(8, 16)
    r = count_flops(lambda: gru(_r(5, 3, 8)))
    # 2 * T * B * 3H * (I + H) = 2 * 5 * 3 * 48 * 24 = 34,560, whichever kernel runs it (oneDNN or addmm/mm)
    assert r.total_flops == 34_560


def test_bidirectional_two_layer_lstm():
    lstm = nn.LSTM(8, 16, num_layers=2, bidirectional=True)
    r = count_flops(lambda: lstm(_r(5, 3, 8)))
    # layer 1, each direction: 2*15*64*(8+16) = 46,080; layer 2 reads both directions (I = 32):
    # 2*15*64*(32+16) = 92,160 each; total 2*46,080 + 2*92,160 = 276,480
    assert r.total_flops == 276_480


def test_cudnn_rnn_formula_by_hand():
    # nn.LSTM(8, 16, num_layers=2) on (5, 3, 8): weights per layer W_ih (64, I), W_hh (64, 16), b_ih, b_hh (64,)
    weights = [(64, 8), (64, 16), (64,), (64,), (64, 16), (64, 16), (64,), (64,)]
    # layer 1: 2*15*(512 + 1024) = 46,080; layer 2: 2*15*(1024 + 1024) = 61,440; biases are not counted
    assert cudnn_rnn_flop((5, 3, 8), weights) == 107_520
    mask = (True, True, True, True)
    assert cudnn_rnn_backward_flop((5, 3, 8), weights, output_mask=mask) == 2 * 107_520
    # without weight grads only the data gradients run: one forward
    assert cudnn_rnn_backward_flop((5, 3, 8), weights, output_mask=(True, True, True, False)) == 107_520


# ----------------------------------------------------------------------------------------------------------------
# The matmul family
# ----------------------------------------------------------------------------------------------------------------


def test_mv_dot_addmv_addr():
    assert count_flops(torch.mv, _r(3, 4), _r(4)).total_flops == 24  # 2 * M * N = 2 * 3 * 4
    assert count_flops(torch.dot, _r(7), _r(7)).total_flops == 14  # 2 * N = 2 * 7
    assert count_flops(torch.vdot, _r(7), _r(7)).total_flops == 14  # 2 * 7
    assert count_flops(torch.addmv, _r(3), _r(3, 4), _r(4)).total_flops == 24  # the mv, 2 * 3 * 4; add not counted
    assert count_flops(torch.addr, _r(3, 4), _r(3), _r(4)).total_flops == 24  # rank-1 update, 2 * 3 * 4 * (K=1)


def test_mv_backward():
    m, v = _r(3, 4, grad=True), _r(4, grad=True)
    r = count_flops(lambda: torch.mv(m, v).sum().backward())
    # forward 2*3*4 = 24; backward: d vec = M^T g, an mv 24; d M = outer(g, vec), a broadcast mul (pointwise, 0)
    assert r.forward_flops == 24 and r.backward_flops == 24


def test_addbmm_and_baddbmm():
    r = count_flops(torch.addbmm, _r(3, 5), _r(2, 3, 4), _r(2, 4, 5))
    assert r.total_flops == 240  # 2 * B * M * K * N = 2 * 2 * 3 * 4 * 5
    assert count_flops(torch.baddbmm, _r(2, 3, 5), _r(2, 3, 4), _r(2, 4, 5)).total_flops == 240  # same


def test_composite_products_reach_mm_or_bmm():
    a, b, c = _r(2, 3), _r(3, 4), _r(4, 5)
    # (2x3)(3x4) = 2*2*3*4 = 48, then (2x4)(4x5) = 2*2*4*5 = 80: 128 for the left-to-right chain
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # chain_matmul is deprecated
        assert count_flops(torch.chain_matmul, a, b, c).total_flops == 128
    assert count_flops(torch.linalg.multi_dot, [a, b, c]).total_flops == 128  # same order is cheapest here
    assert count_flops(torch.einsum, "ij,jk,kl->il", a, b, c).total_flops == 128
    assert count_flops(torch.einsum, "bij,bjk->bik", _r(2, 3, 4), _r(2, 4, 5)).total_flops == 240  # 2*2*3*4*5
    assert count_flops(torch.tensordot, _r(2, 3, 4), _r(3, 4, 5), 2).total_flops == 240  # 2 * 2 * 12 * 5
    assert count_flops(torch.inner, _r(2, 4), _r(3, 4)).total_flops == 48  # 2 * 2 * 4 * 3
    assert count_flops(torch.linalg.matrix_power, _r(3, 3), 3).total_flops == 108  # two 3x3 products, 2*27 each


def test_bilinear():
    bil = nn.Bilinear(3, 4, 5)
    r = count_flops(lambda: bil(_r(2, 3), _r(2, 4)))
    # x1 with the weight: 2 * N * out * in1 * in2 = 2*2*5*3*4 = 240; then with x2: 2 * N * out * in2 = 80
    assert r.total_flops == 320
    assert r.by_op["aten._trilinear"].calls == 1


def test_trilinear_formula_matches_bilinear_shapes():
    # F.bilinear calls _trilinear(x1, W, x2, [1, 3], [0], [1, 2], [2, 3]) with x1 (N, in1), W (out, in1, in2),
    # x2 (N, in2): 2*N*out*in1*in2 + 2*N*out*in2 = 2*7*5*3*4 + 2*7*5*4 = 840 + 280
    assert trilinear_flop((7, 3), (5, 3, 4), (7, 4), [1, 3], [0], [1, 2], [2, 3]) == 1_120


def test_cdist():
    r = count_flops(torch.cdist, _r(5, 3), _r(4, 3))
    assert r.total_flops == 120  # one multiply-add per pair and coordinate: 2 * P * R * M = 2 * 5 * 4 * 3


def test_int_mm():
    a = torch.randint(-8, 8, (32, 16), dtype=torch.int8)
    b = torch.randint(-8, 8, (16, 8), dtype=torch.int8)
    try:
        r = count_flops(torch._int_mm, a, b)
    except RuntimeError as e:  # not every CPU build has an int8 GEMM
        pytest.skip(f"torch._int_mm unavailable: {e}")
    assert r.total_flops == 8_192  # 2 * 32 * 16 * 8


def test_weight_int8pack_mm_and_fused_addmm_activation():
    a = _r(4, 16)
    w8 = torch.randint(-8, 8, (8, 16), dtype=torch.int8)  # int8 weights are stored (N, K)
    try:
        r = count_flops(torch.ops.aten._weight_int8pack_mm, a, w8, torch.rand(8))
    except RuntimeError as e:
        pytest.skip(f"aten._weight_int8pack_mm unavailable: {e}")
    assert r.total_flops == 1_024  # 2 * M * K * N = 2 * 4 * 16 * 8
    fused = count_flops(torch._addmm_activation, _r(8), a, _r(16, 8), use_gelu=True)
    assert fused.total_flops == 1_024  # the matmul 2 * 4 * 16 * 8; bias and GELU not counted


# ----------------------------------------------------------------------------------------------------------------
# Complex dtypes
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_complex_matmul_is_eight_real_flops_per_mac(dtype):
    r = count_flops(torch.mm, _r(2, 3, dtype=dtype), _r(3, 4, dtype=dtype))
    assert r.total_flops == 192  # 8 * M * N * K = 8 * 2 * 4 * 3 (4 real multiplies + 4 real adds per complex MAC)
    assert count_flops(torch.mv, _r(3, 4, dtype=dtype), _r(4, dtype=dtype)).total_flops == 96  # 8 * 3 * 4


def test_real_matmul_unchanged_by_the_complex_rule():
    assert count_flops(torch.mm, _r(2, 3), _r(3, 4)).total_flops == 48  # 2 * 2 * 4 * 3


# ----------------------------------------------------------------------------------------------------------------
# Higher-order ops: the branch or body that ran
# ----------------------------------------------------------------------------------------------------------------


def test_cond_counts_the_branch_taken():
    w = _r(4, 4)
    x = _r(3, 4)

    def matmul_branch(x):
        return x @ w

    def cheap_branch(x):
        return x.sin()

    taken = count_flops(lambda: torch.cond(torch.tensor(True), matmul_branch, cheap_branch, (x,)))
    assert taken.status is CountStatus.COMPLETE and taken.total_flops == 96  # 2 * 3 * 4 * 4
    skipped = count_flops(lambda: torch.cond(torch.tensor(False), matmul_branch, cheap_branch, (x,)))
    assert skipped.total_flops == 0  # sin is pointwise


def test_while_loop_counts_every_iteration():
    from torch._higher_order_ops import while_loop

    w = _r(4, 4)
    r = count_flops(lambda: while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y @ w), (torch.tensor(0), _r(3, 4))))
    assert r.total_flops == 3 * 96  # three iterations of 2 * 3 * 4 * 4


# ----------------------------------------------------------------------------------------------------------------
# The ledger over the model zoo holds no matmul-like op
# ----------------------------------------------------------------------------------------------------------------

#: Op-name fragments that mean "does multiply-adds": any of them in the ledger is a missing formula.
MATMUL_LIKE = (
    "mm", "matmul", "conv", "einsum", "linear", "mv", "dot", "rnn", "lstm", "gru", "attention", "bilinear",
    "addr", "cdist", "gemm", "tensordot", "baddbmm",
)
_MATMUL_LIKE_RE = re.compile("|".join(MATMUL_LIKE))

#: Vision models by their pyprof.bench.models.vision factory name; names not defined (yet) are skipped.
VISION_MODELS = (
    "alexnet", "resnet18", "resnet50", "mobilenet_v2",
    "vgg11", "googlenet", "mobilenet_v1", "shufflenet_v1", "shufflenet_v2", "efficientnet_b0",
)


def _assert_ledger_has_no_matmul(r):
    assert r.status is CountStatus.COMPLETE, r.failures
    assert r.total_flops > 0
    matmul_like = sorted(u.name for u in r.uncounted if _MATMUL_LIKE_RE.search(u.name.split(".", 1)[-1]))
    assert matmul_like == [], f"matmul-like ops without a formula: {matmul_like}"
    assert r.uncounted_share is not None and 0.0 <= r.uncounted_share < 1.0


def _train_step(model: nn.Module, *inputs: torch.Tensor):
    def step():
        out = model(*inputs)
        (out if isinstance(out, torch.Tensor) else out[0]).float().sum().backward()

    return step


@pytest.mark.parametrize("name", VISION_MODELS)
def test_vision_ledger_has_no_matmul(name):
    from pyprof.bench.models import vision

    make = getattr(vision, name, None)
    if make is None:
        pytest.skip(f"pyprof.bench.models.vision has no {name} yet")
    model = make(num_classes=10)
    # Batch 2 (BatchNorm in training mode needs more than one value per channel), 32 x 32 to stay fast; AlexNet's
    # and GoogLeNet's stems downsample too far for 32 (a pooling window larger than its input).
    size = 64 if name in ("alexnet", "googlenet") else 32
    _assert_ledger_has_no_matmul(count_flops(_train_step(model, _r(2, 3, size, size))))


def test_gpt2_ledger_has_no_matmul():
    from pyprof.bench.models.gpt2 import GPTLM, GPTConfig

    model = GPTLM(GPTConfig(n_layer=2, n_head=2, d_model=16, n_ctx=16, vocab=50))
    _assert_ledger_has_no_matmul(count_flops(_train_step(model, torch.randint(0, 50, (2, 8)))))


def test_lstm_seq2seq_ledger_has_no_matmul():
    from pyprof.bench.models.seq2seq import Seq2Seq, Seq2SeqConfig

    model = Seq2Seq(Seq2SeqConfig(layers=2, hidden=16, embed=16, src_vocab=50, tgt_vocab=50))
    src = torch.randint(0, 50, (2, 6))
    _assert_ledger_has_no_matmul(count_flops(_train_step(model, src, src)))


class GRUSeq2Seq(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.encoder = nn.GRU(dim, dim, 2, batch_first=True)
        self.decoder = nn.GRU(dim, dim, 2, batch_first=True)
        self.out = nn.Linear(dim, vocab)

    def forward(self, src, tgt):
        _, h = self.encoder(self.emb(src))
        y, _ = self.decoder(self.emb(tgt), h)
        return self.out(y)


def test_gru_seq2seq_ledger_has_no_matmul():
    src = torch.randint(0, 50, (2, 6))
    _assert_ledger_has_no_matmul(count_flops(_train_step(GRUSeq2Seq(), src, src)))


class UNet(nn.Module):
    """Two-level UNet: conv blocks, max-pool down, transposed-conv up, skip concatenation."""

    def __init__(self, cin: int = 3, width: int = 8, classes: int = 2) -> None:
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

        self.enc1, self.enc2 = block(cin, width), block(width, 2 * width)
        self.pool = nn.MaxPool2d(2)
        self.mid = block(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = block(2 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)


def test_unet_ledger_has_no_matmul():
    _assert_ledger_has_no_matmul(count_flops(_train_step(UNet(), _r(2, 3, 16, 16))))


def test_matmul_like_pattern_catches_a_missing_formula():
    # The check must be able to fail: an op without a formula whose name is matmul-like is flagged.
    from pyprof.sources.flops import FlopCount, UncountedOp

    fake = FlopCount(total_flops=1, op_calls=2, uncounted=[UncountedOp("aten.mkldnn_rnn_layer", 1, "other")])
    with pytest.raises(AssertionError, match="mkldnn_rnn_layer"):
        _assert_ledger_has_no_matmul(fake)
