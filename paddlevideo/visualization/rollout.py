"""Attention rollout (Abnar & Zuidema, 2020) for TimeSformer's divided, joint and space-only attention.

Rollout follows how much of each input token flows into the clip's CLS token through the attention
layers. Each attention layer mixes tokens with its probabilities ``A`` and adds the residual stream, so it
is modelled as ``Â = D⁻¹ (Ā + I)``: ``Ā`` the heads fused (their mean, or their maximum with rows
renormalised), the identity added for the residual connection, rows renormalised to sum to 1 (``D`` the
row sums; ``Â = (Ā + I) / 2`` where ``Ā`` is row-stochastic). The MLP acts on
each token alone and is the identity here. The relevance of the input tokens for the clip CLS is the
CLS row of the product of all layers, ``r = e_CLS Â_last ... Â_first``, computed right to left as a row
vector (never a full product of matrices).

Token layout (as in ``modeling/backbones/vit.py``): index 0 is the clip CLS, patch ``n`` of frame ``t`` is
token ``1 + n*T + t`` (spatial index major, time minor); ``n = row * (W/p) + col``.

Divided space-time attention, one block on the full ``1 + N*T`` tokens (docs/visualization.md derives it):

- temporal: the CLS is untouched; patch ``(n, t)`` mixes the T tokens of position ``n`` with
  ``Â_t[n] = D⁻¹ (A_t[n] + I)`` (``temporal_fc`` is a linear map of the attention output: no mixing).
- spatial: frame ``t`` attends over ``[CLS, patches of t]`` with ``S_t`` (``1 + N`` square). Patch
  ``(n, t)`` reads the CLS with ``S_t[1+n, 0]`` and patch ``(m, t)`` with ``S_t[1+n, 1+m]``; the clip CLS
  gets the mean over frames of the T per-frame CLS outputs, so it reads itself with ``mean_t S_t[0, 0]``
  and patch ``(m, t)`` with ``S_t[0, 1+m] / T``. Add I, renormalise the rows.

Space-only: every frame is its own ViT with its own CLS copy and the clip feature is the mean of the T
frame CLS tokens, so frame ``t``'s input tokens get ``1/T`` of the relevance between them. Joint: one
attention over all ``1 + N*T`` tokens.

Output: the relevance each patch of each frame has for the clip CLS, ``maps [B, T, H/p, W/p]``. The CLS
token's relevance for itself (it carries no pixels) is shared out in proportion over the patches it stands
for (every patch of the clip; in space-only, the patches of its frame), so each clip's map sums to 1 and
``temporal_share [B, T]`` (each frame's share) is the sum of its frame's map.
"""

from collections import namedtuple

import numpy as np

HEAD_FUSIONS = ("mean", "max")
ATTENTION_TYPES = ("divided_space_time", "joint_space_time", "space_only")

Rollout = namedtuple("Rollout", ["maps", "temporal_share", "token_relevance", "cls_self"])
Rollout.__doc__ = """Result of :func:`attention_rollout` (float64 arrays).

maps: ``[B, T, h, w]`` relevance of each patch of each frame for the clip CLS; each clip sums to 1.
temporal_share: ``[B, T]`` each frame's share (``maps`` summed over the frame); sums to 1.
token_relevance: ``[B, N*T]`` the same values in token order ``n*T + t`` (what ``maps`` was reshaped from).
cls_self: ``[B]`` the relevance the CLS kept for itself before it was shared out (mean over frames for
    space-only): how much of the class token is its own learned state rather than the clip's pixels.
"""


def fuse_heads(attn, heads="mean"):
    """``[..., heads, L, L]`` attention probabilities -> ``[..., L, L]`` row-stochastic (float64): the
    mean over heads, or the per-head maximum with its rows renormalised to sum to 1. The maximum keeps a
    token that one head attends strongly; renormalising it keeps the attention's weight against the
    residual identity at one half, as with the mean."""
    if heads not in HEAD_FUSIONS:
        raise ValueError(f"heads must be one of {', '.join(HEAD_FUSIONS)}, got '{heads}'")
    attn = np.asarray(attn)
    if attn.ndim < 3 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"attention must be [..., heads, L, L], got shape {attn.shape}")
    if heads == "mean":  # accumulated in float64 without a float64 copy of all heads (joint ViT-B: 118 MB each)
        return attn.mean(axis=-3, dtype=np.float64)
    fused = attn.max(axis=-3).astype(np.float64)
    return fused / fused.sum(axis=-1, keepdims=True)


def add_residual(fused):
    """``D⁻¹ (A + I)`` for ``[..., L, L]``: one attention layer with its residual connection, rows
    renormalised to sum to 1."""
    mixed = fused + np.eye(fused.shape[-1])
    return mixed / mixed.sum(axis=-1, keepdims=True)


