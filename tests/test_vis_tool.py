"""tools/visualize_attention.py: the four files per video, for divided, joint and space-only models, the
views, a folder with a broken video, and one-line errors for bad inputs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO, load_tool

DEMO_CONFIG = REPO / "configs" / "recognition" / "timesformer" / "timesformer_demo_videos.yaml"
OUTPUTS = ("attention_grid.png", "attention.gif", "temporal_share.png", "attention.json")


@pytest.fixture(scope="module")
def tool():
    return load_tool("tools/visualize_attention.py")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from paddlevideo.loader.demo_data import make_demo_dataset

    folder = tmp_path_factory.mktemp("demo")
    make_demo_dataset(str(folder), num_train=0, num_val=2, seed=0)
    return folder


def random_weights(folder, attention_type="divided_space_time", seed=0):
    """A checkpoint of a freshly initialised demo model (``.pdparams``) and the overrides that build it."""
    import paddle

    from paddlevideo.modeling.builder import build_model
    from paddlevideo.config import get_config
    from paddlevideo.common.save_load import save

    overrides = [f"MODEL.backbone.attention_type={attention_type}"]
    cfg = get_config(str(DEMO_CONFIG), overrides, show=False)
    paddle.seed(seed)
    path = folder / f"{attention_type}.pdparams"
    save(build_model(cfg.MODEL).state_dict(), str(path))
    return path, overrides


def expected_rollout(video, weights, overrides, view, heads):
    """The maps computed here from the library parts, for comparison with the tool's JSON."""
    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.modeling.builder import build_model_with_weights
    from paddlevideo.config import get_config
    from paddlevideo.visualization.attention import explain_clip
    from paddlevideo.visualization.views import select_view

    cfg = get_config(str(DEMO_CONFIG), overrides, show=False)
    clip, _ = select_view(build_pipeline(cfg.PIPELINE.test)({"filename": str(video)}), 8, view)
    return explain_clip(build_model_with_weights(cfg.MODEL, str(weights)), clip, heads)


@pytest.mark.parametrize("attention_type, view, heads", [
    ("divided_space_time", "centre", "mean"), ("joint_space_time", "left", "max"), ("space_only", "right", "mean")])
