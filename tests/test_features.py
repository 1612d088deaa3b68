"""tools/extract_features.py (issue 6): one CLS feature per video, averaged over the test views."""

from pathlib import Path

import numpy as np
import paddle

import pytest

from paddlevideo.loader.builder import build_pipeline
from paddlevideo.modeling import build_model
from paddlevideo.cli import run
from paddlevideo.config import save_config
from paddlevideo.common.errors import UserError

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


def test_window_features_are_the_cls_of_each_window_as_its_own_clip(tmp_path, tiny_cfg):
    """--window_s / --stride_s: one view-averaged CLS feature per window, equal to extract_feature on the
    window's frames cut into a clip of their own and run through the test pipeline (MJPG: same pixels)."""
    from paddlevideo.deploy.timeline import TimelineSettings, WindowPlan
    from paddlevideo.loader.decoders import open_video
    from paddlevideo.loader.demo_data import write_avi
    from paddlevideo.config import get_config

    model, config, weights = _setup(tmp_path, tiny_cfg)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(75, 48, 64, 3), dtype=np.uint8)
    write_avi(tmp_path / "long.avi", frames, fps=25)
    cut = tmp_path / "cut"
    cut.mkdir()
    data = (tmp_path / "long.avi").read_bytes()
    (cut / "cut.avi").write_bytes(data[:len(data) * 2 // 3])
    out = tmp_path / "features"
    tool = load_tool("tools/extract_features.py")
    assert run("extract_features.py", tool.main, ["-c", config, "-w", weights, "--input_file", str(tmp_path / "long.avi"),
                                                  "-o", str(out), "--window_s", "1.0", "--stride_s", "0.4"]) == 0
    saved = np.load(out / "long.windows.npz")
    plan = WindowPlan(tiny_cfg, TimelineSettings.resolve(tiny_cfg, 25.0, window_s=1.0, stride_s=0.4))
    starts = [plan.start(k) for k in range(10) if plan.start(k) + plan.span <= 75]
    assert saved["features"].shape == (len(starts), 64) and saved["features"].dtype == np.float32
    np.testing.assert_allclose(saved["start_s"], np.array(starts) / 25)
    np.testing.assert_allclose(saved["end_s"], (np.array(starts) + 25) / 25)

    own = get_config(config, ["PIPELINE.test.decode.sampling_rate=7.5"], show=False)  # 4 x 7.5 / 30 = 1 s
    pipeline = build_pipeline(own.PIPELINE.test)
    with open_video(str(tmp_path / "long.avi")) as reader:
        decoded = reader.get_frames(np.arange(75))
    for k, start in enumerate(starts):
        clip = tmp_path / f"w{k}.avi"
        write_avi(clip, frames[start:start + plan.span], fps=25)
        with open_video(str(clip)) as reader:  # the same pixels as in the long video (MJPG, frame by frame)
            np.testing.assert_array_equal(reader.get_frames(np.arange(plan.span)), decoded[start:start + plan.span])
        imgs = pipeline({"filename": str(clip)})["imgs"]
        with paddle.no_grad():
            expected = model.extract_feature(paddle.to_tensor(imgs[None])).numpy()[0]
        np.testing.assert_allclose(saved["features"][k], expected, rtol=1e-4, atol=1e-5, err_msg=f"window {k}")

    # a video cut off: the windows before the break are written, the run says so and exits 1
    with open_video(str(cut / "cut.avi"), "pyav") as reader:
        assert reader.num_frames == 75  # the header still announces the whole video
    code = run("extract_features.py", tool.main, ["-c", config, "-w", weights, "--input_file", str(cut / "cut.avi"),
                                                  "-o", str(out), "--window_s", "1.0", "--stride_s", "0.4"])
    assert code == 1
    partial = np.load(out / "cut.windows.npz")
    assert 0 < len(partial["features"]) < len(starts)
    np.testing.assert_allclose(partial["features"][:-1], saved["features"][:len(partial["features"]) - 1], rtol=1e-5)