def _temporal_step(relevance, temporal, batch, num_patches, num_frames):
    """``r <- r Â_t`` on ``[B, 1 + N*T]`` with the fused temporal attention ``[B*N, T, T]``."""
    mixing = add_residual(temporal).reshape(batch, num_patches, num_frames, num_frames)
    patches = relevance[:, 1:].reshape(batch, num_patches, num_frames)  # [B, N, T]: token n*T + t
    out = relevance.copy()
    out[:, 1:] = np.einsum("bnt,bnts->bns", patches, mixing).reshape(batch, -1)
    return out


def _spatial_step(relevance, spatial, batch, num_patches, num_frames):
    """``r <- r Â_s`` on ``[B, 1 + N*T]`` with the fused spatial attention ``[B*T, 1+N, 1+N]`` of a divided
    block: per-frame rows for the patches, the frame-mean row for the clip CLS (module docstring)."""
    frames = spatial.reshape(batch, num_frames, 1 + num_patches, 1 + num_patches)  # S_t
    # Patch rows (n, t): [S_t[1+n, :] + e_(1+n)] / (row sum + 1), in frame-local columns [CLS, patches of t].
    patch_rows = add_residual(frames)[:, :, 1:, :]  # [B, T, N, 1+N]
    # Clip CLS row: mean_t S_t[0, :] spread over the frames, plus 1 on itself, renormalised.
    cls_rows = frames[:, :, 0, :] / num_frames  # [B, T, 1+N]
    cls_total = cls_rows.sum(axis=(1, 2)) + 1.0  # [B]
    cls_to_cls = (cls_rows[:, :, 0].sum(axis=1) + 1.0) / cls_total  # [B]
    cls_to_patch = cls_rows[:, :, 1:] / cls_total[:, None, None]  # [B, T, N]: to patch (m, t)

    r_cls = relevance[:, 0]
    r_patch = relevance[:, 1:].reshape(batch, num_patches, num_frames).transpose(0, 2, 1)  # [B, T, N]
    from_patches = np.einsum("btn,btnj->btj", r_patch, patch_rows)  # [B, T, 1+N], frame-local columns
    new_cls = r_cls * cls_to_cls + from_patches[:, :, 0].sum(axis=1)
    new_patch = r_cls[:, None, None] * cls_to_patch + from_patches[:, :, 1:]  # [B, T, N]
    out = np.empty_like(relevance)
    out[:, 0] = new_cls
    out[:, 1:] = new_patch.transpose(0, 2, 1).reshape(batch, -1)  # back to token order n*T + t
    return out


def _block_array(block, key, index):
    try:
        return block[key]
    except (KeyError, TypeError):
        raise ValueError(f"block {index} has no '{key}' attention (keys: {sorted(block)})") from None


def _check_shape(array, expected, what, index):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"block {index}: {what} attention has shape {tuple(array.shape)}, expected {tuple(expected)}")


def divided_rollout(blocks, num_frames, heads="mean"):
    """Relevance ``[B, 1 + N*T]`` of the input tokens (CLS, then ``n*T + t``) for the clip CLS of a divided
    space-time model.

    Args:
        blocks: per block, first to last, ``{'temporal': [B*N, heads, T, T], 'spatial': [B*T, heads, 1+N, 1+N]}``.
        num_frames: T.
        heads: ``mean`` | ``max`` (:func:`fuse_heads`).
    """
    if not blocks:
        raise ValueError("no attention blocks to roll out")
    spatial0 = np.asarray(_block_array(blocks[0], "spatial", 0))
    if spatial0.ndim != 4 or spatial0.shape[0] % num_frames:
        raise ValueError(f"block 0: spatial attention must be [B*T, heads, 1+N, 1+N] with T={num_frames}, "
                         f"got shape {spatial0.shape}")
    batch, num_heads, num_patches = spatial0.shape[0] // num_frames, spatial0.shape[1], spatial0.shape[-1] - 1
    relevance = np.zeros((batch, 1 + num_patches * num_frames))
    relevance[:, 0] = 1.0
    for index in reversed(range(len(blocks))):
        temporal = np.asarray(_block_array(blocks[index], "temporal", index))
        spatial = np.asarray(_block_array(blocks[index], "spatial", index))
        _check_shape(temporal, (batch * num_patches, num_heads, num_frames, num_frames), "temporal", index)
        _check_shape(spatial, (batch * num_frames, num_heads, 1 + num_patches, 1 + num_patches), "spatial", index)
        # The block applies temporal then spatial mixing; the row vector meets them in reverse.
        relevance = _spatial_step(relevance, fuse_heads(spatial, heads), batch, num_patches, num_frames)
        relevance = _temporal_step(relevance, fuse_heads(temporal, heads), batch, num_patches, num_frames)
    return relevance