def test_tool_writes_the_four_files(tool, videos, tmp_path, capsys, attention_type, view, heads):
    from PIL import Image

    weights, overrides = random_weights(tmp_path, attention_type)
    video = videos / "val" / "000001.avi"
    argv = ["-c", str(DEMO_CONFIG), "-w", str(weights), "--input_file", str(video), "-o", str(tmp_path / "out"),
            "--view", view, "--heads", heads, "--label_file", str(videos / "label_list.txt")]
    for item in overrides:
        argv += ["--override", item]
    assert tool.main(argv) == 0
    out = tmp_path / "out" / "000001"
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    assert f"-> {out}" in capsys.readouterr().out
    record = json.loads((out / "attention.json").read_text())
    scores, rollout = expected_rollout(video, weights, overrides, view, heads)
    np.testing.assert_allclose(np.array(record["maps"]), rollout.maps[0], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(record["temporal_share"], rollout.temporal_share[0], rtol=1e-5, atol=1e-9)
    assert record["attention_type"] == attention_type and record["view"] == view and record["heads"] == heads
    assert record["frame_indices"] == list(range(8)) and record["grid"] == [4, 4]
    assert record["prediction"]["class_ids"][0] == int(np.argmax(scores[0]))
    assert record["prediction"]["class_names"][0] in ("right", "left", "down", "up")
    with Image.open(out / "attention.gif") as gif:
        assert gif.n_frames == 8
    for name in ("attention_grid.png", "temporal_share.png"):
        with Image.open(out / name) as image:
            image.verify()


def test_the_tool_offers_the_library_choices(tool):
    from paddlevideo.visualization.rollout import HEAD_FUSIONS
    from paddlevideo.visualization.views import VIEWS

    assert tool.VIEWS == VIEWS and tool.HEADS == HEAD_FUSIONS


def test_folder_with_a_broken_video(tool, videos, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("000000.avi", "000001.avi"):
        (folder / name).write_bytes((videos / "val" / name).read_bytes())
    (folder / "broken.avi").write_bytes(b"not a video at all")
    weights, _ = random_weights(tmp_path)
    code = tool.main(["-c", str(DEMO_CONFIG), "-w", str(weights), "-i", str(folder), "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("visualize_attention.py: error:")]
    assert len(errors) == 2 and "broken.avi" in errors[0] and "1 of 3 video(s)" in errors[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000000", "000001"]


@pytest.mark.parametrize("change, message", [
    ({"-c": "missing.yaml"}, "missing.yaml"),
    ({"-w": "missing.pdparams"}, "missing.pdparams"),
    ({"-i": "missing_folder"}, "missing_folder"),
])
def test_bad_inputs_are_one_line_errors(tool, videos, tmp_path, capsys, change, message):
    weights, _ = random_weights(tmp_path)
    args = {"-c": str(DEMO_CONFIG), "-w": str(weights), "-i": str(videos / "val"), "-o": str(tmp_path / "out")}
    args.update(change)
    from paddlevideo.cli import run

    assert run(tool.PROG, tool.main, [part for pair in args.items() for part in pair]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("visualize_attention.py: error:") and message in err[0], err


def test_a_single_view_pipeline_refuses_left_in_one_line(tmp_path, videos):
    """Run as a user does (a subprocess): a CenterCrop pipeline has no left view; one line, exit 1, no traceback."""
    weights, _ = random_weights(tmp_path)
    cmd = [sys.executable, "tools/visualize_attention.py", "-c", str(DEMO_CONFIG), "-w", str(weights),
           "-i", str(videos / "val"), "-o", str(tmp_path / "out"), "--view", "left",
           "--override", "PIPELINE.test.transform.2={CenterCrop: {target_size: 32}}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, done.stderr  # a flag that does not fit the config stops before any video
    assert errors[0].startswith("visualize_attention.py: error:") and "use --view centre" in errors[0]
    assert "Traceback" not in done.stderr


def test_scores_are_softmax_of_the_logits_whatever_the_view_averaging(tool, videos, tmp_path):
    """``avg_type: prob`` makes the recognizer's test output probabilities; the tool must not softmax them again."""
    import paddle

    from paddlevideo.loader.builder import build_pipeline
    from paddlevideo.modeling.builder import build_model_with_weights
    from paddlevideo.deploy.predict import softmax
    from paddlevideo.config import get_config
    from paddlevideo.visualization.views import select_view

    weights, _ = random_weights(tmp_path, seed=3)
    video = videos / "val" / "000000.avi"
    argv = ["-c", str(DEMO_CONFIG), "-w", str(weights), "-i", str(video), "-o", str(tmp_path / "out"),
            "--top_k", "4", "--override", "MODEL.runtime_cfg.test.avg_type=prob"]
    assert tool.main(argv) == 0
    prediction = json.loads((tmp_path / "out" / "000000" / "attention.json").read_text())["prediction"]
    cfg = get_config(str(DEMO_CONFIG), ["MODEL.runtime_cfg.test.avg_type=score"], show=False)
    clip, _ = select_view(build_pipeline(cfg.PIPELINE.test)({"filename": str(video)}), 8, "centre")
    with paddle.no_grad():
        logits = build_model_with_weights(cfg.MODEL, str(weights))(paddle.to_tensor(clip), mode="infer").numpy()
    probs = softmax(logits)[0]
    np.testing.assert_allclose(prediction["scores"], probs[prediction["class_ids"]], rtol=1e-5)
    assert sum(prediction["scores"]) == pytest.approx(1.0, abs=1e-5)
