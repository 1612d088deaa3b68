"""``VideoDecoder``: opens the video and hands the clip window's settings to the sampler.

Nothing is decoded and nothing is chosen here: ``Sampler`` computes the temporal window from the settings
this operator passes on (``results['window']``), picks the frame indices and decodes only those frames. The
operator keeps PaddleVideo's name and config keys (``decode: {name: VideoDecoder, backend, mode, num_seg,
sampling_rate, target_fps}``), so existing configs work unchanged.
"""

from ...common.rules import OneOf, Positive, PositiveInt
from ..decoders import BACKENDS, open_video
from ..registry import PIPELINES
from .base import Operator
from .sample import TEST_MODES, TRAIN_MODES, Window


@PIPELINES.register()
class VideoDecoder(Operator):
    """Open ``results['filename']`` with a frame-accurate reader.

    Requires ``filename``. Adds ``video_reader`` (closed by ``Sampler``), ``backend``, ``frames_len``,
    ``fps`` and ``window`` (a :class:`~paddlevideo.loader.pipelines.sample.Window` with the settings below).

    Args:
        backend: ``decord`` (default), ``pyav`` or ``cv2``.
        mode: ``train`` / ``valid`` (random window start) or ``test`` / ``infer`` (start 0).
        num_seg: frames per clip (the window spans ``sampling_rate * num_seg`` frames at ``target_fps``).
        sampling_rate: frame stride at ``target_fps`` that defines the window length.
        target_fps: frame rate ``sampling_rate`` refers to.
        num_clips: test/infer only: temporal clips per video, spread uniformly (multi-clip testing); with more
            than one, ``Sampler`` reads ``num_seg`` frames from each, clip after clip. Default 1: PaddleVideo's
            single test clip.
    """

    requires = ("filename",)
    adds = ("video_reader", "backend", "frames_len", "fps", "window")

    def __init__(self, backend: OneOf(*BACKENDS) = "decord",
                 mode: OneOf(*TRAIN_MODES, *TEST_MODES) = "train", num_seg: PositiveInt = 8,
                 sampling_rate: Positive = 32, target_fps: Positive = 30, num_clips: PositiveInt = 1):
        if backend not in BACKENDS:
            raise ValueError(f"VideoDecoder: unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
        if mode not in TRAIN_MODES + TEST_MODES:
            raise ValueError(f"VideoDecoder: unknown mode '{mode}'; choose one of {', '.join(TRAIN_MODES + TEST_MODES)}")
        if num_seg < 1 or sampling_rate <= 0 or target_fps <= 0:
            raise ValueError("VideoDecoder: num_seg, sampling_rate and target_fps must be positive")
        if not isinstance(num_clips, int) or num_clips < 1:
            raise ValueError(f"VideoDecoder: num_clips must be a positive integer, got {num_clips!r}")
        if num_clips > 1 and mode not in TEST_MODES:
            raise ValueError(f"VideoDecoder: num_clips {num_clips} is for test/infer mode only, not '{mode}'")
        self.backend = backend
        self.window = Window(mode=mode, num_seg=num_seg, sampling_rate=sampling_rate, target_fps=target_fps,
                             num_clips=num_clips)

    def infer_spec(self, spec):
        return spec.replace(windows=self.window.num_clips)

    def __call__(self, results):
        reader = open_video(results["filename"], self.backend)
        results["video_reader"] = reader
        results["backend"] = self.backend
        results["frames_len"] = reader.num_frames
        results["fps"] = reader.fps
        results["window"] = self.window
        return results
