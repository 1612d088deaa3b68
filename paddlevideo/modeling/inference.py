"""The inference form of a trained model, made on a copy: what the export traces.

:func:`prepare_for_inference` returns a new model with the same outputs (within float32 rounding) whose
graph is faster in Paddle Inference and ONNX Runtime (docs/benchmarks.md) and exportable to every format;
the model it is given is never changed, and its state dict stays the checkpoint's. The rewrites:

- every :class:`~.backbones.vit.Attention` becomes an :class:`InferenceAttention`: q, k and v as three
  Linear layers (three GEMMs, which Paddle Inference fuses with their reshape/transpose, instead of one
  GEMM and a split copy), the score scale folded into q's weights (``(x W_q + b_q) s = x (s W_q) + s b_q``,
  exact when ``s`` is a power of two, e.g. ViT-B's 1/8), and the plain matmul-softmax-matmul attention
  (Paddle's scaled_dot_product_attention has no old-IR form);
- in divided space-time blocks, ``temporal_fc(temporal_attn.proj(o))`` is one affine map, so both become one
  Linear, ``W = W_proj W_fc``, ``b = b_proj W_fc + b_fc`` (products in float64), and ``temporal_fc`` the
  identity: one [D, D] GEMM less per block. Valid without dropout between them (eval).
"""

import copy

import numpy as np
import paddle
import paddle.nn as nn

from .backbones.vit import Attention, Block
from .layers.fast_ops import attend


class InferenceAttention(nn.Layer):
    """Eval-mode multi-head self-attention with q, k, v as three Linears and the score scale in q.

    The contract of :class:`~.backbones.vit.Attention`: ``forward(x [B, L, D])`` -> ``[B, L, D]``;
    ``forward_with_attention(x)`` -> that and the probabilities ``[B, heads, L, L]``; ``forward_cls(x)`` ->
    ``[B, 1, D]``.
    """

    def __init__(self, attention, proj=None):
        """From a trained ``attention`` (its weights copied); ``proj`` replaces its output projection."""
        super().__init__()
        self.num_heads, self.kernels = attention.num_heads, attention.kernels
        self.q, self.k, self.v = (_column_block(attention, index) for index in range(3))
        self.proj = proj or attention.proj

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        return self.proj(attend(q, k, v, self.num_heads, 1.0, impl="plain", kernels=self.kernels))

    def forward_with_attention(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        out, probs = attend(q, k, v, self.num_heads, 1.0, impl="plain", kernels=self.kernels, return_probs=True)
        return self.proj(out), probs

    def forward_cls(self, x):
        q, k, v = self.q(x[:, :1]), self.k(x), self.v(x)
        return self.proj(attend(q, k, v, self.num_heads, 1.0, impl="plain", kernels=self.kernels))


def _column_block(attention, index):
    """Column block ``index`` (0: q, 1: k, 2: v) of the packed ``qkv`` Linear as a Linear; q's scaled."""
    dim = attention.qkv.weight.shape[0]
    bias = attention.qkv.bias
    layer = nn.Linear(dim, dim, bias_attr=None if bias is not None else False)
    columns = slice(index * dim, (index + 1) * dim)
    factor = attention.scale if index == 0 else 1.0
    layer.weight.set_value(attention.qkv.weight[:, columns] * factor)
    if bias is not None:
        layer.bias.set_value(bias[columns] * factor)
    return layer


def _merged_linear(first, second):
    """One Linear computing ``second(first(x))`` (float64 products, float32 weights)."""
    w_first, w_second = first.weight.numpy().astype(np.float64), second.weight.numpy().astype(np.float64)
    merged = nn.Linear(w_first.shape[0], w_second.shape[1])
    merged.weight.set_value((w_first @ w_second).astype(np.float32))
    bias = first.bias.numpy().astype(np.float64) @ w_second + second.bias.numpy()
    merged.bias.set_value(bias.astype(np.float32))
    return merged


def prepare_for_inference(model):
    """A new model in eval mode computing what ``model`` computes in eval mode, in its inference form (the
    module docstring); ``model`` (a recognizer, a backbone or a block) is not changed, and a prepared model
    stays as it is. For inference and export only: the copy's state dict is not a checkpoint's (save
    checkpoints from ``model``)."""
    prepared = copy.deepcopy(model)
    prepared.eval()
    blocks = [prepared] if isinstance(prepared, Block) else [m for m in prepared.sublayers() if isinstance(m, Block)]
    with paddle.no_grad():
        for block in blocks:
            if isinstance(block.attn, InferenceAttention):  # prepared already
                continue
            if block.attention_type == "divided_space_time":
                block.temporal_attn = InferenceAttention(block.temporal_attn,
                                                         _merged_linear(block.temporal_attn.proj, block.temporal_fc))
                block.temporal_fc = nn.Identity()
            block.attn = InferenceAttention(block.attn)
    if any(isinstance(layer, Attention) for layer in prepared.sublayers(include_self=True)):
        raise TypeError(f"prepare_for_inference: {type(model).__name__} has attention layers outside a Block")
    return prepared
