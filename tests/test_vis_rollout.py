"""Attention rollout against an independent computation: the full (1 + N*T)-token matrices of every layer,
built entry by entry from the block's token flow (vit.py), multiplied out in numpy.

The library never builds these matrices (it moves a row vector through a factorised form); here every
entry is written from the flow itself: temporal attention within a patch position, spatial attention per
frame over [CLS copy, that frame's patches], the clip CLS the mean of its T frame copies.
"""

import numpy as np
import pytest

from paddlevideo.visualization import rollout as R

B, T, N, HEADS, DEPTH = 2, 3, 4, 3, 3  # N = 4 patches: a 2 x 2 grid


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_divided(seed, batch=B, frames=T, patches=N, heads=HEADS, depth=DEPTH):
    rng = np.random.default_rng(seed)
    return [{"temporal": softmax(3 * rng.normal(size=(batch * patches, heads, frames, frames))),
             "spatial": softmax(3 * rng.normal(size=(batch * frames, heads, 1 + patches, 1 + patches)))}
            for _ in range(depth)]


def fuse(attn, heads):
    """Head fusion written out again: the mean, or the maximum with rows rescaled to sum to 1."""
    if heads == "mean":
        return attn.mean(axis=0)
    top = attn.max(axis=0)
    return top / top.sum(axis=1, keepdims=True)


def token(n, t, frames=T, patches=N, layout="space_major"):
    """Index of patch n of frame t among the 1 + N*T tokens."""
    return 1 + (n * frames + t if layout == "space_major" else t * patches + n)


def residual(matrix):
    matrix = matrix + np.eye(len(matrix))
    return matrix / matrix.sum(axis=1, keepdims=True)


def full_divided_matrices(block, b, heads, frames=T, patches=N, layout="space_major"):
    """The temporal and the spatial mixing matrix of one divided block for clip b, entry by entry."""
    size = 1 + patches * frames
    temporal = block["temporal"].reshape(-1, patches, *block["temporal"].shape[1:])[b]  # [N, heads, T, T]
    spatial = block["spatial"].reshape(-1, frames, *block["spatial"].shape[1:])[b]  # [T, heads, 1+N, 1+N]
    mix_t = np.zeros((size, size))
    mix_t[0, 0] = 1.0  # the CLS takes no part in temporal attention
    for n in range(patches):
        a = fuse(temporal[n], heads)
        for t in range(frames):
            for s in range(frames):
                mix_t[token(n, t, frames, patches, layout), token(n, s, frames, patches, layout)] = a[t, s]
    mix_s = np.zeros((size, size))
    for t in range(frames):
        a = fuse(spatial[t], heads)
        mix_s[0, 0] += a[0, 0] / frames  # the clip CLS: mean of its T per-frame copies
        for m in range(patches):
            mix_s[0, token(m, t, frames, patches, layout)] += a[0, 1 + m] / frames
        for n in range(patches):
            mix_s[token(n, t, frames, patches, layout), 0] = a[1 + n, 0]
            for m in range(patches):
                mix_s[token(n, t, frames, patches, layout), token(m, t, frames, patches, layout)] = a[1 + n, 1 + m]
    return residual(mix_t), residual(mix_s)


def full_divided_relevance(blocks, heads, frames=T, patches=N):
    """CLS row of the product of all layers, ``[B, 1 + N*T]``, by explicit matrix products (first block first)."""
    return full_divided_relevance_layout(blocks, heads, "space_major", frames, patches)


def full_divided_relevance_layout(blocks, heads, layout, frames=T, patches=N):
    """:func:`full_divided_relevance` with the tokens numbered in ``layout``."""
    batch = blocks[0]["spatial"].shape[0] // frames
    rows = []
    for b in range(batch):
        product = np.eye(1 + patches * frames)
        for block in blocks:
            mix_t, mix_s = full_divided_matrices(block, b, heads, frames, patches, layout)
            product = mix_s @ mix_t @ product  # temporal, then spatial
        rows.append(product[0])
    return np.array(rows)


def maps_from_tokens(relevance, layout, frames=T, patches=N):
    """Token relevance ``[B, 1 + N*T]`` -> ``[B, T, N]`` normalised maps, reading the tokens in ``layout``."""
    patch = relevance[:, 1:] / relevance[:, 1:].sum(axis=1, keepdims=True)
    if layout == "space_major":
        return patch.reshape(-1, patches, frames).transpose(0, 2, 1)
    return patch.reshape(-1, frames, patches)


@pytest.mark.parametrize("heads", ["mean", "max"])
def test_divided_rollout_equals_the_full_matrix_product(heads):
    blocks = random_divided(0)
    expected = full_divided_relevance(blocks, heads)
    np.testing.assert_allclose(R.divided_rollout(blocks, T, heads), expected, rtol=0, atol=1e-12)
    result = R.attention_rollout(blocks, "divided_space_time", T, heads, grid=(2, 2))
    assert result.maps.shape == (B, T, 2, 2) and result.temporal_share.shape == (B, T)
    np.testing.assert_allclose(result.maps.reshape(B, T, N), maps_from_tokens(expected, "space_major"), atol=1e-12)
    np.testing.assert_allclose(result.temporal_share, result.maps.sum(axis=(2, 3)), atol=1e-12)
    np.testing.assert_allclose(result.cls_self, expected[:, 0], atol=1e-12)


