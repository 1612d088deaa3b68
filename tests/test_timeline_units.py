"""Timeline building blocks (issue 22), without a model: the window plan against numpy, smoothing, segments,
the producer thread's endings (a source that raises, stalls or is stopped), bounded frame memory, the files;
hard cuts: the detector on synthetic shots, windows across cuts left out of the smoothing, boundaries on cuts."""

import os
import threading
import time

import numpy as np
import pytest

from conftest import K400_CONFIG, REPO, TINY_OVERRIDES
from paddlevideo.deploy.timeline import (CSV_HEADER, Smoother, TimelineSettings, WindowPlan, WindowStream,
                                         merge_segments, predict_timeline, read_timeline_csv, source_kind,
                                         source_stem, write_timeline)
from paddlevideo.deploy.timeline.cuts import CutDetector, crosses_cut, thumbnail
from paddlevideo.deploy.timeline.draw import read_timeline_png
from paddlevideo.deploy.timeline.sources import FrameSource, SourceInfo
from paddlevideo.deploy.timeline.stream import WindowAssembler
from paddlevideo.config import get_config
from paddlevideo.common.errors import ConfigError, InputError, OutputError

DEMO_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"


@pytest.fixture(scope="module")
def demo_cfg():
    return get_config(str(DEMO_CONFIG), [], show=False)


@pytest.fixture(scope="module")
def tiny_cfg_module():
    return get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)


def numpy_offsets(clip_frames, num_seg, frames_len):
    """The test pipeline's linspace sampling, written out: int64(clip(linspace(0, clip - 1, T), 0, n - 1))."""
    return np.clip(np.linspace(0.0, clip_frames - 1.0, num_seg), 0, frames_len - 1).astype(np.int64)


# ------------------------------------------------------------------ window plan

def test_default_window_is_the_configs_clip_span(demo_cfg, tiny_cfg_module):
    k400 = get_config(str(K400_CONFIG), ["MODEL.backbone.pretrained="], show=False)
    assert TimelineSettings.resolve(k400, 30.0).window_s == pytest.approx(8 * 32 / 30)  # 8.53 s
    demo = TimelineSettings.resolve(demo_cfg, 30.0)
    assert demo.window_s == pytest.approx(8 / 30) and demo.stride_s == pytest.approx(4 / 30)
    assert TimelineSettings.resolve(tiny_cfg_module, 25.0, stride_s=1.0).stride_s == 1.0


@pytest.mark.parametrize("fps", [30.0, 25.0, 29.97])
def test_plan_samples_each_window_as_the_test_pipeline_samples_a_clip(tiny_cfg_module, fps):
    plan = WindowPlan(tiny_cfg_module, TimelineSettings.resolve(tiny_cfg_module, fps))
    clip = 32 * 4 / 30 * fps  # sampling_rate x num_seg / target_fps x fps, as the pipeline computes a clip
    assert plan.clip_frames == pytest.approx(clip) and plan.span == int(np.ceil(clip))
    np.testing.assert_array_equal(plan.offsets, numpy_offsets(clip, 4, plan.span))
    assert plan.stride_frames == pytest.approx(clip / 2)
    assert [plan.start(k) for k in range(4)] == [int(round(k * clip / 2)) for k in range(4)]


def test_window_lengths_typed_in_seconds_snap_to_whole_frames(demo_cfg):
    typed = WindowPlan(demo_cfg, TimelineSettings.resolve(demo_cfg, 30.0, window_s=0.2666, stride_s=0.1333))
    assert typed.clip_frames == 8.0 and typed.stride_frames == 4.0
    np.testing.assert_array_equal(typed.offsets, np.arange(8))  # not [0, 0, 1, ...] from 7.998 frames
    odd = WindowPlan(demo_cfg, TimelineSettings.resolve(demo_cfg, 30.0, window_s=0.26))
    assert odd.clip_frames == pytest.approx(7.8)
    np.testing.assert_array_equal(odd.offsets, numpy_offsets(7.8, 8, 8))


def test_window_count_matches_counting_by_hand(demo_cfg):
    for stride_s in (4 / 30, 0.1, 0.37, 1.0):
        plan = WindowPlan(demo_cfg, TimelineSettings.resolve(demo_cfg, 30.0, stride_s=stride_s))
        for frames in (1, 7, 8, 9, 100, 1001):
            by_hand = sum(1 for k in range(frames + 1) if round(k * stride_s * 30) + 8 <= frames)
            assert plan.count(frames) == max(by_hand, 1), (stride_s, frames)


