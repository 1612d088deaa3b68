"""TimeSformer's VisionTransformer backbone (PaddleVideo names and checkpoint layout): DropPath, Mlp, Attention,
Block, PatchEmbed, VisionTransformer; CPU fast paths in :mod:`..layers.fast_ops` (the ``kernels`` switch), the
export form in :mod:`..inference`. A clip is ``[B, C, T, H, W]``; patch tokens are ``[B, N*T, D]``, spatial
index major and time minor (token ``n*T + t``), after one CLS token for the whole clip.
"""

import warnings
from typing import Optional

import numpy as np
import paddle
import paddle.nn as nn
from paddle.nn.initializer import Constant, Normal, TruncatedNormal

from ...common.rules import Fraction, NonNegative, OneOf, Positive, PositiveInt
from ..embed_resize import resize_time_embed
from ..layers.fast_ops import (ATTENTION_IMPLS, KERNELS, LayerNorm, Linear, attend, attention, check_attention_impl,
                               gelu, linear, resolve_kernels)
from ..registry import BACKBONES
from ..weights import load_pretrained_vit

ATTENTION_TYPES = ("divided_space_time", "space_only", "joint_space_time")
INIT_STD = 0.02  # the reference's std for Linear weights, pos_embed and cls_token

trunc_normal_, zeros_, ones_ = TruncatedNormal(std=INIT_STD), Constant(0.0), Constant(1.0)


class DropPath(nn.Layer):
    """Stochastic depth: drop the whole residual branch per sample with probability ``drop_prob``."""

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = paddle.floor(keep + paddle.rand([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype))  # per sample
        return x / keep * mask


class Mlp(nn.Layer):
    """fc1 -> exact (erf) GELU -> dropout -> fc2 -> dropout, on ``[..., D]``."""

    def __init__(self, in_features, hidden_features, drop=0.0, kernels="auto"):
        super().__init__()
        self.kernels = kernels
        self.fc1 = Linear(in_features, hidden_features, kernels=kernels)
        self.fc2 = Linear(hidden_features, in_features, kernels=kernels)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(gelu(self.fc1(x), self.kernels))))


