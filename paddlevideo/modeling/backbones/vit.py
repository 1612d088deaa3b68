"""TimeSformer's VisionTransformer backbone (PaddleVideo names and checkpoint layout).

Read top to bottom: the CPU fast paths (Linear, LayerNorm, gelu, scaled_softmax and the attention kernel's
PyLayers; each equal to Paddle's op, tests/test_perf_*.py), the layers (DropPath, Mlp, Attention, Block,
PatchEmbed), then the backbone.
Shapes: a clip is ``[B, C, T, H, W]``; patch tokens are ``[B, N*T, D]`` with the spatial index
major and time minor (token ``n*T + t``), and one CLS token is prepended for the whole clip.
"""

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.nn.initializer import Constant, Normal, TruncatedNormal

from ..embed_resize import resize_time_embed
from ..fast_cpu_ops import fast_cpu_ops
from ..registry import BACKBONES

ATTENTION_TYPES = ("divided_space_time", "space_only", "joint_space_time")
ATTENTION_IMPLS = ("fused", "plain")
INIT_STD = 0.02  # spec 3: Linear weights, pos_embed and cls_token

trunc_normal_ = TruncatedNormal(std=INIT_STD)
zeros_ = Constant(0.0)
ones_ = Constant(1.0)


class _LinearFunction(paddle.autograd.PyLayer):
    """``x @ W + b`` on CPU with a BLAS bias gradient: ``db = ones @ dy`` (GEMV).

    Paddle's own backward of the bias add reduces ``dy`` over its rows with a generic column
    reduction, ~50x slower than the GEMV here (37 ms vs 0.8 ms for a [1569, 3072] gradient), which
    made bias gradients ~10% of a training step. The input and weight gradients are the usual GEMMs.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        rows = x.reshape([-1, x.shape[-1]])
        ctx.save_for_backward(rows, weight)
        ctx.x_shape = list(x.shape)
        # PyLayer wants None for every input that takes no gradient (a raw clip, frozen layers).
        ctx.needs_grad = [not t.stop_gradient for t in (x, weight, bias)]
        return paddle.addmm(bias, rows, weight).reshape(ctx.x_shape[:-1] + [weight.shape[1]])

    @staticmethod
    def backward(ctx, grad):
        rows, weight = ctx.saved_tensor()
        grad = grad.reshape([-1, grad.shape[-1]])
        need_x, need_w, need_b = ctx.needs_grad
        grad_x = paddle.matmul(grad, weight, transpose_y=True).reshape(ctx.x_shape) if need_x else None
        grad_w = paddle.matmul(rows, grad, transpose_x=True) if need_w else None
        grad_b = None
        if need_b:
            grad_b = paddle.matmul(paddle.ones([1, grad.shape[0]], dtype=grad.dtype), grad).reshape([-1])
        return grad_x, grad_w, grad_b


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) with faster CPU paths in eager mode.

    Inference: ``paddle.addmm`` adds the bias inside the GEMM instead of a separate pass over the
    output (~3% faster ViT-B forward). Training: :class:`_LinearFunction` computes the bias
    gradient with BLAS. GPU, static-graph export and bias-free layers keep ``F.linear`` (Paddle
    Inference fuses matmul + add itself). Same values: tests/test_perf_linear.py.
    """

    def forward(self, x):
        return linear(x, self.weight, self.bias, self.training)


def linear(x, weight, bias, training):
    """``x @ weight + bias`` on ``[..., in]`` with :class:`Linear`'s CPU eager paths (``training``: the BLAS
    bias gradient; else ``addmm``); ``F.linear`` elsewhere and without a bias."""
    if bias is None or not paddle.in_dynamic_mode() or not x.place.is_cpu_place():
        return F.linear(x, weight, bias)
    if training:
        return _LinearFunction.apply(x, weight, bias)
    rows = paddle.addmm(bias, x.reshape([-1, x.shape[-1]]), weight)
    return rows.reshape(list(x.shape[:-1]) + [weight.shape[1]])


