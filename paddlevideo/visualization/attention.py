"""Read every block's attention probabilities out of a TimeSformer, and roll them out for one clip.

:func:`collect_attention` is the one place that knows how the probabilities come out of the model: the
backbone's own read-out, ``model.backbone.forward_with_attention(x)`` (every block computed in full,
nothing changed on the normal path).
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
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            x = clip if isinstance(clip, paddle.Tensor) else paddle.to_tensor(np.ascontiguousarray(clip, "float32"))
            outputs, records = backbone.forward_with_attention(x)
            if model is not backbone:  # the head's logits (a recognizer's infer output may be softmaxed)
                outputs = model.head(outputs)
    finally:
        if was_training:
            model.train()
    blocks = [{name: probs.numpy() for name, probs in record.items()} for record in records]
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
