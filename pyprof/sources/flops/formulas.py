"""pyprof's own FLOP formulas: fixes to torch 2.13's counter and ops it does not count.

Importing this module registers, in pyprof's registry (``pyprof.flops.registry``):

* ``aten.convolution_backward`` (overrides torch): torch's formula multiplies the grad-weight term by ``groups``.
* ``aten._scaled_dot_product_flash_attention_for_cpu`` and its backward: what SDPA runs on CPU; torch has no
  formula for them, so torch counts 0 for attention on CPU.
* ``aten._transformer_encoder_layer_fwd`` and ``aten._native_multi_head_attention``: the fused inference fast
  paths of ``nn.TransformerEncoderLayer`` / ``nn.MultiheadAttention``, which torch counts as 0.
* Effective (causal-aware) formulas for every SDPA entry point that takes ``is_causal``.

All counts use the dense convention of torch's counter: 2 FLOP per multiply-add, bias adds, softmax, norms and
activations not counted.
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