def _single_attention_rollout(blocks, key, heads):
    """CLS rows ``[B', L]`` for blocks with one attention each, ``{key: [B', heads, L, L]}``."""
    if not blocks:
        raise ValueError("no attention blocks to roll out")
    first = np.asarray(_block_array(blocks[0], key, 0))
    if first.ndim != 4:
        raise ValueError(f"block 0: {key} attention must be [B', heads, L, L], got shape {first.shape}")
    relevance = np.zeros((first.shape[0], first.shape[-1]))
    relevance[:, 0] = 1.0
    for index in reversed(range(len(blocks))):
        attn = np.asarray(_block_array(blocks[index], key, index))
        _check_shape(attn, first.shape, key, index)
        relevance = np.einsum("bi,bij->bj", relevance, add_residual(fuse_heads(attn, heads)))
    return relevance


def joint_rollout(blocks, heads="mean"):
    """Relevance ``[B, 1 + N*T]`` for a joint space-time model; ``blocks``: ``{'joint': [B, heads, L, L]}``
    per block with ``L = 1 + N*T`` in the divided model's token order."""
    return _single_attention_rollout(blocks, "joint", heads)


def space_only_rollout(blocks, num_frames, heads="mean"):
    """Relevance ``[B, T, 1 + N]`` of each frame's tokens (its CLS copy, its patches) for that frame's CLS
    output, of a space-only model; ``blocks``: ``{'spatial': [B*T, heads, 1+N, 1+N]}`` per block."""
    relevance = _single_attention_rollout(blocks, "spatial", heads)
    if relevance.shape[0] % num_frames:
        raise ValueError(f"spatial attention holds {relevance.shape[0]} frames, not a multiple of T={num_frames}")
    return relevance.reshape(-1, num_frames, relevance.shape[-1])


def _grid(num_patches, grid):
    if grid is None:
        side = int(round(num_patches ** 0.5))
        if side * side != num_patches:
            raise ValueError(f"{num_patches} patches per frame is not a square grid; pass grid=(rows, cols)")
        return side, side
    rows, cols = (int(v) for v in grid)
    if rows * cols != num_patches:
        raise ValueError(f"grid {rows}x{cols} does not hold the {num_patches} patches per frame")
    return rows, cols


def attention_rollout(blocks, attention_type, num_frames, heads="mean", grid=None):
    """Per-patch relevance maps and per-frame shares for the clip's CLS token.

    Args:
        blocks: per block, first to last, a dict of attention probabilities (numpy, softmax rows):
            ``divided_space_time``: ``temporal [B*N, heads, T, T]`` and ``spatial [B*T, heads, 1+N, 1+N]``;
            ``joint_space_time``: ``joint [B, heads, 1+N*T, 1+N*T]``;
            ``space_only``: ``spatial [B*T, heads, 1+N, 1+N]``.
            (:func:`paddlevideo.visualization.attention.collect_attention` returns this.)
        attention_type: the backbone's ``attention_type``.
        num_frames: T, frames per clip.
        heads: ``mean`` (average the heads) or ``max`` (the per-head maximum), see :func:`fuse_heads`.
        grid: ``(rows, cols)`` of patches per frame (``H/p, W/p``); None for a square grid.
    Returns:
        :class:`Rollout` with ``maps [B, T, rows, cols]`` and ``temporal_share [B, T]``.
    """
    if attention_type not in ATTENTION_TYPES:
        raise ValueError(f"attention_type '{attention_type}' is unknown; use one of {', '.join(ATTENTION_TYPES)}")
    num_frames = int(num_frames)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if attention_type == "space_only":
        per_frame = space_only_rollout(blocks, num_frames, heads)  # [B, T, 1+N]
        batch, num_patches = per_frame.shape[0], per_frame.shape[-1] - 1
        patches = per_frame[:, :, 1:]
        # each frame's tower carries 1/T of the clip feature; its CLS's self-relevance goes to its patches
        patches = patches / patches.sum(axis=-1, keepdims=True) / num_frames  # [B, T, N]
        token_relevance = patches.transpose(0, 2, 1).reshape(batch, -1)
        cls_self = per_frame[:, :, 0].mean(axis=1)
    else:
        if attention_type == "divided_space_time":
            relevance = divided_rollout(blocks, num_frames, heads)
        else:
            relevance = joint_rollout(blocks, heads)
        batch = relevance.shape[0]
        if (relevance.shape[1] - 1) % num_frames:
            raise ValueError(f"{relevance.shape[1] - 1} patch tokens do not split into {num_frames} frames")
        num_patches = (relevance.shape[1] - 1) // num_frames
        token_relevance = relevance[:, 1:] / relevance[:, 1:].sum(axis=1, keepdims=True)
        cls_self = relevance[:, 0]
    rows, cols = _grid(num_patches, grid)
    maps = token_relevance.reshape(batch, num_patches, num_frames).transpose(0, 2, 1)  # [B, T, N]
    maps = maps.reshape(batch, num_frames, rows, cols)
    return Rollout(maps, maps.sum(axis=(2, 3)), token_relevance, cls_self)