class _AttentionFunction(paddle.autograd.PyLayer):
    """Multi-head attention from the packed ``qkv`` ``[B, L, 3D]`` to ``[B, L, D]`` with the CPU kernel of
    :mod:`..fast_cpu_ops` (fp32): q, k, v read in place, the softmax fused, no transposes."""

    @staticmethod
    def forward(ctx, qkv, num_heads, scale):
        qkv = qkv.contiguous()
        save = not qkv.stop_gradient  # the probabilities are kept only for a backward pass
        out, probs = fast_cpu_ops().pv_attention(qkv, num_heads, scale, save)
        ctx.save_for_backward(qkv, probs)
        ctx.num_heads, ctx.scale = num_heads, scale
        return out

    @staticmethod
    def backward(ctx, grad):
        qkv, probs = ctx.saved_tensor()
        return fast_cpu_ops().pv_attention_backward(qkv, probs, grad.contiguous(), ctx.num_heads, ctx.scale)


def _use_fast_cpu_ops(x):
    """True where the fused CPU kernels apply: eager mode, a float32 CPU tensor, and the kernels built."""
    return (paddle.in_dynamic_mode() and x.place.is_cpu_place() and x.dtype == paddle.float32
            and fast_cpu_ops() is not None)


class _LayerNormFunction(paddle.autograd.PyLayer):
    """Paddle's LayerNorm forward with the fused CPU backward of :mod:`..fast_cpu_ops` (fp32, last axis)."""

    @staticmethod
    def forward(ctx, x, weight, bias, epsilon):
        x = x.contiguous()  # the kernel reads raw rows
        ctx.save_for_backward(x, weight)
        ctx.epsilon = epsilon
        ctx.needs_grad = [not t.stop_gradient for t in (x, weight, bias)]
        return F.layer_norm(x, x.shape[-1:], weight, bias, epsilon)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        grads = fast_cpu_ops().pv_layer_norm_backward(x, weight, grad.contiguous(), ctx.epsilon)
        return tuple(g if need else None for g, need in zip(grads, ctx.needs_grad))


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last axis (same parameters and state-dict keys) whose CPU training
    backward is the fused kernel of :mod:`..fast_cpu_ops` when it builds (~7x Paddle's; same values:
    tests/test_perf_layernorm.py). Elsewhere (GPU, export, eval, no compiler) it is ``nn.LayerNorm``.
    """

    def forward(self, x):
        if self.training and self.weight is not None and self.bias is not None and _use_fast_cpu_ops(x):
            return _LayerNormFunction.apply(x, self.weight, self.bias, self._epsilon)
        return super().forward(x)


class _GeluFunction(paddle.autograd.PyLayer):
    """Exact (erf) GELU with the vectorised CPU kernels of :mod:`..fast_cpu_ops` (fp32)."""

    @staticmethod
    def forward(ctx, x):
        x = x.contiguous()  # the kernels read raw elements
        ctx.save_for_backward(x)
        return fast_cpu_ops().pv_gelu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensor()
        return fast_cpu_ops().pv_gelu_backward(x, grad.contiguous())


class _ScaledSoftmaxFunction(paddle.autograd.PyLayer):
    """``softmax(scale * x)`` over the last axis with the CPU kernels of :mod:`..fast_cpu_ops` (fp32)."""

    @staticmethod
    def forward(ctx, x, scale):
        y = fast_cpu_ops().pv_scaled_softmax(x.contiguous(), scale)
        ctx.save_for_backward(y)
        ctx.scale = scale
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensor()
        return fast_cpu_ops().pv_scaled_softmax_backward(y, grad.contiguous(), ctx.scale)


def gelu(x):
    """Exact (erf) GELU, ``F.gelu(x, approximate=False)``: on CPU in eager mode (fp32) the fused kernels of
    :mod:`..fast_cpu_ops` when they build (forward ~6x, backward ~15x Paddle 3.3's CPU gelu; same values
    within 3e-7: tests/test_perf_gelu.py); elsewhere (GPU, export, AMP, no compiler) Paddle's gelu.
    """
    return _GeluFunction.apply(x) if _use_fast_cpu_ops(x) else F.gelu(x, approximate=False)


def scaled_softmax(x, scale):
    """``softmax(x * scale)`` over the last axis (``scale > 0``), e.g. attention scores ``[B, heads, L, L]``:
    one pass on CPU in eager mode (fp32) with the kernels of :mod:`..fast_cpu_ops` (tests/test_perf_softmax.py);
    elsewhere ``F.softmax(x * scale)`` (no multiply for ``scale == 1``, e.g. after ``Attention.split_qkv``)."""
    if _use_fast_cpu_ops(x):
        return _ScaledSoftmaxFunction.apply(x, scale)
    return F.softmax(x if scale == 1.0 else x * scale, axis=-1)


class DropPath(nn.Layer):
    """Stochastic depth: drop the whole residual branch per sample with probability ``drop_prob``."""

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask_shape = [x.shape[0]] + [1] * (x.ndim - 1)
        mask = paddle.floor(keep + paddle.rand(mask_shape, dtype=x.dtype))
        return x / keep * mask


class Mlp(nn.Layer):
    """fc1 -> exact (erf) GELU -> dropout -> fc2 -> dropout, on ``[..., D]``."""

    def __init__(self, in_features, hidden_features, drop=0.0):
        super().__init__()
        self.fc1 = Linear(in_features, hidden_features)
        self.fc2 = Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.drop(gelu(self.fc1(x)))
        return self.drop(self.fc2(x))


class Attention(nn.Layer):
    """Multi-head self-attention on ``[B, L, D]`` with a packed ``qkv`` Linear (q, k, v; heads contiguous).

    ``impl="fused"`` uses ``F.scaled_dot_product_attention`` (``[B, L, heads, head_dim]`` layout; flash
    attention on GPU); ``impl="plain"`` spells out matmul -> softmax -> matmul. Both compute the same function.
    On CPU in eager mode (fp32), where Paddle's scaled_dot_product_attention is that same composite of
    copies, GEMMs and a softmax, ``fused`` is the attention kernel of :mod:`..fast_cpu_ops` (q, k, v read in
    place from the packed projection, no transposes, the softmax fused) and ``plain`` uses the one-pass
    softmax kernel of :func:`scaled_softmax`, when they are built (docs/benchmarks.md); attention dropout in
    training and the last block's CLS-only queries take the composite path.
    """

    def __init__(self, dim, num_heads, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0,
                 impl="fused"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        if impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention_impl '{impl}' is unknown; use one of {', '.join(ATTENTION_IMPLS)}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = qk_scale or self.head_dim ** -0.5
        self.impl = impl
        self.attn_drop_rate = attn_drop
        self.qkv = Linear(dim, dim * 3, bias_attr=None if qkv_bias else False)
        self.qkv_split = None  # set by split_qkv() for export only
        self.scale_in_q = False  # split_qkv() folds the score scale into the q weights
        self.proj = Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, cls_query=False):
        """``[B, L, D]`` -> ``[B, L, D]``; with ``cls_query`` only the first token's output, ``[B, 1, D]``
        (its query against all L keys: what the last block needs for the CLS feature)."""
        _, length, dim = x.shape  # the batch stays -1 in reshapes: a static graph may leave it open
        queries = 1 if cls_query else length
        if cls_query or self.qkv_split is not None:
            q, k, v = self._project_qkv(x, cls_query)  # [B, queries | L, D]
        else:
            qkv = self.qkv(x)
            if self._attention_kernel_applies(qkv):
                return self.proj_drop(self.proj(_AttentionFunction.apply(qkv, self.num_heads, self.scale)))
            q, k, v = paddle.split(qkv, 3, axis=-1)
        if self.impl == "fused" and not _use_fast_cpu_ops(x):
            q, k, v = (t.reshape([-1, n, self.num_heads, self.head_dim])  # [B, n, heads, head_dim]
                       for t, n in ((q, queries), (k, length), (v, length)))
            drop = self.attn_drop_rate if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, training=self.training,
                                                 scale=self.scale)
        else:
            # One reshape + transpose per operand, straight into its matmul: the exported graph then
            # matches Paddle Inference's oneDNN reshape_transpose_matmul fusion (strided matmul inputs,
            # no transpose copies), ~5% faster than transposing the packed [B, L, 3, heads, head_dim].
            q, k, v = (t.reshape([-1, n, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])
                       for t, n in ((q, queries), (k, length), (v, length)))  # [B, heads, n, head_dim]
            attn = scaled_softmax(paddle.matmul(q, k, transpose_y=True), 1.0 if self.scale_in_q else self.scale)
            out = paddle.matmul(self.attn_drop(attn), v).transpose([0, 2, 1, 3])
        return self.proj_drop(self.proj(out.reshape([-1, queries, dim])))

    @paddle.jit.not_to_static
    def _attention_kernel_applies(self, qkv):
        """Whether the CPU attention kernel runs on this packed projection: ``fused`` attention in eager mode
        on a float32 CPU tensor (under AMP it may be bf16 / fp16), the kernel built, no attention dropout."""
        return (self.impl == "fused" and _use_fast_cpu_ops(qkv) and hasattr(fast_cpu_ops(), "pv_attention")
                and not (self.training and self.attn_drop_rate > 0))

    def _project_qkv(self, x, cls_query):
        """q, k, v ``[B, L, D]`` each (q ``[B, 1, D]`` with ``cls_query``): the export's three Linear layers,
        or the packed ``qkv`` weight's column blocks for the CLS query (no GEMM for the other queries)."""
        if self.qkv_split is not None:  # export: three GEMMs instead of one GEMM + a split copy
            q_layer, k_layer, v_layer = self.qkv_split
            return q_layer(x[:, :1] if cls_query else x), k_layer(x), v_layer(x)
        dim = x.shape[-1]
        weight_q, weight_kv = paddle.split(self.qkv.weight, [dim, 2 * dim], axis=1)
        bias_q, bias_kv = (None, None) if self.qkv.bias is None else paddle.split(self.qkv.bias, [dim, 2 * dim])
        k, v = paddle.split(linear(x, weight_kv, bias_kv, self.training), 2, axis=-1)
        return linear(x[:, :1], weight_q, bias_q, self.training), k, v

    def split_qkv(self):
        """For export: q, k and v as three Linear layers holding the packed ``qkv`` weights' columns, with
        the score scale folded into q's (``(x W_q + b_q) * s = x (s W_q) + s b_q``; exact for ViT-B's
        s = 1/8, a power of two).

        The packed layer stays (the state dict is unchanged); the plain path then runs three GEMMs,
        which Paddle Inference fuses with their reshape/transpose, instead of one GEMM and a split, and
        no separate pass scales the ``[B, heads, L, L]`` scores.
        """
        dim = self.qkv.weight.shape[0]
        layers = []
        for index in range(3):
            layer = nn.Linear(dim, dim, bias_attr=None if self.qkv.bias is not None else False)
            columns = slice(index * dim, (index + 1) * dim)
            factor = self.scale if index == 0 else 1.0
            layer.weight.set_value(self.qkv.weight[:, columns] * factor)
            if self.qkv.bias is not None:
                layer.bias.set_value(self.qkv.bias[columns] * factor)
            layers.append(layer)
        self.qkv_split = nn.LayerList(layers)
        self.scale_in_q = True


