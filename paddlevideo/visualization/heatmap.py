"""Attention figures for one clip: the frame grid PNG, an animated GIF, the temporal-share plot, the raw JSON.

Inputs are the clip's frames as the model saw them (uint8 RGB ``[T, H, W, 3]``, the test pipeline's crop)
and a rollout's ``maps [T, h, w]`` / ``temporal_share [T]``. One colour scale serves the whole clip (the
clip's hottest patch is the top of the scale), so frames can be compared with each other. Drawing is
headless: matplotlib's Agg canvas (no pyplot, no display), Pillow for the GIF.
"""

import json
import math

import numpy as np

from .files import VisualizationError, atomic_output, write_text

COLORMAP = "turbo"
# The files :func:`save_attention_figures` writes for one clip.
FIGURE_FILES = ("attention_grid.png", "attention.gif", "temporal_share.png", "attention.json")
DISPLAY_SIDE = 224  # small frames (the demo's 32 px) are enlarged to about this for display


def _check(frames, maps):
    frames = np.asarray(frames)
    maps = np.asarray(maps, dtype=np.float64)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VisualizationError(f"frames must be uint8 RGB [T, H, W, 3], got shape {frames.shape}")
    if maps.ndim != 3 or maps.shape[0] != frames.shape[0]:
        raise VisualizationError(f"maps must be [T, h, w] with T = {frames.shape[0]} frames, got shape {maps.shape}")
    if not np.all(np.isfinite(maps)) or maps.min() < 0:
        raise VisualizationError("attention maps hold negative or non-finite values")
    return frames.astype(np.uint8), maps


def display_scale(height, width, side=DISPLAY_SIDE):
    """Integer enlargement that brings the short side of a frame to at least ``side`` pixels (1 if it is)."""
    return max(1, math.ceil(side / max(1, min(height, width))))


