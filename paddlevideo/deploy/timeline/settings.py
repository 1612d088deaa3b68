"""What a timeline is made of: :class:`TimelineSettings` (window, stride, smoothing, batch, top-k, stall time)
and :class:`WindowPlan`, the frames each window samples.

A window is ``window_s`` seconds of video scored as one clip: the test pipeline's sampler picks its frames as
it would pick them from a clip of exactly that span (``num_seg`` frames spread with ``linspace`` over the
window, truncated to whole frames), and the pipeline's transforms (crops, normalisation, views) make the
model input. Window ``k`` starts at frame ``round(k * stride_s * fps)``; a window exists when the video holds
its whole span, so the last partial stride of a video is not scored (a video shorter than one window is one
window over all of it, exactly as ``tools/predict.py`` scores a whole file).
"""

import math
from dataclasses import asdict, dataclass, fields, replace

from ...common.errors import ConfigError

# A window or stride given in seconds that lands within this many frames of a whole number of frames is
# taken as that whole number: a typed 0.2667 s at 30 fps means 8 frames, not 8.001 (which would move the
# truncated linspace indices) or 7.998 (which would repeat the first frame and drop the last).
SNAP_FRAMES = 0.02
DEFAULT_TOP_K = 3
DEFAULT_TIMEOUT_S = 30.0
CUTS_MODES = ("auto", "off")


@dataclass(frozen=True)
class TimelineSettings:
    """How a video is cut into windows and scored. ``None`` means "the default for this config and video"
    (:meth:`resolve` fills it in).

    Attributes:
        window_s: window length in seconds (default: the config's clip span, ``num_seg x sampling_rate /
            target_fps`` of ``PIPELINE.test.decode``; 8 x 32 / 30 = 8.53 s for the K400 configs).
        stride_s: seconds between window starts (default: half a window).
        smooth: K, the class probabilities averaged over K neighbouring windows (centred; fewer at the
            ends) before the top-1 is taken; 1 = no smoothing.
        batch_size: windows per model call.
        top_k: classes kept per window (the first is the top-1).
        timeout_s: a source that delivers no frame for this long ends the run (one line, the windows so far
            kept); also the longest wait for a live source's first frame.
        fps: frame rate used for window times (None: the source's own; for a live source that states none,
            give it).
        min_segment_s: a run of windows shorter than this, between two segments, is not a segment of its own
            (:func:`~.scoring.merge_segments`; default: one window, the shortest span a window can see whole;
            0 keeps every run). The CSV keeps every window's own label.
        cuts: ``auto``: hard cuts are detected as the frames stream by (:mod:`.cuts`); a window whose frames
            straddle one is marked ``crosses_cut`` and left out of its neighbours' smoothing, and a segment
            boundary moves onto a nearby cut whose two shots carry the labels of the two segments
            (:func:`~.scoring.merge_segments`). ``off``: none of it (and every frame no window samples stays
            unconverted).
    """

    window_s: float = None
    stride_s: float = None
    smooth: int = 1
    batch_size: int = 1
    top_k: int = DEFAULT_TOP_K
    timeout_s: float = DEFAULT_TIMEOUT_S
    fps: float = None
    min_segment_s: float = None
    cuts: str = "auto"

    def __post_init__(self):
        self.check()

    def check(self):
        """Raise :class:`ConfigError` naming the first setting with an impossible value."""
        positive = {"window_s": self.window_s, "stride_s": self.stride_s, "timeout_s": self.timeout_s,
                    "fps": self.fps}
        for name, value in positive.items():
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"--{name} must be a number > 0, got {value!r}")
        value = self.min_segment_s
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"--min_segment_s must be a number >= 0, got {value!r}")
        if self.cuts not in CUTS_MODES:
            raise ConfigError(f"--cuts must be one of {', '.join(CUTS_MODES)}, got {self.cuts!r}")
        for name in ("smooth", "batch_size", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name} must be a whole number >= 1, got {value!r}")

    @classmethod
    def resolve(cls, cfg, fps, **overrides):
        """Settings with every default filled in for ``cfg`` (its ``PIPELINE.test``) and a source of ``fps``
        frames per second. ``overrides`` are field values; ``None`` keeps the default."""
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"TimelineSettings has no field {unknown[0]!r}")
        settings = cls(**{k: v for k, v in overrides.items() if v is not None})
        return settings.resolved(cfg, fps)

    def resolved(self, cfg, fps):
        """This with ``window_s``, ``stride_s`` and ``fps`` filled in (see :meth:`resolve`)."""
        fps = self.fps or fps
        if not fps or not math.isfinite(fps) or fps <= 0:
            raise ConfigError("the source states no frame rate; give it (--fps)")
        window_s = self.window_s if self.window_s is not None else config_window_s(cfg)
        stride_s = self.stride_s if self.stride_s is not None else window_s / 2.0
        min_segment_s = self.min_segment_s if self.min_segment_s is not None else window_s
        return replace(self, window_s=float(window_s), stride_s=float(stride_s), fps=float(fps),
                       min_segment_s=float(min_segment_s))

    def min_segment_windows(self):
        """Windows a segment needs at least (:attr:`min_segment_s` in strides, rounded up; at least 1). With the
        frame rate known both are counted in frames snapped as :class:`WindowPlan` snaps them, so a window typed
        as 0.266667 s over a stride of 0.133333 s is 8 frames over 4 at 30 fps: 2 strides, not 2.00001."""
        if not self.min_segment_s or not self.stride_s:
            return 1
        if self.fps:
            strides = _snap(self.min_segment_s * self.fps) / _snap(self.stride_s * self.fps)
        else:
            strides = self.min_segment_s / self.stride_s
        return max(1, math.ceil(strides - 1e-9))

    def to_dict(self):
        return asdict(self)