class Block(nn.Layer):
    """One transformer block on the clip tokens ``[B, 1 + N*T, D]``.

    ``divided_space_time`` runs temporal attention (per patch position over its T tokens), then
    spatial attention (per frame over [CLS + that frame's N patches]), then the MLP.
    ``space_only`` (tokens ``[B*T, 1 + N, D]``) and ``joint_space_time`` are a plain ViT block.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, qk_scale=None, drop=0.0,
                 attn_drop=0.0, drop_path=0.0, epsilon=1e-5, attention_type="divided_space_time",
                 attention_impl="fused"):
        super().__init__()
        self.attention_type = attention_type
        attn_args = dict(num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
                         proj_drop=drop, impl=attention_impl)
        self.norm1 = LayerNorm(dim, epsilon=epsilon)
        self.attn = Attention(dim, **attn_args)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = LayerNorm(dim, epsilon=epsilon)
            self.temporal_attn = Attention(dim, **attn_args)
            self.temporal_fc = Linear(dim, dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = LayerNorm(dim, epsilon=epsilon)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x, num_frames, cls_only=False):
        """``[B, L, D]`` -> ``[B, L, D]``; with ``cls_only`` just the CLS token's output ``[B, 1, D]``: the
        last block computes no patch outputs, which nothing reads (the feature is the CLS token), saving
        ~60% of that block (its MLP on the patches, the spatial queries and projection), 5% of ViT-B."""
        if self.attention_type == "divided_space_time":
            x = self._divided_attention(x, num_frames, cls_only)
        elif cls_only:
            x = x[:, :1] + self.drop_path(self.attn(self.norm1(x), cls_query=True))
        else:
            x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def fold_temporal_fc(self):
        """For export (inference only; irreversible): ``temporal_fc(temporal_attn.proj(o))`` is one affine
        map, so it becomes one Linear, ``W = W_proj W_fc``, ``b = b_proj W_fc + b_fc`` (products in float64),
        and ``temporal_fc`` the identity: one [D, D] GEMM less per block, 5.7% of ViT-B's forward FLOPs.
        Valid without dropout between them (eval); the state dict changes, so save checkpoints before.
        """
        if self.attention_type != "divided_space_time" or isinstance(self.temporal_fc, nn.Identity):
            return
        proj, fc = self.temporal_attn.proj, self.temporal_fc
        w_proj, w_fc = proj.weight.numpy().astype(np.float64), fc.weight.numpy().astype(np.float64)
        merged = nn.Linear(w_proj.shape[0], w_fc.shape[1])
        merged.weight.set_value((w_proj @ w_fc).astype(np.float32))
        merged.bias.set_value((proj.bias.numpy().astype(np.float64) @ w_fc + fc.bias.numpy()).astype(np.float32))
        self.temporal_attn.proj = merged
        self.temporal_fc = nn.Identity()

    def _divided_attention(self, x, num_frames, cls_only):
        dim = x.shape[2]
        cls, patches = paddle.split(x, [1, x.shape[1] - 1], axis=1)  # [B, 1, D], [B, N*T, D]
        num_patches = patches.shape[1] // num_frames

        # Temporal: each patch position attends over its T tokens (already contiguous: time minor).
        xt = patches.reshape([-1, num_frames, dim])
        res_t = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        patches = patches + self.temporal_fc(res_t.reshape([-1, num_patches * num_frames, dim]))

        # Spatial: each frame attends over [clip CLS + its N patches].
        xs = patches.reshape([-1, num_patches, num_frames, dim]).transpose([0, 2, 1, 3])
        xs = xs.reshape([-1, num_patches, dim])
        cls_per_frame = cls.expand([-1, num_frames, dim]).reshape([-1, 1, dim])
        res_s = self.drop_path(self.attn(self.norm1(paddle.concat([cls_per_frame, xs], axis=1)), cls_query=cls_only))
        if cls_only:
            return cls + res_s.reshape([-1, num_frames, dim]).mean(axis=1, keepdim=True)
        res_cls, res_patches = paddle.split(res_s, [1, num_patches], axis=1)
        # The clip CLS gets the mean of its T per-frame outputs; patches get their frame's output.
        res_cls = res_cls.reshape([-1, num_frames, dim]).mean(axis=1, keepdim=True)
        res_patches = res_patches.reshape([-1, num_frames, num_patches, dim]).transpose([0, 2, 1, 3])
        res_patches = res_patches.reshape([-1, num_patches * num_frames, dim])
        return paddle.concat([cls + res_cls, patches + res_patches], axis=1)


class PatchEmbed(nn.Layer):
    """Per-frame patch embedding: ``[B*T, C, H, W]`` -> ``[B*T, N, D]`` (Conv2D, kernel = stride = patch)."""

    def __init__(self, img_size=224, patch_size=16, in_channels=3, embed_dim=768):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size = img_size
        self.patch_size = patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2D(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        if x.shape[2] != self.img_size or x.shape[3] != self.img_size:
            raise ValueError(f"input frames are {x.shape[2]}x{x.shape[3]} but the model's img_size is "
                             f"{self.img_size}; resize/crop the input or set MODEL.backbone.img_size")
        return self.proj(x).flatten(2).transpose([0, 2, 1])


@BACKBONES.register()
class VisionTransformer(nn.Layer):
    """TimeSformer backbone: clip ``[B, C, T, H, W]`` -> CLS feature ``[B, embed_dim]``.

    Args (config keys of ``MODEL.backbone``):
        pretrained: path of an image-ViT ``.pdparams`` (PaddleClas naming) converted at init; "" for none.
        img_size, patch_size, in_channels, embed_dim, depth, num_heads, mlp_ratio, qkv_bias,
        qk_scale (None: head_dim ** -0.5): the ViT shape.
        drop_rate, attn_drop_rate: dropout after embeddings/projections and on attention weights.
        drop_path_rate: stochastic depth, ``linspace(0, rate, depth)`` over the blocks.
        epsilon: LayerNorm epsilon.
        num_seg: frames the time embedding is learned for (other T are resized by nearest neighbour).
        attention_type: ``divided_space_time`` | ``space_only`` | ``joint_space_time``.
        attention_impl: ``fused`` (scaled_dot_product_attention) | ``plain`` (matmul-softmax).
        time_embed_std: 0 initialises ``time_embed`` to zeros (the reference); > 0 draws N(0, std).
        zero_init_temporal_fc: zero ``temporal_fc`` so a fresh model is the image model (the reference);
            False keeps the ordinary Linear init, which lets a model trained from scratch use time at once.
        init_std: std of the truncated-normal init of the blocks' Linear weights (0.02, the reference,
            is sized for ViT-B's width 768; a narrow model trained from scratch wants it larger, about
            ``0.02 * sqrt(768 / embed_dim)``, or its attention starts uniform and is slow to learn).
        recompute: recompute each block's activations in the backward pass (less memory in training).
    """

    def __init__(self, pretrained=None, img_size=224, patch_size=16, in_channels=3, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4, qkv_bias=False, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0,
                 drop_path_rate=0.1, epsilon=1e-5, num_seg=8, attention_type="divided_space_time",
                 attention_impl="fused", time_embed_std=0.0, zero_init_temporal_fc=True,
                 init_std=INIT_STD, recompute=False):
        super().__init__()
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type '{attention_type}' is unknown; use one of {', '.join(ATTENTION_TYPES)}")
        self.pretrained = pretrained
        self.attention_type = attention_type
        self.embed_dim = embed_dim
        self.num_seg = num_seg
        self.time_embed_std = time_embed_std
        self.zero_init_temporal_fc = zero_init_temporal_fc
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0 (the std of the Linear weights' init), got {init_std}")
        self.init_std = init_std
        self.recompute = recompute

        self.patch_embed = PatchEmbed(img_size, patch_size, in_channels, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=zeros_)
        self.pos_embed = self.create_parameter([1, num_patches + 1, embed_dim], default_initializer=zeros_)
        self.pos_drop = nn.Dropout(drop_rate)
        if attention_type != "space_only":
            self.time_embed = self.create_parameter([1, num_seg, embed_dim], default_initializer=zeros_)
            self.time_drop = nn.Dropout(drop_rate)

        rates = np.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.LayerList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, rate, epsilon,
                  attention_type, attention_impl)
            for rate in rates
        ])
        self.norm = LayerNorm(embed_dim, epsilon=epsilon)
        self.init_weights()

    def init_weights(self):
        """Spec 3: fresh weights, then the image-ViT conversion when ``pretrained`` is set."""
        trunc_normal_(self.pos_embed)
        trunc_normal_(self.cls_token)
        linear_init = TruncatedNormal(std=self.init_std)
        for layer in self.sublayers():
            if isinstance(layer, nn.Linear):
                linear_init(layer.weight)
                if layer.bias is not None:
                    zeros_(layer.bias)
            elif isinstance(layer, nn.LayerNorm):
                ones_(layer.weight)
                zeros_(layer.bias)
        if self.attention_type != "space_only":
            init = Normal(std=self.time_embed_std) if self.time_embed_std > 0 else zeros_
            init(self.time_embed)
        # Zero temporal_fc in every block (by default), so a fresh divided model computes the image model.
        for block in self.blocks:
            if self.attention_type == "divided_space_time" and self.zero_init_temporal_fc:
                zeros_(block.temporal_fc.weight)
                zeros_(block.temporal_fc.bias)
        if self.pretrained:
            from ..checkpoint import load_pretrained_vit

            load_pretrained_vit(self, self.pretrained)

    def forward_features(self, x):
        """``[B, C, T, H, W]`` -> CLS feature after the final LayerNorm, ``[B, D]``."""
        _, channels, num_frames, height, width = x.shape
        # In a static graph with an open batch, x.shape[0] is -1: take the batch as a tensor then.
        # (Decide on the mode, a Python bool: the old IR turns x.shape[0] into a tensor, and a test on it
        # into a conditional block that the .pdmodel export cannot trace.)
        batch = x.shape[0] if paddle.in_dynamic_mode() else paddle.shape(x)[0]
        frames = x.transpose([0, 2, 1, 3, 4]).reshape([-1, channels, height, width])
        patches = self.patch_embed(frames)  # [B*T, N, D]
        num_patches, dim = patches.shape[1], patches.shape[2]

        cls_pos, patch_pos = paddle.split(self.pos_embed, [1, num_patches], axis=1)
        patches = patches + patch_pos
        cls = self.cls_token + cls_pos  # [1, 1, D]

        if self.attention_type == "space_only":
            x = paddle.concat([cls.expand([batch * num_frames, 1, dim]), patches], axis=1)
            x = self.pos_drop(x)
        else:
            # Frame-major [B, T, N, D] -> spatial-major, time-minor tokens [B, N*T, D].
            patches = self.pos_drop(patches).reshape([-1, num_frames, num_patches, dim]).transpose([0, 2, 1, 3])
            patches = patches + resize_time_embed(self.time_embed, num_frames).unsqueeze(1)
            patches = self.time_drop(patches).reshape([-1, num_patches * num_frames, dim])
            x = paddle.concat([self.pos_drop(cls.expand([batch, 1, dim])), patches], axis=1)

        for index, block in enumerate(self.blocks):
            cls_only = index == len(self.blocks) - 1  # the last block: CLS output only, [B', 1, D]
            if self.recompute and self.training:
                from paddle.distributed.fleet.utils import recompute

                x = recompute(block, x, num_frames, cls_only)
            else:
                x = block(x, num_frames, cls_only)

        cls = x  # LayerNorm acts per token, so normalising only the CLS token gives the same feature.
        if self.attention_type == "space_only":
            cls = cls.reshape([-1, num_frames, dim]).mean(axis=1, keepdim=True)
        return self.norm(cls.reshape([-1, dim]))

    def forward(self, x):
        """``[B, C, T, H, W]`` -> CLS feature ``[B, embed_dim]``."""
        return self.forward_features(x)