def upsample_maps(maps, height, width):
    """``[T, h, w]`` -> ``[T, height, width]``: bilinear with half-pixel centres (OpenCV ``INTER_LINEAR``)."""
    import cv2

    return np.stack([cv2.resize(np.asarray(m, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
                     for m in maps])


def overlay_heatmaps(frames, maps, alpha=0.5, scale=1):
    """Frames and their heat-map overlays, both enlarged ``scale`` times (nearest neighbour for the frames).

    Args:
        frames: uint8 RGB ``[T, H, W, 3]``.
        maps: ``[T, h, w]`` non-negative relevance; the clip's maximum is the top of the colour scale.
        alpha: weight of the colour map in the blend.
        scale: integer enlargement.
    Returns:
        ``(frames, overlays)``, uint8 ``[T, H*scale, W*scale, 3]`` each.
    """
    import matplotlib

    frames, maps = _check(frames, maps)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    heat = upsample_maps(maps, frames.shape[1], frames.shape[2])
    top = float(heat.max())
    heat = heat / top if top > 0 else heat
    colours = matplotlib.colormaps[COLORMAP](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    blend = (1.0 - alpha) * frames.astype(np.float64) + alpha * colours
    return frames, np.clip(np.rint(blend), 0, 255).astype(np.uint8)


def _column_titles(num_frames, temporal_share, frame_indices):
    titles = []
    for t in range(num_frames):
        title = f"frame {int(frame_indices[t])}" if frame_indices is not None else f"t={t}"
        if temporal_share is not None:
            title += f"\n{100.0 * float(temporal_share[t]):.1f}%"
        titles.append(title)
    return titles


def save_attention_grid(path, frames, maps, temporal_share=None, frame_indices=None, title=None):
    """PNG: the sampled frames in a row, and below each its heat-map overlay (one colour scale per clip).

    Args:
        path: output ``.png``.
        frames: uint8 RGB ``[T, H, W, 3]``; maps: ``[T, h, w]``.
        temporal_share: ``[T]`` shown under each frame's title (percent), optional.
        frame_indices: ``[T]`` the frames' indices in the video, for the titles, optional.
        title: the figure title.
    """
    from matplotlib.figure import Figure

    frames, maps = _check(frames, maps)
    num_frames, height, width = frames.shape[:3]
    big, overlays = overlay_heatmaps(frames, maps, scale=display_scale(height, width))
    aspect = height / width
    fig = Figure(figsize=(1.6 * num_frames + 0.8, 1.6 * 2 * aspect + 1.1), dpi=100)
    axes = fig.subplots(2, num_frames, squeeze=False)
    for t, name in enumerate(_column_titles(num_frames, temporal_share, frame_indices)):
        for row, image in enumerate((big[t], overlays[t])):
            axis = axes[row, t]
            axis.imshow(image, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0, t].set_title(name, fontsize=8)
    axes[0, 0].set_ylabel("frame", fontsize=8)
    axes[1, 0].set_ylabel("attention", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.03, right=0.99, bottom=0.02, top=0.80 if title else 0.88, wspace=0.05, hspace=0.05)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def save_attention_gif(path, frames, maps, fps=4.0):
    """Animated GIF (looping): each frame beside its overlay, enlarged for small frames."""
    from PIL import Image

    frames, maps = _check(frames, maps)
    big, overlays = overlay_heatmaps(frames, maps, scale=display_scale(*frames.shape[1:3]))
    gap = np.full((big.shape[1], max(2, big.shape[2] // 32), 3), 255, np.uint8)
    images = [Image.fromarray(np.concatenate([f, gap, o], axis=1)) for f, o in zip(big, overlays)]
    with atomic_output(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(round(1000.0 / fps)), loop=0)
    return path


def save_temporal_share_plot(path, temporal_share, frame_indices=None, title=None):
    """PNG bar chart: each frame's share of the clip's attention (percent), the uniform share dashed."""
    from matplotlib.figure import Figure

    share = np.asarray(temporal_share, dtype=np.float64).reshape(-1)
    if share.size == 0 or not np.all(np.isfinite(share)):
        raise VisualizationError("temporal share is empty or not finite")
    positions = np.arange(share.size)
    fig = Figure(figsize=(max(4.0, 0.55 * share.size + 1.5), 3.0), dpi=100)
    axis = fig.subplots()
    axis.bar(positions, 100.0 * share, color="#d9822b")
    axis.axhline(100.0 / share.size, color="0.3", linestyle="--", linewidth=1, label=f"uniform ({100.0 / share.size:.1f}%)")
    labels = [str(int(i)) for i in frame_indices] if frame_indices is not None else [str(int(i)) for i in positions]
    axis.set_xticks(positions)
    axis.set_xticklabels(labels, fontsize=8)
    axis.set_xlabel("frame in the video" if frame_indices is not None else "sampled frame")
    axis.set_ylabel("share of attention (%)")
    axis.legend(fontsize=8, loc="upper right")
    axis.set_title(title or "How much each frame contributes to the clip's class token", fontsize=9)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_attention_json(path, maps, temporal_share, **info):
    """JSON with the raw ``maps`` ``[T][h][w]``, ``temporal_share`` ``[T]`` and any ``info`` (video, view,
    heads, prediction, ...), numpy values converted to plain lists and numbers."""
    record = dict(_plain(info))
    record["temporal_share"] = _plain(np.asarray(temporal_share, dtype=np.float64))
    record["maps"] = _plain(np.asarray(maps, dtype=np.float64))
    # one key per line, each value compact: readable metadata, and maps that stay small for ViT-B
    body = ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}" for key, value in record.items())
    return write_text(path, "{\n" + body + "\n}\n")


def save_attention_figures(folder, frames, maps, temporal_share, frame_indices=None, title=None, **info):
    """Write the four outputs for one clip into ``folder``: ``attention_grid.png``, ``attention.gif``,
    ``temporal_share.png`` and ``attention.json`` (``info`` goes into the JSON). Returns their paths."""
    import os

    paths = {name: os.path.join(folder, name) for name in FIGURE_FILES}
    save_attention_grid(paths["attention_grid.png"], frames, maps, temporal_share, frame_indices, title)
    save_attention_gif(paths["attention.gif"], frames, maps)
    save_temporal_share_plot(paths["temporal_share.png"], temporal_share, frame_indices, title)
    info = dict(info, frame_indices=frame_indices)
    save_attention_json(paths["attention.json"], maps, temporal_share, **info)
    return paths
