"""Analytic FLOP count of a TimeSformer (VisionTransformer backbone + Linear head).

Counts the multiply-adds of every matrix product (Linear layers, patch-embedding convolution,
attention scores and attention-weighted values) and reports FLOPs = 2 x MACs, the convention of
``docs/benchmarks.md`` (ViT-B/16, 8 x 224 x 224, one view: 392 GFLOP = 196 GMAC; the TimeSformer
paper's "0.59 TFLOPs" for 3 views counts MACs). Element-wise work (LayerNorm, GELU, softmax, adds)
is left out: it is < 1% of the FLOPs, though not of the time on a CPU.
"""

ATTENTION_TYPES = ("divided_space_time", "space_only", "joint_space_time")


def _attention_macs(rows, seq_len, dim):
    """MACs of one multi-head attention over ``rows`` tokens grouped in sequences of ``seq_len``.

    qkv projection (D -> 3D), scores q k^T and weights @ v (seq_len per query each), output
    projection (D -> D). Heads split D, so the head count does not change the total.
    """
    qkv = rows * dim * 3 * dim
    scores_and_values = 2 * rows * seq_len * dim
    proj = rows * dim * dim
    return qkv + scores_and_values + proj


def timesformer_forward_macs(img_size=224, patch_size=16, in_channels=3, embed_dim=768, depth=12,
                             mlp_ratio=4, num_frames=8, attention_type="divided_space_time",
                             num_classes=400):
    """Multiply-accumulates of one forward pass on one clip ``[1, C, T, H, W]``, as a dict by part.

    Returns ``{'patch_embed', 'blocks', 'attention_scores', 'head', 'total'}`` (``attention_scores``
    is the part of ``blocks`` spent in q k^T and weights @ v, reported for the profile discussion).
    """
    if attention_type not in ATTENTION_TYPES:
        raise ValueError(f"attention_type '{attention_type}' is unknown; use one of {', '.join(ATTENTION_TYPES)}")
    n = (img_size // patch_size) ** 2  # patches per frame
    t, d = num_frames, embed_dim
    hidden = int(d * mlp_ratio)
    patch_embed = t * n * (in_channels * patch_size * patch_size) * d

    if attention_type == "divided_space_time":
        # Temporal attention on the N*T patch tokens in N sequences of T, plus temporal_fc (D -> D);
        # spatial attention per frame on [CLS + N patches]; the MLP on the 1 + N*T clip tokens.
        temporal = _attention_macs(n * t, t, d) + n * t * d * d
        spatial = _attention_macs(t * (1 + n), 1 + n, d)
        mlp_rows = 1 + n * t
        scores = 2 * n * t * t * d + 2 * t * (1 + n) * (1 + n) * d
        per_block = temporal + spatial
    elif attention_type == "space_only":
        rows = t * (1 + n)
        per_block = _attention_macs(rows, 1 + n, d)
        mlp_rows = rows
        scores = 2 * rows * (1 + n) * d
    else:  # joint_space_time: one sequence of all 1 + N*T tokens
        rows = 1 + n * t
        per_block = _attention_macs(rows, rows, d)
        mlp_rows = rows
        scores = 2 * rows * rows * d
    per_block += 2 * mlp_rows * d * hidden  # fc1 and fc2
    blocks = depth * per_block
    head = d * num_classes
    return {
        "patch_embed": patch_embed,
        "blocks": blocks,
        "attention_scores": depth * scores,
        "head": head,
        "total": patch_embed + blocks + head,
    }


def timesformer_flops(train=False, **shape):
    """FLOPs (2 x MACs) of one clip: a forward pass, or with ``train=True`` forward + backward.

    The backward pass of a matrix product costs two products (gradient of the input and of the
    weight), except the patch embedding, whose input (the video) needs no gradient. Keyword
    arguments are those of :func:`timesformer_forward_macs`.
    """
    macs = timesformer_forward_macs(**shape)
    forward = 2 * macs["total"]
    if not train:
        return forward
    return forward + 2 * (2 * macs["total"] - macs["patch_embed"])


def flops_from_config(model_cfg, num_frames=None, train=False):
    """FLOPs per clip (one view) for a ``MODEL`` config section (``backbone`` + ``head`` keys).

    ``num_frames`` defaults to ``backbone.num_seg``. Missing keys take the VisionTransformer defaults.
    """
    backbone = model_cfg["backbone"]
    head = model_cfg.get("head") or {}
    return timesformer_flops(
        train=train,
        img_size=backbone.get("img_size", 224),
        patch_size=backbone.get("patch_size", 16),
        in_channels=backbone.get("in_channels", 3),
        embed_dim=backbone.get("embed_dim", 768),
        depth=backbone.get("depth", 12),
        mlp_ratio=backbone.get("mlp_ratio", 4),
        num_frames=num_frames or backbone.get("num_seg", 8),
        attention_type=backbone.get("attention_type", "divided_space_time"),
        num_classes=head.get("num_classes", 400),
    )
