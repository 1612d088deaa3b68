"""Analytic FLOP count of a TimeSformer (VisionTransformer backbone + Linear head).

Counts the multiply-adds of every matrix product (Linear layers, patch-embedding convolution,
attention scores and attention-weighted values) and reports FLOPs = 2 x MACs, the convention of
``docs/benchmarks.md`` (ViT-B/16, 8 x 224 x 224, one view: 392 GFLOP = 196 GMAC; the TimeSformer
paper's "0.59 TFLOPs" for 3 views counts MACs). Element-wise work (LayerNorm, GELU, softmax, adds)
is left out: it is < 1% of the FLOPs, though not of the time on a CPU.
"""

ATTENTION_TYPES = ("divided_space_time", "space_only", "joint_space_time")


def _attention_products(part, rows, seq_len, dim, num_heads, cls_query=False):
    """The products of one multi-head attention over ``rows`` tokens in sequences of ``seq_len``:
    qkv projection (D -> 3D), per-head scores q k^T and weights @ v, output projection (D -> D).
    With ``cls_query`` only the first token of each sequence queries (the model's last block)."""
    sequences, head_dim = rows // seq_len, dim // num_heads
    groups = sequences * num_heads
    if cls_query:
        return [
            (f"{part}.kv", 1, rows, dim, 2 * dim),
            (f"{part}.q", 1, sequences, dim, dim),
            (f"{part}.scores", groups, 1, head_dim, seq_len),
            (f"{part}.weighted_values", groups, 1, seq_len, head_dim),
            (f"{part}.proj", 1, sequences, dim, dim),
        ]
    return [
        (f"{part}.qkv", 1, rows, dim, 3 * dim),
        (f"{part}.scores", groups, seq_len, head_dim, seq_len),
        (f"{part}.weighted_values", groups, seq_len, seq_len, head_dim),
        (f"{part}.proj", 1, rows, dim, dim),
    ]


def timesformer_matmuls(img_size=224, patch_size=16, in_channels=3, embed_dim=768, depth=12, num_heads=12,
                        mlp_ratio=4, num_frames=8, attention_type="divided_space_time", num_classes=400,
                        executed=False, temporal_fc_folded=False):
    """Every matrix product of one forward pass on one clip ``[1, C, T, H, W]``, in execution order.

    Returns a list of ``(name, batch, m, k, n)``: ``batch`` independent ``[m, k] @ [k, n]`` products
    (the patch-embedding convolution is the GEMM it amounts to: kernel = stride = patch). The MACs
    are ``batch * m * k * n``; heads split D, so the head count changes the shapes, not the total.

    By default the model's nominal products, the count every implementation is measured by.
    ``executed=True``: the products this project's VisionTransformer runs, whose last block computes
    only the CLS token's output (``Block.forward_cls``); ``temporal_fc_folded`` (with ``executed``):
    also without ``temporal_fc``, merged into the temporal projection as ``prepare_for_inference`` does.
    """
    if attention_type not in ATTENTION_TYPES:
        raise ValueError(f"attention_type '{attention_type}' is unknown; use one of {', '.join(ATTENTION_TYPES)}")
    n = (img_size // patch_size) ** 2  # patches per frame
    t, d = num_frames, embed_dim
    hidden = int(d * mlp_ratio)
    products = [("patch_embed", 1, t * n, in_channels * patch_size * patch_size, d)]
    for index in range(depth):
        cls_only = executed and index == depth - 1
        block = []
        if attention_type == "divided_space_time":
            # Temporal attention on the N*T patch tokens in N sequences of T, plus temporal_fc (D -> D);
            # spatial attention per frame on [CLS + N patches]; the MLP on the 1 + N*T clip tokens.
            block += _attention_products("temporal_attn", n * t, t, d, num_heads)
            if not (executed and temporal_fc_folded):
                block.append(("temporal_fc", 1, n * t, d, d))
            block += _attention_products("attn", t * (1 + n), 1 + n, d, num_heads, cls_only)
            mlp_rows = 1 if cls_only else 1 + n * t
        elif attention_type == "space_only":
            block += _attention_products("attn", t * (1 + n), 1 + n, d, num_heads, cls_only)
            mlp_rows = t if cls_only else t * (1 + n)
        else:  # joint_space_time: one sequence of all 1 + N*T tokens
            block += _attention_products("attn", 1 + n * t, 1 + n * t, d, num_heads, cls_only)
            mlp_rows = 1 if cls_only else 1 + n * t
        block += [("mlp.fc1", 1, mlp_rows, d, hidden), ("mlp.fc2", 1, mlp_rows, hidden, d)]
        products += [(f"blocks.{index}.{name}", *shape) for name, *shape in block]
    products.append(("head", 1, 1, d, num_classes))
    return products


def timesformer_forward_macs(**shape):
    """Multiply-accumulates of one forward pass on one clip ``[1, C, T, H, W]``, as a dict by part.

    Returns ``{'patch_embed', 'blocks', 'attention_scores', 'head', 'total'}`` (``attention_scores``
    is the part of ``blocks`` spent in q k^T and weights @ v, reported for the profile discussion).
    Keyword arguments are those of :func:`timesformer_matmuls`.
    """
    macs = {"patch_embed": 0, "blocks": 0, "attention_scores": 0, "head": 0}
    for name, batch, m, k, n in timesformer_matmuls(**shape):
        part = name.split(".")[0]
        macs[part] += batch * m * k * n
        if name.endswith((".scores", ".weighted_values")):
            macs["attention_scores"] += batch * m * k * n
    macs["total"] = macs["patch_embed"] + macs["blocks"] + macs["head"]
    return macs


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


def shape_from_config(model_cfg, num_frames=None):
    """The keyword arguments of :func:`timesformer_matmuls` for a ``MODEL`` config section.

    ``num_frames`` defaults to ``backbone.num_seg``. Missing keys take the constructors' defaults.
    """
    backbone = {key: _value(model_cfg, "backbone", key) for key in (
        "img_size", "patch_size", "in_channels", "embed_dim", "depth", "num_heads", "mlp_ratio", "num_seg",
        "attention_type")}
    backbone["num_frames"] = num_frames or backbone.pop("num_seg")
    backbone.pop("num_seg", None)
    return dict(backbone, num_classes=_value(model_cfg, "head", "num_classes"))


def _value(model_cfg, kind, key):
    """``MODEL.<kind>.<key>``, else the default of the constructor its ``name`` selects."""
    from paddlevideo.config.schema import component_value

    return component_value({"MODEL": model_cfg}, f"MODEL.{kind}.{key}")


def flops_from_config(model_cfg, num_frames=None, train=False, **counting):
    """FLOPs per clip (one view) for a ``MODEL`` config section (``backbone`` + ``head`` keys); ``counting``:
    ``executed`` / ``temporal_fc_folded`` of :func:`timesformer_matmuls` (default: the nominal count)."""
    return timesformer_flops(train=train, **shape_from_config(model_cfg, num_frames), **counting)
