"""pyprof's own FLOP formulas: fixes to torch 2.13's counter and ops it does not count.

Importing this module registers, in pyprof's registry (``pyprof.flops.registry``):

* ``aten.convolution_backward`` (overrides torch): torch's formula multiplies the grad-weight term by ``groups``.
* ``aten._scaled_dot_product_flash_attention_for_cpu`` and its backward: what SDPA runs on CPU; torch has no
  formula for them, so torch counts 0 for attention on CPU.
* ``aten._transformer_encoder_layer_fwd`` and ``aten._native_multi_head_attention``: the fused inference fast
  paths of ``nn.TransformerEncoderLayer`` / ``nn.MultiheadAttention``, which torch counts as 0.
* Effective (causal-aware) formulas for every SDPA entry point that takes ``is_causal``.
* Recurrent layers run as one op: ``aten.mkldnn_rnn_layer`` (CPU LSTM/GRU) and ``aten._cudnn_rnn``, with backward.
* The rest of the matmul family torch counts as 0: ``mv``, ``addmv``, ``dot``, ``vdot``, ``addbmm``, ``addr``,
  ``_trilinear`` (nn.Bilinear), ``_int_mm``, ``_weight_int8pack_mm``, ``_addmm_activation``, ``_cdist_forward``
  and ``_cdist_backward``. Composite products (einsum, tensordot, chain_matmul, linalg.multi_dot, matmul,
  inner, matrix_power) reach the counter as ``mm``/``bmm`` and are priced there. ``torch.linalg.vecdot`` and
  ``torch.outer`` do not: on CPU they run as ``mul`` (+ ``sum``), pointwise and reduction ops, which are not
  counted anywhere (their composite kernels decompose above the dispatch mode, so no formula can see the product).

All counts use the dense convention of torch's counter: 2 FLOP per multiply-add, bias adds, softmax, norms and
activations not counted. Complex inputs: a complex multiply-add is 8 real FLOPs (4 multiplies, 4 adds), so the
counter multiplies the matmul family's counts by 4 for complex tensors (``COMPLEX_MAC_OPS``, ``complex_factor``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils import flop_counter as _torch_fc

from pyprof.sources.flops.registry import (
    _PYPROF_FORMULAS,
    register_effective_formula,
    register_formula,
)

aten = torch.ops.aten

__all__ = [
    "causal_pairs_bottom_right",
    "causal_pairs_top_left",
    "conv_backward_flop",
    "native_multi_head_attention_flop",
    "sdpa_cpu_backward_flop",
    "sdpa_cpu_flop",
    "transformer_encoder_layer_fwd_flop",
]


# --------------------------------------------------------------------------------------------------------------------
# Convolution backward (fixes torch's groups overcount)
# --------------------------------------------------------------------------------------------------------------------


def _conv_backward_count(grad_out_shape, x_shape, w_shape, transposed: bool, output_mask: Sequence[bool]) -> int:
    # Every one of the three convolutions (forward, grad-input, grad-weight) multiplies exactly the same
    # (input element, weight element, output element) triples, just accumulating into a different tensor, so each
    # backward term costs one forward. torch's conv_flop_count already handles groups for the forward (the weight's
    # dim 1 is C_in / groups); reuse it rather than re-deriving. torch 2.13's own backward formula instead treats
    # the grad-weight term as a conv batched over the full C_in, which overcounts it by a factor of `groups`.
    # Approximation (same as torch): taps over zero padding are counted; bias grad (a reduction) is not.
    forward_flops = _torch_fc.conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward_flops * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


@register_formula(aten.convolution_backward)
def conv_backward_flop(
    grad_out_shape,
    x_shape,
    w_shape,
    _bias_sizes,
    _stride,
    _padding,
    _dilation,
    transposed,
    _output_padding,
    _groups,
    output_mask,
    out_shape=None,
    **kwargs,
) -> int:
    """FLOPs of ``aten.convolution_backward``: one forward's worth for each of grad-input and grad-weight requested.

    Args:
        grad_out_shape: Shape of the gradient of the convolution's output (= the forward output shape).
        x_shape: Forward input shape (N, C_in, *spatial).
        w_shape: Weight shape, (C_out, C_in / groups, *kernel) or, transposed, (C_in, C_out / groups, *kernel).
        transposed: Whether the forward was a transposed convolution.
        output_mask: (grad_input, grad_weight, grad_bias) requested.

    Returns:
        FLOPs, 2 per multiply-add.
    """
    return _conv_backward_count(grad_out_shape, x_shape, w_shape, transposed, output_mask)


@register_formula(aten.convolution_backward_overrideable)
def _conv_backward_overrideable_flop(
    grad_out_shape, x_shape, w_shape, _stride, _padding, _dilation, transposed, _output_padding, _groups,
    output_mask, out_shape=None, **kwargs,
) -> int:
    # Same op as convolution_backward for out-of-tree backends, without the bias_sizes argument.
    return _conv_backward_count(grad_out_shape, x_shape, w_shape, transposed, output_mask)


# --------------------------------------------------------------------------------------------------------------------
# Scaled dot-product attention: CPU kernels, and causal (effective) counts everywhere
# --------------------------------------------------------------------------------------------------------------------


def causal_pairs_top_left(len_q: int, len_k: int) -> int:
    """Unmasked (query, key) pairs of SDPA's ``is_causal`` mask, ``torch.ones(Lq, Lk).tril()`` (top-left aligned).

    Args:
        len_q: Query length Lq.
        len_k: Key length Lk.

    Returns:
        ``sum(min(i + 1, Lk) for i in range(Lq))``; ``Lq (Lq + 1) / 2`` when Lq == Lk.
    """
    if len_q <= len_k:
        return len_q * (len_q + 1) // 2
    return len_k * (len_k + 1) // 2 + (len_q - len_k) * len_k


def causal_pairs_bottom_right(len_q: int, len_k: int) -> int:
    """Unmasked pairs of a bottom-right aligned causal mask (query i sees keys ``j <= i + Lk - Lq``).

    Args:
        len_q: Query length Lq.
        len_k: Key length Lk.

    Returns:
        ``sum(clamp(i + 1 + Lk - Lq, 0, Lk) for i in range(Lq))``.
    """
    # Query row i sees min(max(i + 1 + Lk - Lq, 0), Lk) keys; rows with a non-positive count see none.
    offset = len_k - len_q
    return sum(min(max(i + 1 + offset, 0), len_k) for i in range(len_q))


def _scale_to_pairs(dense_flops: int, len_q: int, len_k: int, pairs: int) -> int:
    """Scale a count that is linear in Lq * Lk (every attention matmul term is) to ``pairs`` of the Lq * Lk pairs."""
    total_pairs = len_q * len_k
    if total_pairs == 0:
        return 0
    # Approximation: the kernel is credited with exactly the unmasked pairs, although real kernels skip work in
    # tiles (a tile straddling the diagonal is computed in full), so true executed FLOPs are slightly higher.
    return dense_flops * pairs // total_pairs


@register_formula(aten._scaled_dot_product_flash_attention_for_cpu)
def sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Dense FLOPs of the CPU flash-attention forward: ``QK^T`` plus ``attention @ V``.

    Args:
        query_shape: (B, H, Lq, D).
        key_shape: (B, H_kv, Lk, D).
        value_shape: (B, H_kv, Lk, Dv).

    Returns:
        ``2 B H Lq Lk D + 2 B H Lq Lk Dv``; causal masking is not subtracted (see the effective formula).
    """
    # NB: causal attention counted as full here, as torch does for its GPU kernels; flops_effective has the rest.
    return _torch_fc.sdpa_flop_count(query_shape, key_shape, value_shape)


