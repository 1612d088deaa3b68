"""An independent float64 numpy TimeSformer, written from the published model description (PaddleVideo's
checkpoint names and shapes, divided / joint / space-only attention, the image-ViT conversion).

It never calls the library: weights come as a dict of numpy arrays with PaddleVideo names
(``backbone.*``, ``head.fc.*``; Linear weights ``[in, out]``), and loops over patch positions and
frames spell out the token grouping instead of reshaping a token layout. ``timesformer_feature(...,
maps=[])`` also returns every block's attention probabilities, gathered by the same loops.
"""

import math

import numpy as np

ATTENTION_TYPES = ("divided_space_time", "space_only", "joint_space_time")


def param_shapes(img_size, patch_size, in_channels, embed_dim, depth, num_seg, num_classes,
                 attention_type, mlp_ratio=4, prefix="backbone."):
    """Every parameter name and shape of the model, PaddleVideo's checkpoint names."""
    d, hidden = embed_dim, int(embed_dim * mlp_ratio)
    grid = (img_size // patch_size) ** 2
    shapes = {
        "cls_token": [1, 1, d],
        "pos_embed": [1, grid + 1, d],
        "patch_embed.proj.weight": [d, in_channels, patch_size, patch_size],
        "patch_embed.proj.bias": [d],
    }
    if attention_type != "space_only":
        shapes["time_embed"] = [1, num_seg, d]
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({b + "norm1.weight": [d], b + "norm1.bias": [d],
                       b + "attn.qkv.weight": [d, 3 * d], b + "attn.qkv.bias": [3 * d],
                       b + "attn.proj.weight": [d, d], b + "attn.proj.bias": [d]})
        if attention_type == "divided_space_time":
            shapes.update({b + "temporal_norm1.weight": [d], b + "temporal_norm1.bias": [d],
                           b + "temporal_attn.qkv.weight": [d, 3 * d], b + "temporal_attn.qkv.bias": [3 * d],
                           b + "temporal_attn.proj.weight": [d, d], b + "temporal_attn.proj.bias": [d],
                           b + "temporal_fc.weight": [d, d], b + "temporal_fc.bias": [d]})
        shapes.update({b + "norm2.weight": [d], b + "norm2.bias": [d],
                       b + "mlp.fc1.weight": [d, hidden], b + "mlp.fc1.bias": [hidden],
                       b + "mlp.fc2.weight": [hidden, d], b + "mlp.fc2.bias": [d]})
    shapes.update({"norm.weight": [d], "norm.bias": [d]})
    out = {prefix + k: v for k, v in shapes.items()}
    if num_classes:
        out.update({"head.fc.weight": [d, num_classes], "head.fc.bias": [num_classes]})
    return out


def random_params(shapes, seed=0):
    """Random float32 weights of a scale that keeps activations O(1); LayerNorm weights around 1."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in shapes.items():
        if "norm" in name and name.endswith(".weight"):
            params[name] = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("embed") or name.endswith("cls_token"):
            params[name] = 0.5 * rng.standard_normal(shape)
        elif len(shape) == 1:  # biases
            params[name] = 0.1 * rng.standard_normal(shape)
        else:  # Linear [in, out] or Conv [out, in, k, k]: scale by fan-in
            fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))
            params[name] = rng.standard_normal(shape) / np.sqrt(fan_in)
        params[name] = params[name].astype(np.float32)
    return params


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def linear(x, p, name):
    return x @ p[name + ".weight"].astype(np.float64) + p[name + ".bias"].astype(np.float64)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x):
    """Exact GELU, ``x * Phi(x)`` with the erf form of the normal CDF."""
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention(x, p, name, num_heads, probs=None):
    """Multi-head self-attention of one sequence batch ``x`` ``[B, L, D]``; appends the probabilities
    ``[B, heads, L, L]`` to the list ``probs`` when given."""
    batch, length, dim = x.shape
    hd = dim // num_heads
    qkv = linear(x, p, name + ".qkv")
    q, k, v = qkv[..., :dim], qkv[..., dim:2 * dim], qkv[..., 2 * dim:]
    out = np.zeros_like(x)
    heads = []
    for h in range(num_heads):
        sl = slice(h * hd, (h + 1) * hd)
        weights = softmax(q[..., sl] @ np.swapaxes(k[..., sl], 1, 2) * hd ** -0.5)
        heads.append(weights)
        out[..., sl] = weights @ v[..., sl]
    if probs is not None:
        probs.append(np.stack(heads, axis=1))
    return linear(out, p, name + ".proj")


def _rows(per_item):
    """Per-item probabilities ``[B, heads, L, L]`` for items i (patch positions or frames) -> ``[B*I, ...]``
    with row ``b*I + i``."""
    stacked = np.stack(per_item, axis=1)  # [B, I, heads, L, L]
    return stacked.reshape((-1,) + stacked.shape[2:])


def mlp(x, p, name):
    return linear(gelu(linear(x, p, name + ".fc1")), p, name + ".fc2")


def norm(x, p, name, eps):
    return layer_norm(x, p[name + ".weight"], p[name + ".bias"], eps)


def patch_embed(frames, p, name, patch):
    """``[B, C, H, W]`` -> ``[B, N, D]`` with patch index ``row * grid_w + col``."""
    weight, bias = p[name + ".weight"].astype(np.float64), p[name + ".bias"].astype(np.float64)
    batch, _, height, width = frames.shape
    rows, cols = height // patch, width // patch
    out = np.zeros((batch, rows * cols, weight.shape[0]))
    for r in range(rows):
        for c in range(cols):
            window = frames[:, :, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch]
            out[:, r * cols + c] = np.einsum("bchw,dchw->bd", window, weight) + bias
    return out


def image_vit_cls(p, images, patch, num_heads, depth, eps, prefix=""):
    """A plain image ViT (PaddleClas naming with ``prefix``): ``[B, C, H, W]`` -> CLS feature ``[B, D]``."""
    x = _image_tokens(p, images.astype(np.float64), patch, prefix)
    for i in range(depth):
        b = f"{prefix}blocks.{i}."
        x = x + attention(norm(x, p, b + "norm1", eps), p, b + "attn", num_heads)
        x = x + mlp(norm(x, p, b + "norm2", eps), p, b + "mlp")
    return norm(x, p, prefix + "norm", eps)[:, 0]


def _image_tokens(p, images, patch, prefix):
    tokens = patch_embed(images, p, prefix + "patch_embed.proj", patch)
    cls = np.broadcast_to(p[prefix + "cls_token"][:, 0].astype(np.float64), (images.shape[0], tokens.shape[2]))
    return np.concatenate([cls[:, None], tokens], axis=1) + p[prefix + "pos_embed"].astype(np.float64)


def timesformer_feature(p, clip, patch, num_heads, depth, eps, attention_type, maps=None):
    """TimeSformer backbone: clip ``[B, C, T, H, W]`` -> CLS feature ``[B, D]`` (float64). With a list ``maps``,
    appends one dict per block: ``temporal`` ``[B*N, heads, T, T]`` and ``spatial`` ``[B*T, heads, 1+N, 1+N]``
    (divided), ``spatial`` (space_only) or ``joint`` ``[B, heads, 1+N*T, 1+N*T]``."""
    clip = clip.astype(np.float64)
    records = [{} for _ in range(depth)]
    if attention_type == "space_only":
        feature = _space_only_feature(p, clip, patch, num_heads, depth, eps, records)
    else:
        feature = _clip_feature(p, clip, patch, num_heads, depth, eps, attention_type, records)
    if maps is not None:
        maps.extend(records)
    return feature


def _space_only_feature(p, clip, patch, num_heads, depth, eps, records, pre="backbone."):
    """Each frame through the image ViT; the CLS tokens averaged over the frames, then the final norm."""
    per_frame, probs = [], [[] for _ in range(depth)]
    for t in range(clip.shape[2]):
        x = _image_tokens(p, clip[:, :, t], patch, pre)
        for i in range(depth):
            b = f"{pre}blocks.{i}."
            x = x + attention(norm(x, p, b + "norm1", eps), p, b + "attn", num_heads, probs[i])
            x = x + mlp(norm(x, p, b + "norm2", eps), p, b + "mlp")
        per_frame.append(x)
    for i in range(depth):
        records[i]["spatial"] = _rows(probs[i])
    return norm(np.mean(per_frame, axis=0), p, pre + "norm", eps)[:, 0]


def _clip_feature(p, clip, patch, num_heads, depth, eps, attention_type, records, pre="backbone."):
    """Divided or joint space-time attention over the clip's tokens; the CLS token's feature."""
    batch, _, frames, _, _ = clip.shape
    # Tokens per frame with position embedding; one clip CLS (its position added once).
    tokens = np.stack([_image_tokens(p, clip[:, :, t], patch, pre) for t in range(frames)], axis=1)  # [B,T,1+N,D]
    cls = tokens[:, 0, 0]
    patches = np.transpose(tokens[:, :, 1:], (0, 2, 1, 3)).copy()  # P[b, n, t] = patch n of frame t
    time_embed = p[pre + "time_embed"][0].astype(np.float64)
    t0 = time_embed.shape[0]
    for t in range(frames):
        patches[:, :, t] += time_embed[(t * t0) // frames]
    num_patches = patches.shape[1]

    for i in range(depth):
        b = f"{pre}blocks.{i}."
        if attention_type == "joint_space_time":
            seq = np.concatenate([cls[:, None], patches.reshape(batch, num_patches * frames, -1)], axis=1)
            probs = []
            seq = seq + attention(norm(seq, p, b + "norm1", eps), p, b + "attn", num_heads, probs)
            records[i]["joint"] = probs[0]
            cls, patches = seq[:, 0], seq[:, 1:].reshape(patches.shape)
        else:
            cls, patches = _divided_attention(p, b, cls, patches, num_heads, eps, records[i])
        cls = cls + mlp(norm(cls, p, b + "norm2", eps), p, b + "mlp")
        patches = patches + mlp(norm(patches, p, b + "norm2", eps), p, b + "mlp")
    # The final LayerNorm acts per token, so the CLS feature only needs the CLS token.
    return norm(cls, p, pre + "norm", eps)


def _divided_attention(p, b, cls, patches, num_heads, eps, record):
    """Temporal attention per patch position, then spatial attention per frame with the clip CLS."""
    num_patches, frames = patches.shape[1], patches.shape[2]
    new, probs = patches.copy(), []
    for n in range(num_patches):  # temporal attention over the frames of patch n
        res = attention(norm(patches[:, n], p, b + "temporal_norm1", eps), p, b + "temporal_attn", num_heads, probs)
        new[:, n] = patches[:, n] + linear(res, p, b + "temporal_fc")
    record["temporal"] = _rows(probs)
    patches = new
    new, cls_out, probs = patches.copy(), [], []
    for t in range(frames):  # spatial attention inside frame t, with the clip CLS
        seq = np.concatenate([cls[:, None], patches[:, :, t]], axis=1)
        res = attention(norm(seq, p, b + "norm1", eps), p, b + "attn", num_heads, probs)
        cls_out.append(res[:, 0])
        new[:, :, t] = patches[:, :, t] + res[:, 1:]
    record["spatial"] = _rows(probs)
    return cls + np.mean(cls_out, axis=0), new


def head_scores(p, feature):
    return linear(feature, p, "head.fc")


def infer_scores(p, clips, num_seg, avg_type, **model):
    """Recognizer test/infer: ``[B, C, V*num_seg, H, W]`` -> view-averaged ``[B, K]`` (score or prob)."""
    views = clips.shape[2] // num_seg
    results = []
    for v in range(views):
        scores = head_scores(p, timesformer_feature(p, clips[:, :, v * num_seg:(v + 1) * num_seg], **model))
        results.append(softmax(scores) if avg_type == "prob" else scores)
    return np.mean(results, axis=0)


def bilinear_align_corners(grid, new_h, new_w):
    """Resize ``[H, W, C]`` bilinearly sampling at ``y = i * (H - 1) / (new_h - 1)`` (corner aligned)."""
    old_h, old_w, _ = grid.shape
    out = np.zeros((new_h, new_w, grid.shape[2]))
    for i in range(new_h):
        y = i * (old_h - 1) / (new_h - 1) if new_h > 1 else 0.0
        y0 = min(int(np.floor(y)), old_h - 1)
        y1, wy = min(y0 + 1, old_h - 1), y - y0
        for j in range(new_w):
            x = j * (old_w - 1) / (new_w - 1) if new_w > 1 else 0.0
            x0 = min(int(np.floor(x)), old_w - 1)
            x1, wx = min(x0 + 1, old_w - 1), x - x0
            out[i, j] = ((1 - wy) * (1 - wx) * grid[y0, x0] + (1 - wy) * wx * grid[y0, x1]
                         + wy * (1 - wx) * grid[y1, x0] + wy * wx * grid[y1, x1])
    return out
