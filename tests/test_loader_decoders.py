"""The three decoders: same frames, only the sampled ones, and the full test pipeline on real videos."""

import numpy as np
import pytest

from paddlevideo.loader.builder import build_pipeline
from paddlevideo.loader.decoders import BACKENDS, decode_all, open_video
from paddlevideo.loader.demo_data import write_avi
from paddlevideo.config import get_config


@pytest.fixture
def mjpeg_avi(tmp_path):
    """A 40-frame 48x64 MJPG AVI at 25 fps with a different picture in every frame."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(40, 48, 64, 3), dtype=np.uint8)
    frames[:, :8, :8] = np.arange(40)[:, None, None, None] * 6  # a frame counter block
    path = tmp_path / "clip.avi"
    write_avi(path, frames, fps=25)
    return path


def test_backends_agree_on_mjpeg(mjpeg_avi):
    indices = np.array([0, 5, 6, 39, 20, 20, 3, 38, 1])
    frames = {}
    for backend in BACKENDS:
        with open_video(str(mjpeg_avi), backend) as reader:
            assert reader.num_frames == 40 and reader.fps == pytest.approx(25)
            frames[backend] = reader.get_frames(indices)
        assert frames[backend].shape == (len(indices), 48, 64, 3) and frames[backend].dtype == np.uint8
        full = decode_all(str(mjpeg_avi), backend)
        assert full.shape[0] == 40
        np.testing.assert_array_equal(frames[backend], full[indices])  # random access == sequential decode
    for backend in BACKENDS[1:]:
        np.testing.assert_array_equal(frames[backend], frames["decord"])
    # the counter block identifies the frame: decoded order follows the requested indices
    assert np.abs(frames["decord"][:, 2:6, 2:6].mean(axis=(1, 2, 3)) - indices * 6).max() < 3


def test_open_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video at all" * 10)
    for backend in BACKENDS:
        with pytest.raises(RuntimeError, match="broken.avi"):
            open_video(str(broken), backend)
        with pytest.raises(RuntimeError, match="missing.avi"):
            open_video(str(tmp_path / "missing.avi"), backend)
    with pytest.raises(ValueError, match="unknown video backend"):
        open_video(str(broken), "ffmpeg")


def test_test_pipeline_on_example_avi_every_backend(example_avi):
    """example.avi is MPEG-4 Part 2 in AVI: every backend decodes the same frames, so the outputs agree exactly
    (tolerance 0); the only float work after decoding is identical numpy / paddle code."""
    from conftest import K400_CONFIG

    cfg = get_config(str(K400_CONFIG), show=False)
    outputs = {}
    for backend in BACKENDS:
        cfg.PIPELINE.test.decode.backend = backend
        results = build_pipeline(cfg.PIPELINE.test, "test")({"filename": str(example_avi)})
        assert results["imgs"].shape == (3, 24, 224, 224) and results["imgs"].dtype == np.float32
        assert results["frames_len"] == 131 and results["fps"] == pytest.approx(25)
        assert results["frame_idx"].tolist() == [0, 30, 60, 91, 121, 130, 130, 130]
        outputs[backend] = results["imgs"]
    for backend in BACKENDS[1:]:
        np.testing.assert_array_equal(outputs[backend], outputs["decord"])


def test_random_access_matches_full_decode_on_h264(h264_mp4):
    """On a real H.264 MP4 the sampled frames of every backend equal those frames of a full sequential decode
    (this file has no B-frame reordering issues: frame counts agree, so the comparison is exact)."""
    indices = np.array([0, 18, 37, 56, 75, 94, 113, 131])
    full = decode_all(str(h264_mp4), "pyav")
    assert full.shape[0] == 132
    for backend in BACKENDS:
        with open_video(str(h264_mp4), backend) as reader:
            assert reader.num_frames == 132
            np.testing.assert_array_equal(reader.get_frames(indices), full[indices])