@pytest.mark.parametrize("bad", [{"smooth": 0}, {"batch_size": True}, {"window_s": -1.0}, {"stride_s": 0},
                                 {"timeout_s": float("nan")}, {"top_k": 1.5}, {"cuts": "on"}])
def test_impossible_settings_are_config_errors(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        TimelineSettings(**bad)


def test_a_stride_below_one_frame_is_refused(demo_cfg):
    with pytest.raises(ConfigError, match="stride_s"):
        WindowPlan(demo_cfg, TimelineSettings.resolve(demo_cfg, 30.0, stride_s=0.01))


# ------------------------------------------------------------------ smoothing and segments

@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_smoother_is_the_centred_mean_of_k_windows(k):
    rng = np.random.default_rng(k)
    probs = rng.dirichlet(np.ones(6), size=23)
    smoother, out = Smoother(k), []
    for i, row in enumerate(probs):
        out += smoother.add(i, row)
        assert len(out) == max(0, i + 1 - k // 2)  # window i is final once k // 2 later windows are in
    out += smoother.flush()
    before, after = (k - 1) // 2, k // 2
    expected = [probs[max(0, i - before):i + after + 1].mean(axis=0) for i in range(len(probs))]
    assert [item for item, _ in out] == list(range(len(probs)))
    np.testing.assert_allclose(np.stack([p for _, p in out]), np.stack(expected), rtol=1e-12)


def _window(start, end, class_id, score=0.9):
    return {"start_s": start, "end_s": end, "class_id": class_id, "class_name": f"c{class_id}", "score": score}


def test_segments_merge_equal_labels_and_split_between_window_centres():
    windows = [_window(0, 2, 1, 0.8), _window(1, 3, 1, 0.6), _window(2, 4, 2, 0.9), _window(3, 5, 2, 0.7),
               _window(4, 6, 2, 0.5), _window(5, 7, 0, 1.0)]
    segments = merge_segments(windows)
    assert [(s["start_s"], s["end_s"], s["class_id"], s["num_windows"]) for s in segments] == \
        [(0, 2.5, 1, 2), (2.5, 5.5, 2, 3), (5.5, 7, 0, 1)]  # boundaries halfway between centres 2/3 and 5/6
    assert [s["score"] for s in segments] == pytest.approx([0.7, 0.7, 1.0])
    assert merge_segments([]) == []


def test_short_runs_inside_segments_join_their_neighbours():
    """A window read wrong inside a segment neither splits it nor moves a boundary by more than half a run."""
    labels = [1, 1, 1, 7, 1, 1, 2, 2, 9, 2, 3, 3, 3]  # 7 between two 1s, 9 between two 2s, [2] ... [3]
    windows = [_window(i, i + 2, c, 0.5 if c in (7, 9) else 0.9) for i, c in enumerate(labels)]
    assert [s["class_id"] for s in merge_segments(windows)] == [1, 7, 1, 2, 9, 2, 3]  # min_windows=1: every run
    segments = merge_segments(windows, min_windows=2)
    assert [(s["class_id"], s["num_windows"]) for s in segments] == [(1, 6), (2, 4), (3, 3)]
    assert [s["score"] for s in segments] == pytest.approx([0.9, 0.9, 0.9])  # the label's windows only
    assert [s["start_s"] for s in segments] == [0, 6.5, 10.5]  # halfway between the centres around each change
    # a short run between two classes is shared: its first half before the change, the rest after
    windows = [_window(i, i + 2, c) for i, c in enumerate([1, 1, 1, 5, 5, 2, 2, 2])]
    segments = merge_segments(windows, min_windows=3)
    assert [(s["class_id"], s["num_windows"], s["start_s"]) for s in segments] == [(1, 4, 0), (2, 4, 4.5)]
    # the edges stay: nothing outside them to join
    windows = [_window(i, i + 2, c) for i, c in enumerate([4, 1, 1, 1, 6])]
    assert [s["class_id"] for s in merge_segments(windows, min_windows=2)] == [4, 1, 6]


def test_min_segment_defaults_to_one_window_in_strides():
    settings = TimelineSettings(window_s=8 / 30, stride_s=4 / 30, fps=30.0)
    assert settings.min_segment_windows() == 1  # unresolved: every run kept
    assert TimelineSettings.resolve(None, 30.0, window_s=8 / 30, stride_s=4 / 30).min_segment_windows() == 2
    # typed to six decimals (as on a command line): 8 frames over 4, snapped as the window plan snaps them
    assert TimelineSettings.resolve(None, 30.0, window_s=0.266667, stride_s=0.133333).min_segment_windows() == 2
    assert TimelineSettings.resolve(None, 30.0, window_s=1, stride_s=1).min_segment_windows() == 1
    assert TimelineSettings.resolve(None, 30.0, window_s=1, stride_s=0.25, min_segment_s=0).min_segment_windows() == 1
    with pytest.raises(ConfigError, match="--min_segment_s"):
        TimelineSettings(min_segment_s=-1)


# ------------------------------------------------------------------ sources

def test_source_kinds_and_stems(tmp_path):
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    assert [source_kind(s) for s in (0, "2", "rtsp://cam/x", "http://h/v.mp4", "-", str(fifo), "a.mp4")] == \
        ["camera", "camera", "url", "url", "pipe", "pipe", "file"]
    assert source_kind("/dev/stdin") == "pipe" or not os.path.exists("/dev/stdin")
    assert [source_stem(s) for s in ("videos/match.mp4", "0", "-", "rtsp://cam:554/live/a", "../../etc/.x.avi")] == \
        ["match", "camera0", "stdin", "cam_554_live_a", "x"]


class FakeSource(FrameSource):
    """Frames ``[H, W, 3]`` whose pixels hold their index; raises, stalls or ends as told."""

    def __init__(self, num_frames, fps=30.0, live=False, fail_at=None, stall_at=None, size=32, silent=False):
        self.info = SourceInfo("fake.avi" if not live else "-", "pipe" if live else "file", fps,
                               None if live else num_frames, None, "test")
        self.num_frames, self.fail_at, self.stall_at, self.size = num_frames, fail_at, stall_at, size
        self.release = threading.Event()
        self.converted = 0
        self.silent = silent

    def start(self):
        if self.silent:  # like a pipe nobody writes to: opening waits for a header that never comes
            self.release.wait(30)

    def frames(self, wanted):
        for index in range(self.num_frames):
            if index == self.fail_at:
                raise RuntimeError("corrupt packet")
            if index == self.stall_at:
                self.release.wait(30)
                return
            frame = None
            if wanted(index):
                frame = np.full((self.size, self.size, 3), index % 256, np.uint8)
                self.converted += 1
            yield index, frame


def _first_frame_values(window):
    """The frame numbers a demo-pipeline window holds (our fake frames carry their index, normalised)."""
    imgs = window.imgs[0, :8, 0, 0]  # channel 0 of view 0, one pixel per frame
    return np.rint((imgs * 0.225 + 0.45) * 255).astype(int)


def test_stream_windows_hold_the_planned_frames_and_memory_stays_bounded(demo_cfg):
    source = FakeSource(2000)
    settings = TimelineSettings(stride_s=0.2)  # 6 frames: windows overlap by 2 frames
    with WindowStream(source, demo_cfg, settings) as stream:
        windows = [window for batch in stream.batches(4) for window in batch]
    assert stream.error is None and not stream.stopped and stream.total == len(windows) == (2000 - 8) // 6 + 1
    for window in windows[:5] + windows[-5:]:
        assert list(_first_frame_values(window)) == [(window.start_frame + i) % 256 for i in range(8)]
        assert window.start_s == pytest.approx(window.start_frame / 30) and window.start_frame == 6 * window.index
    # only sampled frames are converted: 8 per window, shared ones once (here every frame is sampled)
    assert source.converted <= 2000
    assembler, assembler_sizes = WindowAssembler(stream.plan), []
    for index in range(20000):
        list(assembler.push(index, np.zeros((1,), np.uint8) if assembler.wanted(index) else None))
        assembler_sizes.append(len(assembler.kept))
    assert max(assembler_sizes) <= 8  # one window's frames at most, however long the video


def test_a_video_shorter_than_a_window_is_one_window_over_all_of_it(demo_cfg):
    with WindowStream(FakeSource(5), demo_cfg) as stream:
        windows = [w for batch in stream.batches() for w in batch]
    assert len(windows) == 1 and windows[0].end_s == pytest.approx(5 / 30)
    # the pipeline clamps linspace(0, 7, 8) to the last of 5 frames
    assert list(_first_frame_values(windows[0])) == list(np.minimum(np.arange(8), 4))


def test_a_source_that_raises_ends_the_run_with_one_line_naming_the_time(demo_cfg):
    began = time.monotonic()
    with WindowStream(FakeSource(1000, fail_at=50), demo_cfg) as stream:
        windows = [w for batch in stream.batches(3) for w in batch]
    assert time.monotonic() - began < 5
    assert [w.start_frame for w in windows] == list(range(0, 50 - 8 + 1, 4))  # every window before the break
    assert stream.error == "fake.avi: reading failed at 1.667 s (frame 50): corrupt packet"
    assert "\n" not in stream.error and not stream._thread.is_alive()


def test_a_stalled_source_ends_after_timeout_s(demo_cfg):
    source = FakeSource(1000, live=True, stall_at=40)
    began = time.monotonic()
    try:
        with WindowStream(source, demo_cfg, TimelineSettings(timeout_s=0.4)) as stream:
            windows = [w for batch in stream.batches() for w in batch]
        elapsed = time.monotonic() - began
    finally:
        source.release.set()  # let the blocked reader go
    assert len(windows) == (40 - 8) // 4 + 1
    assert stream.error.startswith("-: no frame for 0.4 s (--timeout_s); stopped at 1.333 s (frame 40)")
    assert 0.4 <= elapsed < 3


def test_a_source_silent_from_the_start_is_an_input_error(demo_cfg):
    source = FakeSource(10, live=True, silent=True)
    try:
        with pytest.raises(InputError, match="no video arrived within 0.3 s"):
            WindowStream(source, demo_cfg, TimelineSettings(timeout_s=0.3)).open()
    finally:
        source.release.set()


def test_should_stop_ends_the_run_cleanly_between_batches(demo_cfg):
    stop = threading.Event()
    seen = []

    def on_window(window, done, total):
        seen.append((done, total))
        if done == 6:
            stop.set()

    timeline = predict_timeline(FakeSource(400), demo_cfg, lambda imgs: np.zeros((len(imgs), 4), np.float32),
                                TimelineSettings(batch_size=3), on_window=on_window, should_stop=stop.is_set)
    assert timeline.stopped and timeline.error is None and not timeline.complete
    assert len(timeline.windows) == 6 and seen[0] == (1, 99)


def test_smoothing_in_predict_timeline_reports_smoothed_top1_and_keeps_the_raw_one(demo_cfg):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4)).astype(np.float32) * 3
    calls = iter(range(1000))

    def predictor(imgs):
        return np.stack([logits[next(calls)] for _ in imgs])

    timeline = predict_timeline(FakeSource(4 * 49 + 8), demo_cfg, predictor, TimelineSettings(smooth=3, top_k=2,
                                batch_size=4), label_names={0: "right", 1: "left", 2: "down", 3: "up"})
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    smooth = np.stack([probs[max(0, i - 1):i + 2].mean(0) for i in range(50)])
    assert [w["class_id"] for w in timeline.windows] == list(smooth.argmax(1))
    assert [w["raw_class_id"] for w in timeline.windows] == list(probs.argmax(1))
    np.testing.assert_allclose([w["score"] for w in timeline.windows], smooth.max(1), rtol=1e-6)
    assert timeline.windows[0]["class_name"] == ["right", "left", "down", "up"][smooth[0].argmax()]