def test_pipeline(cfg):
    """``(pipeline, window, sampler, transforms)`` of ``cfg.PIPELINE.test``: the built
    :class:`~paddlevideo.loader.pipelines.Compose`, its decoder's
    :class:`~paddlevideo.loader.pipelines.Window`, its ``Sampler`` and the operators after it.

    Raises:
        ConfigError: the section does not start with ``decode: VideoDecoder`` and ``sample: Sampler``.
    """
    from ...loader.builder import build_pipeline
    from ...loader.pipelines import Sampler, VideoDecoder

    section = (cfg.get("PIPELINE") or {}).get("test")
    if not section:
        raise ConfigError("the config has no PIPELINE.test section; a timeline samples windows with it")
    pipeline = build_pipeline(section, "PIPELINE.test")
    ops = pipeline.operators
    if len(ops) < 2 or not isinstance(ops[0], VideoDecoder) or not isinstance(ops[1], Sampler):
        raise ConfigError("PIPELINE.test must have decode: {name: VideoDecoder} and sample: {name: Sampler} for a "
                          f"timeline; it has {pipeline!r}")
    return pipeline, ops[0].window, ops[1], ops[2:]


def config_window_s(cfg):
    """The config's clip span in seconds: ``num_seg x sampling_rate / target_fps`` of ``PIPELINE.test.decode``.

    Raises:
        ConfigError: the test pipeline samples segments over a whole video (SSv2 configs): it has no clip
            span, so the window must be given.
    """
    _, window, sampler, _ = test_pipeline(cfg)
    if not sampler.linspace_sample:
        raise ConfigError("PIPELINE.test samples segments over each whole video (linspace_sample: False, as the SSv2 "
                          "configs do), so it has no clip span to take as the window: give --window_s (e.g. the "
                          "typical length of a training video)")
    return window.num_seg * window.sampling_rate / window.target_fps


def _snap(frames):
    nearest = round(frames)
    return float(nearest) if abs(frames - nearest) <= SNAP_FRAMES else float(frames)


class WindowPlan:
    """Which frames window ``k`` samples, for resolved ``settings`` on a source of ``settings.fps``.

    Attributes:
        clip_frames: window length in frames (float; the test pipeline's arithmetic for the config's own span).
        stride_frames: frames between window starts (float).
        span: frames a window covers, ``ceil(clip_frames)`` (a window exists once the video holds them).
        offsets: int64 ``[num_seg * num_clips]`` frame offsets from the window start, in the order the model
            takes them: the pipeline's ``Sampler`` on a clip of ``span`` frames.
    """

    def __init__(self, cfg, settings):
        import numpy as np

        if settings.window_s is None or settings.stride_s is None or settings.fps is None:
            raise ValueError("WindowPlan needs resolved settings (TimelineSettings.resolve)")
        _, window, self.sampler, self.transforms = test_pipeline(cfg)
        self.window, self.settings, self.fps = window, settings, settings.fps
        span_s = window.num_seg * window.sampling_rate / window.target_fps
        if abs(settings.window_s - span_s) <= 1e-9 * span_s:
            # exactly as Sampler's temporal_window computes a clip, so a window equals that clip bit for bit
            self.clip_frames = window.sampling_rate * window.num_seg / window.target_fps * self.fps
        else:
            self.clip_frames = _snap(settings.window_s * self.fps)
        self.stride_frames = _snap(settings.stride_s * self.fps)
        if self.stride_frames < 1:
            raise ConfigError(f"--stride_s {settings.stride_s} is shorter than one frame at {self.fps:g} fps")
        self.span = max(1, int(math.ceil(self.clip_frames - 1e-9)))
        self.offsets = self.clip_offsets(self.span)
        self._offset_set = frozenset(int(o) for o in self.offsets)
        self.max_offset = int(np.max(self.offsets))

    def clip_offsets(self, frames_len):
        """Frame offsets the test pipeline samples from a clip of ``frames_len`` frames whose span is this
        window's (the sampler's own window and index code, with the clip length in frames given exactly)."""
        window = replace(self.window, mode="test", num_seg=1, sampling_rate=self.clip_frames, target_fps=1.0)
        return self.sampler.indices(frames_len, self.sampler.windows(frames_len, 1.0, window))

    def start(self, k):
        """First frame of window ``k``."""
        return int(round(k * self.stride_frames))

    def count(self, num_frames):
        """Windows in a video of ``num_frames`` frames (at least 1 for a non-empty video)."""
        if num_frames is None:
            return None
        if num_frames <= 0:
            return 0
        if num_frames < self.span:
            return 1
        k = max(0, int((num_frames - self.span) // self.stride_frames) - 1)
        while self.start(k) + self.span <= num_frames:  # at most a few steps: start(k) is k * stride rounded
            k += 1
        return k

    def uses(self, k, index):
        """Whether window ``k`` samples frame ``index``."""
        return (index - self.start(k)) in self._offset_set

    def times(self, start_frame, frames=None):
        """``(start_s, end_s)`` of a window starting at ``start_frame`` (``frames``: its length, default
        the window's)."""
        length = self.clip_frames if frames is None else frames
        return start_frame / self.fps, (start_frame + length) / self.fps

    def describe(self):
        """The resolved numbers, for segments.json and logs."""
        return {"window_s": self.settings.window_s, "stride_s": self.settings.stride_s, "fps": self.fps,
                "window_frames": self.clip_frames, "stride_frames": self.stride_frames,
                "frames_per_window": len(self.offsets)}
