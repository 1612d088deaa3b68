"""Temporal window and frame indices, checked against an independent numpy computation."""

import numpy as np
import pytest

from paddlevideo.loader.pipelines.sample import Sampler, Window, segment_indices, temporal_window


def reference_indices(frames, fps, num_seg=8, sampling_rate=32, target_fps=30, start=0.0):
    """The window formula written out element by element."""
    clip = sampling_rate * num_seg / target_fps * fps
    end = start + clip - 1
    out = []
    for k in range(num_seg):
        value = start + (end - start) * k / (num_seg - 1)
        value = min(max(value, 0), frames - 1)
        out.append(int(np.trunc(value)))
    return out


def sample(frames, fps, mode="test", num_seg=8):
    """The sampler's own choice: window from the decode settings, then the indices."""
    sampler = Sampler(num_seg=num_seg, linspace_sample=True)
    window = Window(mode=mode, num_seg=num_seg, sampling_rate=32, target_fps=30)
    return sampler.indices(frames, sampler.windows(frames, fps, window))


@pytest.mark.parametrize("fps", [25, 30])
@pytest.mark.parametrize("frames", [7, 8, 60, 301])
def test_test_mode_indices_match_formula(frames, fps):
    indices = sample(frames, fps)
    assert indices.dtype == np.int64
    assert indices.tolist() == reference_indices(frames, fps)


def test_worked_examples():
    assert sample(60, 25).tolist() == [0, 30, 59, 59, 59, 59, 59, 59]
    assert sample(301, 25).tolist() == [0, 30, 60, 91, 121, 151, 182, 212]
    assert sample(301, 30).tolist() == [0, 36, 72, 109, 145, 182, 218, 255]
    assert sample(7, 30).tolist() == [0, 6, 6, 6, 6, 6, 6, 6]


@pytest.mark.parametrize("mode", ["train", "valid"])
@pytest.mark.parametrize("frames,fps", [(301, 25), (600, 30), (60, 25)])
def test_train_window_bounds(frames, fps, mode):
    np.random.seed(0)
    clip = 32 * 8 / 30 * fps
    delta = max(frames - clip, 0)
    starts = []
    for _ in range(400):
        start, end = temporal_window(frames, fps, 8, 32, 30, mode)
        assert 0 <= start <= delta
        assert end == pytest.approx(start + clip - 1)
        indices = Sampler(num_seg=8, linspace_sample=True).indices(frames, [(start, end)])
        assert indices.tolist() == reference_indices(frames, fps, start=start)
        assert indices.min() >= int(start) and indices.max() <= min(int(end), frames - 1)
        starts.append(start)
    if delta > 0:  # uniform over [0, delta]: both ends of the range are reached, mean near the middle
        assert min(starts) < 0.05 * delta and max(starts) > 0.95 * delta
        assert abs(np.mean(starts) - delta / 2) < 0.1 * delta
    else:
        assert set(starts) == {0.0}


def test_segment_sampling_valid_mode_centres():
    # 80 frames, 8 segments of 10: centre offset (10 - 1) // 2 = 4
    assert segment_indices(80, 8, 1, True).tolist() == [i * 10 + 4 for i in range(8)]
    np.random.seed(1)
    train = segment_indices(80, 8, 1, False)
    assert all(i * 10 <= v < (i + 1) * 10 for i, v in enumerate(train))


def test_sampler_owns_the_train_window():
    """In train mode the Sampler draws the window start itself, from the decode settings it is handed."""
    sampler = Sampler(num_seg=8, linspace_sample=True)
    window = Window(mode="train", num_seg=8, sampling_rate=32, target_fps=30)
    starts = set()
    for seed in range(20):
        np.random.seed(seed)
        (start, end), = sampler.windows(600, 30, window)
        np.random.seed(seed)
        assert (start, end) == temporal_window(600, 30, 8, 32, 30, "train")
        starts.add(round(start, 6))
    assert len(starts) == 20  # a fresh draw per call
    assert sampler.windows(600, 30, Window(mode="test", num_seg=8)) == [(0.0, 255.0)]
    assert Sampler(num_seg=8).windows(600, 30, window) is None  # segment sampling covers the whole video
