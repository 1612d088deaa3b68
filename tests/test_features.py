"""tools/extract_features.py (issue 6): one CLS feature per video, averaged over the test views."""

from pathlib import Path

import numpy as np
import paddle

import pytest

from paddlevideo.loader.builder import build_pipeline
from paddlevideo.modeling import build_model
from paddlevideo.utils.cli import run
from paddlevideo.utils.config import save_config
from paddlevideo.utils.errors import UserError

from helpers import load_tool
from test_multiclip import multiclip_cfg, write_index_video

def _setup(tmp_path, cfg):
    paddle.seed(1)
    cfg.MODEL.backbone.time_embed_std = 1.0
    config = tmp_path / "tiny.yaml"
    save_config(cfg, config)
    model = build_model(cfg.MODEL)
    model.eval()
    weights = tmp_path / "w.pdparams"
    paddle.save(model.state_dict(), str(weights))
    return model, str(config), str(weights)


def test_features_are_view_averaged_cls_and_broken_videos_are_reported(tmp_path, tiny_cfg, capsys):
    cfg = multiclip_cfg(tiny_cfg, 1)
    model, config, weights = _setup(tmp_path, cfg)
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    good = [write_index_video(videos / "a.avi", seed=0), write_index_video(videos / "sub" / "b.avi", 70, seed=1)]
    (videos / "broken.avi").write_bytes(b"not a video at all" * 10)
    out = tmp_path / "features"

    tool = load_tool("tools/extract_features.py")
    code = run("extract_features.py", tool.main,
               ["-c", config, "-w", weights, "--input_file", str(videos), "-o", str(out), "--num_clips", "2"])
    assert code == 1  # one video failed
    captured = capsys.readouterr()
    assert "broken.avi" in captured.out and "skipping broken video" in captured.out
    assert captured.err.strip().splitlines()[-1] == (  # the run ends with one line counting the failures
        f"extract_features.py: error: 1 of 3 video(s) could not be read and have no features (the others were "
        f"written): {videos / 'broken.avi'}")
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "b.npy"]

    cfg.PIPELINE.test.decode.num_clips = 2
    pipeline = build_pipeline(cfg.PIPELINE.test)
    for video in good:
        feature = np.load(out / (Path(video).stem + ".npy"))
        assert feature.shape == (64,) and feature.dtype == np.float32
        imgs = pipeline({"filename": video})["imgs"]
        assert imgs.shape[1] == 6 * 4  # 2 clips x 3 crops
        with paddle.no_grad():
            per_view = np.stack([model.backbone(paddle.to_tensor(imgs[None, :, v * 4:(v + 1) * 4])).numpy()[0]
                                 for v in range(6)])
        assert np.abs(per_view - per_view.mean(axis=0)).max() > 1e-3  # views differ, so the average matters
        np.testing.assert_allclose(feature, per_view.mean(axis=0), atol=1e-5)


def test_single_video_file_succeeds(tmp_path, tiny_cfg):
    _, config, weights = _setup(tmp_path, tiny_cfg)
    video = write_index_video(tmp_path / "clip.avi", seed=3)
    out = tmp_path / "f"
    assert load_tool("tools/extract_features.py").main(["-c", config, "-w", weights, "--input_file", video, "-o", str(out)]) == 0
    assert np.load(out / "clip.npy").shape == (64,)


def test_duplicate_stems_and_missing_input_are_clear_errors(tmp_path, tiny_cfg):
    _, config, weights = _setup(tmp_path, tiny_cfg)
    for sub in ("x", "y"):
        (tmp_path / "v" / sub).mkdir(parents=True)
        write_index_video(tmp_path / "v" / sub / "same.avi", 8)
    tool = load_tool("tools/extract_features.py")
    with pytest.raises(UserError, match="share the name 'same'"):
        tool.main(["-c", config, "-w", weights, "--input_file", str(tmp_path / "v"), "-o", str(tmp_path / "o")])
    missing = str(tmp_path / "nope")
    with pytest.raises(UserError, match="neither a video file nor a folder"):
        tool.main(["-c", config, "-w", weights, "--input_file", missing, "-o", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()  # inputs are checked before anything is written
