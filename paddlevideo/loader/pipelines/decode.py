"""``VideoDecoder``: opens a video lazily and chooses the temporal window the sampler reads from."""

import numpy as np

from ..decoders import BACKENDS, open_video
from ..registry import PIPELINES

TRAIN_MODES = ("train", "valid")
TEST_MODES = ("test", "infer")


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


@PIPELINES.register()
class VideoDecoder:
    """Open ``results['filename']`` and set ``video_reader``, ``frames_len``, ``fps``, ``start_idx``, ``end_idx``.

    Nothing is decoded here: ``Sampler`` picks frame indices in ``[start_idx, end_idx]`` and reads only those.

    Args:
        backend: ``decord`` (default), ``pyav`` or ``cv2``.
        mode: ``train`` / ``valid`` (random window start) or ``test`` (start 0).
        num_seg: frames per clip.
        sampling_rate: frame stride at ``target_fps`` that defines the window length.
        target_fps: frame rate ``sampling_rate`` refers to.
        num_clips: test/infer only: temporal clips per video (see ``clip_windows``); with more than one,
            ``results['clip_windows']`` lists their windows and ``Sampler`` reads ``num_seg`` frames from each,
            clip after clip. Default 1: PaddleVideo's single test clip.
    """

    def __init__(self, backend="decord", mode="train", num_seg=8, sampling_rate=32, target_fps=30,
                 num_clips=1):
        if backend not in BACKENDS:
            raise ValueError(f"VideoDecoder: unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
        if mode not in TRAIN_MODES + TEST_MODES:
            raise ValueError(f"VideoDecoder: unknown mode '{mode}'; choose one of {', '.join(TRAIN_MODES + TEST_MODES)}")
        if num_seg < 1 or sampling_rate <= 0 or target_fps <= 0:
            raise ValueError("VideoDecoder: num_seg, sampling_rate and target_fps must be positive")
        self.backend = backend
        self.mode = mode
        self.num_seg = num_seg
        self.sampling_rate = sampling_rate
        self.target_fps = target_fps
        if not isinstance(num_clips, int) or num_clips < 1:
            raise ValueError(f"VideoDecoder: num_clips must be a positive integer, got {num_clips!r}")
        if num_clips > 1 and mode not in TEST_MODES:
            raise ValueError(f"VideoDecoder: num_clips {num_clips} is for test/infer mode only, not '{mode}'")
        self.num_clips = num_clips

    def __call__(self, results):
        reader = open_video(results["filename"], self.backend)
        results["video_reader"] = reader
        results["backend"] = self.backend
        results["frames_len"] = reader.num_frames
        results["fps"] = reader.fps
        results["start_idx"], results["end_idx"] = temporal_window(
            reader.num_frames, reader.fps, self.num_seg, self.sampling_rate, self.target_fps, self.mode)
        if self.num_clips > 1:
            results["clip_windows"] = clip_windows(reader.num_frames, reader.fps, self.num_seg, self.sampling_rate,
                                                   self.target_fps, self.num_clips)
        return results