# ------------------------------------------------------------------ hard cuts

def synthetic_shot(rng, length, size=(48, 64), noise=6.0, pan=0):
    """uint8 RGB ``[length, H, W, 3]``: one shot. A smooth random background (moving ``pan`` pixels per frame
    to the left), a rectangle of its own colour moving steadily (bouncing off the edges), fresh Gaussian pixel
    noise (std ``noise``) in every frame."""
    import cv2

    height, width = size
    coarse = rng.uniform(30, 220, size=(3, 4 + pan * length // 16, 3)).astype(np.float32)
    background = cv2.resize(coarse, (width + pan * length, height), interpolation=cv2.INTER_CUBIC)
    side = int(rng.integers(8, 16))
    colour = rng.uniform(0, 255, size=3)
    position, velocity = rng.uniform(0, [width - side, height - side]), rng.uniform(-2, 2, size=2)
    frames = []
    for t in range(length):
        frame = background[:, pan * t:pan * t + width].copy()
        x, y = (int(round(v)) for v in position)
        frame[y:y + side, x:x + side] = colour
        frames.append(np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8))
        position = position + velocity
        for axis, limit in enumerate((width - side, height - side)):
            if not 0 <= position[axis] <= limit:  # bounce: a change of direction is not a cut
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(position[axis], 0, limit)
    return np.stack(frames)


def synthetic_cuts(lengths, seed=0, **shot):
    """Shots of ``lengths`` frames one after the other (every other one panning): ``(frames, cut indices)``."""
    rng = np.random.default_rng(seed)
    frames = [synthetic_shot(rng, n, pan=i % 2, **shot) for i, n in enumerate(lengths)]
    return np.concatenate(frames), list(np.cumsum(lengths)[:-1])


def detected_cuts(frames):
    detector = CutDetector()
    for index, frame in enumerate(frames):
        detector.push(index, frame)
        assert detector.decided in (index - 1, index)  # a verdict waits for one frame at most
    detector.finish()
    assert detector.decided == len(frames) - 1
    return detector.cuts


def test_the_cut_detector_finds_every_cut_of_synthetic_shots_and_nothing_else():
    lengths = [20, 7, 31, 12, 45, 9, 25, 16, 6, 30]
    frames, cuts = synthetic_cuts(lengths)
    assert detected_cuts(frames) == cuts
    assert detected_cuts([thumbnail(f).astype(np.uint8) for f in frames]) == cuts  # grey frames (a luma plane)
    big = np.stack([np.repeat(np.repeat(f, 8, axis=0), 8, axis=1) for f in frames[:160]])  # 384 x 512
    assert detected_cuts(big) == [c for c in cuts if c < 160]
    noisy, cuts = synthetic_cuts(lengths, seed=1, noise=20.0)
    assert detected_cuts(noisy) == cuts


def _coming_into_view(num_frames=80, size=(48, 64)):
    """A static textured picture into which a big rectangle slides from the left edge, 2 pixels a frame."""
    rng = np.random.default_rng(3)
    frames = np.repeat(synthetic_shot(rng, 1, size=size, noise=0.0), num_frames, axis=0).astype(np.float32)
    for t in range(num_frames):
        frames[t, 10:40, :max(0, 2 * t - 20)] = (250, 240, 20)
    return np.clip(frames + rng.normal(0, 4.0, frames.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["noise", "motion", "pan", "coming_into_view", "lighting_ramp", "flat"])
def test_the_cut_detector_finds_no_cut_in_noise_motion_pans_or_gradual_changes(kind):
    rng = np.random.default_rng(7)
    if kind == "noise":  # a grey picture, noise redrawn every frame
        frames = np.clip(100 + rng.normal(0, 12.0, (300, 32, 32, 3)), 0, 255).astype(np.uint8)
    elif kind == "motion":
        frames = synthetic_shot(rng, 300)
    elif kind == "pan":
        frames = synthetic_shot(rng, 300, pan=2)
    elif kind == "coming_into_view":
        frames = _coming_into_view()
    elif kind == "lighting_ramp":  # one grey level brighter every frame for 60 frames, then steady
        base = synthetic_shot(rng, 150).astype(np.float32)
        frames = np.clip(base + np.minimum(np.arange(150), 60)[:, None, None, None], 0, 255).astype(np.uint8)
    else:  # nothing changes at all: the typical change is zero, the floor still holds
        frames = np.full((50, 32, 32, 3), 90, np.uint8)
    assert detected_cuts(frames) == []


def test_a_window_crosses_a_cut_when_its_sampled_frames_lie_on_both_sides():
    cuts = [10, 30]
    assert [crosses_cut(cuts, first, first + 7) for first in (0, 2, 3, 9, 10, 11, 23, 29, 30)] == \
        [False, False, True, True, False, False, True, True, False]
    assert not crosses_cut([], 0, 100)


@pytest.mark.parametrize("k", [3, 5, 6])
def test_smoothing_leaves_out_windows_across_cuts_unless_all_in_reach_cross_one(k):
    rng = np.random.default_rng(k)
    probs = rng.dirichlet(np.ones(5), size=40)
    crossing = rng.random(40) < 0.4
    crossing[12:12 + k + 2] = True  # windows whose K neighbours all cross a cut: all of them count
    smoother, out = Smoother(k), []
    for i, (row, across) in enumerate(zip(probs, crossing)):
        out += smoother.add(i, row, across)
    out += smoother.flush()
    before, after = (k - 1) // 2, k // 2
    expected = []
    for i in range(len(probs)):
        near = np.arange(max(0, i - before), min(len(probs), i + after + 1))
        clean = near[~crossing[near]]
        expected.append(probs[clean if len(clean) else near].mean(axis=0))
    assert [item for item, _ in out] == list(range(len(probs)))
    np.testing.assert_allclose(np.stack([p for _, p in out]), np.stack(expected), rtol=1e-12)


def test_a_segment_boundary_moves_onto_a_cut_only_where_the_shots_around_it_say_so():
    """Windows of 2 s every second (centres 1..8), classes 1 1 1 1 | 2 2 2 2: the labels put the change halfway
    between centres 4 and 5; a cut moves it when within half a window (1 s) and the shots on its two sides are
    labelled 1 and 2 by their windows that cross no cut."""
    def windows(crossing):
        return [dict(_window(i, i + 2, c), crosses_cut=x == "1") for i, (c, x) in
                enumerate(zip([1, 1, 1, 1, 2, 2, 2, 2], crossing))]

    def boundary(cuts, crossing):
        segments = merge_segments(windows(crossing), cuts=cuts)
        assert len(segments) == 2 and segments[0]["end_s"] == segments[1]["start_s"]
        return segments[1]["start_s"]

    assert boundary([], "00000000") == 4.5
    assert boundary([4.2], "00011000") == 4.2  # shot before: windows 0-2 say 1; after: windows 5-7 say 2
    assert boundary([3.2], "00110000") == 4.5  # 1.3 s away: further than half a window
    assert boundary([4.1, 4.6], "00011000") == 4.5  # the shot between the two cuts has no window of its own
    assert boundary([3.6, 7.5], "00001110") == 4.5  # both shots around 3.6 are labelled 1 (window 3 is clean)


class ShotsSource(FakeSource):
    """:class:`FakeSource` whose frames are :func:`synthetic_cuts` shots."""

    def __init__(self, lengths, **kwargs):
        self.shots, self.expected_cuts = synthetic_cuts(lengths)
        super().__init__(len(self.shots), **kwargs)

    def frames(self, wanted):
        for index in range(self.num_frames):
            if index == self.fail_at:
                raise RuntimeError("corrupt packet")
            yield index, (self.shots[index] if wanted(index) else None)


def test_windows_across_cuts_are_marked_and_left_out_of_the_smoothing(demo_cfg, tmp_path):
    source = ShotsSource([22, 13, 40, 9, 30])  # cuts at 22, 35, 75, 84 (only the window at 80 crosses the last)
    logits = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32) * 3
    calls = iter(range(1000))
    timeline = predict_timeline(source, demo_cfg, lambda imgs: np.stack([logits[next(calls)] for _ in imgs]),
                                TimelineSettings(smooth=5, top_k=4, batch_size=3))
    cuts = source.expected_cuts
    assert timeline.cuts == pytest.approx([c / 30 for c in cuts])
    starts = [round(w["start_s"] * 30) for w in timeline.windows]
    crossing = np.array([any(s < c <= s + 7 for c in cuts) for s in starts])  # 8-frame windows every 4 frames
    assert [w["crosses_cut"] for w in timeline.windows] == list(crossing) and crossing.sum() == 7
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    probs = probs[:len(starts)]
    expected = []
    for i in range(len(starts)):
        near = np.arange(max(0, i - 2), min(len(starts), i + 3))
        clean = near[~crossing[near]]
        expected.append(probs[clean if len(clean) else near].mean(axis=0))
    np.testing.assert_allclose([w["score"] for w in timeline.windows], np.max(expected, axis=1), rtol=1e-6)
    assert [w["class_id"] for w in timeline.windows] == list(np.argmax(expected, axis=1))
    assert [w["raw_class_id"] for w in timeline.windows] == list(probs.argmax(1))
    rows = read_timeline_csv(write_timeline(timeline, tmp_path, "shots")["csv"])
    assert [r["crosses_cut"] for r in rows] == list(crossing.astype(int))
    off = predict_timeline(ShotsSource([22, 13, 40, 9, 30]), demo_cfg, lambda imgs: np.zeros((len(imgs), 4)),
                           TimelineSettings(cuts="off"))
    assert off.cuts is None and not any(w["crosses_cut"] for w in off.windows)


def test_a_break_right_after_a_cut_keeps_the_window_waiting_for_its_verdict(demo_cfg):
    source = ShotsSource([23, 20], fail_at=24)  # frame 23 starts a shot; the window 16..23 waits for frame 24
    with WindowStream(source, demo_cfg) as stream:
        windows = [w for batch in stream.batches() for w in batch]
    assert stream.error.endswith("corrupt packet") and stream.cuts == [23]
    assert [(w.start_frame, w.crosses_cut) for w in windows] == [(0, False), (4, False), (8, False), (12, False),
                                                                (16, True)]


@pytest.mark.parametrize("backend", ["decord", "pyav", "cv2"])
def test_every_decoder_gives_the_detector_the_same_cuts(tmp_path, backend):
    from paddlevideo.loader.demo_data import write_avi

    frames, cuts = synthetic_cuts([20, 7, 31, 12, 45], seed=2)
    write_avi(tmp_path / "shots.avi", frames, fps=30)  # MJPG: every frame a JPEG of its own
    cfg = get_config(str(DEMO_CONFIG), [f"PIPELINE.test.decode.backend={backend}"], show=False)
    with WindowStream(str(tmp_path / "shots.avi"), cfg) as stream:
        assert sum(len(batch) for batch in stream.batches()) == stream.total
    assert stream.cuts == cuts and stream.frames_read == len(frames)


# ------------------------------------------------------------------ files

def test_detected_cuts_are_drawn_as_lines_through_the_picture(demo_cfg, tmp_path):
    """The PNG marks each detected cut: the stored data lists the cut times, and the picture with cuts differs from
    the one without exactly by lines of the cut colour, one per cut, at the cut's place on the time axis."""
    from PIL import Image

    timeline = predict_timeline(FakeSource(100), demo_cfg, lambda imgs: np.tile([[0.0, 2.0, 1.0, -1.0]], (len(imgs), 1)),
                                TimelineSettings(top_k=1))
    write_timeline(timeline, tmp_path / "plain", "v")
    timeline.cuts = [1.0, 2.5]
    write_timeline(timeline, tmp_path / "cut", "v")
    assert read_timeline_png(tmp_path / "cut" / "v.timeline.png")["cuts"] == [1.0, 2.5]
    assert read_timeline_png(tmp_path / "plain" / "v.timeline.png")["cuts"] == []
    plain, cut = (np.asarray(Image.open(tmp_path / d / "v.timeline.png").convert("RGB")).astype(int)
                  for d in ("plain", "cut"))
    red = (np.abs(cut - [178, 34, 34]).sum(axis=2) < 60) & (np.abs(cut - plain).sum(axis=2) > 0)
    columns = np.flatnonzero(red.sum(axis=0) > 20)  # tall runs: the two lines, not the legend's short sample
    groups = np.split(columns, np.flatnonzero(np.diff(columns) > 3) + 1)
    assert len(groups) == 2, columns
    centres = [g.mean() for g in groups]
    begin, end = timeline.windows[0]["start_s"], timeline.windows[-1]["end_s"]
    expected_ratio = (2.5 - begin) / (end - begin) - (1.0 - begin) / (end - begin)
    axis_width = cut.shape[1] * (0.86 - 0.07)  # subplots_adjust(left=0.07, right=0.86)
    assert abs((centres[1] - centres[0]) - expected_ratio * axis_width) < 4



def test_files_are_written_whole_with_the_exact_header(demo_cfg, tmp_path):
    timeline = predict_timeline(FakeSource(100), demo_cfg, lambda imgs: np.tile([[0.0, 2.0, 1.0, -1.0]], (len(imgs), 1)),
                                TimelineSettings(top_k=2))
    paths = write_timeline(timeline, tmp_path, "../../escape")
    assert sorted(os.listdir(tmp_path)) == ["escape.segments.json", "escape.timeline.csv", "escape.timeline.png"]
    lines = (tmp_path / "escape.timeline.csv").read_text().splitlines()
    assert lines[0] == ",".join(CSV_HEADER) + ",top2_class_id,top2_class_name,top2_score,crosses_cut"
    rows = read_timeline_csv(paths["csv"])
    assert len(rows) == len(timeline.windows) == 24 and all(r["class_name"] == "" for r in rows)
    assert {r["class_id"] for r in rows} == {1} and {r["top2_class_id"] for r in rows} == {2}
    assert {r["crosses_cut"] for r in rows} == {0} and timeline.cuts == []  # frames that brighten evenly: no cut
    assert rows[3]["start_s"] == pytest.approx(12 / 30) and rows[3]["end_s"] == pytest.approx(20 / 30)
    drawn = read_timeline_png(paths["png"])
    assert len(drawn["bars"]) == 24 and {bar[2] for bar in drawn["bars"]} == {1}
    import json

    summary = json.loads((tmp_path / "escape.segments.json").read_text())
    assert summary["complete"] and len(summary["segments"]) == 1 and summary["settings"]["stride_s"] == pytest.approx(4 / 30)
    assert summary["cuts"] == [] and summary["settings"]["cuts"] == "auto"
    off = predict_timeline(FakeSource(100), demo_cfg, lambda imgs: np.zeros((len(imgs), 4), np.float32),
                           TimelineSettings(cuts="off", top_k=1))
    write_timeline(off, tmp_path / "off", "v")
    assert (tmp_path / "off" / "v.timeline.csv").read_text().splitlines()[0] == ",".join(CSV_HEADER)
    assert json.loads((tmp_path / "off" / "v.segments.json").read_text())["cuts"] is None


def test_an_output_folder_that_is_a_file_is_one_output_error(demo_cfg, tmp_path):
    timeline = predict_timeline(FakeSource(20), demo_cfg, lambda imgs: np.zeros((len(imgs), 4), np.float32))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        write_timeline(timeline, tmp_path / "file", "a")


def test_segment_sampled_configs_need_an_explicit_window():
    ssv2 = get_config(str(REPO / "configs" / "recognition" / "timesformer" / "timesformer_ssv2_videos.yaml"),
                      ["MODEL.backbone.pretrained="], show=False)
    with pytest.raises(ConfigError, match="--window_s"):
        TimelineSettings.resolve(ssv2, 30.0)
    plan = WindowPlan(ssv2, TimelineSettings.resolve(ssv2, 30.0, window_s=4.0))
    # segment sampling of a 120-frame clip: the centre frame of each of 8 equal segments
    np.testing.assert_array_equal(plan.offsets, np.arange(8) * 15 + 7)


# ------------------------------------------------------------------ the long demo video

def _circular_centre(frames, axis):
    """Per frame, the shape's centre along ``axis`` (2: x, 1: y) on the wrapped axis: the circular mean of the
    bright pixels' positions (the shape may straddle the edge)."""
    size = frames.shape[axis]
    # weight: brightness above the background (grey 60, noise std 12), so edge pixels count by their coverage
    bright = np.clip(frames.astype(np.float64).mean(axis=-1) - 110, 0, None)
    profile = bright.sum(axis=3 - axis)  # [T, size] along the axis
    angles = 2 * np.pi * (np.arange(size) + 0.5) / size
    mean = (profile * np.exp(1j * angles)).sum(axis=1)
    return np.angle(mean) % (2 * np.pi) * size / (2 * np.pi)


@pytest.mark.parametrize("label", [0, 1, 2, 3])
def test_a_segment_moves_its_shape_continuously_in_its_class_direction(label):
    from paddlevideo.loader.demo_data import make_segment

    frames = make_segment(np.random.default_rng(label), label, 60)
    assert frames.shape == (60, 32, 32, 3) and frames.dtype == np.uint8
    along, across = (2, 1) if label in (0, 1) else (1, 2)
    centre = _circular_centre(frames, along)
    step = (np.diff(centre) + 16) % 32 - 16  # displacement per frame on the wrapped axis
    sign = 1 if label in (0, 2) else -1
    assert np.all(sign * step > 0.5), step  # always forward, never a jump back
    assert np.all(np.abs(step - np.median(step)) < 0.35), step  # constant speed (up to anti-aliasing and noise)
    lo, hi = 0.4 * (32 - 2 * 0.18 * 32 - 2) / 7, 0.9 * (32 - 2 * 0.1 * 32 - 2) / 7  # a clip's speed range
    assert lo - 0.3 <= abs(step.mean()) <= hi + 0.3
    assert np.ptp(_circular_centre(frames, across)) < 0.5  # the other coordinate stays put


def test_make_demo_long_video_writes_the_video_and_its_truth(tmp_path):
    from helpers import load_tool
    from paddlevideo.loader.decoders import open_video
    from paddlevideo.loader.demo_data import read_truth_csv
    from paddlevideo.cli import run

    tool = load_tool("tools/make_demo_long_video.py")
    out = tmp_path / "long" / "v.avi"
    assert run("make_demo_long_video.py", tool.main, ["--output", str(out), "--segments", "7", "--min_s", "0.5",
                                                      "--max_s", "1.5", "--seed", "1"]) == 0
    truth = read_truth_csv(tmp_path / "long" / "v.truth.csv")
    assert len(truth) == 7 and truth[0]["start_frame"] == 0
    assert all(a["end_frame"] == b["start_frame"] for a, b in zip(truth, truth[1:]))  # no gaps
    assert all(a["class_id"] != b["class_id"] for a, b in zip(truth, truth[1:]))
    assert all(15 <= t["end_frame"] - t["start_frame"] <= 45 for t in truth)
    assert [t["class_name"] for t in truth] == [["right", "left", "down", "up"][t["class_id"]] for t in truth]
    with open_video(str(out)) as reader:
        assert reader.num_frames == truth[-1]["end_frame"] and reader.fps == 30
    assert sorted(p.name for p in (tmp_path / "long").iterdir()) == ["v.avi", "v.truth.csv"]  # no temporary left
