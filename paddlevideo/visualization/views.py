"""One view of a clip from the config's test pipeline, as the model sees it and as a person sees it.

The test pipeline returns ``imgs [3, V * C * T, H, W]``: V spatial views back to back on the time axis
(``UniformCrop`` makes three: left, right, centre; for portrait frames top, bottom, centre;
``CenterCrop`` one), each holding C temporal clips of T frames (``VideoDecoder.num_clips``, usually 1).
"""

import numpy as np

from .files import VisualizationError

VIEWS = ("left", "centre", "right")
# Position of each view in UniformCrop's output (its offsets are left/top, right/bottom, centre).
UNIFORM_CROP_ORDER = {"left": 0, "right": 1, "centre": 2}


def select_view(results, num_seg, view="centre"):
    """The model input of one view and the first temporal clip: ``(clip [1, 3, T, H, W], frame_indices [T])``.

    Args:
        results: the test pipeline's output dict (``imgs`` ``[3, F, H, W]`` float32, ``frame_idx``).
        num_seg: T, frames per clip (the model's ``num_seg``).
        view: ``left`` | ``centre`` | ``right`` (``centre`` is the only view of a one-view pipeline).
    """
    if view not in VIEWS:
        raise VisualizationError(f"unknown view '{view}'; use one of {', '.join(VIEWS)}")
    if results.get("data_format", "cthw") != "cthw":
        raise VisualizationError("the test pipeline must end with Image2Array data_format: cthw (the model's layout)")
    imgs = np.asarray(results["imgs"])
    frame_idx = np.asarray(results.get("frame_idx", np.arange(num_seg))).reshape(-1)
    total, per_view = imgs.shape[1], len(frame_idx)
    if per_view % num_seg or total % per_view:
        raise VisualizationError(f"the test pipeline gives {total} frames for {per_view} sampled indices; expected "
                                 f"views of {num_seg} frames (check PIPELINE.test num_seg against MODEL.backbone.num_seg)")
    num_views = total // per_view
    if num_views == 1:
        if view != "centre":
            raise VisualizationError(f"--view {view} needs a test pipeline with UniformCrop (3 views); this one "
                                     "makes a single view: use --view centre")
        index = 0
    elif num_views == 3:
        index = UNIFORM_CROP_ORDER[view]
    else:
        raise VisualizationError(f"the test pipeline makes {num_views} views; only 1 (CenterCrop) or 3 (UniformCrop) "
                                 "are understood")
    start = index * per_view
    clip = imgs[:, start:start + num_seg]  # the first temporal clip of this view
    return np.ascontiguousarray(clip[None], dtype=np.float32), frame_idx[:num_seg]


def display_frames(clip, pipeline):
    """Undo the pipeline's ``Normalization`` on ``clip [1, 3, T, H, W]`` -> uint8 RGB ``[T, H, W, 3]``.

    Without a ``Normalization`` operator the values are taken as 0-255 pixels.
    """
    from ..loader.pipelines.augmentations import Normalization

    frames = np.asarray(clip, dtype=np.float64)[0]  # [3, T, H, W]
    norms = [op for op in getattr(pipeline, "operators", []) if isinstance(op, Normalization)]
    if len(norms) > 1:
        raise VisualizationError("the test pipeline normalises twice; cannot recover the frames for display")
    if norms:
        mean, std = (np.asarray(v, np.float64).reshape(-1, 1, 1, 1) for v in (norms[0].mean, norms[0].std))
        frames = (frames * std + mean) * 255.0  # per channel (3 values) or one value for all
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8).transpose(1, 2, 3, 0)