class Attention(nn.Layer):
    """Multi-head self-attention on ``[B, L, D]`` with a packed ``qkv`` Linear (q, k, v blocks; heads contiguous).
    ``impl``: ``fused`` (the CPU attention kernel, else Paddle's ``scaled_dot_product_attention``) or ``plain``
    (matmul -> softmax -> matmul); the same function either way (:func:`..layers.fast_ops.attention`)."""

    def __init__(self, dim, num_heads, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0,
                 impl="fused", kernels="auto"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.scale = num_heads, qk_scale or (dim // num_heads) ** -0.5
        self.impl, self.kernels, self.attn_drop_rate = check_attention_impl(impl), kernels, attn_drop
        self.qkv = Linear(dim, dim * 3, bias_attr=None if qkv_bias else False, kernels=kernels)
        self.proj = Linear(dim, dim, kernels=kernels)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        """``[B, L, D]`` -> ``[B, L, D]``."""
        args = (self.num_heads, self.scale, self.attn_drop_rate, self.training, self.impl, self.kernels)
        return self.proj_drop(self.proj(attention(self.qkv(x), *args)))

    def forward_with_attention(self, x):
        """``forward(x)`` and the attention probabilities ``[B, heads, L, L]``: ``(out, probs)``."""
        args = (self.num_heads, self.scale, self.attn_drop_rate, self.training, self.impl, self.kernels)
        out, probs = attend(*paddle.split(self.qkv(x), 3, axis=-1), *args, return_probs=True)
        return self.proj_drop(self.proj(out)), probs

    def forward_cls(self, x):
        """The first token's output alone, ``[B, L, D]`` -> ``[B, 1, D]``: its query against all L keys, with
        q computed for that token only (the q columns of the packed ``qkv`` weight)."""
        dim = x.shape[-1]
        weight_q, weight_kv = paddle.split(self.qkv.weight, [dim, 2 * dim], axis=1)
        bias_q, bias_kv = (None, None) if self.qkv.bias is None else paddle.split(self.qkv.bias, [dim, 2 * dim])
        k, v = paddle.split(linear(x, weight_kv, bias_kv, self.training, self.kernels), 2, axis=-1)
        q = linear(x[:, :1], weight_q, bias_q, self.training, self.kernels)
        out = attend(q, k, v, self.num_heads, self.scale, self.attn_drop_rate, self.training, self.impl, self.kernels)
        return self.proj_drop(self.proj(out))


class Block(nn.Layer):
    """One transformer block on the clip tokens ``[B, 1 + N*T, D]``. ``divided_space_time`` runs temporal
    attention (per patch position over its T tokens), then spatial attention (per frame over [CLS + that
    frame's N patches]), then the MLP. ``space_only`` (tokens ``[B*T, 1 + N, D]``) and ``joint_space_time``
    are a plain ViT block."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, qk_scale=None, drop=0.0,
                 attn_drop=0.0, drop_path=0.0, epsilon=1e-5, attention_type="divided_space_time",
                 attention_impl="fused", kernels="auto"):
        super().__init__()
        self.attention_type = attention_type
        attn_args = dict(num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
                         proj_drop=drop, impl=attention_impl, kernels=kernels)
        self.norm1 = LayerNorm(dim, epsilon=epsilon, kernels=kernels)
        self.attn = Attention(dim, **attn_args)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = LayerNorm(dim, epsilon=epsilon, kernels=kernels)
            self.temporal_attn = Attention(dim, **attn_args)
            self.temporal_fc = Linear(dim, dim, kernels=kernels)
        self.drop_path = DropPath(drop_path)
        self.norm2 = LayerNorm(dim, epsilon=epsilon, kernels=kernels)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop, kernels=kernels)

    def forward(self, x, num_frames):
        """``[B, L, D]`` -> ``[B, L, D]``."""
        return self._forward(x, num_frames, maps=None)

    def forward_with_attention(self, x, num_frames):
        """``forward(x)`` and this block's attention probabilities: ``(x, {name: [sequences, heads, L', L']})``
        (names and shapes: :meth:`VisionTransformer.forward_with_attention`)."""
        maps = {}
        return self._forward(x, num_frames, maps), maps

    def _forward(self, x, num_frames, maps):
        """The block; each attention's probabilities are put into ``maps`` unless it is None."""
        if self.attention_type == "divided_space_time":
            cls, patches, xs = self._temporal(x, num_frames, maps)
            res_s = self.drop_path(self._attend(self.attn, xs, maps, "spatial"))  # [B*T, 1 + N, D]
            res_cls, res_patches = paddle.split(res_s, [1, xs.shape[1] - 1], axis=1)  # CLS: mean over frames
            res_patches = res_patches.reshape([-1, num_frames, xs.shape[1] - 1, x.shape[2]]).transpose([0, 2, 1, 3])
            x = paddle.concat([cls + _mean_over_frames(res_cls, num_frames),
                               patches + res_patches.reshape(patches.shape)], axis=1)
        else:
            name = "spatial" if self.attention_type == "space_only" else "joint"
            x = x + self.drop_path(self._attend(self.attn, self.norm1(x), maps, name))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward_cls(self, x, num_frames):
        """``forward(x)[:, :1]`` without the patch outputs, which nothing reads after the last block: ``[B, 1, D]``."""
        if self.attention_type == "divided_space_time":
            cls, _, xs = self._temporal(x, num_frames)
            x = cls + _mean_over_frames(self.drop_path(self.attn.forward_cls(xs)), num_frames)
        else:
            x = x[:, :1] + self.drop_path(self.attn.forward_cls(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    @staticmethod
    def _attend(layer, x, maps, name):
        if maps is None:
            return layer(x)
        out, maps[name] = layer.forward_with_attention(x)
        return out

    def _temporal(self, x, num_frames, maps=None):
        """Temporal attention (each patch position over its T tokens) -> CLS ``[B, 1, D]``, patches ``[B, N*T, D]``
        and the spatial attention's normalised input ``[B*T, 1 + N, D]`` (per frame: CLS, the frame's patches)."""
        dim = x.shape[2]
        cls, patches = paddle.split(x, [1, x.shape[1] - 1], axis=1)
        res_t = self._attend(self.temporal_attn, self.temporal_norm1(patches.reshape([-1, num_frames, dim])),
                             maps, "temporal")
        patches = patches + self.temporal_fc(self.drop_path(res_t).reshape(patches.shape))
        num_patches = patches.shape[1] // num_frames
        xs = patches.reshape([-1, num_patches, num_frames, dim]).transpose([0, 2, 1, 3])
        cls_per_frame = cls.expand([-1, num_frames, dim]).reshape([-1, 1, dim])
        return cls, patches, self.norm1(paddle.concat([cls_per_frame, xs.reshape([-1, num_patches, dim])], axis=1))


def _mean_over_frames(x, num_frames):
    """``[B*T, 1, D]`` -> ``[B, 1, D]``, the mean over each clip's T frames."""
    return x.reshape([-1, num_frames, x.shape[2]]).mean(axis=1, keepdim=True)


class PatchEmbed(nn.Layer):
    """Per-frame patch embedding: ``[B*T, C, H, W]`` -> ``[B*T, N, D]`` (Conv2D, kernel = stride = patch)."""

    def __init__(self, img_size=224, patch_size=16, in_channels=3, embed_dim=768):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size = img_size, patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2D(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        if x.shape[2] != self.img_size or x.shape[3] != self.img_size:
            raise ValueError(f"input frames are {x.shape[2]}x{x.shape[3]} but the model's img_size is {self.img_size}; "
                             "resize/crop the input or set MODEL.backbone.img_size")
        return self.proj(x).flatten(2).transpose([0, 2, 1])


@BACKBONES.register()
class VisionTransformer(nn.Layer):
    """TimeSformer backbone: clip ``[B, C, T, H, W]`` -> CLS feature ``[B, embed_dim]``.

    Args (config keys of ``MODEL.backbone``; each annotation is the rule a config's value must meet):
        pretrained: path of an image-ViT ``.pdparams`` (PaddleClas naming) converted at init; "" for none.
        img_size, patch_size, in_channels, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, qk_scale (None:
            head_dim ** -0.5), epsilon (LayerNorm): the ViT shape.
        drop_rate, attn_drop_rate, drop_path_rate: dropout after embeddings/projections, on attention weights,
            and stochastic depth (``linspace(0, rate, depth)`` over the blocks).
        num_seg: frames the time embedding is learned for (other T are resized by nearest neighbour).
        attention_type: ``divided_space_time`` | ``space_only`` | ``joint_space_time``.
        attention_impl: ``fused`` (attention kernel / scaled_dot_product_attention) | ``plain`` (matmul-softmax).
        time_embed_std: 0 initialises ``time_embed`` to zeros (the reference); > 0 draws N(0, std).
        zero_init_temporal_fc: zero ``temporal_fc`` so a fresh model is the image model (the reference); False
            keeps the Linear init, so a model trained from scratch uses time at once.
        init_std: std of the blocks' truncated-normal Linear init; 0.02 (the reference) suits ViT-B's width 768,
            a narrow model trained from scratch wants about ``0.02 * sqrt(768 / embed_dim)`` (else slow to learn).
        recompute: recompute each block's activations in the backward pass (less memory in training).
        kernels: ``auto`` (this project's CPU paths where they apply, :mod:`..layers.fast_ops`) | ``paddle``
            (Paddle's own ops everywhere; ``PADDLEVIDEO_FAST_CPU_OPS=0`` does the same).
        cls_only_last_block: the last block computes the CLS token's output alone (same numbers, less work).
        trust_pickle: read ``pretrained`` with full unpickling (``--trust-pickle``); passed by
            ``build_model(cfg, trust_pickle=True)``, never by a config (a config file may come from elsewhere).
    """

    def __init__(self, pretrained: Optional[str] = None,
                 img_size: PositiveInt = 224, patch_size: PositiveInt = 16, in_channels: PositiveInt = 3,
                 embed_dim: PositiveInt = 768, depth: PositiveInt = 12, num_heads: PositiveInt = 12,
                 mlp_ratio: Positive = 4, qkv_bias: bool = False, qk_scale: Optional[Positive] = None,
                 drop_rate: Fraction = 0.0, attn_drop_rate: Fraction = 0.0, drop_path_rate: Fraction = 0.1,
                 epsilon: Positive = 1e-5, num_seg: PositiveInt = 8,
                 attention_type: OneOf(*ATTENTION_TYPES) = "divided_space_time",
                 attention_impl: OneOf(*ATTENTION_IMPLS) = "fused",
                 time_embed_std: NonNegative = 0.0, zero_init_temporal_fc: bool = True, init_std: Positive = INIT_STD,
                 recompute: bool = False, kernels: OneOf(*KERNELS) = "auto", cls_only_last_block: bool = True,
                 trust_pickle: bool = False):
        super().__init__()
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type '{attention_type}' is unknown; use one of {', '.join(ATTENTION_TYPES)}")
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0 (the std of the Linear weights' init), got {init_std}")
        self.pretrained, self.attention_type, self.embed_dim = pretrained, attention_type, embed_dim
        self.trust_pickle = bool(trust_pickle)
        self.num_seg, self.time_embed_std, self.init_std = num_seg, time_embed_std, init_std
        self.zero_init_temporal_fc, self.recompute = zero_init_temporal_fc, recompute
        self.kernels, self.cls_only_last_block = resolve_kernels(kernels), bool(cls_only_last_block)

        self.patch_embed = PatchEmbed(img_size, patch_size, in_channels, embed_dim)
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=zeros_)
        self.pos_embed = self.create_parameter([1, self.patch_embed.num_patches + 1, embed_dim],
                                               default_initializer=zeros_)
        self.pos_drop = nn.Dropout(drop_rate)
        if attention_type != "space_only":
            self.time_embed = self.create_parameter([1, num_seg, embed_dim], default_initializer=zeros_)
            self.time_drop = nn.Dropout(drop_rate)

        self.blocks = nn.LayerList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, rate, epsilon,
                  attention_type, attention_impl, self.kernels)
            for rate in np.linspace(0, drop_path_rate, depth).tolist()
        ])
        self.norm = LayerNorm(embed_dim, epsilon=epsilon, kernels=self.kernels)
        self.init_weights()

    def init_weights(self):
        """Fresh weights as the reference draws them, then the image-ViT conversion when ``pretrained`` is set."""
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
            (Normal(std=self.time_embed_std) if self.time_embed_std > 0 else zeros_)(self.time_embed)
        if self.attention_type == "divided_space_time" and self.zero_init_temporal_fc:
            for block in self.blocks:  # a fresh divided model computes the image model
                zeros_(block.temporal_fc.weight)
                zeros_(block.temporal_fc.bias)
        if self.pretrained:
            load_pretrained_vit(self, self.pretrained, trust_pickle=self.trust_pickle)

    def embed(self, x):
        """Clip ``[B, C, T, H, W]`` -> tokens ``[B, 1 + N*T, D]`` (``space_only``: ``[B*T, 1 + N, D]``), T."""
        _, channels, num_frames, height, width = x.shape
        # A static graph's open batch is -1: take it as a tensor (testing x.shape[0] breaks the .pdmodel export).
        batch = x.shape[0] if paddle.in_dynamic_mode() else paddle.shape(x)[0]
        frames = x.transpose([0, 2, 1, 3, 4]).reshape([-1, channels, height, width])
        patches = self.patch_embed(frames)  # [B*T, N, D]
        num_patches, dim = patches.shape[1], patches.shape[2]
        cls_pos, patch_pos = paddle.split(self.pos_embed, [1, num_patches], axis=1)
        patches = patches + patch_pos
        cls = self.cls_token + cls_pos  # [1, 1, D]
        if self.attention_type == "space_only":
            return self.pos_drop(paddle.concat([cls.expand([batch * num_frames, 1, dim]), patches], axis=1)), num_frames
        # Frame-major [B, T, N, D] -> spatial-major, time-minor tokens [B, N*T, D].
        patches = self.pos_drop(patches).reshape([-1, num_frames, num_patches, dim]).transpose([0, 2, 1, 3])
        patches = patches + resize_time_embed(self.time_embed, num_frames).unsqueeze(1)
        patches = self.time_drop(patches).reshape([-1, num_patches * num_frames, dim])
        return paddle.concat([self.pos_drop(cls.expand([batch, 1, dim])), patches], axis=1), num_frames

    def forward(self, x, return_attention=False):
        """``[B, C, T, H, W]`` -> CLS feature after the final LayerNorm, ``[B, embed_dim]``.
        (``return_attention=True`` is the 2026-11 API of :meth:`forward_with_attention`, kept with a warning.)"""
        if return_attention:
            warnings.warn("backbone(x, return_attention=True) is deprecated; call backbone.forward_with_attention(x)",
                          DeprecationWarning, stacklevel=2)
            return self.forward_with_attention(x)
        x, num_frames = self.embed(x)
        for block in self.blocks[:-1]:
            x = self._run(block, x, num_frames)
        if self.cls_only_last_block:  # the last block computes the CLS token's output alone
            return self._cls_feature(self._run(self.blocks[-1].forward_cls, x, num_frames), num_frames)
        return self._cls_feature(self._run(self.blocks[-1], x, num_frames)[:, :1], num_frames)

    forward_features = forward  # PaddleVideo's name

    def forward_with_attention(self, x):
        """``(forward(x), records)`` for eval mode, every block run in full (the last one's maps too): one dict of
        attention probabilities per block, heads kept, rows summing to 1 over the keys, tokens in the model's
        order: ``divided_space_time``: ``temporal`` ``[B*N, heads, T, T]`` (row ``b*N + n``: patch position n of
        clip b) and ``spatial`` ``[B*T, heads, 1+N, 1+N]`` (row ``b*T + t``: frame t; key 0 the clip's CLS);
        ``space_only``: ``spatial`` ``[B*T, heads, 1+N, 1+N]``; ``joint_space_time``: ``joint``
        ``[B, heads, 1+N*T, 1+N*T]`` (key ``1 + n*T + t``).
        """
        x, num_frames = self.embed(x)
        records = []
        for block in self.blocks:
            x, maps = block.forward_with_attention(x, num_frames)
            records.append(maps)
        return self._cls_feature(x[:, :1], num_frames), records

    def _run(self, block, x, num_frames):
        """``block(x, num_frames)``, its activations recomputed in the backward pass with ``recompute``."""
        if self.recompute and self.training:
            from paddle.distributed.fleet.utils import recompute

            return recompute(block, x, num_frames)
        return block(x, num_frames)

    def _cls_feature(self, cls, num_frames):
        """CLS tokens ``[B', 1, D]`` -> feature ``[B, D]`` (LayerNorm is per token: the CLS token's is the feature)."""
        cls = _mean_over_frames(cls, num_frames) if self.attention_type == "space_only" else cls
        return self.norm(cls.reshape([-1, cls.shape[2]]))
