"""Read every block's attention probabilities out of a TimeSformer, and roll them out for one clip.

:func:`collect_attention` is the one place that knows how the probabilities come out of the model. It is
PROVISIONAL: until the backbone offers a read-out of its own, it registers forward-post hooks on each
block's attention layers (nothing in the model is patched or changed; the hooks are removed afterwards)
and recomputes ``softmax(q kᵀ · scale)`` from the input each layer received, with that layer's own
weights. The model's fast attention kernels never materialise the probabilities, which is why they are
recomputed; ``tests/test_vis_attention.py`` checks that they reproduce the layers' outputs.
"""

import numpy as np

from .rollout import attention_rollout


def _backbone(model):
    """The VisionTransformer of a recognizer (``model.backbone``) or the backbone itself."""
    backbone = getattr(model, "backbone", model)
    if not hasattr(backbone, "blocks") or not hasattr(backbone, "attention_type"):
        raise TypeError(f"{type(model).__name__} is neither a TimeSformer recognizer nor its VisionTransformer")
    return backbone


def patch_grid(model):
    """``(rows, cols)`` of patches per frame, ``(img_size // patch_size,) * 2``."""
    embed = _backbone(model).patch_embed
    side = embed.img_size // embed.patch_size
    return side, side


def _probabilities(layer, x):
    """``softmax(q kᵀ · scale)`` ``[B', heads, L, L]`` (numpy float32) of Attention ``layer`` on its input
    ``x [B', L, D]``, with the layer's own q / k weights."""
    import paddle
    import paddle.nn.functional as F

    dim = x.shape[-1]
    split = getattr(layer, "qkv_split", None)  # export-time layers with the score scale folded into q
    if split is not None:
        q, k, scale = split[0](x), split[1](x), 1.0
    else:
        bias = layer.qkv.bias
        qk = F.linear(x, layer.qkv.weight[:, :2 * dim], None if bias is None else bias[:2 * dim])
        q, k = paddle.split(qk, 2, axis=-1)
        scale = 1.0 if getattr(layer, "scale_in_q", False) else layer.scale
    q, k = (t.reshape([t.shape[0], t.shape[1], layer.num_heads, -1]).transpose([0, 2, 1, 3]) for t in (q, k))
    scores = paddle.matmul(q.astype("float32"), k.astype("float32"), transpose_y=True) * scale
    return F.softmax(scores, axis=-1).numpy()


def _hook(store, key):
    def record(layer, inputs, output):
        store[key] = _probabilities(layer, inputs[0])
    return record


def collect_attention(model, clip):
    """Run ``model`` on ``clip`` in eval mode and return ``(outputs, blocks)``.

    Args:
        model: a TimeSformer recognizer (``RecognizerTransformer``) or its ``VisionTransformer``.
        clip: one view, ``[B, 3, T, H, W]`` float32 (numpy or paddle), as the test pipeline makes it.
    Returns:
        outputs: numpy ``[B, num_classes]`` class logits (the recognizer's head on the clip) or ``[B, D]``
            features (a backbone).
        blocks: one dict per block, first to last, of numpy float32 attention probabilities:
            divided: ``temporal [B*N, heads, T, T]``, ``spatial [B*T, heads, 1+N, 1+N]``;
            space_only: ``spatial [B*T, heads, 1+N, 1+N]``; joint: ``joint [B, heads, 1+N*T, 1+N*T]``.
    """
    import paddle

    backbone = _backbone(model)
    if len(clip.shape) != 5:
        raise ValueError(f"clip must be one view [B, 3, T, H, W], got shape {list(clip.shape)}")
    key = {"divided_space_time": "spatial", "space_only": "spatial", "joint_space_time": "joint"}
    blocks = [{} for _ in backbone.blocks]
    handles = []
    try:
        for store, block in zip(blocks, backbone.blocks):
            if backbone.attention_type == "divided_space_time":
                handles.append(block.temporal_attn.register_forward_post_hook(_hook(store, "temporal")))
            handles.append(block.attn.register_forward_post_hook(_hook(store, key[backbone.attention_type])))
        was_training = model.training
        model.eval()
        try:
            with paddle.no_grad():
                x = clip if isinstance(clip, paddle.Tensor) else paddle.to_tensor(np.ascontiguousarray(clip, "float32"))
                outputs = backbone(x)
                if model is not backbone:  # the head's logits (a recognizer's infer output may be softmaxed)
                    outputs = model.head(outputs)
        finally:
            if was_training:
                model.train()
    finally:
        for handle in handles:
            handle.remove()
    return outputs.numpy(), blocks


def explain_clip(model, clip, heads="mean"):
    """Logits and attention rollout of one view: ``(outputs, Rollout)``.

    ``clip`` ``[B, 3, T, H, W]``; ``heads`` ``mean`` | ``max``. The rollout's ``maps`` are ``[B, T, H/p, W/p]``
    and ``temporal_share`` ``[B, T]`` (see :func:`paddlevideo.visualization.rollout.attention_rollout`).
    """
    outputs, blocks = collect_attention(model, clip)
    backbone = _backbone(model)
    rollout = attention_rollout(blocks, backbone.attention_type, int(clip.shape[2]), heads, patch_grid(model))
    return outputs, rollout