def test_time_major_layout_gives_a_different_map():
    """The token order matters: time-major instead of ``n*T + t`` (the known mistake) moves the heat."""
    blocks = random_divided(1)
    result = R.attention_rollout(blocks, "divided_space_time", T, "mean", grid=(2, 2)).maps.reshape(B, T, N)
    right = full_divided_relevance(blocks, "mean")
    np.testing.assert_allclose(maps_from_tokens(right, "space_major"), result, atol=1e-12)
    # the right relevance read back time-major
    assert np.abs(maps_from_tokens(right, "time_major") - result).max() > 0.02
    # the layers' matrices built with time-major token indices, read back as the model lays tokens out
    built_wrong = full_divided_relevance_layout(blocks, "mean", "time_major")
    assert np.abs(maps_from_tokens(built_wrong, "space_major") - result).max() > 0.02


def test_divided_rollout_on_a_larger_unequal_case():
    blocks = random_divided(2, batch=1, frames=4, patches=6, heads=2, depth=2)
    expected = full_divided_relevance(blocks, "max", frames=4, patches=6)
    result = R.attention_rollout(blocks, "divided_space_time", 4, "max", grid=(2, 3))
    np.testing.assert_allclose(result.maps.reshape(1, 4, 6), maps_from_tokens(expected, "space_major", 4, 6),
                               atol=1e-12)


def test_uniform_attention_gives_uniform_maps():
    """By symmetry, attention spread evenly everywhere leaves every patch of every frame equally relevant."""
    blocks = [{"temporal": np.full((B * N, HEADS, T, T), 1.0 / T),
               "spatial": np.full((B * T, HEADS, 1 + N, 1 + N), 1.0 / (1 + N))} for _ in range(2)]
    result = R.attention_rollout(blocks, "divided_space_time", T, "mean")
    np.testing.assert_allclose(result.maps, 1.0 / (T * N), atol=1e-14)
    np.testing.assert_allclose(result.temporal_share, 1.0 / T, atol=1e-14)


def test_attention_to_one_frame_moves_the_share_to_it():
    """Temporal attention that reads only frame 0 (spatial attention uniform): frame 0 gains the largest share."""
    temporal = np.zeros((B * N, HEADS, T, T))
    temporal[..., 0] = 1.0
    blocks = [{"temporal": temporal, "spatial": np.full((B * T, HEADS, 1 + N, 1 + N), 1.0 / (1 + N))}] * 3
    share = R.attention_rollout(blocks, "divided_space_time", T, "mean").temporal_share
    assert np.all(share[:, 0] > 0.5) and np.all(np.argmax(share, axis=1) == 0)


def test_joint_rollout_equals_the_matrix_product():
    rng = np.random.default_rng(3)
    size = 1 + N * T
    blocks = [{"joint": softmax(2 * rng.normal(size=(B, HEADS, size, size)))} for _ in range(DEPTH)]
    for heads in ("mean", "max"):
        rows = []
        for b in range(B):
            product = np.eye(size)
            for block in blocks:
                product = residual(fuse(block["joint"][b], heads)) @ product
            rows.append(product[0])
        result = R.attention_rollout(blocks, "joint_space_time", T, heads)
        np.testing.assert_allclose(result.maps.reshape(B, T, N), maps_from_tokens(np.array(rows), "space_major"),
                                   atol=1e-12)


def test_space_only_rollout_is_per_frame_and_its_share_uniform():
    rng = np.random.default_rng(4)
    blocks = [{"spatial": softmax(2 * rng.normal(size=(B * T, HEADS, 1 + N, 1 + N)))} for _ in range(DEPTH)]
    result = R.attention_rollout(blocks, "space_only", T, "mean")
    np.testing.assert_allclose(result.temporal_share, 1.0 / T, atol=1e-14)
    for b in range(B):
        for t in range(T):
            product = np.eye(1 + N)
            for block in blocks:
                product = residual(block["spatial"][b * T + t].mean(axis=0)) @ product
            patches = product[0, 1:]
            np.testing.assert_allclose(result.maps[b, t].reshape(-1), patches / patches.sum() / T, atol=1e-12)
    # the frames' maps differ (the share is uniform by construction, the maps are not)
    assert np.abs(result.maps[:, 0] - result.maps[:, 1]).max() > 1e-3


def test_fuse_heads_and_input_errors():
    attn = softmax(np.random.default_rng(5).normal(size=(2, 4, 5, 5)))
    np.testing.assert_allclose(R.fuse_heads(attn, "max").sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(R.fuse_heads(attn, "mean"), attn.mean(axis=1), atol=1e-15)
    with pytest.raises(ValueError, match="heads must be one of"):
        R.fuse_heads(attn, "median")
    blocks = random_divided(6)
    with pytest.raises(ValueError, match="attention_type"):
        R.attention_rollout(blocks, "divided", T)
    with pytest.raises(ValueError, match="block 1: temporal attention has shape"):
        R.attention_rollout([blocks[0], {"temporal": blocks[1]["temporal"][:, :, :2, :2],
                                         "spatial": blocks[1]["spatial"]}], "divided_space_time", T)
    with pytest.raises(ValueError, match="no 'temporal' attention"):
        R.attention_rollout([{"spatial": blocks[0]["spatial"]}], "divided_space_time", T)
    with pytest.raises(ValueError, match="not a square grid"):
        R.attention_rollout(random_divided(7, patches=6), "divided_space_time", T)
