"""``Sampler``: chooses the clip's temporal window and frame indices, and decodes only those frames."""

from dataclasses import dataclass

import numpy as np

from ...common.rules import PositiveInt
from ..registry import PIPELINES
from .base import Operator

TRAIN_MODES = ("train", "valid")
TEST_MODES = ("test", "infer")


@dataclass(frozen=True)
class Window:
    """The temporal-window settings of a config's ``decode`` section (PaddleVideo puts them on VideoDecoder).

    Attributes:
        mode: ``train`` / ``valid`` draw the window start at random; ``test`` / ``infer`` start at 0.
        num_seg: frames per clip; with ``sampling_rate`` and ``target_fps`` it sets the window length.
        sampling_rate: frame stride at ``target_fps``.
        target_fps: frame rate ``sampling_rate`` refers to.
        num_clips: temporal clips per video (test / infer), spread uniformly.
    """

    mode: str = "test"
    num_seg: int = 8
    sampling_rate: float = 32
    target_fps: float = 30
    num_clips: int = 1


def temporal_window(frames_len, fps, num_seg, sampling_rate=32, target_fps=30, mode="test"):
    """The clip window ``(start, end)`` in frame units (floats, end inclusive).

    clip = ``sampling_rate * num_seg / target_fps * fps`` frames (the span ``num_seg`` frames taken every
    ``sampling_rate`` frames cover at ``target_fps``), delta = ``max(frames_len - clip, 0)``; train/valid draw
    the start uniformly from ``[0, delta]`` (numpy's global generator), test starts at 0; end = start + clip - 1.
    """
    clip = sampling_rate * num_seg / target_fps * fps
    delta = max(frames_len - clip, 0)
    start = np.random.uniform(0, delta) if mode in TRAIN_MODES else 0.0
    return start, start + clip - 1


def clip_windows(frames_len, fps, num_seg, sampling_rate=32, target_fps=30, num_clips=1):
    """Test-time windows of ``num_clips`` clips spread uniformly over the video (multi-clip testing).

    Clip ``k`` starts at ``delta * k / num_clips`` (the original TimeSformer's ensemble views; clip 0 starts
    at 0 like the single test clip) and spans the same ``clip`` frames as :func:`temporal_window`.
    Returns ``[(start, end), ...]`` in frame units (floats, end inclusive).
    """
    clip = sampling_rate * num_seg / target_fps * fps
    delta = max(frames_len - clip, 0)
    return [(delta * k / num_clips, delta * k / num_clips + clip - 1) for k in range(num_clips)]


def linspace_indices(start, end, num_seg, frames_len):
    """``int64(clip(linspace(start, end, num_seg), 0, frames_len - 1))`` (truncation, not rounding)."""
    return np.clip(np.linspace(start, end, num_seg), 0, frames_len - 1).astype(np.int64)


def segment_indices(frames_len, num_seg, seg_len, valid_mode):
    """TSN-style sampling: ``num_seg`` equal segments, ``seg_len`` consecutive frames from each.

    Train draws a random offset inside each segment; ``valid_mode`` takes the segment centre. Videos shorter
    than ``num_seg * seg_len`` frames wrap around (index modulo ``frames_len``).
    """
    average = frames_len // num_seg
    indices = []
    for i in range(num_seg):
        if average >= seg_len:
            offset = (average - seg_len) // 2 if valid_mode else np.random.randint(0, average - seg_len + 1)
            first = i * average + offset
        elif frames_len >= num_seg:
            first = i  # too short for whole segments: one frame per segment, in order
        else:
            first = i * frames_len // num_seg
        indices.extend(first + j for j in range(seg_len))
    return np.asarray(indices, dtype=np.int64) % frames_len


def repeated_frames_note(results):
    """One line for a video too short for its clip (``results`` of a pipeline with :class:`Sampler`), or None:
    ``'<file>' has 3 frame(s), fewer than a clip takes (8): frames were repeated to fill it``."""
    if not results.get("frames_repeated"):
        return None
    needed = len(set(int(i) for i in results.get("frame_idx", ())))
    taken = len(results.get("frame_idx", ()))
    return (f"'{results.get('filename', 'the video')}' has {int(results['frames_len'])} frame(s), fewer than a clip "
            f"takes: {taken - needed} of its {taken} sampled frames repeat others, so the score comes from "
            f"{needed} distinct frame(s)")


