"""Multi-clip testing (issue 6): num_clips temporal clips x 3 crops, clips spread uniformly, scores averaged."""

import numpy as np
import paddle
import pytest

from paddlevideo.loader.builder import build_pipeline
from paddlevideo.loader.decoders import decode_all
from paddlevideo.modeling import build_model

LEVEL = 4  # grey level step per frame: frame i is filled with LEVEL * i, so decoded frames tell their index


def write_index_video(path, num_frames=60, fps=25, height=32, width=40, seed=None):
    """An MJPG AVI whose frame i is grey level ``LEVEL * i mod 256`` (plus optional fixed noise for varied content)."""
    import cv2

    rng = np.random.RandomState(seed) if seed is not None else None
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for i in range(num_frames):
        frame = np.full((height, width, 3), (LEVEL * i) % 256, np.uint8)
        if rng is not None:
            frame[: height // 2, : width // 2] = rng.randint(0, 256, (height // 2, width // 2, 3))
        writer.write(frame)
    writer.release()
    return str(path)


def multiclip_cfg(cfg, num_clips):
    """The tiny config with a short window (4 frames every 4 at 30 fps) so clips of a short video differ."""
    cfg.PIPELINE.test.decode.sampling_rate = 4
    cfg.PIPELINE.test.decode.num_clips = num_clips
    return cfg


def expected_indices(frames_len, fps, num_seg, sampling_rate, num_clips, target_fps=30):
    """Independent statement of the protocol: clip k starts at delta * k / num_clips."""
    clip = sampling_rate * num_seg / target_fps * fps
    delta = max(frames_len - clip, 0.0)
    out = []
    for k in range(num_clips):
        start = delta * k / num_clips
        out += [int(min(max(x, 0), frames_len - 1)) for x in np.linspace(start, start + clip - 1, num_seg)]
    return out


def test_two_clips_read_two_uniform_windows(tmp_path, tiny_cfg):
    video = write_index_video(tmp_path / "v.avi")
    results = build_pipeline(multiclip_cfg(tiny_cfg, 2).PIPELINE.test)({"filename": video})
    want = expected_indices(60, 25, 4, 4, 2)
    assert want[4] > want[3]  # the second clip starts later: 0..12 then 23..35
    assert results["frame_idx"].tolist() == want
    imgs = results["imgs"]
    assert imgs.shape == (3, 3 * 2 * 4, 32, 32)  # 3 crops x 2 clips x 4 frames
    # View order on T: crop-major, then clip, then frame. Frames are uniform grey, so each frame's mean
    # (normalisation undone) identifies the decoded frame it came from.
    levels = decode_all(video)[..., 0].mean(axis=(1, 2)) / 255.0
    assert np.all(np.diff(levels) > 1.5 / 255)  # every frame distinguishable
    grey = (imgs[0] * 0.225 + 0.45).mean(axis=(1, 2))
    for view in range(6):
        clip = view % 2
        got = [int(np.argmin(np.abs(levels - g))) for g in grey[view * 4:(view + 1) * 4]]
        assert got == want[clip * 4:(clip + 1) * 4]


def test_default_is_one_clip_as_before(tmp_path, tiny_cfg):
    video = write_index_video(tmp_path / "v.avi")
    multiclip_cfg(tiny_cfg, 1)
    one = build_pipeline(tiny_cfg.PIPELINE.test)({"filename": video})
    del tiny_cfg.PIPELINE.test.decode["num_clips"]
    default = build_pipeline(tiny_cfg.PIPELINE.test)({"filename": video})
    assert "clip_windows" not in default and one["imgs"].shape == (3, 12, 32, 32)
    np.testing.assert_array_equal(one["imgs"], default["imgs"])
    assert default["frame_idx"].tolist() == expected_indices(60, 25, 4, 4, 1)


def test_num_clips_is_rejected_where_it_cannot_apply(tiny_cfg):
    from paddlevideo.loader.pipelines.decode import VideoDecoder

    with pytest.raises(ValueError, match="test/infer mode only"):
        VideoDecoder(mode="train", num_clips=2)
    with pytest.raises(ValueError, match="positive integer"):
        VideoDecoder(mode="test", num_clips=0)


def test_score_is_mean_of_six_independent_view_scores(tmp_path, tiny_cfg):
    from paddlevideo.tasks.test import test_model

    paddle.seed(0)
    cfg = multiclip_cfg(tiny_cfg, 2)
    cfg.MODEL.backbone.time_embed_std = 1.0  # frame order matters, so different clips score differently
    videos = [write_index_video(tmp_path / f"v{i}.avi", num_frames=60 + 10 * i, seed=i) for i in range(2)]
    (tmp_path / "test.list").write_text("".join(f"{v} {i}\n" for i, v in enumerate(videos)))
    cfg.DATASET.test.file_path = str(tmp_path / "test.list")
    cfg.DATASET.test_batch_size = 2
    cfg.output_dir = str(tmp_path / "out")
    model = build_model(cfg.MODEL)
    model.eval()
    weights = str(tmp_path / "w.pdparams")
    paddle.save(model.state_dict(), weights)

    result = test_model(cfg, weights, save_scores=True, scores_path=str(tmp_path / "scores.npz"))
    assert result["num_clips"] == 2
    saved = np.load(tmp_path / "scores.npz")
    scores = dict(zip(saved["indices"].tolist(), saved["scores"]))

    pipeline = build_pipeline(cfg.PIPELINE.test)
    for index, video in enumerate(videos):
        imgs = pipeline({"filename": video})["imgs"]
        views = [imgs[:, v * 4:(v + 1) * 4] for v in range(imgs.shape[1] // 4)]
        assert len(views) == 6
        with paddle.no_grad():
            per_view = np.stack([model.head(model.backbone(paddle.to_tensor(v[None]))).numpy()[0] for v in views])
        assert np.abs(per_view[0] - per_view[1]).max() > 1e-3  # clip 0 and clip 1 of crop 0 really differ
        np.testing.assert_allclose(scores[index], per_view.mean(axis=0), atol=1e-5)


def test_multiclip_on_the_demo_video(example_avi, tiny_cfg):
    """The real clip (131 frames, 25 fps): 3 clips spread over it, 9 views."""
    results = build_pipeline(multiclip_cfg(tiny_cfg, 3).PIPELINE.test)({"filename": str(example_avi)})
    want = expected_indices(131, 25, 4, 4, 3)
    assert results["frame_idx"].tolist() == want
    assert want[0] == 0 and want[8] > want[4] > want[3]
    assert results["imgs"].shape == (3, 9 * 4, 32, 32)
    model = build_model(tiny_cfg.MODEL)
    model.eval()
    with paddle.no_grad():
        scores = model(paddle.to_tensor(results["imgs"][None]), mode="test")
    assert scores.shape == [1, 10]