@register_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)
def sdpa_cpu_backward_flop(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    """Dense FLOPs of the CPU flash-attention backward, by torch's ``sdpa_backward_flop_count``.

    Five matmuls of the forward's size (recompute scores, dP, dV, dQ, dK): 2.5x the forward when D == Dv.

    Args:
        grad_out_shape: (B, H, Lq, Dv).
        query_shape: (B, H, Lq, D).
        key_shape: (B, H_kv, Lk, D).
        value_shape: (B, H_kv, Lk, Dv).

    Returns:
        Dense backward FLOPs.
    """
    return _torch_fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _dense_formula(packet: Any) -> Callable[..., int]:
    """The dense formula pyprof would use for ``packet`` (its own, else torch's), looked up at call time."""
    f = _PYPROF_FORMULAS.get(packet)
    return f if f is not None else _torch_fc.flop_registry[packet]


def _argument(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _register_causal_effective(packet: Any) -> None:
    """Register an effective formula for an SDPA-family op whose schema has ``query``, ``key`` and ``is_causal``.

    The effective count is the dense count scaled by the fraction of (query, key) pairs the top-left aligned
    causal mask keeps; SDPA's ``is_causal`` is top-left aligned on every backend (torch routes non-square causal
    inputs away from kernels with other conventions). An explicit ``attn_mask``/``attn_bias`` is not credited:
    the kernels still compute every masked score. Nested (jagged) inputs are left at the dense count.
    """
    names = [a.name for a in packet.default._schema.arguments]
    i_query, i_key, i_causal = names.index("query"), names.index("key"), names.index("is_causal")

    def effective(*args, out_val=None, **kwargs) -> int:
        dense = _dense_formula(packet)(*args, out_val=out_val, **kwargs)
        if not _argument(args, kwargs, i_causal, "is_causal", False):
            return dense
        query, key = args[i_query], args[i_key]
        if query.dim() != 4 or key.dim() != 4:
            return dense  # jagged layout: per-sequence lengths are not in the shape; keep dense
        len_q, len_k = query.shape[-2], key.shape[-2]
        return _scale_to_pairs(dense, len_q, len_k, causal_pairs_top_left(len_q, len_k))

    effective.__name__ = f"causal_effective_{packet.__name__}"
    register_effective_formula(packet, effective, get_raw=True)


for _packet in (
    aten._scaled_dot_product_flash_attention_for_cpu,
    aten._scaled_dot_product_flash_attention_for_cpu_backward,
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_flash_attention_backward,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_efficient_attention_backward,
    aten._scaled_dot_product_cudnn_attention,
    aten._scaled_dot_product_cudnn_attention_backward,
):
    _register_causal_effective(_packet)


# --------------------------------------------------------------------------------------------------------------------
# Fused transformer fast paths (nn.TransformerEncoderLayer / nn.MultiheadAttention in eval + no_grad)
# --------------------------------------------------------------------------------------------------------------------


def _sequence_lengths(x: torch.Tensor) -> tuple[list[int], int]:
    """Per-sequence lengths and the padded length of a (B, L, E) batch, a (L, E) sequence, or a nested tensor.

    A nested tensor is what ``nn.TransformerEncoder`` builds from ``src_key_padding_mask`` on its fast path; each
    sequence then has only its real tokens.
    """
    if x.is_nested:
        lengths = [int(n) for n in x._nested_tensor_size()[:, 0].tolist()]
        return lengths, max(lengths, default=0)
    if x.dim() == 2:
        return [x.shape[0]], x.shape[0]
    return [x.shape[1]] * x.shape[0], x.shape[1]


def _attention_block_flops(len_q: int, len_k: int, embed_dim: int, kv_proj_out: int) -> int:
    # Per sequence: Q projection (E -> E), K and V projections (E -> E each, one fused 3E GEMM for self-attention),
    # scores Q K^T over all heads (H * Lq * Lk * E/H MACs), attention @ V (same), output projection (E -> E).
    q_proj = 2 * len_q * embed_dim * embed_dim
    kv_proj = 2 * len_k * embed_dim * kv_proj_out
    scores = 2 * len_q * len_k * embed_dim
    attn_v = 2 * len_q * len_k * embed_dim
    out_proj = 2 * len_q * embed_dim * embed_dim
    return q_proj + kv_proj + scores + attn_v + out_proj


def _encoder_layer_flops(length: int, embed_dim: int, ffn_dim: int) -> int:
    # Self-attention (Lq == Lk == L, K and V projections 2E wide) plus the FFN's two linears E -> F -> E.
    return _attention_block_flops(length, length, embed_dim, 2 * embed_dim) + 2 * 2 * length * embed_dim * ffn_dim


def _encoder_layer_counts(src, qkv_weight, ffn_weight_1) -> tuple[int, int]:
    lengths, padded = _sequence_lengths(src)
    embed_dim = qkv_weight.shape[1]
    ffn_dim = ffn_weight_1.shape[0]
    dense = len(lengths) * _encoder_layer_flops(padded, embed_dim, ffn_dim)
    effective = sum(_encoder_layer_flops(n, embed_dim, ffn_dim) for n in lengths)
    return dense, effective


def transformer_encoder_layer_fwd_flop(
    src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu, norm_first, eps,
    norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2,
    *args, out_val=None, **kwargs,
) -> int:
    """Dense FLOPs of ``aten._transformer_encoder_layer_fwd`` (the fused encoder layer; takes tensors, get_raw).

    Per sequence of length L, with E = embed_dim and F = ffn dim: QKV ``2 L E 3E``, scores ``2 L L E``,
    attention @ V ``2 L L E``, output projection ``2 L E E``, FFN ``2 * 2 L E F``. A nested ``src`` (from a key
    padding mask) is counted as if padded to its longest sequence, which is what the same layer costs on the
    unfused path; the per-sequence count is the effective one.

    Returns:
        Dense FLOPs over the batch.
    """
    return _encoder_layer_counts(src, qkv_weight, ffn_weight_1)[0]


def _transformer_encoder_layer_fwd_effective(
    src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu, norm_first, eps,
    norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2,
    *args, out_val=None, **kwargs,
) -> int:
    # The nested kernel only touches real tokens; a regular-tensor padding mask is applied in the softmax and
    # skips nothing (effective == dense).
    return _encoder_layer_counts(src, qkv_weight, ffn_weight_1)[1]


register_formula(aten._transformer_encoder_layer_fwd, transformer_encoder_layer_fwd_flop, get_raw=True)
register_effective_formula(
    aten._transformer_encoder_layer_fwd, _transformer_encoder_layer_fwd_effective, get_raw=True
)


def _mha_counts(query, key, embed_dim: int) -> tuple[int, int]:
    q_lengths, q_padded = _sequence_lengths(query)
    k_lengths, k_padded = _sequence_lengths(key)
    dense = len(q_lengths) * _attention_block_flops(q_padded, k_padded, embed_dim, 2 * embed_dim)
    effective = sum(
        _attention_block_flops(lq, lk, embed_dim, 2 * embed_dim) for lq, lk in zip(q_lengths, k_lengths)
    )
    return dense, effective


def native_multi_head_attention_flop(
    query, key, value, embed_dim, num_head, qkv_weight, *args, out_val=None, **kwargs
) -> int:
    """Dense FLOPs of ``aten._native_multi_head_attention`` (the fused MHA fast path; takes tensors, get_raw).

    Per sequence with E = embed_dim: Q projection ``2 Lq E E``, K and V projections ``2 Lk E 2E``, scores
    ``2 Lq Lk E``, attention @ V ``2 Lq Lk E``, output projection ``2 Lq E E``. Averaging the returned attention
    weights (``need_weights=True``) is a reduction and not counted.

    Returns:
        Dense FLOPs over the batch.
    """
    return _mha_counts(query, key, qkv_weight.shape[1])[0]


def _native_multi_head_attention_effective(
    query, key, value, embed_dim, num_head, qkv_weight, *args, out_val=None, **kwargs
) -> int:
    return _mha_counts(query, key, qkv_weight.shape[1])[1]


register_formula(aten._native_multi_head_attention, native_multi_head_attention_flop, get_raw=True)
register_effective_formula(
    aten._native_multi_head_attention, _native_multi_head_attention_effective, get_raw=True
)


# --------------------------------------------------------------------------------------------------------------------
# Recurrent layers: what nn.LSTM / nn.GRU run as one op (oneDNN on CPU, cuDNN on NVIDIA GPUs)
# --------------------------------------------------------------------------------------------------------------------


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _tokens(input_shape: Sequence[int]) -> int:
    # (T, B, I), (B, T, I) or a packed (sum(batch_sizes), I): every row of the input is one token of one sequence.
    return _numel(input_shape[:-1])


def rnn_layer_flop(input_shape: Sequence[int], w_ih_shape: Sequence[int], w_hh_shape: Sequence[int]) -> int:
    """Dense forward FLOPs of one recurrent layer in one direction: the gate pre-activations.

    Per token, ``W_ih x`` is ``G H x I`` multiply-adds and ``W_hh h`` is ``G H x H``, with G gates (LSTM 4, GRU 3,
    vanilla RNN 1; G H is the weights' first dimension): ``2 * tokens * G H * (I + H)`` =
    ``2 * tokens * (|W_ih| + |W_hh|)``. As everywhere in pyprof, bias adds, gate nonlinearities and the cell
    update (O(H) per token, pointwise) are not counted. nn.LSTM(8, 16) on (5, 3, 8): 2*5*3*64*(8+16) = 46,080.

    Args:
        input_shape: (T, B, I), (B, T, I) or packed (tokens, I).
        w_ih_shape: (G H, I).
        w_hh_shape: (G H, H) (H replaced by the projection size with ``proj_size``).

    Returns:
        FLOPs, 2 per multiply-add.
    """
    return 2 * _tokens(input_shape) * (_numel(w_ih_shape) + _numel(w_hh_shape))


@register_formula(aten.mkldnn_rnn_layer)
def mkldnn_rnn_layer_flop(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten.mkldnn_rnn_layer`` (CPU nn.LSTM / nn.GRU, one layer and direction per call): :func:`rnn_layer_flop`."""
    return rnn_layer_flop(input_shape, w_ih_shape, w_hh_shape)


@register_formula(aten.mkldnn_rnn_layer_backward)
def mkldnn_rnn_layer_backward_flop(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten.mkldnn_rnn_layer_backward``: twice the forward, by the rule of a Linear layer.

    The gradients of the layer input and hidden state (through ``W_ih^T``, ``W_hh^T``) cost one forward, those of
    ``W_ih`` and ``W_hh`` another. The oneDNN kernel has no output mask and computes all of them even when the
    input needs no grad, so both terms are counted (this is executed work; a Linear would skip dX).
    """
    return 2 * rnn_layer_flop(input_shape, w_ih_shape, w_hh_shape)


def _cudnn_rnn_weight_flops(input_shape: Sequence[int], weight_shapes: Sequence[Sequence[int]]) -> int:
    # The flat weight list holds, per layer and direction, W_ih, W_hh (2-D), optional biases (1-D) and, with
    # proj_size, W_hr (P, H) (2-D). Every layer and direction sees every token once, and each 2-D weight is one
    # matrix-vector product per token, so the layer sum is 2 * tokens * (all 2-D weight elements).
    return 2 * _tokens(input_shape) * sum(_numel(w) for w in weight_shapes if len(w) == 2)


@register_formula(aten._cudnn_rnn)
def cudnn_rnn_flop(input_shape, weight_shapes, *args, out_shape=None, **kwargs) -> int:
    """``aten._cudnn_rnn`` (nn.LSTM / nn.GRU / nn.RNN on NVIDIA GPUs, all layers in one call).

    Args:
        input_shape: (T, B, I), (B, T, I) or packed (tokens, I).
        weight_shapes: The flat weight list's shapes (``weight_stride0`` tensors per layer and direction).

    Returns:
        ``2 * tokens * sum(|W|)`` over the 2-D weights (see :func:`rnn_layer_flop`).
    """
    return _cudnn_rnn_weight_flops(input_shape, weight_shapes)


@register_formula(aten._cudnn_rnn_backward)
def cudnn_rnn_backward_flop(input_shape, weight_shapes, *args, out_shape=None, **kwargs) -> int:
    """``aten._cudnn_rnn_backward``: one forward for the data gradients (always run: cuDNN needs them before the
    weight gradients), one more when the weight gradients are requested (``output_mask[3]``)."""
    output_mask = kwargs.get("output_mask", args[-1] if args else (True, True, True, True))
    forward = _cudnn_rnn_weight_flops(input_shape, weight_shapes)
    return forward * (1 + int(bool(output_mask[3])))


# --------------------------------------------------------------------------------------------------------------------
# The rest of the matmul family torch's counter leaves at 0
# --------------------------------------------------------------------------------------------------------------------


@register_formula(aten.mv)
def mv_flop(mat_shape, vec_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten.mv``: (M, N) @ (N,) is ``2 M N``."""
    m, n = mat_shape
    return 2 * m * n


@register_formula(aten.addmv)
def addmv_flop(self_shape, mat_shape, vec_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten.addmv``: ``beta * self + alpha * mat @ vec``, counted as the ``mv`` (``2 M N``; the add is a bias)."""
    return mv_flop(mat_shape, vec_shape)


@register_formula([aten.dot, aten.vdot])
def dot_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten.dot`` / ``aten.vdot``: (N,) . (N,) is ``2 N``."""
    return 2 * int(a_shape[0])


@register_formula(aten.addbmm)
def addbmm_flop(self_shape, b1_shape, b2_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten.addbmm``: ``sum_b batch1[b] @ batch2[b]`` for (B, M, K) and (B, K, N): ``2 B M K N`` (the sum over the
    batch is the matmul's accumulation, one long K*B dot per output)."""
    b, m, k = b1_shape
    n = b2_shape[-1]
    return 2 * b * m * k * n


@register_formula(aten.addr)
def addr_flop(self_shape, v1_shape, v2_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten.addr``: ``beta * self + alpha * outer(vec1, vec2)``, a rank-1 update (BLAS ger): a matmul with K = 1,
    ``2 M N``. (torch.outer alone runs as a broadcast ``aten.mul``, a pointwise op, and is not counted.)"""
    return 2 * int(v1_shape[0]) * int(v2_shape[0])


@register_formula([aten._int_mm, aten._weight_int8pack_mm])
def int_mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten._int_mm`` (int8 x int8 -> int32) and ``aten._weight_int8pack_mm`` (activations x int8 weights, which
    are stored (N, K)): ``2 M K N`` integer or mixed multiply-adds; the output shape (M, N) fixes N."""
    m, k = a_shape
    return 2 * m * k * int(out_shape[-1])


@register_formula(aten._addmm_activation)
def addmm_activation_flop(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten._addmm_activation`` (addmm fused with ReLU / GELU): the matmul, ``2 M K N``; the activation is
    pointwise and not counted."""
    return _torch_fc.mm_flop(a_shape, b_shape)


def _expanded(shape: Sequence[int], expand: Sequence[int], ndim: int) -> list[int]:
    # aten._trilinear unsqueezes each input at its `expand` dims to a common rank.
    dims = list(shape)
    for d in sorted(expand):
        dims.insert(d, 1)
    return dims + [1] * (ndim - len(dims))


@register_formula(aten._trilinear)
def trilinear_flop(
    i1_shape, i2_shape, i3_shape, expand1, expand2, expand3, sumdim, unroll_dim=1, out_shape=None, **kwargs
) -> int:
    """``aten._trilinear`` (what nn.Bilinear / F.bilinear run, forward and backward): two contractions.

    The kernel multiplies i1 by i2 and sums the ``sumdim`` dims where i3 is 1, then multiplies by i3 and sums the
    rest; each contraction is one multiply-add per element of its broadcast product. For nn.Bilinear(in1, in2,
    out) on batch N that is ``2 N out in1 in2`` (x1 with the weight) + ``2 N out in2`` (with x2).

    Returns:
        FLOPs, 2 per multiply-add.
    """
    ndim = len(i1_shape) + len(expand1)
    e1, e2, e3 = (
        _expanded(i1_shape, expand1, ndim),
        _expanded(i2_shape, expand2, ndim),
        _expanded(i3_shape, expand3, ndim),
    )
    first = [max(a, b) for a, b in zip(e1, e2)]
    summed_first = {d for d in sumdim if e3[d] == 1}
    after_first = [1 if d in summed_first else s for d, s in enumerate(first)]
    second = [max(a, b) for a, b in zip(after_first, e3)]
    return 2 * _numel(first) + 2 * _numel(second)


@register_formula(aten._cdist_forward)
def cdist_flop(x1_shape, x2_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten._cdist_forward``: distances between (B, P, M) and (B, R, M) rows, one multiply-add per pair and
    coordinate, ``2 B P R M``. Approximation: exact for the matmul path torch takes for p = 2 on large inputs (the
    row norms, O((P + R) M), are left out); the direct path also spends a subtraction per term."""
    *batch, p, m = x1_shape
    r = x2_shape[-2]
    return 2 * _numel(batch) * p * r * m


@register_formula(aten._cdist_backward)
def cdist_backward_flop(grad_shape, x1_shape, x2_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten._cdist_backward``: the gradient for x1 only (torch calls it again, swapped, for x2): like the
    forward, ``2 B P R M``."""
    return cdist_flop(x1_shape, x2_shape)


# --------------------------------------------------------------------------------------------------------------------
# Complex dtypes
# --------------------------------------------------------------------------------------------------------------------

#: Ops whose counts are multiply-adds of their inputs' elements. With complex inputs each complex multiply-add is
#: 4 real multiplies and 4 real adds: 8 real FLOPs where a real multiply-add is 2, so the counter multiplies their
#: counts by COMPLEX_FACTOR. A complex64 (M, K) x (K, N) matmul is 8 M N K real FLOPs.
COMPLEX_MAC_OPS = frozenset(
    {
        aten.mm, aten.addmm, aten.bmm, aten.baddbmm, aten.mv, aten.addmv, aten.dot, aten.vdot, aten.addbmm,
        aten.addr, aten._trilinear, aten.convolution, aten._convolution, aten.convolution_backward,
        aten.convolution_overrideable, aten.convolution_backward_overrideable, aten._slow_conv2d_forward,
    }
)
COMPLEX_FACTOR = 4


def complex_factor(packet: Any, args: tuple) -> int:
    """``COMPLEX_FACTOR`` when ``packet`` is in the multiply-add family and a tensor argument is complex, else 1.

    Args:
        packet: The op packet that ran.
        args: Its positional arguments (tensors).

    Returns:
        The multiplier from real to complex FLOPs (see ``COMPLEX_MAC_OPS``).
    """
    if packet not in COMPLEX_MAC_OPS:
        return 1
    for a in args:
        if isinstance(a, torch.Tensor):
            return COMPLEX_FACTOR if a.is_complex() else 1
    return 1