@PIPELINES.register()
class Sampler(Operator):
    """Choose the clip's frames and decode them: ``results['imgs']`` becomes uint8 RGB ``[T, H, W, 3]``.

    With ``linspace_sample`` (TimeSformer) the window comes from ``results['window']`` (the ``decode``
    section's settings, see :func:`temporal_window`; :func:`clip_windows` for ``num_clips > 1``) and
    ``num_seg`` indices are spread evenly over it (short videos repeat their last frame); T = ``num_seg``
    per window, windows one after the other. Otherwise segment sampling over the whole video (see
    :func:`segment_indices`), T = ``num_seg * seg_len``. The reader is closed afterwards.

    Requires ``video_reader``, ``frames_len``, ``fps``, ``window`` (from ``VideoDecoder``). Adds ``imgs``,
    ``frame_idx`` and ``frames_repeated`` (True when the video has fewer frames than a clip takes, so frames
    were repeated to fill it: :func:`repeated_frames_note` says so for tools that score single videos); with
    ``linspace_sample`` also ``start_idx`` / ``end_idx`` (one window) or ``clip_windows``
    (several). Removes ``video_reader``.

    Args:
        num_seg: frames (segments) per clip.
        seg_len: consecutive frames per segment (segment sampling only).
        valid_mode: deterministic segment centres instead of random offsets (segment sampling only).
        linspace_sample: evenly spaced indices over the window.
    """

    requires = ("video_reader", "frames_len", "fps", "window")
    adds = ("imgs", "frame_idx", "frames_repeated")

    def __init__(self, num_seg: PositiveInt = 8, seg_len: PositiveInt = 1, valid_mode: bool = False,
                 linspace_sample: bool = False):
        if num_seg < 1 or seg_len < 1:
            raise ValueError(f"Sampler: num_seg and seg_len must be >= 1, got {num_seg}, {seg_len}")
        self.num_seg = num_seg
        self.seg_len = seg_len
        self.valid_mode = valid_mode
        self.linspace_sample = linspace_sample

    @property
    def frames_per_clip(self):
        """Frames one clip (one window) takes: ``num_seg`` (``* seg_len`` for segment sampling)."""
        return self.num_seg if self.linspace_sample else self.num_seg * self.seg_len

    def infer_spec(self, spec):
        if spec.windows > 1 and not self.linspace_sample:
            raise ValueError("VideoDecoder.num_clips > 1 needs Sampler.linspace_sample: True (segment sampling "
                             "already covers the whole video)")
        return spec.replace(frames=self.frames_per_clip * spec.windows)

    def windows(self, frames_len, fps, window):
        """The ``[(start, end), ...]`` windows for a video (frame units, end inclusive); ``None`` for segment
        sampling. A train / valid window start is a random draw."""
        if not self.linspace_sample:
            return None
        w = window
        if w.num_clips > 1:
            return clip_windows(frames_len, fps, w.num_seg, w.sampling_rate, w.target_fps, w.num_clips)
        return [temporal_window(frames_len, fps, w.num_seg, w.sampling_rate, w.target_fps, w.mode)]

    def indices(self, frames_len, windows):
        """The frame indices (int64) for ``windows`` (from :meth:`windows`): ``num_seg`` per window, or the
        ``num_seg * seg_len`` segment indices when ``windows`` is None."""
        if windows is None:
            return segment_indices(frames_len, self.num_seg, self.seg_len, self.valid_mode)
        return np.concatenate([linspace_indices(start, end, self.num_seg, frames_len) for start, end in windows])

    def __call__(self, results):
        reader = results.pop("video_reader")
        try:
            windows = self.windows(results["frames_len"], results["fps"], results["window"])
            if windows is not None and len(windows) > 1:
                results["clip_windows"] = windows
            elif windows is not None:
                results["start_idx"], results["end_idx"] = windows[0]
            results["frame_idx"] = self.indices(results["frames_len"], windows)
            results["frames_repeated"] = int(results["frames_len"]) < self.frames_per_clip
            results["imgs"] = reader.get_frames(results["frame_idx"])
        finally:
            reader.close()
        return results
